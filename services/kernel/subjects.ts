import { invalid } from "./errors.js";

/**
 * The realm's subject scheme (DESIGN.md "Subjects"):
 *   commands  realm.<context>.commands.<aggregate>.<action>
 *   queries   realm.<context>.queries.<name>
 *   events    realm.<context>.events.<aggregate>.<aggregateId>
 * and one stream per context, REALM_<CONTEXT>.
 */

const TOKEN = /^[^\s.*>]+$/;

/** A token is non-empty and holds no `.`, `*`, `>` or white space. */
export function isToken(s: string): boolean {
  return s.length > 0 && TOKEN.test(s);
}

export function assertToken(s: string, what: string): string {
  if (!isToken(s)) throw invalid(`${what} must be a non-empty subject token without '.', '*', '>' or white space: ${JSON.stringify(s)}`);
  return s;
}

const SAFE = /[A-Za-z0-9_-]/;

/**
 * Encodes any identifier (a zone name such as `example.com`, an email) as one subject token, reversibly:
 * bytes outside [A-Za-z0-9_-] become `~XX` (hex). Plain ids stay readable: `web1` -> `web1`,
 * `example.com` -> `example~2ecom`.
 */
export function encodeToken(id: string): string {
  if (id.length === 0) throw invalid("an identifier must not be empty");
  let out = "";
  for (const ch of id) {
    if (SAFE.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, "utf8")) out += `~${b.toString(16).padStart(2, "0")}`;
  }
  return out;
}

export function decodeToken(token: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === "~") {
      bytes.push(parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(token.charCodeAt(i));
  }
  return Buffer.from(bytes).toString("utf8");
}

export const streamName = (context: string) => `REALM_${assertToken(context, "context").toUpperCase()}`;
export const eventsWildcard = (context: string) => `realm.${context}.events.>`;
export const eventSubject = (context: string, aggregateType: string, aggregateId: string) =>
  `realm.${context}.events.${assertToken(aggregateType, "aggregate type")}.${encodeToken(aggregateId)}`;
export const commandSubject = (context: string, aggregate: string, action: string) =>
  `realm.${context}.commands.${assertToken(aggregate, "aggregate")}.${assertToken(action, "action")}`;
export const querySubject = (context: string, name: string) => `realm.${context}.queries.${assertToken(name, "query")}`;

/**
 * The headers on every event: only what nats-server acts on. The event's type, aggregate, correlation,
 * causation, time and actor are in the sealed body; copies in headers were unsealed (a reader could not trust
 * them) and cost a quarter of append throughput in nats-server's header parsing (docs/ARCHITECTURE.md).
 */
export const Headers = {
  MsgId: "Nats-Msg-Id",
  /** JetStream's optimistic concurrency: the stream refuses the message unless its subject's last sequence is this. */
  ExpectedLastSubjectSequence: "Nats-Expected-Last-Subject-Sequence",
} as const;

/** True when `subject` (no wildcards) matches the NATS subject pattern `pattern` (`*` one token, `>` the rest). */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== "*" && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}
