import type { NatsConnection } from "@nats-io/nats-core";
import { jetstreamManager } from "@nats-io/jetstream";
import { verifyChains, type AuditReport } from "./audit.js";
import { CHECKPOINT_CONTEXT, CheckpointEvents, checkpointSubject, type CheckpointData } from "./checkpoint.js";
import { EventStore } from "./store.js";
import { streamName } from "./subjects.js";
import type { RealmTrust } from "./trust.js";

/** The contexts that have an event stream on this server (streams named REALM_<CONTEXT>). */
export async function realmContexts(nc: NatsConnection): Promise<string[]> {
  const jsm = await jetstreamManager(nc);
  const names: string[] = [];
  for await (const s of jsm.streams.list()) {
    const m = /^REALM_([A-Z0-9_-]+)$/.exec(s.config.name);
    if (m && s.config.subjects?.some((x) => x.startsWith("realm."))) names.push(m[1]!.toLowerCase());
  }
  return names.sort();
}

/** Every checkpoint of `context`'s stream recorded in REALM_REALM that verifies, oldest first. */
export async function checkpointsOf(checkpoints: EventStore | undefined, context: string): Promise<CheckpointData[]> {
  if (!checkpoints || context === CHECKPOINT_CONTEXT) return [];
  const out: CheckpointData[] = [];
  for await (const { event } of checkpoints.readEvents({ filter: checkpointSubject(streamName(context)) })) {
    if (event.type === CheckpointEvents.checkpointed) out.push(event.data as CheckpointData);
  }
  return out;
}

export interface RealmAuditOptions {
  contexts?: string[] | undefined;
  onProgress?: (context: string, events: number) => void;
  /**
   * The checkpoints the auditor last wrote, kept outside NATS (stream -> checkpoint): when REALM_REALM
   * itself lost checkpoints, these still say how far each stream reached.
   */
  recorded?: Record<string, CheckpointData> | undefined;
}

/** Verifies every chain of every context (or the ones named) against the trust and the checkpoints. */
export async function verifyRealm(nc: NatsConnection, trust: RealmTrust, opts: RealmAuditOptions = {}): Promise<AuditReport[]> {
  const contexts = opts.contexts ?? (await realmContexts(nc));
  const all = await realmContexts(nc);
  const cpStore = all.includes(CHECKPOINT_CONTEXT) ? await EventStore.open(nc, CHECKPOINT_CONTEXT, { trust }) : undefined;
  const reports: AuditReport[] = [];
  for (const c of contexts) {
    const store = await EventStore.open(nc, c, { trust });
    const cps = await checkpointsOf(cpStore, c);
    const recorded = opts.recorded?.[store.stream];
    if (recorded && !cps.some((x) => x.seq >= recorded.seq)) cps.push(recorded);
    reports.push(await verifyChains(store, { checkpoints: cps, onProgress: (n) => opts.onProgress?.(c, n) }));
  }
  return reports;
}
