import { packetData, targetOf, TYPE_BY_CODE, TYPE_CODES, type RecordType } from "../domain/rdata.js";
import { parentName } from "../domain/names.js";
import type { ZoneState } from "../domain/zone.js";

/** A resource record ready for dns-packet's encoder. */
export interface WireRecord {
  name: string;
  type: string;
  class: "IN";
  ttl: number;
  data: unknown;
}

export const Rcode = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

/** What the authority says about one question, before encoding. */
export interface AnswerPlan {
  rcode: number;
  aa: boolean;
  answers: WireRecord[];
  authorities: WireRecord[];
  additionals: WireRecord[];
  /** The zone the answer came from (null when no zone of the realm holds the name). */
  zone: string | null;
}

interface RRset {
  type: RecordType;
  ttl: number;
  data: string[];
  wire?: WireRecord[];
}

/** One zone, indexed for lookups: owner -> type -> RRset, plus the names that exist only as ancestors. */
class ZoneIndex {
  readonly nodes = new Map<string, Map<RecordType, RRset>>();
  /** Empty non-terminals: names with no records but with descendants that have some. */
  readonly ents = new Set<string>();
  readonly soa: WireRecord;
  readonly negativeSoa: WireRecord;

  constructor(readonly zone: string, state: ZoneState) {
    const soa = state.soa!;
    const soaData = `${soa.mname} ${soa.rname} ${state.serial} ${soa.refresh} ${soa.retry} ${soa.expire} ${soa.minimum}`;
    const soaSet: RRset = { type: "SOA", ttl: soa.ttl, data: [soaData] };
    this.node(zone).set("SOA", soaSet);
    this.soa = wire(zone, soaSet)[0]!;
    this.negativeSoa = { ...this.soa, ttl: Math.min(soa.ttl, soa.minimum) };
    for (const set of state.rrsets.values()) {
      this.node(set.name).set(set.type, { type: set.type, ttl: set.ttl, data: set.data });
      for (let p = parentName(set.name); p && p !== zone && p.endsWith(zone); p = parentName(p)) if (!this.nodes.has(p)) this.ents.add(p);
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
}

function wire(owner: string, set: RRset): WireRecord[] {
  if (!set.wire) set.wire = set.data.map((d) => ({ name: owner, class: "IN" as const, ttl: set.ttl, ...(packetData(set.type, d) as { type: string; data: unknown }) }));
  return set.wire;
}

function* transferOf(ix: ZoneIndex): Generator<WireRecord> {
  yield ix.soa;
  for (const [owner, types] of ix.nodes) {
    for (const set of types.values()) {
      if (set.type === "SOA") continue;
      if (set.wire) yield* set.wire;
      else for (const d of set.data) yield { name: owner, class: "IN" as const, ttl: set.ttl, ...(packetData(set.type, d) as { type: string; data: unknown }) };
    }
  }
  yield ix.soa;
}

function synth(star: string, qname: string, set: RRset): WireRecord[] {
  return wire(star, set).map((r) => ({ ...r, name: qname }));
}

const trimDot = (n: string) => (n === "." ? "." : n.endsWith(".") ? n.slice(0, -1) : n);

/**
 * Answers questions from the realm's zones (RFC 1034 4.3.2): referrals at delegations with glue, CNAME
 * chasing inside the zone, wildcards, NXDOMAIN vs NODATA with the SOA in the authority section.
 * Zones are indexed lazily after a change.
 */
export class Authority {
  private indexes = new Map<string, ZoneIndex>();

  constructor(private readonly zones: () => Map<string, ZoneState>) {}

  /** Drops the index of a zone (or all): the next question rebuilds it from the projection. */
  invalidate(zone?: string): void {
    if (zone) this.indexes.delete(zone);
    else this.indexes.clear();
  }

  private index(zone: string): ZoneIndex | undefined {
    let ix = this.indexes.get(zone);
    if (!ix) {
      const st = this.zones().get(zone);
      if (!st || !st.exists || !st.soa) return undefined;
      ix = new ZoneIndex(zone, st);
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

  answer(qname: string, qtype: number): AnswerPlan {
    const ix = this.findZone(qname);
    if (!ix) return { rcode: Rcode.REFUSED, aa: false, answers: [], authorities: [], additionals: [], zone: null };
    const plan: AnswerPlan = { rcode: Rcode.NOERROR, aa: true, answers: [], authorities: [], additionals: [], zone: ix.zone };
    this.resolveIn(ix, qname, qtype, plan, 0);
    return plan;
  }

  private delegationAbove(ix: ZoneIndex, qname: string): string | null {
    // Walk from just below the apex down to qname: the highest cut wins.
    const chain: string[] = [];
    for (let n: string | null = qname; n && n !== ix.zone; n = parentName(n)) chain.push(n);
    for (let i = chain.length - 1; i >= 0; i--) if (ix.nodes.get(chain[i]!)?.has("NS")) return chain[i]!;
    return null;
  }

  private resolveIn(ix: ZoneIndex, qname: string, qtype: number, plan: AnswerPlan, depth: number): void {
    const cut = this.delegationAbove(ix, qname);
    if (cut) {
      if (depth > 0) return; // a CNAME into a delegated name: the client follows it
      plan.aa = false;
      const ns = ix.nodes.get(cut)!.get("NS")!;
      plan.authorities.push(...wire(cut, ns));
      for (const target of ns.data) this.addAddresses(ix, target, plan, true);
      return;
    }
    let node = ix.nodes.get(qname);
    let owner = qname;
    let wildcard = false;
    if (!node) {
      if (ix.ents.has(qname)) return this.nodata(ix, plan, depth);
      let encloser: string | null = parentName(qname);
      while (encloser && !ix.exists(encloser) && encloser !== ix.zone) encloser = parentName(encloser);
      const star = encloser === "." ? "*." : `*.${encloser}`;
      node = ix.nodes.get(star);
      if (!node) {
        if (depth === 0) {
          plan.rcode = Rcode.NXDOMAIN;
          plan.authorities.push(ix.negativeSoa);
        }
        return;
      }
      owner = star;
      wildcard = true;
    }
    const emit = (set: RRset) => (wildcard ? synth(owner, qname, set) : wire(owner, set));
    const cname = node.get("CNAME");
    if (cname && qtype !== TYPE_CODES.CNAME) {
      plan.answers.push(...emit(cname));
      const target = cname.data[0]!;
      if (depth < 8 && (target === ix.zone || target.endsWith(`.${ix.zone}`)) && !plan.answers.some((a, i) => i < plan.answers.length - 1 && trimDot(a.name) === trimDot(target))) {
        this.resolveIn(ix, target, qtype, plan, depth + 1);
      }
      return;
    }
    if (qtype === 255) {
      for (const set of node.values()) plan.answers.push(...emit(set));
      return;
    }
    const type = TYPE_BY_CODE.get(qtype);
    const set = type ? node.get(type) : undefined;
    if (!set) return this.nodata(ix, plan, depth);
    plan.answers.push(...emit(set));
    if (type === "MX" || type === "SRV" || type === "NS") for (const d of set.data) this.addAddresses(ix, targetOf(type, d)!, plan, false);
  }

  private nodata(ix: ZoneIndex, plan: AnswerPlan, depth: number): void {
    if (depth === 0 || plan.authorities.length === 0) plan.authorities.push(ix.negativeSoa);
  }

  private addAddresses(ix: ZoneIndex, target: string, plan: AnswerPlan, glue: boolean): void {
    if (!(target === ix.zone || target.endsWith(`.${ix.zone}`))) return;
    if (!glue && this.delegationAbove(ix, target)) return;
    const node = ix.nodes.get(target);
    if (!node) return;
    for (const t of ["A", "AAAA"] as const) {
      const set = node.get(t);
      if (set) plan.additionals.push(...wire(target, set));
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

  soaOf(zone: string): WireRecord | null {
    return this.index(zone)?.soa ?? null;
  }
}
