import { invalid } from "../../../services/kernel/errors.js";

/**
 * Pure validation of NATS material the realm signs: subjects, limits, permissions. Every failure is a
 * RealmError VALIDATION naming the field; nothing is signed or pushed after one.
 */

/** A NATS subject a user may publish/subscribe to: tokens non-empty, no white space, `>` only last. */
export function validateSubject(subject: string, field: string, opts: { wildcards?: boolean } = {}): string {
  if (typeof subject !== "string" || subject.length === 0) throw invalid(`${field}: empty subject`);
  if (/\s/.test(subject)) throw invalid(`${field}: subject ${JSON.stringify(subject)} contains white space`);
  const tokens = subject.split(".");
  tokens.forEach((t, i) => {
    if (t.length === 0) throw invalid(`${field}: subject ${JSON.stringify(subject)} has an empty token`);
    if (t.includes(">") && (t !== ">" || i !== tokens.length - 1)) throw invalid(`${field}: subject ${JSON.stringify(subject)} has '>' not as its last token`);
    if (t.includes("*") && t !== "*") throw invalid(`${field}: subject ${JSON.stringify(subject)} has '*' inside a token`);
    if ((t === "*" || t === ">") && opts.wildcards === false) throw invalid(`${field}: subject ${JSON.stringify(subject)} must not contain wildcards`);
  });
  return subject;
}

/** Subjects of a permission template may hold whole-token templates like `{{name()}}` or `{{tag(team)}}`. */
export function validateTemplateSubject(subject: string, field: string): string {
  const re = /\{\{\s*(name|subject|account-name|account-subject)\(\)\s*\}\}|\{\{\s*(tag|account-tag)\(\s*[A-Za-z0-9_-]+\s*\)\s*\}\}/g;
  for (const t of subject.split(".")) {
    if (t.includes("{{")) {
      const stripped = t.replace(re, "");
      if (stripped !== "") throw invalid(`${field}: template ${JSON.stringify(t)} must fill a whole token (name(), subject(), account-name(), account-subject(), tag(k), account-tag(k))`);
    }
  }
  return validateSubject(subject.replace(re, "X"), field) && subject;
}

export interface PermissionSpec {
  allow?: string[];
  deny?: string[];
}

export interface UserPermissions {
  pub?: PermissionSpec;
  sub?: PermissionSpec;
  /** Response permissions: how many replies, for how long (ms). */
  resp?: { max: number; ttlMs: number };
}

export function validatePermissions(p: UserPermissions | undefined, field: string, template = false): UserPermissions {
  const out: UserPermissions = {};
  if (!p) return out;
  const check = template ? validateTemplateSubject : (s: string, f: string) => validateSubject(s, f);
  for (const dir of ["pub", "sub"] as const) {
    const spec = p[dir];
    if (!spec) continue;
    const allow = (spec.allow ?? []).map((s, i) => check(s, `${field}.${dir}.allow[${i}]`));
    const deny = (spec.deny ?? []).map((s, i) => check(s, `${field}.${dir}.deny[${i}]`));
    out[dir] = { allow, deny };
  }
  if (p.resp) {
    if (!Number.isInteger(p.resp.max) || p.resp.max < 1) throw invalid(`${field}.resp.max must be a positive integer`);
    if (!Number.isInteger(p.resp.ttlMs) || p.resp.ttlMs < 0) throw invalid(`${field}.resp.ttlMs must be >= 0`);
    out.resp = { ...p.resp };
  }
  return out;
}

/** Account limits; every field is always sent (-1 = unlimited); JetStream is on iff mem or disk ≠ 0. */
export interface AccountLimitsSpec {
  conn: number;
  subs: number;
  payload: number;
  data: number;
  leaf: number;
  imports: number;
  exports: number;
  wildcards: boolean;
  memStorage: number;
  diskStorage: number;
  streams: number;
  consumer: number;
}

export const UNLIMITED: AccountLimitsSpec = {
  conn: -1, subs: -1, payload: -1, data: -1, leaf: -1, imports: -1, exports: -1, wildcards: true,
  memStorage: 0, diskStorage: 0, streams: 0, consumer: 0,
};

/** JetStream on, unlimited. */
export const JETSTREAM_UNLIMITED: Pick<AccountLimitsSpec, "memStorage" | "diskStorage" | "streams" | "consumer"> = { memStorage: -1, diskStorage: -1, streams: -1, consumer: -1 };

export function validateLimits(partial: Partial<AccountLimitsSpec> | undefined, base: AccountLimitsSpec = UNLIMITED): AccountLimitsSpec {
  const out: AccountLimitsSpec = { ...base };
  for (const [k, v] of Object.entries(partial ?? {})) {
    if (!(k in UNLIMITED)) throw invalid(`limits.${k}: unknown limit`);
    if (k === "wildcards") {
      if (typeof v !== "boolean") throw invalid("limits.wildcards must be a boolean");
      out.wildcards = v;
      continue;
    }
    if (typeof v !== "number" || !Number.isInteger(v) || v < -1) throw invalid(`limits.${k} must be an integer >= -1 (-1 = unlimited), got ${String(v)}`);
    (out as unknown as Record<string, number>)[k] = v;
  }
  return out;
}

export const jetStreamEnabled = (l: AccountLimitsSpec) => l.memStorage !== 0 || l.diskStorage !== 0;

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
export function validateName(name: string, what: string): string {
  if (typeof name !== "string" || !NAME.test(name)) throw invalid(`${what} name ${JSON.stringify(name)}: 1-64 of A-Z a-z 0-9 _ -, starting with a letter or digit`);
  return name;
}

export function validateCidr(cidr: string, field: string): string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  const v6 = /^[0-9a-fA-F:]+\/\d{1,3}$/.test(cidr);
  if (!v6 && (!m || m.slice(1, 5).some((o) => Number(o) > 255) || Number(m[5]) > 32)) throw invalid(`${field}: ${JSON.stringify(cidr)} is not a CIDR`);
  return cidr;
}

export const CONNECTION_TYPES = ["STANDARD", "WEBSOCKET", "LEAFNODE", "LEAFNODE_WS", "MQTT", "MQTT_WS"] as const;
export type ConnectionTypeName = (typeof CONNECTION_TYPES)[number];
