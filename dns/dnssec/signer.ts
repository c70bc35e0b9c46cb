import type { AnswerPlan, Authority, RRset, WireRecord, ZoneIndex } from "../server/authority.js";
import { Rcode } from "../server/authority.js";
import { parentName } from "../domain/names.js";
import { typeCode, type RecordType } from "../domain/rdata.js";
import { covering, matching, nsec3Hash, nsec3Record, NSEC3_TYPE } from "./nsec3.js";
import { rdataOf, RRSIG_TYPE, rrsigsOf, type SigningKey, type Validity } from "./rrsig.js";

const DNSKEY = 48;
const CDS = 59;
const CDNSKEY = 60;
const NS = 2;
const DS = 43;
/** Types a KSK signs: the DNSKEY RRset, and CDS/CDNSKEY (RFC 7344 4.1: a key in both DNSKEY and the parent's DS). */
const KSK_SIGNED = new Set([DNSKEY, CDS, CDNSKEY]);

/** What one zone signs with now: from its `dnssec` aggregate and the sealed private keys. */
export interface ZoneKeys {
  zsks: SigningKey[];
  ksks: SigningKey[];
  /** A version of the keys (changes when a key changes state): cached signatures are of one version. */
  version: string;
}

export interface SignerOptions {
  /** Signatures start this long before signing (clock skew), seconds. Default 3600. */
  inceptionOffset?: number;
  /** Signatures end this long after signing, seconds. Default 14 days. */
  validity?: number;
  /** A cached signature is made again when it has less than this left, seconds. Default 7 days. */
  refresh?: number;
  /** Signatures kept per zone (cleared past it). Default 100,000. */
  cacheEntries?: number;
  now?: () => number;
}

interface ZoneCache {
  version: string;
  sigs: Map<string, { rrsigs: WireRecord[]; expiration: number }>;
}

/**
 * Online signing of a zone's answers (RFC 4035 3.1) and transfers. Each answer's RRsets get RRSIGs made at
 * answer time over the RRset's canonical form (dnssec/rrsig.ts) and kept per (owner, type) for the zone's
 * version, so a busy name is signed once per change, not per query; the DNSKEY, CDS and CDNSKEY RRsets are
 * signed by the KSKs, the rest by the active ZSK. Denial of existence is NSEC3 (RFC 5155, no salt, no extra
 * iterations, RFC 9276) made per answer with minimal spans ("white lies", RFC 7129 appendix B): an NSEC3
 * matching a name carries that name's types; one covering a name spans from its hash minus one to its hash
 * plus one, so it denies that name alone and an answer gives away no other name of the zone. Names a
 * wildcard answers are answered and signed as if they existed (the RRSIG's owner is the name asked for).
 */
export class OnlineSigner {
  private readonly caches = new Map<string, ZoneCache>();

  constructor(
    private readonly authority: Authority,
    private readonly keysOf: (zone: string) => ZoneKeys | undefined,
    private readonly opts: SignerOptions = {},
  ) {}

  /** True when the zone has keys to sign with. */
  signs(zone: string): boolean {
    return this.keysOf(zone) !== undefined;
  }

  /** Drops a zone's cached signatures (the zone or its keys changed). */
  invalidate(zone?: string): void {
    if (zone) this.caches.delete(zone);
    else this.caches.clear();
  }

  private now(): number {
    return Math.floor((this.opts.now?.() ?? Date.now()) / 1000);
  }

  private cache(zone: string, keys: ZoneKeys): ZoneCache {
    let c = this.caches.get(zone);
    if (!c || c.version !== keys.version) {
      c = { version: keys.version, sigs: new Map() };
      this.caches.set(zone, c);
    }
    return c;
  }

  /** The RRSIGs of one RRset (records of one owner and type), from the cache or made now. */
  private rrsigs(zone: string, keys: ZoneKeys, records: WireRecord[], originalTtl?: number, keep = true): WireRecord[] {
    const first = records[0]!;
    const { type, rdata } = rdataOf(first);
    const c = this.cache(zone, keys);
    // An RRset is one per (owner, type) in a zone version; an NSEC3 is not (a minimal one of an answer and
    // the chain's one in a transfer may share an owner): it is kept by its data too.
    const key = `${first.name.toLowerCase()}/${type}/${first.ttl}${type === NSEC3_TYPE ? `/${rdata.toString("hex")}` : ""}`;
    const now = this.now();
    const hit = keep ? c.sigs.get(key) : undefined;
    if (hit && hit.expiration - now > (this.opts.refresh ?? 7 * 86_400)) return hit.rrsigs;
    const signers = KSK_SIGNED.has(type) ? keys.ksks : keys.zsks;
    const v: Validity = { inception: now - (this.opts.inceptionOffset ?? 3600), expiration: now + (this.opts.validity ?? 14 * 86_400) };
    const rrsigs = rrsigsOf(records, zone, signers, v, originalTtl);
    if (!keep) return rrsigs;
    if (c.sigs.size >= (this.opts.cacheEntries ?? 100_000)) c.sigs.clear();
    c.sigs.set(key, { rrsigs, expiration: v.expiration });
    return rrsigs;
  }

  /**
   * The signed form of an answer for a query with DO (RFC 4035 3.1.1-3.1.3): RRSIGs after each RRset of the
   * answer and authority sections, DS or its denial at a referral, NSEC3 proofs for NXDOMAIN and NODATA.
   * A plan of a zone without keys comes back as it is.
   */
  sign(plan: AnswerPlan, qname: string, qtype = 0): AnswerPlan {
    const zone = plan.zone;
    const keys = zone ? this.keysOf(zone) : undefined;
    const ix = zone ? this.authority.index(zone) : undefined;
    if (!zone || !keys || !ix || plan.rcode === Rcode.REFUSED) return plan;
    if (qtype === RRSIG_TYPE) {
      const sigs = this.signaturesAt(zone, keys, ix, qname);
      if (sigs) return { ...plan, rcode: Rcode.NOERROR, answers: sigs, authorities: [], additionals: [] };
    }
    const out: AnswerPlan = { ...plan, answers: [], authorities: [], additionals: plan.additionals };
    let prev: WireRecord[] | undefined;
    for (const group of groups(plan.answers)) {
      out.answers.push(...group);
      // The CNAME a DNAME makes is not signed (RFC 6672 5.3.1): the DNAME's signature vouches for it.
      const synthesized = group[0]!.type === "CNAME" && prev?.[0]!.type === "DNAME";
      if (!synthesized && ix.contains(group[0]!.name.toLowerCase())) out.answers.push(...this.rrsigs(zone, keys, group));
      prev = group;
    }
    const negTtl = ix.negativeSoa.ttl;
    const proofs: WireRecord[] = [];
    let referral = false;
    for (const group of groups(plan.authorities)) {
      out.authorities.push(...group);
      const owner = group[0]!.name.toLowerCase();
      const type = group[0]!.type;
      if (type === "SOA") out.authorities.push(...this.rrsigs(zone, keys, group, ix.soa.ttl));
      else if (type === "NS" && owner !== zone) {
        // A referral (RFC 4035 3.1.4): the DS RRset and its RRSIG, or an NSEC3 matching the cut without DS.
        referral = true;
        const ds = ix.nodes.get(owner)?.get("DS");
        if (ds) {
          const dsRecords = this.authority.records(ds);
          out.authorities.push(...dsRecords, ...this.rrsigs(zone, keys, dsRecords));
        } else proofs.push(matching(owner, typesAt(ix, owner), zone, negTtl));
      }
    }
    if (!referral) {
      const name = chainEnd(qname, plan.answers);
      const negative = plan.authorities.some((r) => r.type === "SOA");
      if (ix.contains(name) && plan.rcode === Rcode.NXDOMAIN) proofs.push(...nxdomainProof(ix, name, negTtl));
      else if (ix.contains(name) && negative && plan.rcode === Rcode.NOERROR) proofs.push(nodataProof(ix, name, negTtl));
    }
    const seen = new Set<string>();
    for (const p of proofs) {
      if (seen.has(p.name)) continue;
      seen.add(p.name);
      out.authorities.push(p, ...this.rrsigs(zone, keys, [p]));
    }
    return out;
  }

  /**
   * The answer to a question for type RRSIG at a name of the zone (RFC 4035 3.1.5 leaves it open; BIND and
   * knot answer the name's signatures): every RRSIG the name's RRsets carry. Undefined where the name holds
   * no signed RRset (then the NODATA and its proof stand).
   */
  private signaturesAt(zone: string, keys: ZoneKeys, ix: ZoneIndex, name: string): WireRecord[] | undefined {
    const node = ix.nodes.get(name);
    if (!node || below(name, cutsOf(ix), zone)) return undefined;
    const cut = name !== zone && node.has("NS");
    const out: WireRecord[] = [];
    for (const set of node.values()) {
      if (cut && set.type !== "DS") continue;
      const records = this.authority.records(set);
      out.push(...this.rrsigs(zone, keys, records, set.type === "SOA" ? ix.soa.ttl : undefined));
    }
    return out.length ? out : undefined;
  }

  /**
   * A signed zone transfer: the zone's records (the apex DNSSEC records among them) each authoritative RRset
   * followed by its RRSIGs (not the NS of a cut, not glue: RFC 4035 2.2), then the full NSEC3 chain over
   * every authoritative name and empty non-terminal (RFC 5155 7.1), each signed, then the closing SOA.
   * The online answers' minimal NSEC3s never appear here: a secondary gets a real chain of the same hashes.
   */
  *transfer(zone: string, records: Iterable<WireRecord>): Generator<WireRecord> {
    const keys = this.keysOf(zone);
    const ix = this.authority.index(zone);
    if (!keys || !ix) {
      yield* records;
      return;
    }
    const cuts = cutsOf(ix);
    let soaSeen = false;
    let pending: WireRecord[] = [];
    const flush = function* (this: OnlineSigner): Generator<WireRecord> {
      if (pending.length === 0) return;
      const group = pending;
      pending = [];
      yield* group;
      const owner = group[0]!.name.toLowerCase();
      const code = rdataOf(group[0]!).type;
      const cut = cuts.has(owner);
      if (below(owner, cuts, zone) || (cut && code !== DS)) return;
      yield* this.rrsigs(zone, keys, group);
    }.bind(this);
    for (const r of records) {
      if (r.type === "SOA" && r.name.toLowerCase() === zone) {
        yield* flush();
        if (soaSeen) {
          yield* this.chain(zone, keys, ix, cuts);
          yield r;
          return;
        }
        soaSeen = true;
        yield r;
        yield* this.rrsigs(zone, keys, [r]);
        continue;
      }
      const last = pending[pending.length - 1];
      if (last && (last.name.toLowerCase() !== r.name.toLowerCase() || last.type !== r.type)) yield* flush();
      pending.push(r);
    }
    yield* flush();
  }

  private *chain(zone: string, keys: ZoneKeys, ix: ZoneIndex, cuts: Set<string>): Generator<WireRecord> {
    const names = [...ix.nodes.keys(), ...ix.ents].filter((n) => !below(n, cuts, zone));
    const hashed = names.map((n) => ({ h: nsec3Hash(n), types: typesAt(ix, n) })).sort((a, b) => Buffer.compare(a.h, b.h));
    const ttl = ix.negativeSoa.ttl;
    for (const [i, e] of hashed.entries()) {
      const rec = nsec3Record(e.h, hashed[(i + 1) % hashed.length]!.h, e.types, zone, ttl);
      yield rec;
      // The chain is made for transfers only: its signatures are not kept.
      yield* this.rrsigs(zone, keys, [rec], undefined, false);
    }
  }
}

/** Consecutive records of one owner and type. */
function* groups(records: WireRecord[]): Generator<WireRecord[]> {
  let cur: WireRecord[] = [];
  for (const r of records) {
    const last = cur[cur.length - 1];
    if (last && (last.name.toLowerCase() !== r.name.toLowerCase() || last.type !== r.type)) {
      yield cur;
      cur = [];
    }
    cur.push(r);
  }
  if (cur.length) yield cur;
}

const abs = (n: string) => (n.endsWith(".") ? n : `${n}.`).toLowerCase();

/** The name an answer ends at: the question, then each CNAME's target in turn. */
function chainEnd(qname: string, answers: WireRecord[]): string {
  let name = qname;
  for (const r of answers) if (r.type === "CNAME" && abs(r.name) === name) name = abs(r.data as string);
  return name;
}

/** The delegation points of a zone (names below the apex with NS). */
function cutsOf(ix: ZoneIndex): Set<string> {
  const out = new Set<string>();
  for (const [name, node] of ix.nodes) if (name !== ix.zone && node.has("NS")) out.add(name);
  return out;
}

/** True when `name` is strictly below one of the cuts (glue or occluded data: not authoritative). */
function below(name: string, cuts: Set<string>, zone: string): boolean {
  if (cuts.size === 0) return false;
  for (let p = parentName(name); p && p !== zone && p.length > zone.length; p = parentName(p)) if (cuts.has(p)) return true;
  return false;
}

const codes = (node: Map<RecordType, RRset>) => [...node.keys()].map(typeCode);

/**
 * The types an NSEC3 of `name` lists (RFC 5155 3.2.1): a delegation's NS (and DS with its RRSIG), an empty
 * non-terminal nothing, any other name its types and RRSIG; a name only a wildcard answers, the wildcard's.
 */
function typesAt(ix: ZoneIndex, name: string): number[] {
  const node = ix.nodes.get(name) ?? wildcardOf(ix, name);
  if (!node) return [];
  if (name !== ix.zone && node.has("NS")) return node.has("DS") ? [NS, DS, RRSIG_TYPE] : [NS];
  return [...codes(node), RRSIG_TYPE];
}

/** The closest encloser of a name that does not exist (RFC 5155 7.2.1): its longest ancestor that does. */
function closestEncloser(ix: ZoneIndex, name: string): string {
  let ce = parentName(name);
  while (ce && ce !== ix.zone && !ix.exists(ce)) ce = parentName(ce);
  return ce ?? ix.zone;
}

function wildcardOf(ix: ZoneIndex, name: string): Map<RecordType, RRset> | undefined {
  if (ix.exists(name)) return undefined;
  return ix.nodes.get(`*.${closestEncloser(ix, name)}`);
}

/** NODATA (RFC 5155 7.2.3): the NSEC3 matching the name, whose types leave out the one asked for. */
function nodataProof(ix: ZoneIndex, name: string, ttl: number): WireRecord {
  return matching(name, typesAt(ix, name), ix.zone, ttl);
}

/**
 * NXDOMAIN (RFC 5155 7.2.2): the closest encloser proof (an NSEC3 matching the closest encloser, one covering
 * the next closer name) and one covering the wildcard at the closest encloser.
 */
function nxdomainProof(ix: ZoneIndex, name: string, ttl: number): WireRecord[] {
  const ce = closestEncloser(ix, name);
  const labels = name.slice(0, name.length - ce.length).split(".").filter(Boolean);
  const nextCloser = `${labels[labels.length - 1]}.${ce}`;
  return [matching(ce, typesAt(ix, ce), ix.zone, ttl), covering(nextCloser, ix.zone, ttl), covering(`*.${ce}`, ix.zone, ttl)];
}

