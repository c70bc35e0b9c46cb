import { badRequest } from "./errors.js";

/**
 * SCIM filters (RFC 7644 §3.4.2.2): a tokenizer, a recursive-descent parser into a typed tree, and an
 * evaluator over a resource's SCIM JSON. Precedence: `not` over `and` over `or`; parentheses group; a
 * value path `emails[type eq "work" and value co "@x"]` filters the elements of a multi-valued attribute.
 * Every syntax error is a ScimError 400 `invalidFilter` naming the position; nothing is evaluated then.
 */

export type CompareOp = "eq" | "ne" | "co" | "sw" | "ew" | "gt" | "lt" | "ge" | "le";
export type Literal = string | number | boolean | null;
/** An attribute path, lower-cased: `emails.value` is ["emails", "value"]; a schema URN prefix is dropped. */
export type AttrPath = string[];

export type Filter =
  | { op: "and" | "or"; left: Filter; right: Filter }
  | { op: "not"; filter: Filter }
  | { op: "pr"; path: AttrPath }
  | { op: CompareOp; path: AttrPath; value: Literal }
  | { op: "value"; path: AttrPath; filter: Filter };

const COMPARE = new Set(["eq", "ne", "co", "sw", "ew", "gt", "lt", "ge", "le"]);
const MAX_LENGTH = 4096;
const MAX_DEPTH = 32;

type Token = { kind: "(" | ")" | "[" | "]" | "str" | "num" | "word"; text: string; value?: Literal; at: number };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      i++;
      continue;
    }
    if (c === "(" || c === ")" || c === "[" || c === "]") {
      out.push({ kind: c, text: c, at: i++ });
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') j += src[j] === "\\" ? 2 : 1;
      if (j >= src.length) throw badRequest("invalidFilter", `unterminated string at ${i}`);
      const text = src.slice(i, j + 1);
      let value: string;
      try {
        value = JSON.parse(text) as string;
      } catch {
        throw badRequest("invalidFilter", `bad string escape at ${i}`);
      }
      out.push({ kind: "str", text, value, at: i });
      i = j + 1;
      continue;
    }
    const m = /^-?\d+(\.\d+)?([eE][+-]?\d+)?(?![A-Za-z0-9_:.$-])/.exec(src.slice(i));
    if (m) {
      out.push({ kind: "num", text: m[0], value: Number(m[0]), at: i });
      i += m[0].length;
      continue;
    }
    const w = /^[A-Za-z][A-Za-z0-9_:.$-]*/.exec(src.slice(i));
    if (!w) throw badRequest("invalidFilter", `unexpected character ${JSON.stringify(c)} at ${i}`);
    out.push({ kind: "word", text: w[0], at: i });
    i += w[0].length;
  }
  return out;
}

/** `urn:ietf:params:scim:schemas:core:2.0:User:name.familyName` -> ["name", "familyname"]. */
export function parsePath(text: string, at = 0): AttrPath {
  let t = text;
  if (/^urn:/i.test(t)) {
    const k = t.lastIndexOf(":");
    t = t.slice(k + 1);
  }
  const parts = t.split(".");
  if (parts.length > 2 || parts.some((p) => !/^[A-Za-z][A-Za-z0-9_$-]*$/.test(p))) throw badRequest("invalidFilter", `not an attribute path at ${at}: ${JSON.stringify(text)}`);
  return parts.map((p) => p.toLowerCase());
}

class Parser {
  private i = 0;
  constructor(private readonly t: Token[]) {}

  private peek(): Token | undefined {
    return this.t[this.i];
  }
  private word(w: string): boolean {
    const p = this.peek();
    return p?.kind === "word" && p.text.toLowerCase() === w;
  }
  private expect(kind: Token["kind"]): Token {
    const p = this.peek();
    if (p?.kind !== kind) throw badRequest("invalidFilter", p ? `expected '${kind}' at ${p.at}, found ${JSON.stringify(p.text)}` : `expected '${kind}' at the end`);
    this.i++;
    return p;
  }

  parse(): Filter {
    const f = this.or(0);
    const rest = this.peek();
    if (rest) throw badRequest("invalidFilter", `unexpected ${JSON.stringify(rest.text)} at ${rest.at}`);
    return f;
  }

  private or(depth: number): Filter {
    let left = this.and(depth);
    while (this.word("or")) {
      this.i++;
      left = { op: "or", left, right: this.and(depth) };
    }
    return left;
  }

  private and(depth: number): Filter {
    let left = this.unary(depth);
    while (this.word("and")) {
      this.i++;
      left = { op: "and", left, right: this.unary(depth) };
    }
    return left;
  }

  private unary(depth: number): Filter {
    if (depth > MAX_DEPTH) throw badRequest("invalidFilter", `filter nests deeper than ${MAX_DEPTH}`);
    if (this.word("not")) {
      this.i++;
      this.expect("(");
      const filter = this.or(depth + 1);
      this.expect(")");
      return { op: "not", filter };
    }
    if (this.peek()?.kind === "(") {
      this.i++;
      const f = this.or(depth + 1);
      this.expect(")");
      return f;
    }
    return this.attrExp(depth);
  }

  private attrExp(depth: number): Filter {
    const a = this.expect("word");
    const path = parsePath(a.text, a.at);
    if (this.peek()?.kind === "[") {
      if (path.length !== 1) throw badRequest("invalidFilter", `a value filter applies to a multi-valued attribute, not ${a.text} (at ${a.at})`);
      this.i++;
      const filter = this.or(depth + 1);
      this.expect("]");
      return { op: "value", path, filter };
    }
    const opTok = this.expect("word");
    const op = opTok.text.toLowerCase();
    if (op === "pr") return { op: "pr", path };
    if (!COMPARE.has(op)) throw badRequest("invalidFilter", `unknown operator ${JSON.stringify(opTok.text)} at ${opTok.at}`);
    const v = this.peek();
    if (!v) throw badRequest("invalidFilter", `operator ${op} needs a value at the end`);
    this.i++;
    let value: Literal;
    if (v.kind === "str" || v.kind === "num") value = v.value!;
    else if (v.kind === "word" && ["true", "false", "null"].includes(v.text.toLowerCase())) value = JSON.parse(v.text.toLowerCase()) as Literal;
    else throw badRequest("invalidFilter", `expected a value (string, number, true, false, null) at ${v.at}, found ${JSON.stringify(v.text)}`);
    if ((op === "co" || op === "sw" || op === "ew") && typeof value !== "string") throw badRequest("invalidFilter", `${op} compares strings (at ${opTok.at})`);
    if ((op === "gt" || op === "lt" || op === "ge" || op === "le") && (typeof value === "boolean" || value === null)) throw badRequest("invalidFilter", `${op} does not compare ${String(value)} (at ${opTok.at})`);
    return { op: op as CompareOp, path, value };
  }
}

export function parseFilter(src: string): Filter {
  if (src.length > MAX_LENGTH) throw badRequest("invalidFilter", `filter longer than ${MAX_LENGTH} characters`);
  if (src.trim() === "") throw badRequest("invalidFilter", "empty filter");
  return new Parser(tokenize(src)).parse();
}

/** Attributes compared case-sensitively (RFC 7643: caseExact true); every other string compares case-insensitively. */
const CASE_EXACT = new Set(["id", "externalid", "members.value", "groups.value", "meta.version", "password"]);

/** The object's member named `key`, ignoring case (SCIM attribute names are case-insensitive). */
function member(o: unknown, key: string): unknown {
  if (o === null || typeof o !== "object" || Array.isArray(o)) return undefined;
  for (const [k, v] of Object.entries(o)) if (k.toLowerCase() === key) return v;
  return undefined;
}

/** Every value at `path` in `o`, multi-valued attributes flattened. */
export function valuesAt(o: unknown, path: AttrPath): unknown[] {
  let cur: unknown[] = [o];
  for (const key of path) {
    const next: unknown[] = [];
    for (const c of cur) {
      const v = member(c, key);
      if (Array.isArray(v)) next.push(...v);
      else if (v !== undefined && v !== null) next.push(v);
    }
    cur = next;
  }
  return cur;
}

function compare(op: CompareOp, actual: unknown, want: Literal, exact: boolean): boolean {
  if (want === null) return op === "eq" ? actual === null : op === "ne" ? actual !== null : false;
  if (typeof want === "boolean") return op === "eq" ? actual === want : op === "ne" ? actual !== want : false;
  if (typeof want === "number") {
    if (typeof actual !== "number") return op === "ne";
    switch (op) {
      case "eq": return actual === want;
      case "ne": return actual !== want;
      case "gt": return actual > want;
      case "ge": return actual >= want;
      case "lt": return actual < want;
      case "le": return actual <= want;
      default: return false;
    }
  }
  if (typeof actual !== "string") return op === "ne";
  const a = exact ? actual : actual.toLowerCase();
  const w = exact ? want : want.toLowerCase();
  switch (op) {
    case "eq": return a === w;
    case "ne": return a !== w;
    case "co": return a.includes(w);
    case "sw": return a.startsWith(w);
    case "ew": return a.endsWith(w);
    case "gt": return a > w;
    case "ge": return a >= w;
    case "lt": return a < w;
    case "le": return a <= w;
  }
}

const present = (v: unknown) => !(v === undefined || v === null || v === "" || (Array.isArray(v) && v.length === 0) || (typeof v === "object" && Object.keys(v).length === 0));

/** Whether `resource` (its SCIM JSON) matches; `prefix` is the path of the multi-valued attribute inside a value filter. */
export function matches(f: Filter, resource: unknown, prefix: AttrPath = []): boolean {
  switch (f.op) {
    case "and":
      return matches(f.left, resource, prefix) && matches(f.right, resource, prefix);
    case "or":
      return matches(f.left, resource, prefix) || matches(f.right, resource, prefix);
    case "not":
      return !matches(f.filter, resource, prefix);
    case "pr":
      return valuesAt(resource, f.path).some(present);
    case "value":
      return valuesAt(resource, f.path).some((el) => matches(f.filter, el, [...prefix, ...f.path]));
    default: {
      const exact = CASE_EXACT.has([...prefix, ...f.path].join("."));
      const vs = valuesAt(resource, f.path);
      // ne holds when no value equals (an absent attribute is not equal to anything).
      if (f.op === "ne") return !vs.some((v) => compare("eq", v, f.value, exact));
      return vs.some((v) => compare(f.op as CompareOp, v, f.value, exact));
    }
  }
}
