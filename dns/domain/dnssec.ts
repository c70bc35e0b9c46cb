import type { Decider, EventEnvelope, NewEvent } from "../../services/kernel/index.js";
import { alreadyExists, conflict, invalid, notFound } from "../../services/kernel/errors.js";

/**
 * DNSSEC of a zone: one `dnssec` aggregate per zone (id = the zone). Its events carry the keys' public
 * halves, tags, algorithm and state, never a private key (those are sealed in `realm_dns_dnssec`,
 * dns/dnssec/key-store.ts, before the event that names them is appended).
 *
 * Key states:
 * - `published`: in the DNSKEY RRset; a ZSK does not sign yet, a KSK signs the DNSKEY RRset but is not in CDS/CDNSKEY;
 * - `active`: in DNSKEY and signing (a ZSK every RRset but DNSKEY, a KSK the DNSKEY RRset; active KSKs are the CDS/CDNSKEY);
 * - `retired`: still in DNSKEY (caches hold signatures or a DS that need it), no longer signing (a retired KSK still signs DNSKEY);
 * - `removed`: gone.
 *
 * ZSK rollover by pre-publication (RFC 6781 4.1.1.1): publish the new ZSK; once the DNSKEY TTL (plus the
 * propagation delay) has passed every cache holds it, so it becomes active and the old one retired; once the
 * largest TTL of the zone's signed data has passed no cache holds a signature of the old key, so it is removed.
 * KSK rollover (double-KSK, RFC 6781 4.1.2, with RFC 8078 CDS/CDNSKEY): publish the new KSK (it co-signs
 * DNSKEY); after the DNSKEY TTL it is active and CDS/CDNSKEY name both; when the parent has the new DS
 * (`dnssec.ds-submitted`, as knot's `zone-ksk-submitted`) the old KSK is retired, and removed after the DS TTL.
 */
export const DnssecEvents = {
  DnssecEnabled: "DnssecEnabled",
  DnssecKeyPublished: "DnssecKeyPublished",
  DnssecKeyStateChanged: "DnssecKeyStateChanged",
  DnssecPolicyChanged: "DnssecPolicyChanged",
  /** The zone's serial was stepped so secondaries transfer fresh signatures (weekly: they last 14 days). */
  DnssecZoneResigned: "DnssecZoneResigned",
} as const;

/** How often a signed zone's serial is stepped for its secondaries' sake (signatures last 14 days). */
export const RESIGN_INTERVAL_S = 7 * 86_400;

export type KeyRole = "ksk" | "zsk";
export type KeyState = "published" | "active" | "retired" | "removed";

export interface DnssecKeyInfo {
  /** sha256 of the public key field, 16 hex digits: names the key (tags may collide). */
  id: string;
  role: KeyRole;
  algorithm: 13 | 15;
  tag: number;
  /** The DNSKEY public key field, base64. */
  publicKey: string;
  state: KeyState;
  /** ISO times of the state changes so far. */
  publishedAt: string;
  activeAt?: string;
  retiredAt?: string;
  removedAt?: string;
}

export interface DnssecPolicy {
  algorithm: 13 | 15;
  /** TTL of DNSKEY, CDS, CDNSKEY and NSEC3PARAM. */
  dnskeyTtl: number;
  /** Seconds added to every wait for secondaries to catch up. */
  propagationDelay: number;
  /** A ZSK is rolled this many seconds after it became active (0 = only on `dnssec.rollover`). */
  zskLifetime: number;
  /** The parent's DS TTL: how long a retired KSK stays (default 86400). */
  dsTtl: number;
}

export interface DnssecState {
  zone: string;
  enabled: boolean;
  policy: DnssecPolicy;
  keys: DnssecKeyInfo[];
  /** When the zone was enabled, or last stepped for its secondaries (ISO). */
  resignedAt?: string;
}

export type DnssecCommand =
  | { type: "enable"; policy: DnssecPolicy; keys: DnssecKeyInfo[] }
  | { type: "publish"; key: DnssecKeyInfo; reason: "rollover" | "schedule" }
  /** Applies the state changes due at `now` (ISO); `maxTtl` is the largest TTL of the zone's signed data. */
  | { type: "advance"; now: string; maxTtl: number }
  | { type: "dsSubmitted"; now: string }
  | { type: "policy"; zskLifetime?: number; dnskeyTtl?: number; propagationDelay?: number; dsTtl?: number }
  | { type: "resigned"; now: string };

export const DEFAULT_POLICY: Omit<DnssecPolicy, "algorithm"> = { dnskeyTtl: 3600, propagationDelay: 60, zskLifetime: 0, dsTtl: 86_400 };

const live = (k: DnssecKeyInfo) => k.state !== "removed";
const at = (iso: string | undefined) => (iso ? Date.parse(iso) : NaN);

/** Keys in the DNSKEY RRset. */
export const publishedKeys = (s: DnssecState): DnssecKeyInfo[] => s.keys.filter(live);
/** Keys whose signatures the zone carries: active ZSKs for data; every KSK in DNSKEY for the DNSKEY RRset. */
export const signingZsks = (s: DnssecState): DnssecKeyInfo[] => s.keys.filter((k) => k.role === "zsk" && k.state === "active");
export const signingKsks = (s: DnssecState): DnssecKeyInfo[] => s.keys.filter((k) => k.role === "ksk" && live(k));
/** KSKs the parent should have a DS for (what `ds` prints and CDS/CDNSKEY publish). */
export const parentKsks = (s: DnssecState): DnssecKeyInfo[] => s.keys.filter((k) => k.role === "ksk" && k.state === "active");

export interface StateChange {
  id: string;
  role: KeyRole;
  from: KeyState;
  to: KeyState;
  at: string;
}

/** A rollover of this role is under way: a key of it is published and not yet active, or retired and not yet removed. */
export function rolling(s: DnssecState, role: KeyRole): boolean {
  return s.keys.some((k) => k.role === role && (k.state === "published" || k.state === "retired"));
}

/** The state changes due at `now` (what `advance` appends); empty when none is. */
export function dueChanges(s: DnssecState, now: string, maxTtl: number): StateChange[] {
  if (!s.enabled) return [];
  const t = Date.parse(now);
  const p = s.policy;
  const out: StateChange[] = [];
  const change = (k: DnssecKeyInfo, to: KeyState) => out.push({ id: k.id, role: k.role, from: k.state, to, at: now });
  for (const role of ["zsk", "ksk"] as const) {
    const keys = s.keys.filter((k) => k.role === role);
    const fresh = keys.find((k) => k.state === "published");
    if (fresh && t >= at(fresh.publishedAt) + (p.dnskeyTtl + p.propagationDelay) * 1000) {
      change(fresh, "active");
      // A ZSK takes over from the old one; a KSK waits beside it for the parent's DS (dsSubmitted).
      if (role === "zsk") for (const k of keys) if (k.state === "active") change(k, "retired");
    }
    const wait = role === "zsk" ? maxTtl : p.dsTtl;
    for (const k of keys) if (k.state === "retired" && t >= at(k.retiredAt) + (wait + p.propagationDelay) * 1000) change(k, "removed");
  }
  return out;
}

export const dnssecDecider: Decider<DnssecState | null, DnssecCommand> = {
  aggregateType: "dnssec",
  initialState: () => null,
  decide(s, c): NewEvent[] {
    switch (c.type) {
      case "enable": {
        if (s?.enabled) throw alreadyExists("DNSSEC is enabled for this zone already");
        if (!c.keys.some((k) => k.role === "ksk") || !c.keys.some((k) => k.role === "zsk")) throw invalid("a signed zone needs a KSK and a ZSK");
        return [{ type: DnssecEvents.DnssecEnabled, data: { policy: c.policy, keys: c.keys } }];
      }
      case "publish": {
        if (!s?.enabled) throw notFound("DNSSEC is not enabled for this zone");
        if (rolling(s, c.key.role)) throw conflict(`a ${c.key.role.toUpperCase()} rollover is under way already: ${describeRoll(s, c.key.role)}`);
        if (c.key.algorithm !== s.policy.algorithm) throw invalid(`the zone is signed with algorithm ${s.policy.algorithm}; an algorithm rollover is not supported`);
        return [{ type: DnssecEvents.DnssecKeyPublished, data: { key: c.key, reason: c.reason } }];
      }
      case "advance": {
        if (!s?.enabled) return [];
        return dueChanges(s, c.now, c.maxTtl).map((d) => ({ type: DnssecEvents.DnssecKeyStateChanged, data: d }));
      }
      case "dsSubmitted": {
        if (!s?.enabled) throw notFound("DNSSEC is not enabled for this zone");
        const ksks = parentKsks(s);
        if (ksks.length < 2) throw conflict("no KSK rollover is waiting for the parent's DS (start one with dnssec.rollover ksk, and wait until the new KSK is active)");
        // The newest active KSK stays; the others are retired.
        const newest = ksks.reduce((a, b) => (at(a.activeAt) >= at(b.activeAt) ? a : b));
        return ksks.filter((k) => k !== newest).map((k) => ({ type: DnssecEvents.DnssecKeyStateChanged, data: { id: k.id, role: k.role, from: k.state, to: "retired", at: c.now } satisfies StateChange }));
      }
      case "resigned":
        if (!s?.enabled) throw notFound("DNSSEC is not enabled for this zone");
        return [{ type: DnssecEvents.DnssecZoneResigned, data: { at: c.now } }];
      case "policy": {
        if (!s?.enabled) throw notFound("DNSSEC is not enabled for this zone");
        const next: DnssecPolicy = { ...s.policy, ...definedOnly(c) };
        return [{ type: DnssecEvents.DnssecPolicyChanged, data: { policy: next } }];
      }
    }
  },
  evolve(s, e: EventEnvelope) {
    return applyDnssecEvent(s, e.type, e.data, e.aggregate.id);
  },
};

function definedOnly(c: { zskLifetime?: number; dnskeyTtl?: number; propagationDelay?: number; dsTtl?: number }): Partial<DnssecPolicy> {
  const out: Partial<DnssecPolicy> = {};
  if (c.zskLifetime !== undefined) out.zskLifetime = c.zskLifetime;
  if (c.dnskeyTtl !== undefined) out.dnskeyTtl = c.dnskeyTtl;
  if (c.propagationDelay !== undefined) out.propagationDelay = c.propagationDelay;
  if (c.dsTtl !== undefined) out.dsTtl = c.dsTtl;
  return out;
}

function describeRoll(s: DnssecState, role: KeyRole): string {
  return s.keys.filter((k) => k.role === role && k.state !== "removed").map((k) => `${k.tag} ${k.state}`).join(", ");
}

/** Folds one event (a new state object each time: states are shared with readers). */
export function applyDnssecEvent(s: DnssecState | null, type: string, raw: unknown, zone: string): DnssecState | null {
  switch (type) {
    case DnssecEvents.DnssecEnabled: {
      const d = raw as { policy: DnssecPolicy; keys: DnssecKeyInfo[] };
      return { zone, enabled: true, policy: d.policy, keys: d.keys, resignedAt: d.keys[0]?.publishedAt };
    }
    case DnssecEvents.DnssecKeyPublished: {
      if (!s) return s;
      const d = raw as { key: DnssecKeyInfo };
      return { ...s, keys: [...s.keys, d.key] };
    }
    case DnssecEvents.DnssecKeyStateChanged: {
      if (!s) return s;
      const d = raw as StateChange;
      const stamp = d.to === "active" ? "activeAt" : d.to === "retired" ? "retiredAt" : d.to === "removed" ? "removedAt" : "publishedAt";
      return { ...s, keys: s.keys.map((k) => (k.id === d.id && k.role === d.role ? { ...k, state: d.to, [stamp]: d.at } : k)) };
    }
    case DnssecEvents.DnssecZoneResigned:
      return s ? { ...s, resignedAt: (raw as { at: string }).at } : s;
    case DnssecEvents.DnssecPolicyChanged:
      return s ? { ...s, policy: (raw as { policy: DnssecPolicy }).policy } : s;
    default:
      return s;
  }
}
