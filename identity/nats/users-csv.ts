import { RealmError, invalid } from "../../services/kernel/errors.js";
import { DEFAULT_EXPIRY_DAYS, type UserKind, type UserSpec } from "./domain/user.js";
import { CONNECTION_TYPES, validateCidr, validateName, validatePermissions, type ConnectionTypeName, type UserPermissions } from "./domain/validation.js";

/**
 * `realm user create <account> --from-file users.csv`: the file read and checked locally (every line, before
 * anything is sent), and cut into user.createMany calls whose requests and replies stay under NATS'
 * max_payload. Pure: no I/O.
 *
 * The file: a header naming some of `name,kind,allow_pub,allow_sub,expiry_days,tags` (name required, any
 * order), then one user per line; lists inside a cell are `;`-separated; a cell may be double-quoted (`""`
 * is a quote inside); blank lines are skipped. Empty cells take the command line's defaults.
 */
export const CSV_COLUMNS = ["name", "kind", "allow_pub", "allow_sub", "expiry_days", "tags"] as const;

/** One user of user.createMany (the fields of user.create without the account). */
export type BatchUserInput = Omit<UserSpec, "account" | "scopedSigningKey"> & {
  /** A scoped signing key's role (the key signs; the user carries no permissions of its own). */
  role?: string;
  preset?: "operator";
};

/** What the command line gives every line (its flags). */
export interface CsvDefaults {
  kind?: UserKind;
  expiresInDays?: number;
  denyPub?: string[];
  denySub?: string[];
  resp?: { max: number; ttlMs: number };
  src?: string[];
  connectionTypes?: string[];
  bearer?: boolean;
  role?: string;
  preset?: "operator";
}

export interface CsvUser {
  /** Line number in the file (1 = the header). */
  line: number;
  input: BatchUserInput;
}

/** Splits one CSV line into cells (RFC 4180 quoting, no line breaks inside a cell). */
function cells(line: string, lineNo: number): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let cell = "";
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (i >= line.length) throw invalid(`line ${lineNo}: unterminated quoted cell`);
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            cell += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        cell += line[i++];
      }
      if (i < line.length && line[i] !== ",") throw invalid(`line ${lineNo}: text after a quoted cell`);
    } else {
      const end = line.indexOf(",", i);
      cell = end < 0 ? line.slice(i) : line.slice(i, end);
      i = end < 0 ? line.length : end;
    }
    out.push(cell.trim());
    if (i >= line.length) return out;
    i++; // the comma
  }
}

const list = (cell: string | undefined) => (cell ?? "").split(";").map((s) => s.trim()).filter(Boolean);
const TAG = /^[a-z0-9_-]+(:[a-z0-9_.-]+)?$/;

/** The user.createMany entry of one line, checked as user.create checks it (all that needs no account). */
function entryOf(row: Record<string, string>, d: CsvDefaults): BatchUserInput {
  const name = validateName(row.name ?? "", "user");
  const kind = (row.kind || d.kind || "person") as UserKind;
  if (!["person", "service", "agent"].includes(kind)) throw invalid(`kind ${JSON.stringify(kind)}: person, service or agent`);
  const allowPub = list(row.allow_pub);
  const allowSub = list(row.allow_sub);
  const perm = (allow: string[], deny: string[] | undefined) => (allow.length || deny?.length ? { ...(allow.length ? { allow } : {}), ...(deny?.length ? { deny } : {}) } : undefined);
  const pub = perm(allowPub, d.denyPub);
  const sub = perm(allowSub, d.denySub);
  const permissions: UserPermissions = { ...(pub ? { pub } : {}), ...(sub ? { sub } : {}), ...(d.resp ? { resp: d.resp } : {}) };
  const hasPerms = Object.keys(permissions).length > 0;
  if (hasPerms) validatePermissions(permissions, "permissions");
  if ((d.role || d.preset) && hasPerms) throw invalid(d.role ? "a user of a scoped signing key (--role) carries no permissions of its own" : "the operator preset sets the permissions itself");
  let expiresInDays = d.expiresInDays;
  if (row.expiry_days) {
    expiresInDays = Number(row.expiry_days);
    if (!Number.isInteger(expiresInDays)) throw invalid(`expiry_days ${JSON.stringify(row.expiry_days)} is not an integer`);
  }
  const days = expiresInDays ?? DEFAULT_EXPIRY_DAYS[kind];
  if (days < 1 || days > 3650) throw invalid("expiry_days must be 1..3650");
  const tags = list(row.tags);
  for (const t of tags) if (!TAG.test(t)) throw invalid(`tag ${JSON.stringify(t)}: lower case key or key:value`);
  for (const [i, c] of (d.src ?? []).entries()) validateCidr(c, `src[${i}]`);
  for (const t of d.connectionTypes ?? []) if (!CONNECTION_TYPES.includes(t as ConnectionTypeName)) throw invalid(`connection type ${t} unknown (${CONNECTION_TYPES.join(", ")})`);
  return {
    name, kind,
    ...(hasPerms ? { permissions } : {}),
    ...(d.src?.length ? { src: d.src } : {}),
    ...(d.connectionTypes?.length ? { connectionTypes: d.connectionTypes as ConnectionTypeName[] } : {}),
    ...(d.bearer ? { bearer: true } : {}),
    ...(expiresInDays !== undefined ? { expiresInDays } : {}),
    ...(tags.length ? { tags } : {}),
    ...(d.role ? { role: d.role } : {}),
    ...(d.preset ? { preset: d.preset } : {}),
  };
}

/** Reads and checks the whole file; the first bad line is a VALIDATION error naming its line number. */
export function parseUsersCsv(text: string, defaults: CsvDefaults = {}, max = 1_000_000): CsvUser[] {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  const headerAt = lines.findIndex((l) => l.trim() !== "");
  if (headerAt < 0) throw invalid("the file is empty: want a header line (name,kind,allow_pub,allow_sub,expiry_days,tags)");
  const header = cells(lines[headerAt]!, headerAt + 1).map((h) => h.toLowerCase());
  for (const h of header) if (!(CSV_COLUMNS as readonly string[]).includes(h)) throw invalid(`line ${headerAt + 1}: unknown column ${JSON.stringify(h)} (columns: ${CSV_COLUMNS.join(",")})`);
  if (!header.includes("name")) throw invalid(`line ${headerAt + 1}: the header must name the column name`);
  if (new Set(header).size !== header.length) throw invalid(`line ${headerAt + 1}: a column is named twice`);
  const out: CsvUser[] = [];
  const seen = new Map<string, number>();
  for (let i = headerAt + 1; i < lines.length; i++) {
    const raw = lines[i]!;
    if (raw.trim() === "") continue;
    const lineNo = i + 1;
    try {
      const c = cells(raw, lineNo);
      if (c.length > header.length) throw invalid(`${c.length} cells, the header names ${header.length}`);
      const row: Record<string, string> = {};
      header.forEach((h, k) => (row[h] = c[k] ?? ""));
      const input = entryOf(row, defaults);
      const dup = seen.get(input.name);
      if (dup !== undefined) throw invalid(`user ${input.name} is also on line ${dup}`);
      seen.set(input.name, lineNo);
      out.push({ line: lineNo, input });
    } catch (err) {
      const e = err instanceof RealmError ? err : invalid(String(err));
      throw new RealmError(e.code, e.message.startsWith(`line ${lineNo}:`) ? e.message : `line ${lineNo}: ${e.message}`, { line: lineNo });
    }
    if (out.length > max) throw invalid(`more than ${max} users in one file`);
  }
  if (out.length === 0) throw invalid("the file names no user");
  return out;
}

/**
 * Bytes one user adds to a user.createMany reply with creds: the creds file (~1,100 bytes for a user without
 * permissions; its JWT carries the user's subjects and tags base64-encoded) and the entry's fields. Errs
 * high: the reply must fit in max_payload, the request is much smaller.
 */
export function replyBytesOf(u: BatchUserInput): number {
  const own = JSON.stringify({ p: u.permissions ?? null, s: u.src ?? null, c: u.connectionTypes ?? null, t: u.tags ?? null }).length;
  return 1_300 + 3 * u.name.length + Math.ceil(own * 1.4);
}

/**
 * Cuts the users into calls of at most `maxUsers` whose replies stay under `maxBytes` (default ~700 KiB of
 * 1 MiB). No call crosses a multiple of `maxUsers`, so progress can be told at every 1,000.
 */
export function chunkUsers<T extends { input: BatchUserInput }>(users: T[], maxUsers = 1_000, maxBytes = 700 * 1024): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const [i, u] of users.entries()) {
    const b = replyBytesOf(u.input);
    if (cur.length && (i % maxUsers === 0 || bytes + b > maxBytes)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(u);
    bytes += b;
  }
  if (cur.length) out.push(cur);
  return out;
}
