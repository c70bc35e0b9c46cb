import type { JetStreamManager } from "@nats-io/jetstream";
import { ChainVerifier, type ProblemReason } from "./chain.js";
import type { EventEnvelope } from "./envelope.js";
import { eventSubject, streamName } from "./subjects.js";
import type { TrustVerifier } from "./trust.js";

export { LegacyStreamDigest, StreamDigest, STREAM_DIGEST_VERSION, digestVersionOf, type DigestResumePoint } from "./stream-digest.js";

/**
 * Signed stream checkpoints. The realm's auditor (the `realm` context) follows every context stream,
 * verifies every event, and appends to its own stream REALM_REALM, at intervals, a `StreamCheckpointed`
 * event per stream: the head sequence, the CID at the head, and a digest over every message up to it.
 *
 * The digest (stream-digest.ts) is SHA-256 over the stream in sequence order, each message framed as seq
 * (64-bit) | length (32-bit) | data (big endian), chained segment by segment (version 2) so that a snapshot
 * can resume it: it changes when any message up to the head is altered, removed or inserted. It costs a hash
 * update per message (no hash object per message). `digestVersion` says which definition a checkpoint used
 * (absent: version 1, one running hash); readers compare a checkpoint only with the same definition. This
 * lets `realm audit verify` report a deleted or truncated tail (the stream no longer reaches the
 * checkpoint, or differs before it), and lets a projection that rebuilds skip the Ed25519 check of each
 * event the checkpoint covers: it recomputes the digest (two SHA-256 per message) and compares it at the
 * head; any difference sends it back to verifying every event.
 */
export const CHECKPOINT_CONTEXT = "realm";
export const CHECKPOINT_AGGREGATE = "checkpoint";
export const CheckpointEvents = { checkpointed: "StreamCheckpointed" } as const;

export interface CheckpointData {
  stream: string;
  /** Stream sequence of the last message covered. */
  seq: number;
  /** Hex digest over every message up to `seq`. */
  digest: string;
  /** The digest's definition (stream-digest.ts); absent in checkpoints of version 1. */
  digestVersion?: number;
  /** CID of the event at `seq` (null when that message is not an event). */
  headCid: string | null;
  /** Messages seen up to `seq`. */
  messages: number;
  /** Messages up to `seq` that did not verify, with why (a projection skips them as the auditor did). */
  quarantined: { seq: number; reason: ProblemReason }[];
  /** False when more problems were found than `quarantined` lists: readers then verify every event. */
  complete: boolean;
  at: string;
}

export const MAX_CHECKPOINT_PROBLEMS = 10_000;

export const checkpointSubject = (stream: string) => eventSubject(CHECKPOINT_CONTEXT, CHECKPOINT_AGGREGATE, stream);

/**
 * The latest checkpoint of `context`'s stream that verifies (CID and seal by the `realm` writer), or
 * undefined when there is none, the checkpoint stream does not exist, or it does not verify.
 */
export async function latestCheckpoint(jsm: JetStreamManager, trust: TrustVerifier, context: string): Promise<{ data: CheckpointData; event: EventEnvelope } | { problem: string } | undefined> {
  const stream = streamName(context);
  const subject = checkpointSubject(stream);
  let m;
  try {
    m = await jsm.streams.getMessage(streamName(CHECKPOINT_CONTEXT), { last_by_subj: subject });
  } catch {
    return undefined;
  }
  if (!m) return undefined;
  // The checkpoint is read alone, out of its chain (realm audit verify walks that chain).
  const r = new ChainVerifier(CHECKPOINT_CONTEXT, streamName(CHECKPOINT_CONTEXT), trust).verify(m.seq, m.subject, m.data, { chain: false });
  if ("problem" in r) return { problem: r.problem.message };
  const data = r.event.data as CheckpointData;
  if (r.event.type !== CheckpointEvents.checkpointed || data.stream !== stream || !Number.isInteger(data.seq) || typeof data.digest !== "string") return { problem: `checkpoint at ${streamName(CHECKPOINT_CONTEXT)} seq ${m.seq} is not a StreamCheckpointed of ${stream}` };
  return { data, event: r.event };
}
