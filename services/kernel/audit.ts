import type { EventProblem } from "./chain.js";
import { digestVersionOf, LegacyStreamDigest, StreamDigest, STREAM_DIGEST_VERSION, type CheckpointData } from "./checkpoint.js";
import type { EventStore } from "./store.js";

export type ChainBreak = EventProblem & { context: string };

export interface AuditReport {
  context: string;
  ok: boolean;
  /** Stream messages read. */
  events: number;
  aggregates: number;
  /** The first problem found, in stream order. */
  firstBreak: ChainBreak | null;
  /** The first problems found (at most 100), and how many there are in all. */
  problems: ChainBreak[];
  problemCount: number;
  /**
   * Void fork branches: a well-formed, correctly sealed event that is the second successor of its
   * predecessor, later in stream order than the first. Readers follow the first (the realm's rule), and a
   * writer whose event came second is told CONFLICT and decides again (nats-server before 2.9.21 accepts
   * such concurrent appends on replicated streams, nats-server#4320). Inert unless an event builds on one:
   * that event is a problem (missing-or-reordered). Not problems; listed so an operator sees them.
   */
  voidForks: { seq: number; eventId?: string | undefined; aggregate?: { type: string; id: string } | undefined }[];
  voidForkCount: number;
  /** The latest checkpoint of this stream the walk compared against, if any. */
  checkpoint: { seq: number; at: string; matched: boolean } | null;
}

const MAX_LISTED = 100;

/**
 * Walks a context's stream from the start and verifies every message (form, subject, CID, signature by a
 * key the trust document gives that subject, `prev` chain and versions), reporting every message that
 * fails. Checkpoints (oldest first) are compared on the way: the stream digest must equal each one's at its
 * sequence, and the stream must reach the last one; otherwise messages were altered, removed or cut off
 * (reported as checkpoint-mismatch / missing-tail). Each checkpoint is compared with the digest of its own
 * definition (`digestVersion`): the version-1 digest is computed too while a checkpoint of version 1 is
 * still ahead, so checkpoints written before the segmented digest still verify (and still catch changes).
 */
export async function verifyChains(store: EventStore, opts: { checkpoints?: CheckpointData[]; onProgress?: (events: number) => void } = {}): Promise<AuditReport> {
  const chain = store.chainVerifier();
  const digest = new StreamDigest();
  const pending = [...(opts.checkpoints ?? [])].sort((a, b) => a.seq - b.seq);
  const unknown = pending.filter((cp) => digestVersionOf(cp) !== 1 && digestVersionOf(cp) !== STREAM_DIGEST_VERSION);
  const legacyUntil = Math.max(0, ...pending.filter((cp) => digestVersionOf(cp) === 1).map((cp) => cp.seq));
  const legacy = legacyUntil > 0 ? new LegacyStreamDigest() : undefined;
  const last = pending[pending.length - 1];
  const problems: ChainBreak[] = [];
  let problemCount = 0;
  let matched = true;
  const voidForks: AuditReport["voidForks"] = [];
  let voidForkCount = 0;
  const report = (p: EventProblem) => {
    if (p.reason === "fork") {
      voidForkCount++;
      if (voidForks.length < MAX_LISTED) voidForks.push({ seq: p.seq, eventId: p.eventId, aggregate: p.aggregate });
      return;
    }
    problemCount++;
    if (problems.length < MAX_LISTED) problems.push({ ...p, context: store.context });
  };
  let events = 0;
  let lastSeq = 0;
  const compareUpTo = (seq: number, inclusive: boolean) => {
    while (pending.length && (inclusive ? pending[0]!.seq <= seq : pending[0]!.seq < seq)) {
      const cp = pending.shift()!;
      // A checkpoint of a digest definition this code does not know (a newer realm's) says only how far.
      const hex = unknown.includes(cp) ? cp.digest : digestVersionOf(cp) === 1 ? legacy!.hex : digest.hex;
      if (cp.seq !== lastSeq || hex !== cp.digest) {
        matched = false;
        report({ stream: store.stream, seq: cp.seq, subject: "", reason: "checkpoint-mismatch", message: `${store.stream}: the messages up to seq ${cp.seq} differ from what the auditor verified at ${cp.at} (${cp.seq !== lastSeq ? `seq ${cp.seq} is missing` : "digest differs"})` });
      }
    }
  };
  for await (const m of store.read()) {
    compareUpTo(m.seq, false);
    events++;
    if (opts.onProgress && events % 10_000 === 0) opts.onProgress(events);
    digest.update(m.seq, m.data);
    if (legacy && m.seq <= legacyUntil) legacy.update(m.seq, m.data);
    lastSeq = m.seq;
    const r = chain.verify(m.seq, m.subject, m.data);
    if ("problem" in r) report(r.problem);
    compareUpTo(m.seq, true);
  }
  if (pending.length) {
    matched = false;
    const cp = pending[pending.length - 1]!;
    report({ stream: store.stream, seq: cp.seq, subject: "", reason: "missing-tail", message: `${store.stream}: the stream ends at seq ${lastSeq}, but the auditor's checkpoint of ${cp.at} covers up to seq ${cp.seq}${cp.headCid ? ` (event ${cp.headCid})` : ""}: its tail was deleted or cut off` });
  }
  return {
    context: store.context,
    ok: problemCount === 0,
    events,
    aggregates: chain.heads.size,
    firstBreak: problems[0] ?? null,
    problems,
    problemCount,
    voidForks,
    voidForkCount,
    checkpoint: last ? { seq: last.seq, at: last.at, matched } : null,
  };
}
