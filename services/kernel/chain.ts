import type { EventEnvelope } from "./envelope.js";
import { cidOfCanonical, contentCid } from "./envelope.js";
import { eventSubject } from "./subjects.js";
import type { SealProblem, TrustVerifier } from "./trust.js";

/** Why a stored message is not applied (quarantined). */
export type ProblemReason =
  | "malformed"
  | "subject-mismatch"
  | "altered"
  | SealProblem
  | "missing-or-reordered"
  | "fork"
  | "version-gap"
  | "unapplicable"
  | "checkpoint-mismatch"
  | "missing-tail";

/** A stored message that did not verify or could not be applied, with where it is and why. */
export interface EventProblem {
  stream: string;
  seq: number;
  subject: string;
  reason: ProblemReason;
  message: string;
  eventId?: string;
  eventType?: string;
  aggregate?: { type: string; id: string };
}

export interface ChainHead {
  version: number;
  cid: string;
  seq: number;
  /** `prev` of the head event: a second event with the same predecessor is a fork. */
  prev: string | null;
}

const isStr = (v: unknown): v is string => typeof v === "string";
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Parses a stored message into an envelope of the right shape, or says why not. */
export function parseEnvelope(data: Uint8Array): EventEnvelope | string {
  let text: string;
  try {
    text = decoder.decode(data);
  } catch {
    return "not JSON";
  }
  return parseEnvelopeText(text);
}

function parseEnvelopeText(text: string): EventEnvelope | string {
  let e: Partial<EventEnvelope> & Record<string, unknown>;
  try {
    e = JSON.parse(text) as typeof e;
  } catch {
    return "not JSON";
  }
  if (typeof e !== "object" || e === null || Array.isArray(e)) return "not an object";
  const a = e.aggregate as { type?: unknown; id?: unknown } | undefined;
  if (!isStr(e.id) || !isStr(e.type) || !a || !isStr(a.type) || !isStr(a.id)) return "no id, type or aggregate";
  if (!Number.isInteger(e.version) || (e.version as number) < 1) return "version is not a positive integer";
  if (!isStr(e.occurredAt) || !isStr(e.actor) || !isStr(e.correlationId) || !isStr(e.causationId) || !isStr(e.cid)) return "envelope field missing";
  if (e.prev !== null && !isStr(e.prev)) return "prev is neither null nor a CID";
  if (!("data" in e) || e.data === undefined) return "no data";
  return e as EventEnvelope;
}

/**
 * The CID of a stored message's content read off its bytes, when they are exactly what `sealedEnvelope`
 * writes for `e`: the canonical text with `cid`, `proof`, `sig` and `signer` appended (nothing else after
 * it, so no key of the content is given twice). Null when the bytes have another shape. The caller uses it
 * only for a seal it has already verified (or made) for this CID: then the text before the seal hashes to
 * that CID only if it is the canonical text it was made from, and re-serializing the content is skipped.
 */
function storedContentCid(text: string, e: EventEnvelope): string | null {
  const q = JSON.stringify;
  const tail = `,"cid":${q(e.cid)}${e.proof ? `,"proof":${q(e.proof)}` : ""},"sig":${q(e.sig)},"signer":${q(e.signer)}}`;
  if (!text.endsWith(tail)) return null;
  return cidOfCanonical(`${text.slice(0, text.length - tail.length)}}`);
}

/**
 * Verifies a context's stream message by message: each event must be well-formed, stored under its
 * aggregate's subject, carry the CID of its content, be sealed by a key the trust document gives that
 * subject, and continue its aggregate's chain (`prev` = CID of the last accepted event, version + 1). A
 * message that fails is a problem and does not move its aggregate's head, so the next good event of that
 * aggregate still links to the last good one.
 */
export class ChainVerifier {
  constructor(
    readonly context: string,
    readonly stream: string,
    readonly trust: TrustVerifier,
    /** Aggregate heads to go on from (a projection's snapshot); a fresh verifier starts with none. */
    readonly heads = new Map<string, ChainHead>(),
  ) {}

  headOf(aggregate: { type: string; id: string }): ChainHead | undefined {
    return this.heads.get(`${aggregate.type}/${aggregate.id}`);
  }

  /**
   * Full verification of one message; on success the aggregate's head moves to it. `chain: false` checks
   * the message alone (form, subject, CID, seal), for a head read out of its chain.
   */
  verify(seq: number, subject: string, data: Uint8Array, opts: { chain?: boolean } = {}): { event: EventEnvelope } | { problem: EventProblem } {
    let text: string | undefined;
    try {
      text = decoder.decode(data);
    } catch {
      text = undefined;
    }
    const parsed = text === undefined ? "not JSON" : parseEnvelopeText(text);
    const problem = (reason: ProblemReason, message: string, e?: EventEnvelope) => ({
      problem: {
        stream: this.stream,
        seq,
        subject,
        reason,
        message: `${this.stream} seq ${seq}${e ? ` event ${e.id} (${e.type} on ${e.aggregate.type}/${e.aggregate.id})` : ""}: ${message}`,
        ...(e ? { eventId: e.id, eventType: e.type, aggregate: e.aggregate } : {}),
      },
    });
    if (typeof parsed === "string") return problem("malformed", `not an event envelope (${parsed})`);
    const e = parsed;
    let expectedSubject: string;
    try {
      expectedSubject = eventSubject(this.context, e.aggregate.type, e.aggregate.id);
    } catch {
      return problem("subject-mismatch", "aggregate type is not a subject token", e);
    }
    if (expectedSubject !== subject) return problem("subject-mismatch", `stored under ${subject}, but its aggregate's subject is ${expectedSubject}`, e);
    let cid: string;
    try {
      cid = (this.trust.knows(e) && storedContentCid(text!, e)) || contentCid(e);
    } catch {
      return problem("malformed", "content cannot be written as canonical JSON", e);
    }
    if (cid !== e.cid) return problem("altered", `content does not match its cid ${e.cid}`, e);
    const seal = this.trust.check(subject, e);
    if (seal) return problem(seal, sealMessage(seal, e), e);
    if (opts.chain === false) return { event: e };
    const key = `${e.aggregate.type}/${e.aggregate.id}`;
    const head = this.heads.get(key);
    if ((head?.cid ?? null) !== e.prev) {
      if (head && e.prev === head.prev && e.version === head.version) return problem("fork", `a second event after ${e.prev ?? "the start"}: the aggregate's version ${head.version} is already seq ${head.seq} (${head.cid})`, e);
      return problem("missing-or-reordered", `prev is ${e.prev ?? "null"} but the aggregate's previous event is ${head?.cid ?? "none"}`, e);
    }
    if (e.version !== (head?.version ?? 0) + 1) return problem("version-gap", `version ${e.version} follows ${head?.version ?? 0}`, e);
    this.heads.set(key, { version: e.version, cid: e.cid, seq, prev: e.prev });
    return { event: e };
  }

  /**
   * Follows a message a verified checkpoint vouches for (same bytes as the auditor verified, the stream
   * digest proves it at the checkpoint): parse and move the head, without recomputing CID or signature.
   */
  follow(seq: number, data: Uint8Array): EventEnvelope | undefined {
    const e = parseEnvelope(data);
    if (typeof e === "string") return undefined;
    this.heads.set(`${e.aggregate.type}/${e.aggregate.id}`, { version: e.version, cid: e.cid, seq, prev: e.prev });
    return e;
  }
}

function sealMessage(p: SealProblem, e: EventEnvelope): string {
  switch (p) {
    case "unsigned":
      return "not signed";
    case "unknown-signer":
      return `signed by ${JSON.stringify(e.signer)}, a key the trust document does not list`;
    case "foreign-signer":
      return `signed by ${e.signer}, whose context may not write this subject`;
    case "bad-signature":
      return `signature by ${e.signer} does not verify`;
  }
}
