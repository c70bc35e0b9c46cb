import { packetData, targetOf, TYPE_BY_CODE, TYPE_CODES, typeCode, type RecordType } from "../domain/rdata.js";
import { parentName } from "../domain/names.js";
import type { ZoneState } from "../domain/zone.js";
import { wireName } from "./names-wire.js";
import { fixed } from "./wire.js";

/** A resource record ready for dns-packet's encoder. */
export interface WireRecord {
  name: string;
  type: string;
  class: "IN";
  ttl: number;
  data: unknown;
}

export const Rcode = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, YXDOMAIN: 6 } as const;

/** What the authority says about one question, before encoding. */
export interface AnswerPlan {
  rcode: number;
  aa: boolean;
  answers: WireRecord[];
  authorities: WireRecord[];
  additionals: WireRecord[];
  /** The zone the answer came from (null when no zone of the realm holds the name). */
  zone: string | null;
  /** A referral: its glue must fit, or the reply goes out with TC (RFC 9471 3; knot does the same). */
  glueRequired?: boolean;
  /** An Extended DNS Error (RFC 8914) for the reply's OPT: 20 "Not Authoritative" on REFUSED, as knot does. */
  ede?: number;
}

export interface RRset {
  type: RecordType;
  /** The owner as the zone writes it (its case kept); the index keys it in lower case. */
  owner: string;
  ttl: number;
  data: string[];
  wire?: WireRecord[];
}

/** Longest CNAME chain followed inside a zone (knot stops at loops too; this bounds the work). */
const MAX_CHAIN = 16;
const ANY = 255;
const DS = 43;
/** RRSIG and NSEC live beside a CNAME (RFC 4035 2.2): asked for, they are answered at the node, not through the CNAME. */
const RRSIG = 46;
const NSEC = 47;

/** RRsets a zone serves beside its records (the DNSSEC apex records: DNSKEY, NSEC3PARAM, CDS, CDNSKEY). */
export type ExtraRRsets = (zone: string) => { name: string; type: RecordType; ttl: number; data: string[] }[];

/** One zone, indexed for lookups: lower-case owner -> type -> RRset, plus the names that exist only as ancestors. */
export class ZoneIndex {
  readonly nodes = new Map<string, Map<RecordType, RRset>>();
  /** Empty non-terminals: names with no records but with descendants that have some. */
  readonly ents = new Set<string>();
  readonly soa: WireRecord;
  readonly negativeSoa: WireRecord;

  constructor(readonly zone: string, state: ZoneState, extra: ReturnType<ExtraRRsets> = []) {
    const soa = state.soa!;
    const soaData = `${soa.mname} ${soa.rname} ${state.serial} ${soa.refresh} ${soa.retry} ${soa.expire} ${soa.minimum}`;
    const soaSet: RRset = { type: "SOA", owner: zone, ttl: soa.ttl, data: [soaData] };
    this.node(zone).set("SOA", soaSet);
    this.soa = wire(soaSet)[0]!;
    this.negativeSoa = { ...this.soa, ttl: Math.min(soa.ttl, soa.minimum) };
    for (const set of [...state.rrsets.values(), ...extra]) {
      const key = set.name.toLowerCase();
      this.node(key).set(set.type, { type: set.type, owner: set.name, ttl: set.ttl, data: set.data });
      for (let p = parentName(key); p && p !== zone && p.endsWith(zone); p = parentName(p)) if (!this.nodes.has(p)) this.ents.add(p);
    }
    for (const n of this.nodes.keys()) this.ents.delete(n);
  }

  private node(name: string): Map<RecordType, RRset> {
    let n = this.nodes.get(name);
    if (!n) this.nodes.set(name, (n = new Map()));
    return n;
  }

  exists(name: string): boolean {
    return this.nodes.has(name) || this.ents.has(name);
  }

  contains(name: string): boolean {
    return name === this.zone || name.endsWith(`.${this.zone}`);
  }
}

function wire(set: RRset): WireRecord[] {
  if (!set.wire) set.wire = set.data.map((d) => record(set, d));
  return set.wire;
}

/** One record for the encoder; a DNAME's target stays a name (written whole, RFC 6672 2.5, but pointed at by the CNAME it makes). */
function record(set: RRset, d: string): WireRecord {
  if (set.type === "DNAME") return { name: set.owner, class: "IN", ttl: set.ttl, type: "DNAME", data: d === "." ? "." : d.replace(/\.$/, "") };
  return { name: set.owner, class: "IN" as const, ttl: set.ttl, ...(packetData(set.type, d) as { type: string; data: unknown }) };
}

function* transferOf(ix: ZoneIndex): Generator<WireRecord> {
  yield ix.soa;
  for (const types of ix.nodes.values()) {
    for (const set of types.values()) {
      if (set.type === "SOA") continue;
      if (set.wire) yield* set.wire;
      else for (const d of set.data) yield record(set, d);
    }
  }
  yield ix.soa;
}

/** Wildcard synthesis (RFC 4592): the wildcard's records with the name asked for as owner. */
function synth(qname: string, set: RRset): WireRecord[] {
  return wire(set).map((r) => (fixed(r), { ...r, name: qname }));
}

/** The name whose addresses go in the additional section for a record of `type` at `owner`, if any. */
function additionalTarget(type: RecordType, data: string, owner: string): string | undefined {
  if (type === "MX" || type === "SRV" || type === "NS") return targetOf(type, data);
  if (type === "SVCB" || type === "HTTPS") {
    // RFC 9460 2.5: the TargetName "." is the owner itself in ServiceMode.
    const target = data.split(" ")[1];
    return target === "." ? (data.startsWith("0 ") ? undefined : owner) : target;
  }
  return undefined;
}

/** The RRset an ANY question is answered with (RFC 8482 4.1: one RRset; knot takes the lowest type code). */
function minimalAny(node: Map<RecordType, RRset>): RRset | undefined {
  let best: RRset | undefined;
  for (const set of node.values()) if (!best || typeCode(set.type) < typeCode(best.type)) best = set;
  return best;
}

/**
 * Answers questions from the realm's zones (RFC 1034 4.3.2): referrals at delegations with glue, CNAME
 * chains inside the zone (the RCODE and the SOA follow the chain's end, RFC 6604; a chain into a delegation
 * ends in its referral), wildcards, NXDOMAIN vs NODATA with the SOA in the authority section, minimal ANY
 * (RFC 8482). Owners are answered as the zone writes them. Zones are indexed lazily after a change.
 */
export class Authority {
  private indexes = new Map<string, ZoneIndex>();

  constructor(
    private readonly zones: () => Map<string, ZoneState>,
    private readonly extra?: ExtraRRsets,
  ) {}

  /** Drops the index of a zone (or all): the next question rebuilds it from the projection. */
  invalidate(zone?: string): void {
    if (zone) this.indexes.delete(zone);
    else this.indexes.clear();
  }

  /** The index of a zone (built on first need after a change). */
  index(zone: string): ZoneIndex | undefined {
    let ix = this.indexes.get(zone);
    if (!ix) {
      const st = this.zones().get(zone);
      if (!st || !st.exists || !st.soa) return undefined;
      ix = new ZoneIndex(zone, st, this.extra?.(zone));
      this.indexes.set(zone, ix);
    }
    return ix;
  }

  /** The closest zone of the realm enclosing `qname` (absolute, lower case). */
  findZone(qname: string): ZoneIndex | undefined {
    const zones = this.zones();
    for (let n: string | null = qname; n; n = parentName(n)) {
      if (zones.has(n)) {
        const ix = this.index(n);
        if (ix) return ix;
      }
    }
    return undefined;
  }

  isAuthoritative(qname: string): boolean {
    return this.findZone(qname) !== undefined;
  }

  /** `qname` absolute and lower case. */
  answer(qname: string, qtype: number): AnswerPlan {
    const ix = this.findZone(qname);
    if (!ix) return { rcode: Rcode.REFUSED, aa: false, answers: [], authorities: [], additionals: [], zone: null, ede: 20 };
    const plan: AnswerPlan = { rcode: Rcode.NOERROR, aa: true, answers: [], authorities: [], additionals: [], zone: ix.zone };
    const added = new Set<string>();
    const seen = new Set<string>();
    let name = qname;
    for (let depth = 0; depth < MAX_CHAIN; depth++) {
      const next = this.step(ix, name, qtype, plan, depth, added);
      seen.add(name);
      // The chain leaves the zone (the client follows it) or comes back to a name already answered (a loop).
      if (next === null || !ix.contains(next) || seen.has(next)) break;
      name = next;
    }
    return plan;
  }

  /**
   * What stops a lookup of `name` on its way down from the apex (RFC 1034 4.3.2 step 3b, RFC 6672 3.2): the
   * highest delegation at or above it (below the apex), or a DNAME strictly above it; null when nothing does.
   */
  private barrier(ix: ZoneIndex, name: string): { cut: string } | { dname: RRset } | null {
    const chain: string[] = [];
    for (let n: string | null = name; n && ix.contains(n); n = parentName(n)) {
      chain.push(n);
      if (n === ix.zone) break;
    }
    for (let i = chain.length - 1; i >= 0; i--) {
      const n = chain[i]!;
      const node = ix.nodes.get(n);
      if (!node) continue;
      if (n !== ix.zone && node.has("NS")) return { cut: n };
      const d = i > 0 ? node.get("DNAME") : undefined;
      if (d) return { dname: d };
    }
    return null;
  }

  /**
   * DNAME substitution (RFC 6672 3.2): the DNAME, then a CNAME from `name` to `name` with the DNAME's owner
   * replaced by its target (the DNAME's TTL); the target is followed like a CNAME's. YXDOMAIN when the new
   * name would be longer than 255 octets.
   */
  private substitute(dname: RRset, name: string, qtype: number, plan: AnswerPlan): string | null {
    plan.answers.push(...wire(dname));
    const owner = dname.owner.toLowerCase();
    const target = dname.data[0]!.toLowerCase();
    const prefix = name.slice(0, name.length - owner.length);
    const next = target === "." ? prefix : prefix + target;
    if (wireName(next, false).length > 255) {
      plan.rcode = Rcode.YXDOMAIN;
      return null;
    }
    plan.answers.push({ name, type: "CNAME", class: "IN", ttl: dname.ttl, data: next === "." ? "." : next.slice(0, -1) });
    return qtype === TYPE_CODES.CNAME ? null : next;
  }

  /** Answers `name` (one link of a CNAME chain) into `plan`; returns the CNAME's target to follow, or null. */
  private step(ix: ZoneIndex, name: string, qtype: number, plan: AnswerPlan, depth: number, added: Set<string>): string | null {
    const stop = this.barrier(ix, name);
    if (stop && "dname" in stop) return this.substitute(stop.dname, name, qtype, plan);
    const cut = stop?.cut;
    // DS at a cut belongs to the parent side (RFC 4035 3.1.4.1): answered here, not referred.
    if (cut && !(qtype === DS && cut === name)) {
      if (depth === 0) plan.aa = false;
      plan.glueRequired = true;
      const ns = ix.nodes.get(cut)!.get("NS")!;
      plan.authorities.push(...wire(ns));
      for (const d of ns.data) this.addAddresses(ix, targetOf("NS", d)!, plan, added);
      return null;
    }
    const found = this.lookup(ix, name);
    if (found === "nodata") return this.nodata(ix, plan);
    if (found === null) {
      plan.rcode = Rcode.NXDOMAIN;
      plan.authorities.push(ix.negativeSoa);
      return null;
    }
    const { node, wildcard } = found;
    const emit = (set: RRset) => (wildcard ? synth(name, set) : wire(set));
    const cname = node.get("CNAME");
    if (cname && qtype !== TYPE_CODES.CNAME && qtype !== ANY && qtype !== RRSIG && qtype !== NSEC) {
      plan.answers.push(...emit(cname));
      return cname.data[0]!.toLowerCase();
    }
    const type = TYPE_BY_CODE.get(qtype);
    const set = qtype === ANY ? minimalAny(node) : type ? node.get(type) : undefined;
    if (!set) return this.nodata(ix, plan);
    plan.answers.push(...emit(set));
    for (const d of set.data) {
      const target = additionalTarget(set.type, d, name);
      if (target) this.addAddresses(ix, target, plan, added);
    }
    return null;
  }

  /**
   * The node answering `name` below any cut: the name's own, or the wildcard of its closest encloser
   * (RFC 4592); "nodata" for an empty non-terminal, null when the name does not exist.
   */
  private lookup(ix: ZoneIndex, name: string): { node: Map<RecordType, RRset>; wildcard: boolean } | "nodata" | null {
    const own = ix.nodes.get(name);
    if (own) return { node: own, wildcard: false };
    if (ix.ents.has(name)) return "nodata";
    let encloser: string | null = parentName(name);
    while (encloser && !ix.exists(encloser) && encloser !== ix.zone) encloser = parentName(encloser);
    const star = ix.nodes.get(encloser === "." ? "*." : `*.${encloser}`);
    return star ? { node: star, wildcard: true } : null;
  }

  private nodata(ix: ZoneIndex, plan: AnswerPlan): null {
    plan.authorities.push(ix.negativeSoa);
    return null;
  }

  /**
   * Additional-section processing (RFC 1035 3.3.2, 4.3.2 step 6): the A and AAAA records of an in-zone
   * target, as knot does it: glue below a cut included, a wildcard's addresses synthesized for the target,
   * each target once.
   */
  private addAddresses(ix: ZoneIndex, target: string, plan: AnswerPlan, added: Set<string>): void {
    const key = target.toLowerCase();
    if (!ix.contains(key) || added.has(key)) return;
    added.add(key);
    // At or below a cut only the name's own records count (glue, or occluded data as knot gives it); above, a wildcard may answer.
    const stop = this.barrier(ix, key);
    const found = stop ? ("cut" in stop ? { node: ix.nodes.get(key), wildcard: false } : null) : this.lookup(ix, key);
    if (!found || found === "nodata" || !found.node) return;
    for (const t of ["A", "AAAA"] as const) {
      const set = found.node.get(t);
      if (set) plan.additionals.push(...(found.wildcard ? synth(key, set) : wire(set)));
    }
  }

  /**
   * Every record of a zone for AXFR, SOA first and last, made one at a time as the transfer goes. It reads
   * the zone's index as it is now: the index never changes (a change of the zone makes a new one, and RRset
   * data are replaced, not changed), so a transfer is one version of the zone even while imports commit.
   * Records the index has not encoded yet are encoded without being kept: a transfer does not leave a
   * second copy of a big zone behind.
   */
  transfer(zone: string): Iterable<WireRecord> | null {
    const ix = this.index(zone);
    return ix ? transferOf(ix) : null;
  }

  /** The zone's state as the realm holds it (undefined when it does not exist). */
  zoneState(zone: string): ZoneState | undefined {
    return this.zones().get(zone);
  }

  /** The records of an indexed RRset, for the encoder. */
  records(set: RRset): WireRecord[] {
    return wire(set);
  }

  soaOf(zone: string): WireRecord | null {
    return this.index(zone)?.soa ?? null;
  }
}
