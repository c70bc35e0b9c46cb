import type { EventEnvelope, ProjectionDefinition } from "../services/kernel/index.js";
import { applyZoneEvent, rrKey, zoneDecider, type ZoneState } from "./domain/zone.js";
import { ImportEvents } from "./domain/import.js";
import { applySubjectEvent, emptySubjects, type Namespace, type SubjectRegistry } from "./domain/subjects.js";
import { applyObjectEvent, emptyObjects, type NamedObject, type ObjectRegistry } from "./domain/objects.js";
import { applyTsigKeyEvent, tsigKeyDecider, type TsigKeyInfo } from "./domain/tsig-keys.js";
import { soaRecord, zoneEventDiff, type ZoneStep } from "./domain/zone-diff.js";
import { applyDnssecEvent, dnssecDecider, type DnssecState } from "./domain/dnssec.js";

/** The name domain's read model: every zone, the subject namespaces and the named objects, in memory. */
export interface NameModel {
  zones: Map<string, ZoneState>;
  /**
   * Zones that do not exist now: deleted ones (their last serial: a zone created again goes on counting from
   * it, as secondaries expect), and new zones an import is being staged for.
   */
  deletedZones: Map<string, ZoneState>;
  subjects: SubjectRegistry;
  objects: ObjectRegistry;
  /** TSIG keys by name (revoked ones kept, marked): metadata only, their secrets are in realm_dns_tsig. */
  tsigKeys: Map<string, TsigKeyInfo>;
  /**
   * Zones created or deleted so far (each time a zone comes to exist or stops existing): the realm's catalog
   * zone (server/catalog.ts) takes its serial from it, so every replica agrees on it.
   */
  memberships: number;
  /** DNSSEC keys and policy per zone: public halves and states only (private halves sealed in realm_dns_dnssec). */
  dnssec: Map<string, DnssecState>;
}

/** What the DNS server follows besides "a zone changed": the serial steps (IXFR) and the zone list (catalog). */
export interface NameProjectionHooks {
  /** A record change of a zone, as one serial step; `reset` when the zone was replaced whole (create, delete, import). */
  onStep?: (zone: string, step: ZoneStep | "reset") => void;
  /** A zone came to exist or stopped existing. */
  onMembership?: () => void;
}

/** Zone events that change nothing a reader sees: an import's start and chunks (staged until its commit). */
const STAGING = new Set<string>([ImportEvents.Started, ImportEvents.Chunk]);

/**
 * The `dns-names` projection over REALM_DNS. `onZoneChanged` runs after each zone event that changes what
 * readers see (the DNS server drops its cached answers and re-indexes that zone): once per import, at its
 * commit, not per chunk.
 */
export function nameProjection(onZoneChanged: (zone: string) => void = () => undefined, hooks: NameProjectionHooks = {}): ProjectionDefinition<NameModel> {
  const initial = (): NameModel => ({ zones: new Map(), deletedZones: new Map(), subjects: emptySubjects(), objects: emptyObjects(), tsigKeys: new Map(), dnssec: new Map(), memberships: 0 });
  return {
    name: "dns-names",
    // v2: the model counts memberships (the catalog's serial) and keeps each zone's secondaries.
    // v3: and holds each zone's DNSSEC keys and policy.
    version: 3,
    initial,
    apply(state, event: EventEnvelope) {
      switch (event.aggregate.type) {
        case zoneDecider.aggregateType: {
          const zone = event.aggregate.id;
          const cur = zoneOf(state, zone);
          // Decided on the state before the event (applying it changes that state in place).
          const diff = hooks.onStep ? zoneEventDiff(cur, event.type, event.data) : null;
          const fromSoa = diff && diff !== "reset" ? soaRecord(cur) : null;
          const fromSerial = cur.serial;
          const existed = cur.exists;
          const next = applyZoneEvent(cur, event.type, event.data);
          if (next.exists !== existed) state.memberships++;
          if (next.exists) {
            state.zones.set(zone, next);
            state.deletedZones.delete(zone);
          } else {
            state.zones.delete(zone);
            state.deletedZones.set(zone, next);
          }
          if (!STAGING.has(event.type)) onZoneChanged(zone);
          if (diff === "reset") hooks.onStep!(zone, "reset");
          else if (diff) {
            const toSoa = soaRecord(next);
            if (fromSoa && toSoa && next.serial !== fromSerial) hooks.onStep!(zone, { from: fromSerial, to: next.serial, fromSoa, toSoa, ...diff });
            else hooks.onStep!(zone, "reset");
          }
          if (next.exists !== existed) hooks.onMembership?.();
          break;
        }
        case "namespace":
          applySubjectEvent(state.subjects, event);
          break;
        case "object":
          applyObjectEvent(state.objects, event);
          break;
        case tsigKeyDecider.aggregateType: {
          const next = applyTsigKeyEvent(state.tsigKeys.get(event.aggregate.id) ?? null, event.type, event.data);
          if (next) state.tsigKeys.set(event.aggregate.id, next);
          break;
        }
        case dnssecDecider.aggregateType: {
          const zone = event.aggregate.id;
          const next = applyDnssecEvent(state.dnssec.get(zone) ?? null, event.type, event.data, zone);
          if (next) state.dnssec.set(zone, next);
          // The zone's apex records (DNSKEY, CDS, ...) and signing keys changed: re-index it, drop cached answers.
          onZoneChanged(zone);
          break;
        }
      }
      return state;
    },
    snapshot: {
      encode: encodeNameModel,
      decode(records) {
        const m = decodeNameModel(records, initial());
        // The DNS server indexes zones lazily after a change: every restored zone is one.
        for (const zone of m.zones.keys()) onZoneChanged(zone);
        return m;
      },
    },
  };
}

type RRsetOf<Z> = Z extends { rrsets: Map<string, infer R> } ? R : never;
type RRset = RRsetOf<ZoneState>;
type Staged = NonNullable<ZoneState["staged"]>;

/**
 * The name model as snapshot records: each zone (live or deleted, with what an import has staged for it)
 * and then its RRsets one per record (the staged ones tagged apart), so a zone of a million records is a
 * million small values, never one; then the namespaces and the objects.
 */
function* encodeNameModel(m: NameModel): Generator<unknown> {
  for (const [tag, zones] of [["zone", m.zones], ["deleted", m.deletedZones]] as const) {
    for (const [key, z] of zones) {
      const staged = z.staged ? { ...z.staged, rrsets: undefined } : null;
      yield [tag, key, z.zone, z.exists, z.serial, z.soa, staged, z.secondaries ?? null];
      for (const r of z.rrsets.values()) yield ["rr", r.name, r.type, r.ttl, r.data];
      for (const r of z.staged?.rrsets.values() ?? []) yield ["staged", r.name, r.type, r.ttl, r.data];
    }
  }
  for (const [key, ns] of m.subjects.namespaces) yield ["namespace", key, ns];
  for (const [key, o] of m.objects.objects) yield ["object", key, o];
  for (const [key, k] of m.tsigKeys) yield ["tsig", key, k];
  yield ["memberships", m.memberships];
  for (const [key, d] of m.dnssec) yield ["dnssec", key, d];
}

function decodeNameModel(records: Iterable<unknown>, m: NameModel): NameModel {
  let zone: ZoneState | undefined;
  for (const rec of records) {
    const r = rec as unknown[];
    switch (r[0]) {
      case "zone":
      case "deleted": {
        const [, key, name, exists, serial, soa, staged, secondaries] = r as [string, string, string, boolean, number, ZoneState["soa"], Omit<Staged, "rrsets"> | null, ZoneState["secondaries"] | null | undefined];
        zone = { zone: name, exists, serial, soa, rrsets: new Map() };
        if (secondaries) zone.secondaries = secondaries;
        if (staged) zone.staged = { ...staged, rrsets: new Map() };
        (r[0] === "zone" ? m.zones : m.deletedZones).set(key, zone);
        break;
      }
      case "rr": {
        const [, name, type, ttl, data] = r as [string, RRset["name"], RRset["type"], number, string[]];
        if (!zone) throw new Error("an RRset record before any zone");
        zone.rrsets.set(rrKey(name, type), { name, type, ttl, data });
        break;
      }
      case "staged": {
        const [, name, type, ttl, data] = r as [string, RRset["name"], RRset["type"], number, string[]];
        if (!zone?.staged) throw new Error("a staged RRset record before its zone's staged import");
        zone.staged.rrsets.set(rrKey(name, type), { name, type, ttl, data });
        break;
      }
      case "namespace":
        m.subjects.namespaces.set(r[1] as string, r[2] as Namespace);
        break;
      case "object":
        m.objects.objects.set(r[1] as string, r[2] as NamedObject);
        break;
      case "tsig":
        m.tsigKeys.set(r[1] as string, r[2] as TsigKeyInfo);
        break;
      case "memberships":
        m.memberships = r[1] as number;
        break;
      case "dnssec":
        m.dnssec.set(r[1] as string, r[2] as DnssecState);
        break;
      default:
        throw new Error(`not a name model record: ${JSON.stringify(r[0])}`);
    }
  }
  return m;
}

/** A zone as the decider sees it: live, deleted (with its serial), or never created. */
export function zoneOf(m: NameModel, zone: string): ZoneState {
  return m.zones.get(zone) ?? m.deletedZones.get(zone) ?? zoneDecider.initialState(zone);
}
