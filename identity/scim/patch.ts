import { badRequest, ScimError } from "./errors.js";
import { matches, parseFilter, parsePath, type Filter } from "./filter.js";
import { PATCH_SCHEMA } from "./schemas.js";

/**
 * SCIM PATCH (RFC 7644 §3.5.2) on a resource's SCIM JSON: `add`, `replace`, `remove` with or without a
 * path; paths `attr`, `attr.sub`, `attr[filter]`, `attr[filter].sub` (a schema URN prefix is allowed). The
 * caller turns the patched JSON into realm commands exactly as for a PUT, so a PATCH is decided whole or
 * not at all. `readOnly` attributes (id, meta, groups of a user) cannot be the target.
 */

export interface PatchOp {
  op: "add" | "replace" | "remove";
  path?: string | undefined;
  value?: unknown;
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => v !== null && typeof v === "object" && !Array.isArray(v);
const keyOf = (o: Json, name: string) => Object.keys(o).find((k) => k.toLowerCase() === name.toLowerCase()) ?? name;

export function patchOps(body: unknown): PatchOp[] {
  if (!isObj(body)) throw badRequest("invalidSyntax", "the body must be a JSON object");
  const schemas = body.schemas;
  if (!Array.isArray(schemas) || !schemas.includes(PATCH_SCHEMA)) throw badRequest("invalidValue", `schemas must include ${PATCH_SCHEMA}`);
  const ops = body.Operations ?? body.operations;
  if (!Array.isArray(ops) || ops.length === 0) throw badRequest("invalidValue", "Operations must be a non-empty list");
  if (ops.length > 1000) throw badRequest("invalidValue", "at most 1000 operations in one PATCH");
  return ops.map((o, i) => {
    if (!isObj(o)) throw badRequest("invalidSyntax", `Operations[${i}] is not an object`);
    const op = typeof o.op === "string" ? o.op.toLowerCase() : "";
    if (op !== "add" && op !== "replace" && op !== "remove") throw badRequest("invalidSyntax", `Operations[${i}].op must be add, replace or remove`);
    if (o.path !== undefined && typeof o.path !== "string") throw badRequest("invalidPath", `Operations[${i}].path must be a string`);
    if (op !== "remove" && !("value" in o)) throw badRequest("invalidValue", `Operations[${i}] (${op}) needs a value`);
    return { op, path: o.path as string | undefined, value: o.value };
  });
}

interface Target {
  attr: string;
  filter?: Filter | undefined;
  sub?: string | undefined;
}

/** `emails[type eq "work"].value` -> { attr: "emails", filter, sub: "value" }. */
export function parseTarget(path: string): Target {
  let p = path.trim();
  const urn = /^urn:[^[\]]*:/i.exec(p);
  if (urn) p = p.slice(urn[0].length);
  const open = p.indexOf("[");
  try {
    if (open < 0) {
      const [attr, sub] = parsePath(p);
      return { attr: attr!, sub };
    }
    const close = p.lastIndexOf("]");
    if (close < open) throw badRequest("invalidPath", `unbalanced [ in path ${JSON.stringify(path)}`);
    const [attr, extra] = parsePath(p.slice(0, open));
    if (extra !== undefined) throw badRequest("invalidPath", `a value filter applies to a top-level attribute: ${JSON.stringify(path)}`);
    const rest = p.slice(close + 1);
    if (rest !== "" && !/^\.[A-Za-z][A-Za-z0-9_$-]*$/.test(rest)) throw badRequest("invalidPath", `bad path after ]: ${JSON.stringify(path)}`);
    return { attr: attr!, filter: parseFilter(p.slice(open + 1, close)), sub: rest ? rest.slice(1).toLowerCase() : undefined };
  } catch (err) {
    if (err instanceof ScimError && err.scimType === "invalidFilter") throw badRequest("invalidPath", `path ${JSON.stringify(path)}: ${err.detail}`);
    throw err;
  }
}

/** Same value: members and emails are the same when their `value` is. */
const same = (a: unknown, b: unknown) => (isObj(a) && isObj(b) && "value" in a && "value" in b ? a.value === b.value : JSON.stringify(a) === JSON.stringify(b));

function addTo(o: Json, attr: string, value: unknown, replace: boolean): void {
  const k = keyOf(o, attr);
  const cur = o[k];
  if (!replace && (Array.isArray(cur) || Array.isArray(value))) {
    const list = Array.isArray(cur) ? [...cur] : [];
    for (const v of Array.isArray(value) ? value : [value]) if (!list.some((x) => same(x, v))) list.push(v);
    o[k] = list;
  } else if (!replace && isObj(cur) && isObj(value)) o[k] = { ...cur, ...value };
  else o[k] = value;
}

/** Applies the operations to a copy of `resource`; `readOnly` names attributes no operation may touch. */
export function applyPatch(resource: object, ops: PatchOp[], readOnly: string[]): Json {
  const r = structuredClone(resource) as Json;
  const guard = (attr: string) => {
    if (readOnly.includes(attr.toLowerCase())) throw new ScimError(400, `${attr} is read-only`, "mutability");
  };
  for (const op of ops) {
    if (op.path === undefined || op.path === "") {
      if (op.op === "remove") throw new ScimError(400, "remove needs a path", "noTarget");
      if (!isObj(op.value)) throw badRequest("invalidValue", `${op.op} without a path needs an object value`);
      for (const [k, v] of Object.entries(op.value)) {
        if (k.toLowerCase() === "schemas") continue;
        const attr = k.startsWith("urn:") ? k.slice(k.lastIndexOf(":") + 1) : k;
        guard(attr);
        addTo(r, attr, v, op.op === "replace");
      }
      continue;
    }
    const t = parseTarget(op.path);
    guard(t.attr);
    const k = keyOf(r, t.attr);
    if (t.filter) {
      const list = r[k];
      const hits = Array.isArray(list) ? list.filter((el) => matches(t.filter!, el)) : [];
      if (op.op === "remove") {
        if (!Array.isArray(list)) continue;
        if (t.sub) {
          for (const el of hits) if (isObj(el)) delete el[keyOf(el, t.sub)];
        } else r[k] = list.filter((el) => !hits.includes(el));
        continue;
      }
      if (hits.length === 0) throw new ScimError(400, `no value of ${t.attr} matches ${op.path}`, "noTarget");
      for (const el of hits) {
        if (!isObj(el)) continue;
        if (t.sub) el[keyOf(el, t.sub)] = op.value;
        else if (isObj(op.value)) Object.assign(el, op.value);
        else throw badRequest("invalidValue", `${op.path} takes an object value`);
      }
      continue;
    }
    if (t.sub) {
      const parent = isObj(r[k]) ? (r[k] as Json) : {};
      if (op.op === "remove") delete parent[keyOf(parent, t.sub)];
      else parent[keyOf(parent, t.sub)] = op.value;
      r[k] = parent;
      continue;
    }
    if (op.op === "remove") {
      // `remove members` with a value list removes those values (a form clients use instead of a filter).
      if (Array.isArray(r[k]) && Array.isArray(op.value)) r[k] = (r[k] as unknown[]).filter((x) => !(op.value as unknown[]).some((v) => same(x, v)));
      else delete r[k];
      continue;
    }
    addTo(r, t.attr, op.value, op.op === "replace");
  }
  return r;
}
