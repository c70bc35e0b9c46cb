import type { NatsConnection } from "@nats-io/nats-core";
import { EventStore, Projection, type ProblemLog, type RealmTrust } from "../services/kernel/index.js";
import { DNS_CONTEXT, DnsEventTypes } from "../dns/contract.js";

/**
 * The names the realm owns, as the PKI sees them: the zones of the name domain, followed from the DNS
 * context's events (REALM_DNS) as DESIGN.md asks of contexts (read each other's events, through the
 * contract), so it works the same when the PKI runs in another process than the DNS context.
 */
export interface RealmZones {
  zones(): Iterable<string>;
  /** Applies every DNS event stored so far (after a zone was just created by another context). */
  catchUp(): Promise<void>;
  projection: Projection<Set<string>>;
  stop(): Promise<void>;
}

/** Reads REALM_DNS (read only: the PKI holds no DNS key, and verifies each event against the trust). */
export async function followRealmZones(nc: NatsConnection, opts: { trust: RealmTrust; log?: ProblemLog; replicas?: number | undefined }): Promise<RealmZones> {
  const store = await EventStore.open(nc, DNS_CONTEXT, { trust: opts.trust, replicas: opts.replicas });
  const projection = new Projection(store, {
    name: "pki-realm-zones",
    version: 1,
    initial: () => new Set<string>(),
    apply(zones, e) {
      if (e.aggregate.type !== "zone") return zones;
      if (e.type === DnsEventTypes.ZoneCreated || e.type === DnsEventTypes.ZoneImported || e.type === DnsEventTypes.ZoneImportCommitted) zones.add(e.aggregate.id);
      else if (e.type === DnsEventTypes.ZoneDeleted) zones.delete(e.aggregate.id);
      return zones;
    },
    // A projection of REALM_DNS that the PKI keeps: its snapshots are the PKI's (its bucket, its key).
    snapshot: {
      owner: "pki",
      encode: (zones) => zones,
      decode: (records) => new Set(records as Iterable<string>),
    },
  }, { log: opts.log });
  await projection.start();
  return {
    projection,
    zones: () => projection.state,
    catchUp: async () => projection.waitFor(await store.lastSequence()),
    stop: () => projection.stop(),
  };
}
