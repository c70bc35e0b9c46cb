import type { NatsConnection } from "@nats-io/nats-core";
import { EventStore, Projection, type ProblemLog, type RealmTrust } from "../services/kernel/index.js";
import { DNS_CONTEXT, DnsEventTypes } from "../dns/contract.js";

/**
 * The names the realm owns, as the PKI sees them: the zones of the name domain, followed from the DNS
 * context's events (REALM_DNS) as DESIGN.md asks of contexts (read each other's events, through the
 * contract), so it works the same when the PKI runs in another process than the DNS context. Beside the
 * zones it keeps the TXT records at `_acme-challenge.<name>` names: what ACME dns-01 validation reads for
 * names in the realm's own zones, without a DNS query.
 */
export interface RealmZones {
  zones(): Iterable<string>;
  /**
   * The TXT strings at `name` (`_acme-challenge.<name>`, no trailing dot) when it lies in a realm zone; []
   * when the zone holds none there; undefined when no realm zone holds the name (ask DNS instead).
   */
  challengeTxt(name: string): string[] | undefined;
  /** Applies every DNS event stored so far (after a zone was just created by another context). */
  catchUp(): Promise<void>;
  projection: Projection<RealmZoneState>;
  stop(): Promise<void>;
}

export interface RealmZoneState {
  /** Zone names as the DNS context keys them (trailing dot). */
  zones: Set<string>;
  /** `_acme-challenge.` owner names (lowercase, no trailing dot) -> TXT values (each the concatenated strings). */
  challenges: Map<string, string[]>;
}

const CHALLENGE_LABEL = "_acme-challenge.";
const bare = (name: string) => name.toLowerCase().replace(/\.$/, "");
const within = (name: string, zone: string) => name === bare(zone) || name.endsWith(`.${bare(zone)}`);

/**
 * The text of a TXT record in presentation form as the DNS context stores it (`"a" "b"`, quoted
 * character-strings with `\"`, `\\` and `\DDD` escapes) -> its strings joined (RFC 8555 §8.4 compares that).
 */
export function txtValue(data: string): string {
  let out = "";
  for (const m of data.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) {
    const t = m[1] ?? m[2] ?? "";
    out += t.replace(/\\(\d{3}|.)/g, (_, x: string) => (x.length === 3 ? String.fromCharCode(Number(x)) : x));
  }
  return out;
}

/** Folds one REALM_DNS event into the PKI's view (pure but for mutating `s`). */
export function applyRealmZoneEvent(s: RealmZoneState, e: { aggregate: { type: string; id: string }; type: string; data: unknown }): RealmZoneState {
  if (e.aggregate.type !== "zone") return s;
  const zone = e.aggregate.id;
  const dropUnder = () => {
    for (const n of [...s.challenges.keys()]) if (within(n, zone)) s.challenges.delete(n);
  };
  const d = e.data as { name?: string; type?: string; data?: string | string[]; records?: { name: string; type: string; data: string }[] };
  switch (e.type) {
    case DnsEventTypes.ZoneCreated:
    case DnsEventTypes.ZoneImportCommitted:
      s.zones.add(zone);
      return s;
    case DnsEventTypes.ZoneImported:
      s.zones.add(zone);
      dropUnder();
      for (const r of d.records ?? []) if (r.type === "TXT" && bare(r.name).startsWith(CHALLENGE_LABEL)) s.challenges.set(bare(r.name), [...(s.challenges.get(bare(r.name)) ?? []), txtValue(r.data)]);
      return s;
    case DnsEventTypes.ZoneDeleted:
      s.zones.delete(zone);
      dropUnder();
      return s;
  }
  if (d.type !== "TXT" || typeof d.name !== "string" || !bare(d.name).startsWith(CHALLENGE_LABEL)) return s;
  const name = bare(d.name);
  const cur = s.challenges.get(name) ?? [];
  let next = cur;
  if (e.type === DnsEventTypes.RecordAdded && typeof d.data === "string") next = [...cur, txtValue(d.data)];
  else if (e.type === DnsEventTypes.RecordRemoved && typeof d.data === "string") {
    const v = txtValue(d.data);
    next = cur.filter((x) => x !== v);
  } else if (e.type === DnsEventTypes.RecordSetChanged && Array.isArray(d.data)) next = d.data.map(txtValue);
  if (next.length === 0) s.challenges.delete(name);
  else s.challenges.set(name, next);
  return s;
}

/** Reads REALM_DNS (read only: the PKI holds no DNS key, and verifies each event against the trust). */
export async function followRealmZones(nc: NatsConnection, opts: { trust: RealmTrust; log?: ProblemLog; replicas?: number | undefined }): Promise<RealmZones> {
  const store = await EventStore.open(nc, DNS_CONTEXT, { trust: opts.trust, replicas: opts.replicas });
  const projection = new Projection<RealmZoneState>(store, {
    name: "pki-realm-zones",
    version: 2,
    initial: () => ({ zones: new Set(), challenges: new Map() }),
    apply: applyRealmZoneEvent,
    // A projection of REALM_DNS that the PKI keeps: its snapshots are the PKI's (its bucket, its key).
    snapshot: {
      owner: "pki",
      *encode(s) {
        for (const z of s.zones) yield ["zone", z];
        for (const [n, v] of s.challenges) yield ["txt", n, v];
      },
      decode(records) {
        const s: RealmZoneState = { zones: new Set(), challenges: new Map() };
        for (const rec of records) {
          const r = rec as [string, string, string[]];
          if (r[0] === "zone") s.zones.add(r[1]);
          else if (r[0] === "txt") s.challenges.set(r[1], r[2]);
          else throw new Error(`not a realm-zones record: ${JSON.stringify(r[0])}`);
        }
        return s;
      },
    },
  }, { log: opts.log });
  await projection.start();
  return {
    projection,
    zones: () => projection.state.zones,
    challengeTxt(name) {
      const n = bare(name);
      if (![...projection.state.zones].some((z) => within(n, z))) return undefined;
      return projection.state.challenges.get(n) ?? [];
    },
    catchUp: async () => projection.waitFor(await store.lastSequence()),
    stop: () => projection.stop(),
  };
}
