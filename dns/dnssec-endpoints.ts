import type { Endpoint, RequestContext } from "../services/host/context.js";
import { invalid, notFound, RealmError } from "../services/kernel/errors.js";
import { DEFAULT_POLICY, dueChanges, parentKsks, rolling, type DnssecCommand, type DnssecKeyInfo, type DnssecState, type KeyRole } from "./domain/dnssec.js";
import type { ZoneState } from "./domain/zone.js";
import type { DnssecKeyStore } from "./dnssec/key-store.js";
import { DNSSEC_ALGORITHMS, generateKey, keyTag, publicKeyField, type DnssecAlgorithm } from "./dnssec/keys.js";
import { dnskeyLine, dnskeyOf, dsLines } from "./dnssec/zone-keys.js";

type Ctx = Pick<RequestContext, "commandId" | "actor" | "correlationId" | "causationId">;

export interface DnssecEndpointDeps {
  states(): Map<string, DnssecState>;
  zones(): Map<string, ZoneState>;
  zoneName(z: string): string;
  /** Absent without a seal key: zones cannot be signed. */
  keys: DnssecKeyStore | undefined;
  /** Set when this instance's DNS answers come from worker processes, which hold no keys (a signed zone would be served unsigned). */
  unsignedServer?: string | undefined;
  run(zone: string, cmd: DnssecCommand, ctx: Ctx): Promise<{ state: DnssecState | null; replayed: boolean }>;
}

const S = (props: Record<string, object>, required: string[] = []) => ({ type: "object", additionalProperties: false, required, properties: props });
const str = { type: "string", minLength: 1, maxLength: 255 };
const secs = (max: number) => ({ type: "integer", minimum: 0, maximum: max });
const policyProps = { dnskeyTtl: secs(86_400), propagationDelay: secs(86_400), zskLifetime: secs(10 * 365 * 86_400), dsTtl: secs(7 * 86_400) };

/** The largest TTL of a zone's signed data (its RRSIGs' TTLs): how long a cache may keep a signature. */
export function maxTtl(z: ZoneState, s: DnssecState): number {
  let max = Math.max(z.soa?.ttl ?? 0, s.policy.dnskeyTtl);
  for (const set of z.rrsets.values()) if (set.ttl > max) max = set.ttl;
  return max;
}

/** A new key of a zone: made here, its private half sealed in the store before any event names it. */
export async function newKey(store: DnssecKeyStore, zone: string, role: KeyRole, algorithm: DnssecAlgorithm, state: DnssecKeyInfo["state"], now: string): Promise<DnssecKeyInfo> {
  const key = generateKey(algorithm);
  const id = await store.save(zone, key);
  const publicKey = publicKeyField(key).toString("base64");
  const info: DnssecKeyInfo = { id, role, algorithm, tag: 0, publicKey, state, publishedAt: now, ...(state === "active" ? { activeAt: now } : {}) };
  return { ...info, tag: keyTag(dnskeyOf(info)) };
}

/** A zone's DNSSEC as shown: policy, keys (public halves, states, times), the DS for the parent, the next change due. */
function status(zone: string, s: DnssecState, z: ZoneState | undefined) {
  const now = new Date().toISOString();
  const pending = z ? dueChanges(s, now, maxTtl(z, s)) : [];
  return {
    zone,
    enabled: s.enabled,
    algorithm: s.policy.algorithm,
    denial: "NSEC3 (RFC 5155; SHA-1, no salt, 0 iterations, no opt-out; minimal spans online)",
    policy: s.policy,
    keys: s.keys.map((k) => ({ id: k.id, role: k.role, tag: k.tag, algorithm: k.algorithm, state: k.state, publishedAt: k.publishedAt, ...(k.activeAt ? { activeAt: k.activeAt } : {}), ...(k.retiredAt ? { retiredAt: k.retiredAt } : {}), ...(k.removedAt ? { removedAt: k.removedAt } : {}) })),
    ds: dsLines(zone, s),
    dnskey: s.keys.filter((k) => k.state !== "removed").map((k) => dnskeyLine(zone, s.policy.dnskeyTtl, k)),
    rolling: { zsk: rolling(s, "zsk"), ksk: rolling(s, "ksk") || parentKsks(s).length > 1 },
    ...(pending.length ? { due: pending } : {}),
  };
}

/**
 * `dnssec.enable`, `dnssec.rollover`, `dnssec.ds-submitted`, `dnssec.policy`, and the `dnssec` and
 * `dnssec-ds` queries: a zone's DNSSEC keys (KSK and ZSK, ECDSA P-256 or Ed25519) and their rollovers.
 */
export function dnssecEndpoints(d: DnssecEndpointDeps): Endpoint[] {
  const zoneRes = (i: { zone: string }) => ({ kind: "name" as const, id: d.zoneName(i.zone) });
  const state = (zone: string): DnssecState => {
    const s = d.states().get(zone);
    if (!s?.enabled) throw notFound(`DNSSEC is not enabled for zone ${zone}`);
    return s;
  };
  const store = (): DnssecKeyStore => {
    if (!d.keys) throw new RealmError("UNAVAILABLE", "DNSSEC keys need the realm's seal key (the dns context has none)");
    return d.keys;
  };
  return [
    {
      kind: "command",
      name: "dnssec.enable",
      description: "Sign a zone online: makes its KSK and ZSK (algorithm 13 ECDSA P-256/SHA-256, default, or 15 Ed25519), private halves sealed in realm_dns_dnssec and never in an event; answers to DO queries carry RRSIGs and NSEC3 proofs from then on. The DS for the parent is in the reply (and `dnssec-ds`).",
      resource: zoneRes,
      input: S({ zone: str, algorithm: { enum: [...DNSSEC_ALGORITHMS] }, ...policyProps }, ["zone"]),
      async handle(i: { zone: string; algorithm?: DnssecAlgorithm; dnskeyTtl?: number; propagationDelay?: number; zskLifetime?: number; dsTtl?: number }, ctx) {
        const zone = d.zoneName(i.zone);
        if (!d.zones().has(zone)) throw notFound(`zone ${zone} does not exist`);
        if (d.states().get(zone)?.enabled) throw new RealmError("ALREADY_EXISTS", `DNSSEC is enabled for zone ${zone} already`);
        const ks = store();
        if (d.unsignedServer) throw new RealmError("UNAVAILABLE", d.unsignedServer);
        const algorithm = i.algorithm ?? 13;
        const policy = { ...DEFAULT_POLICY, algorithm, ...defined(i) };
        const now = new Date().toISOString();
        const keys = [await newKey(ks, zone, "ksk", algorithm, "active", now), await newKey(ks, zone, "zsk", algorithm, "active", now)];
        const r = await d.run(zone, { type: "enable", policy, keys }, ctx);
        return status(zone, r.state!, d.zones().get(zone));
      },
    },
    {
      kind: "command",
      name: "dnssec.rollover",
      description: "Start a key rollover: `zsk` by pre-publication (the new ZSK is published, signs once the DNSKEY TTL has passed, the old one goes once the zone's largest TTL has passed); `ksk` double-KSK with CDS/CDNSKEY (the new KSK co-signs DNSKEY, is named in CDS/CDNSKEY after the DNSKEY TTL; `dnssec.ds-submitted` retires the old one)",
      resource: zoneRes,
      input: S({ zone: str, role: { enum: ["zsk", "ksk"] } }, ["zone", "role"]),
      async handle(i: { zone: string; role: KeyRole }, ctx) {
        const zone = d.zoneName(i.zone);
        const s = state(zone);
        if (rolling(s, i.role) || (i.role === "ksk" && parentKsks(s).length > 1)) throw new RealmError("CONFLICT", `a ${i.role.toUpperCase()} rollover of ${zone} is under way already`);
        const key = await newKey(store(), zone, i.role, s.policy.algorithm, "published", new Date().toISOString());
        const r = await d.run(zone, { type: "publish", key, reason: "rollover" }, ctx);
        return status(zone, r.state!, d.zones().get(zone));
      },
    },
    {
      kind: "command",
      name: "dnssec.ds-submitted",
      description: "Say the parent now has the DS of the new KSK (as knot's zone-ksk-submitted): the old KSK is retired, and removed after the DS TTL",
      resource: zoneRes,
      input: S({ zone: str }, ["zone"]),
      async handle(i: { zone: string }, ctx) {
        const zone = d.zoneName(i.zone);
        state(zone);
        const r = await d.run(zone, { type: "dsSubmitted", now: new Date().toISOString() }, ctx);
        return status(zone, r.state!, d.zones().get(zone));
      },
    },
    {
      kind: "command",
      name: "dnssec.policy",
      description: "Change a signed zone's timings: zskLifetime (seconds a ZSK signs before it is rolled by itself; 0 = only by dnssec.rollover), dnskeyTtl, propagationDelay, dsTtl",
      resource: zoneRes,
      input: S({ zone: str, ...policyProps }, ["zone"]),
      async handle(i: { zone: string; dnskeyTtl?: number; propagationDelay?: number; zskLifetime?: number; dsTtl?: number }, ctx) {
        const zone = d.zoneName(i.zone);
        state(zone);
        const p = defined(i);
        if (Object.keys(p).length === 0) throw invalid("give at least one of zskLifetime, dnskeyTtl, propagationDelay, dsTtl");
        const r = await d.run(zone, { type: "policy", ...p }, ctx);
        return status(zone, r.state!, d.zones().get(zone));
      },
    },
    {
      kind: "query",
      name: "dnssec",
      description: "A zone's DNSSEC: policy, keys (tags, states, times; public halves only), the DS for the parent, the next key change due",
      resource: zoneRes,
      http: { method: "GET", path: "/zones/:zone/dnssec" },
      input: S({ zone: str }, ["zone"]),
      async handle(i: { zone: string }) {
        const zone = d.zoneName(i.zone);
        return status(zone, state(zone), d.zones().get(zone));
      },
    },
    {
      kind: "query",
      name: "dnssec-ds",
      description: "The DS records (SHA-256) of a signed zone's KSKs for its parent, as dnssec-dsfromkey prints them, and the KSKs' DNSKEY records (a trust anchor)",
      resource: zoneRes,
      http: { method: "GET", path: "/zones/:zone/ds" },
      input: S({ zone: str }, ["zone"]),
      async handle(i: { zone: string }) {
        const zone = d.zoneName(i.zone);
        const s = state(zone);
        return { zone, ds: dsLines(zone, s), dnskey: parentKsks(s).map((k) => dnskeyLine(zone, s.policy.dnskeyTtl, k)) };
      },
    },
  ];
}

function defined(i: { dnskeyTtl?: number; propagationDelay?: number; zskLifetime?: number; dsTtl?: number }) {
  const out: { dnskeyTtl?: number; propagationDelay?: number; zskLifetime?: number; dsTtl?: number } = {};
  if (i.dnskeyTtl !== undefined) out.dnskeyTtl = i.dnskeyTtl;
  if (i.propagationDelay !== undefined) out.propagationDelay = i.propagationDelay;
  if (i.zskLifetime !== undefined) out.zskLifetime = i.zskLifetime;
  if (i.dsTtl !== undefined) out.dsTtl = i.dsTtl;
  return out;
}
