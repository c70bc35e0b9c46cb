/**
 * Search filters (RFC 4511 4.5.1.7) and how they match the directory's entries, per attribute syntax:
 * integers (uidNumber, gidNumber) compare as numbers, DNs (member, memberOf) compare normalised, paths
 * (homeDirectory, loginShell) exactly, everything else ignoring case (caseIgnoreMatch / caseIgnoreIA5Match,
 * as the schemas of inetOrgPerson, posixAccount, groupOfNames and posixGroup define them).
 */
export type Filter =
  | { type: "and" | "or"; filters: Filter[] }
  | { type: "not"; filter: Filter }
  | { type: "equal" | "ge" | "le" | "approx"; attribute: string; value: string }
  | { type: "present"; attribute: string }
  | { type: "substrings"; attribute: string; initial?: string | undefined; any: string[]; final?: string | undefined }
  /** A filter component the server does not support (extensibleMatch): Undefined, which matches nothing. */
  | { type: "undefined" };

/** One directory entry: its DN and attributes under their canonical names. */
export interface Entry {
  dn: string;
  attributes: [string, string[]][];
  /** The attributes by lower-case name (built once per tree; optional for ad-hoc entries). */
  byName?: Map<string, string[]> | undefined;
}

type Syntax = "integer" | "dn" | "exact" | "ignore";
const SYNTAX: Record<string, Syntax> = {
  uidnumber: "integer",
  gidnumber: "integer",
  member: "dn",
  memberof: "dn",
  homedirectory: "exact",
  loginshell: "exact",
};
const syntaxOf = (attr: string): Syntax => SYNTAX[attr.toLowerCase()] ?? "ignore";

/** Short attribute names LDAP clients use for the same attribute. */
const ALIASES: Record<string, string> = { commonname: "cn", surname: "sn", userid: "uid", mail: "mail", rfc822mailbox: "mail", organizationalunitname: "ou", organizationname: "o", domaincomponent: "dc" };
export const attrKey = (a: string): string => {
  const k = a.toLowerCase().split(";", 1)[0]!;
  return ALIASES[k] ?? k;
};

/** Splits a DN into RDNs (honouring `\,` and `\XX` escapes), each `type=value` lower-cased and trimmed. */
export function normalizeDn(dn: string): string {
  const rdns: string[] = [];
  let cur = "";
  for (let i = 0; i < dn.length; i++) {
    const c = dn[i]!;
    if (c === "\\" && i + 1 < dn.length) {
      const hex = /^[0-9a-fA-F]{2}/.exec(dn.slice(i + 1, i + 3));
      if (hex) {
        cur += String.fromCharCode(parseInt(hex[0], 16));
        i += 2;
      } else cur += dn[++i];
    } else if (c === "," || c === ";") {
      rdns.push(cur);
      cur = "";
    } else cur += c;
  }
  if (cur.trim() !== "" || rdns.length) rdns.push(cur);
  return rdns
    .map((r) => {
      const eq = r.indexOf("=");
      if (eq < 0) return r.trim().toLowerCase();
      return `${attrKey(r.slice(0, eq).trim())}=${r.slice(eq + 1).trim().replace(/\s+/g, " ").toLowerCase()}`;
    })
    .join(",");
}

/** The value an equality index keys `v` of `attribute` by (the same normalisation equality matching uses). */
export const indexKey = (attribute: string, v: string): string => norm(syntaxOf(attrKey(attribute)), v);

function norm(syntax: Syntax, v: string): string {
  switch (syntax) {
    case "dn":
      return normalizeDn(v);
    case "exact":
      return v;
    case "integer":
      return v.trim();
    default:
      return v.trim().replace(/\s+/g, " ").toLowerCase();
  }
}

function valuesOf(e: Entry, attribute: string): string[] | undefined {
  const k = attrKey(attribute);
  if (e.byName) return e.byName.get(k);
  return e.attributes.find(([n]) => n.toLowerCase() === k)?.[1];
}

function compareOrder(syntax: Syntax, a: string, b: string): number | undefined {
  if (syntax === "integer") {
    if (!/^-?\d+$/.test(a.trim()) || !/^-?\d+$/.test(b.trim())) return undefined;
    const x = BigInt(a.trim());
    const y = BigInt(b.trim());
    return x < y ? -1 : x > y ? 1 : 0;
  }
  const x = norm(syntax, a);
  const y = norm(syntax, b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Whether `e` matches `f` (RFC 4511 three-valued logic collapsed: Undefined counts as no match, and `not Undefined` too). */
export function matches(e: Entry, f: Filter): boolean {
  return evaluate(e, f) === true;
}

function evaluate(e: Entry, f: Filter): boolean | undefined {
  switch (f.type) {
    case "and": {
      let out: boolean | undefined = true;
      for (const x of f.filters) {
        const r = evaluate(e, x);
        if (r === false) return false;
        if (r === undefined) out = undefined;
      }
      return out;
    }
    case "or": {
      let out: boolean | undefined = false;
      for (const x of f.filters) {
        const r = evaluate(e, x);
        if (r === true) return true;
        if (r === undefined) out = undefined;
      }
      return out;
    }
    case "not": {
      const r = evaluate(e, f.filter);
      return r === undefined ? undefined : !r;
    }
    case "present":
      return attrKey(f.attribute) === "objectclass" || (valuesOf(e, f.attribute)?.length ?? 0) > 0;
    case "undefined":
      return undefined;
    case "equal":
    case "approx": {
      const vs = valuesOf(e, f.attribute);
      if (!vs) return false;
      const syntax = syntaxOf(attrKey(f.attribute));
      if (syntax === "integer") return vs.some((v) => compareOrder(syntax, v, f.value) === 0);
      const want = norm(syntax, f.value);
      return vs.some((v) => norm(syntax, v) === want);
    }
    case "ge":
    case "le": {
      const vs = valuesOf(e, f.attribute);
      if (!vs) return false;
      const syntax = syntaxOf(attrKey(f.attribute));
      return vs.some((v) => {
        const c = compareOrder(syntax, v, f.value);
        return c !== undefined && (f.type === "ge" ? c >= 0 : c <= 0);
      });
    }
    case "substrings": {
      const vs = valuesOf(e, f.attribute);
      if (!vs) return false;
      const syntax = syntaxOf(attrKey(f.attribute));
      if (syntax === "integer") return undefined;
      const n = (s: string) => norm(syntax === "dn" ? "ignore" : syntax, s);
      return vs.some((raw) => {
        const v = n(raw);
        let pos = 0;
        if (f.initial !== undefined) {
          const i = n(f.initial);
          if (!v.startsWith(i)) return false;
          pos = i.length;
        }
        for (const a of f.any) {
          const i = v.indexOf(n(a), pos);
          if (i < 0) return false;
          pos = i + n(a).length;
        }
        if (f.final !== undefined) {
          const fin = n(f.final);
          return v.length - fin.length >= pos && v.endsWith(fin);
        }
        return true;
      });
    }
  }
}
