import type { NatsConnection } from "@nats-io/nats-core";
import { jetstreamManager } from "@nats-io/jetstream";
import { verifyChains, type AuditReport } from "./audit.js";
import { EventStore } from "./store.js";

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

/** Verifies every chain of every context (or the ones named). */
export async function verifyRealm(nc: NatsConnection, contexts?: string[], onProgress?: (context: string, events: number) => void): Promise<AuditReport[]> {
  const reports: AuditReport[] = [];
  for (const c of contexts ?? (await realmContexts(nc))) {
    const store = await EventStore.open(nc, c);
    reports.push(await verifyChains(store, (n) => onProgress?.(c, n)));
  }
  return reports;
}
