import { verifyCid } from "./envelope.js";
import type { EventStore } from "./store.js";

export interface ChainBreak {
  context: string;
  seq: number;
  eventId: string;
  aggregate: { type: string; id: string };
  reason: "altered" | "missing-or-reordered" | "version-gap";
  message: string;
}

export interface AuditReport {
  context: string;
  ok: boolean;
  events: number;
  aggregates: number;
  /** The first break found, in stream order. */
  firstBreak: ChainBreak | null;
}

/**
 * Walks every aggregate chain of a context: each event's CID must match its content, its `prev` must be
 * the CID of the aggregate's previous event and its version must follow. Stops at the first break.
 */
export async function verifyChains(store: EventStore, onProgress?: (events: number) => void): Promise<AuditReport> {
  const heads = new Map<string, { version: number; cid: string }>();
  let events = 0;
  for await (const { seq, event } of store.read()) {
    events++;
    if (onProgress && events % 10_000 === 0) onProgress(events);
    const key = `${event.aggregate.type}/${event.aggregate.id}`;
    const head = heads.get(key);
    const at = { context: store.context, seq, eventId: event.id, aggregate: event.aggregate };
    const fail = (reason: ChainBreak["reason"], message: string): AuditReport => ({
      context: store.context,
      ok: false,
      events,
      aggregates: heads.size,
      firstBreak: { ...at, reason, message: `${store.context} seq ${seq} event ${event.id} (${event.type} on ${key}): ${message}` },
    });
    if (!verifyCid(event)) return fail("altered", `content does not match its cid ${event.cid}`);
    if ((head?.cid ?? null) !== event.prev) {
      return fail("missing-or-reordered", `prev is ${event.prev ?? "null"} but the aggregate's previous event is ${head?.cid ?? "none"}`);
    }
    if (event.version !== (head?.version ?? 0) + 1) return fail("version-gap", `version ${event.version} follows ${head?.version ?? 0}`);
    heads.set(key, { version: event.version, cid: event.cid });
  }
  return { context: store.context, ok: true, events, aggregates: heads.size, firstBreak: null };
}
