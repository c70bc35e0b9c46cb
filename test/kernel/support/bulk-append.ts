import { v7 as uuidv7 } from "uuid";
import { EMPTY_POSITION, type AggregatePosition, type AggregateRef, type EventStore, type NewEvent } from "../../../services/kernel/index.js";

export interface BulkAppend {
  /** Events to append in all. */
  events: number;
  /** Aggregates written at once, each its own chain (the kernel bench's writers in flight). */
  lanes: number;
  aggregate(lane: number): AggregateRef;
  /** The `n`-th event of a lane (0 first). */
  event(lane: number, n: number): NewEvent;
  actor?: string;
  /** Where each lane's aggregate is (what an earlier call returned); default: new aggregates. */
  from?: AggregatePosition[];
  /** Called every 10,000 events with how many are stored. */
  onProgress?: (stored: number) => void;
}

/**
 * Appends many signed, chained events to a context's stream through the kernel's own append (sealed in
 * batches, Nats-Msg-Id, expected last subject sequence), `lanes` aggregates at a time: the fastest way to
 * a big stream that every reader verifies. Lanes take events round-robin, so the stream interleaves them.
 * Returns the command id of every event, in stream order per lane, where each lane ended, and how long it took.
 */
export async function appendMany(store: EventStore, o: BulkAppend): Promise<{ ms: number; commandIds: string[][]; positions: AggregatePosition[] }> {
  const started = performance.now();
  const positions: AggregatePosition[] = Array.from({ length: o.lanes }, (_, lane) => o.from?.[lane] ?? EMPTY_POSITION);
  const commandIds: string[][] = Array.from({ length: o.lanes }, () => []);
  let stored = 0;
  await Promise.all(
    Array.from({ length: o.lanes }, async (_, lane) => {
      const ref = o.aggregate(lane);
      for (let n = 0; n * o.lanes + lane < o.events; n++) {
        const commandId = uuidv7();
        const r = await store.append(ref, positions[lane]!, [o.event(lane, n)], { commandId, actor: o.actor ?? "bulk" });
        positions[lane] = r.position;
        commandIds[lane]!.push(commandId);
        if (++stored % 10_000 === 0) o.onProgress?.(stored);
      }
    }),
  );
  return { ms: performance.now() - started, commandIds, positions };
}
