import { isIP } from "node:net";
import type { Decider, EventEnvelope, NewEvent } from "../../services/kernel/index.js";
import { alreadyExists, invalid, notFound } from "../../services/kernel/errors.js";
import { absoluteName, inZone, lowerName, parentName, readName, sameName } from "./names.js";
import { canonicalRdata, isGenericType, RECORD_TYPES, recordType, storedForm, tokenize, type GenericType, type NameReader, type RecordType } from "./rdata.js";
import { applyImportEvent, decideImport, isImportEvent, type StagedImport } from "./import.js";

/** One resource record as the realm stores it: absolute owner, type, TTL and canonical data text. */
export interface DnsRecord {
  name: string;
  type: RecordType;
  ttl: number;
  data: string;
}

export interface SoaFields {
  mname: string;
  rname: string;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
  ttl: number;
}

export interface ZoneState {
  zone: string;
  exists: boolean;
  serial: number;
  soa: SoaFields | null;
  /**
   * Key `${name} ${type}` -> the RRset (one TTL, canonical data in insertion order). An RRset's `data` array
   * is never changed once stored (a change stores a new one), so an index or a transfer that holds it keeps
   * a consistent snapshot.
   */
  rrsets: Map<string, { name: string; type: RecordType; ttl: number; data: string[] }>;
  /**
   * An import whose chunks are being applied (import.ts): kept aside, read by nobody but the commit, which
   * swaps it in. Set between a ZoneImportStarted and its ZoneImportCommitted; any other event of the zone
   * drops it (an import that was never committed: its command died between chunks).
   */
  staged?: StagedImport | undefined;
  /**
   * Where the zone's secondaries listen (IP addresses, not names: the server never resolves to notify):
   * told by NOTIFY on every change (server/notify.ts). Set by `zone.secondaries`; none after a delete.
   */
  secondaries?: Secondary[] | undefined;
}

/** A secondary of a zone: the address and port it takes NOTIFY on. */
export interface Secondary {
  host: string;
  port: number;
}

/** TTL bounds the realm accepts: 0 (RFC 1035 3.2.1: use once, do not cache) .. 7 days (RFC 2181 allows more; the realm keeps caches honest). */
export const TTL_MIN = 0;
export const TTL_MAX = 604_800;

export const DnsEvents = {
  ZoneCreated: "ZoneCreated",
  ZoneSoaChanged: "ZoneSoaChanged",
  ZoneDeleted: "ZoneDeleted",
  RecordAdded: "RecordAdded",
  RecordRemoved: "RecordRemoved",
  RecordSetChanged: "RecordSetChanged",
  /** Legacy: one event with every record (streams written before chunked imports still hold it). */
  ZoneImported: "ZoneImported",
  /** A chunked import (import.ts): its start, its records in chunks, its commit. */
  ZoneImportStarted: "ZoneImportStarted",
  ZoneImportChunk: "ZoneImportChunk",
  ZoneImportCommitted: "ZoneImportCommitted",
  /** The zone's secondaries (NOTIFY targets) replaced; no serial step: the zone's data did not change. */
  ZoneSecondariesSet: "ZoneSecondariesSet",
} as const;

/** Records of a zone including its SOA, counted without listing them. */
export function recordCount(s: ZoneState): number {
  let n = s.soa ? 1 : 0;
  for (const set of s.rrsets.values()) n += set.data.length;
  return n;
}

export interface ZoneCreatedData {
  zone: string;
  serial: number;
  soa: SoaFields;
  ns: string[];
}
export interface RecordChangeData extends DnsRecord {
  serial: number;
}
export interface RecordSetChangedData {
  name: string;
  type: RecordType;
  ttl: number;
  data: string[];
  serial: number;
}
export interface ZoneSecondariesSetData {
  secondaries: Secondary[];
}
export interface ZoneImportedData {
  serial: number;
  soa: SoaFields;
  records: DnsRecord[];
}
export type { ZoneImportChunkData, ZoneImportCommittedData, ZoneImportStartedData } from "./import.js";

export type ZoneCommand =
  | { type: "create"; soa: Partial<SoaFields> & { mname: string; rname: string }; ns: string[]; serial?: number }
  | { type: "updateSoa"; soa: Partial<SoaFields> }
  | { type: "delete" }
  | { type: "add"; record: RecordInput }
  | { type: "remove"; name: string; rtype: string; data?: string }
  | { type: "set"; name: string; rtype: string; ttl?: number; data: string[] }
  | { type: "secondaries"; secondaries: string[] }
  | ImportCommand;

/**
 * Replace the zone's records with a master file's (parsed and checked line by line already). Decided into
 * ZoneImportStarted, ZoneImportChunk x N (each at most `chunkBytes` of records as JSON), ZoneImportCommitted.
 */
export interface ImportCommand {
  type: "import";
  /** Names the import's events (the command id: a retry of the command makes the same import). */
  importId: string;
  soa: SoaFields | null;
  serial?: number | undefined;
  records: DnsRecord[];
  /** SHA-256 (hex) of the master file, recorded with the import. */
  sha256?: string | undefined;
  /** Budget of one chunk's records as JSON (the stream's max_payload less the envelope). Default 256 KiB. */
  chunkBytes?: number | undefined;
}

/**
 * A record as a caller gives it: name and the names in its data read by names.ts `readName` (relative to
 * the zone, or absolute with a trailing dot or ending in the zone; ambiguous ones refused), data in
 * presentation form.
 */
export interface RecordInput {
  name: string;
  type: string;
  ttl?: number;
  data: string;
}

/** The key of an RRset in ZoneState.rrsets: the owner in lower case (the RRset's `name` keeps the zone's case) and the type. */
export const rrKey = (name: string, type: string) => `${lowerName(name)} ${type}`;

/** Names inside record data given through the CLI/API: read like owners (names.ts readName). */
export const apiNames = (zone: string): NameReader => (text, what) => readName(text, zone, what);

/**
 * The generic (RFC 3597) types an RRset map has or had (a superset: never shrinks), so a name's records are
 * found without listing the zone. Kept beside the state, keyed by its RRset map (a new map, at a create, an
 * import or a delete, starts afresh): made by one scan on first use, then added to as events add RRsets.
 */
const genericCache = new WeakMap<ZoneState["rrsets"], Set<GenericType>>();
function genericTypes(s: ZoneState): Set<GenericType> {
  let g = genericCache.get(s.rrsets);
  if (!g) {
    g = new Set<GenericType>();
    for (const set of s.rrsets.values()) if (isGenericType(set.type)) g.add(set.type);
    genericCache.set(s.rrsets, g);
  }
  return g;
}
const noteType = (s: ZoneState, type: RecordType) => {
  if (isGenericType(type)) genericCache.get(s.rrsets)?.add(type);
};

/** Every type the zone may hold at a name: the known ones, then its generic ones. */
const typesOf = (s: ZoneState): RecordType[] => {
  const g = genericTypes(s);
  return g.size === 0 ? [...RECORD_TYPES] : [...RECORD_TYPES, ...g];
};

/** Reads a type given through the CLI/API (`a`, `TYPE1`, `type65280`); VALIDATION when it is none. */
export function readType(text: string): RecordType {
  const t = recordType(text);
  if (t === null) throw invalid(`record type ${text} is not supported (a type the realm has no name for is given as TYPEnnn, its data as \\# <length> <hex>)`);
  return t;
}

export function assertTtl(ttl: number, where = "TTL"): number {
  if (!Number.isInteger(ttl) || ttl < TTL_MIN || ttl > TTL_MAX) throw invalid(`${where} ${ttl} is outside ${TTL_MIN}..${TTL_MAX} seconds`);
  return ttl;
}

/** Validates and canonicalizes one record input for `zone` (throws VALIDATION naming what is wrong). */
export function normalizeRecord(zone: string, r: RecordInput, defaultTtl: number): DnsRecord {
  const type = readType(r.type);
  const name = readName(r.name, zone);
  if (!inZone(name, zone)) throw invalid(`${name} is not in zone ${zone}`);
  if (name.includes("*") && !name.startsWith("*.")) throw invalid(`wildcard ${name} must have * as its first label only`);
  const ttl = assertTtl(r.ttl ?? defaultTtl);
  return { name, type, ttl, data: canonicalRdata(type, tokenize(r.data), zone, apiNames(zone)) };
}

function soaText(z: string, soa: SoaFields, serial: number): string {
  return `${soa.mname} ${soa.rname} ${serial} ${soa.refresh} ${soa.retry} ${soa.expire} ${soa.minimum}`;
}

/** The zone's records including the SOA, in a stable order (SOA, apex NS, then by name and type). */
export function zoneRecords(s: ZoneState): DnsRecord[] {
  const out: DnsRecord[] = [];
  if (s.soa) out.push({ name: s.zone, type: "SOA", ttl: s.soa.ttl, data: soaText(s.zone, s.soa, s.serial) });
  // Sorted by the lower-case owner (the map key's first part), so owners that differ in case only sort together.
  const keyed = [...s.rrsets.entries()].map(([k, set]) => ({ n: k.slice(0, k.lastIndexOf(" ")), set }));
  const zone = s.zone;
  keyed.sort((x, y) => {
    const a = x.set;
    const b = y.set;
    if (x.n === zone && y.n !== zone) return -1;
    if (y.n === zone && x.n !== zone) return 1;
    if (x.n !== y.n) return x.n < y.n ? -1 : 1;
    if (a.type === "NS" && b.type !== "NS") return -1;
    if (b.type === "NS" && a.type !== "NS") return 1;
    return a.type < b.type ? -1 : a.type > b.type ? 1 : 0;
  });
  for (const { set } of keyed) for (const d of set.data) out.push({ name: set.name, type: set.type, ttl: set.ttl, data: d });
  return out;
}

/** The records of one name, in `zoneRecords` order (SOA, NS, then by type), looked up without listing the zone. */
export function nameRecords(s: ZoneState, name: string): DnsRecord[] {
  const out: DnsRecord[] = [];
  if (s.soa && sameName(name, s.zone)) out.push({ name: s.zone, type: "SOA", ttl: s.soa.ttl, data: soaText(s.zone, s.soa, s.serial) });
  const types = typesOf(s).filter((t) => t !== "SOA").sort((a, b) => (a === "NS" ? -1 : b === "NS" ? 1 : a < b ? -1 : a > b ? 1 : 0));
  for (const t of types) {
    const set = s.rrsets.get(rrKey(name, t));
    if (set) for (const d of set.data) out.push({ name: set.name, type: t, ttl: set.ttl, data: d });
  }
  return out;
}

/**
 * Checks a whole set of records for the zone invariants: everything in zone, one TTL per RRset, CNAME
 * alone at its name and never at the apex, NS at the apex, no duplicates. Used by import and by every
 * single change (on the state it would produce).
 */
export function checkZoneInvariants(zone: string, rrsets: Iterable<{ name: string; type: RecordType; ttl: number; data: string[] }>): void {
  // Two passes over the RRsets, remembering only the names that hold a CNAME: a million-record import
  // checks in the memory of its CNAMEs, not of a set of types per name.
  const sets = [...rrsets].filter((set) => set.data.length > 0);
  const cnames = new Set<string>();
  const dnames = new Set<string>();
  const nonApexNs = new Set<string>();
  let apexNs = false;
  for (const set of sets) {
    if (!inZone(set.name, zone)) throw invalid(`${set.name} is not in zone ${zone}`);
    if (set.type === "SOA") throw invalid("the SOA record is the zone's own; change it with zone.soa");
    if (set.data.length > 1 && new Set(set.data).size !== set.data.length) throw invalid(`duplicate ${set.type} record at ${set.name}`);
    const atApex = sameName(set.name, zone);
    if ((set.type === "CNAME" || set.type === "DNAME") && set.data.length > 1) throw invalid(`${set.name} has more than one ${set.type}`);
    if (set.type === "CNAME" && atApex) throw invalid(`a CNAME cannot sit at the zone apex ${zone}`);
    if (set.type === "NS" && atApex) apexNs = true;
    if (set.type === "NS" && !atApex) nonApexNs.add(lowerName(set.name));
    if (set.type === "CNAME") cnames.add(lowerName(set.name));
    if (set.type === "DNAME") dnames.add(lowerName(set.name));
  }
  if (cnames.size > 0) {
    for (const set of sets) {
      if (set.type === "CNAME" || !cnames.has(lowerName(set.name))) continue;
      const others = sets.filter((x) => sameName(x.name, set.name) && x.type !== "CNAME").map((x) => x.type);
      throw invalid(`${set.name} has a CNAME and other data (${others.join(", ")}): a CNAME must be alone`);
    }
  }
  if (dnames.size > 0) {
    const z = lowerName(zone);
    for (const d of dnames) if (nonApexNs.has(d)) throw invalid(`${d} has a DNAME and NS records: only the apex may (RFC 6672 2.3)`);
    for (const set of sets) {
      for (let p = parentName(lowerName(set.name)); p && p !== z && p.length > z.length; p = parentName(p)) {
        if (dnames.has(p)) throw invalid(`${set.name} is below the DNAME at ${p}: a DNAME owner has no descendants (RFC 6672 2.3)`);
      }
    }
  }
  if (!apexNs) throw invalid(`zone ${zone} needs at least one NS record at its apex`);
}

type RRset = { name: string; type: RecordType; ttl: number; data: string[] };

/**
 * The zone invariants for one changed RRset, on the state it would produce: the same rules as
 * `checkZoneInvariants` but looking only at the changed name (the rest of the zone held them already), so a
 * change costs the same in a zone of ten records and of a million.
 */
function checkChange(s: ZoneState, set: RRset): void {
  const zone = s.zone;
  if (!inZone(set.name, zone)) throw invalid(`${set.name} is not in zone ${zone}`);
  if (set.type === "SOA") throw invalid("the SOA record is the zone's own; change it with zone.soa");
  const atApex = sameName(set.name, zone);
  if (set.data.length === 0) {
    if (set.type === "NS" && atApex) throw invalid(`zone ${zone} needs at least one NS record at its apex`);
    return;
  }
  if (new Set(set.data).size !== set.data.length) throw invalid(`duplicate ${set.type} record at ${set.name}`);
  if ((set.type === "CNAME" || set.type === "DNAME") && set.data.length > 1) throw invalid(`${set.name} has more than one ${set.type}`);
  if (set.type === "CNAME" && atApex) throw invalid(`a CNAME cannot sit at the zone apex ${zone}`);
  const others = typesOf(s).filter((t) => t !== set.type && (s.rrsets.get(rrKey(set.name, t))?.data.length ?? 0) > 0);
  const clash = set.type === "CNAME" ? others : others.includes("CNAME") ? [set.type, ...others.filter((t) => t !== "CNAME")] : [];
  if (clash.length > 0) throw invalid(`${set.name} has a CNAME and other data (${clash.join(", ")}): a CNAME must be alone`);
  if (!atApex && ((set.type === "DNAME" && others.includes("NS")) || (set.type === "NS" && others.includes("DNAME")))) throw invalid(`${set.name} would have a DNAME and NS records: only the apex may (RFC 6672 2.3)`);
  // A DNAME owner has no descendants (RFC 6672 2.3): none above the name, and none below a new DNAME.
  const z = lowerName(zone);
  for (let p = parentName(lowerName(set.name)); p && p !== z && p.length > z.length; p = parentName(p)) {
    if ((s.rrsets.get(rrKey(p, "DNAME"))?.data.length ?? 0) > 0) throw invalid(`${set.name} is below the DNAME at ${p}: a DNAME owner has no descendants (RFC 6672 2.3)`);
  }
  if (set.type === "DNAME") {
    const below = `.${lowerName(set.name)}`;
    for (const other of s.rrsets.values()) if (other.data.length > 0 && lowerName(other.name).endsWith(below)) throw invalid(`${set.name} cannot hold a DNAME: ${other.name} is below it (RFC 6672 2.3)`);
  }
}

/** At most this many secondaries per zone (each gets a NOTIFY, with retries, on every change). */
export const MAX_SECONDARIES = 32;

/**
 * Reads secondaries given as `address` or `address:port` (`[v6]:port`; port 53 when none): IP addresses
 * only (the server sends NOTIFY without resolving names), no duplicates, at most MAX_SECONDARIES.
 */
export function readSecondaries(given: string[]): Secondary[] {
  if (given.length > MAX_SECONDARIES) throw invalid(`at most ${MAX_SECONDARIES} secondaries per zone (${given.length} given)`);
  const out: Secondary[] = [];
  for (const g of given) {
    const text = g.trim();
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? (isIP(text) ? [text, text, undefined] : /^([^:]+):(\d+)$/.exec(text));
    const host = m?.[1];
    const port = m?.[2] === undefined ? 53 : Number(m[2]);
    if (!host || !isIP(host)) throw invalid(`secondary ${JSON.stringify(g)} is not an IP address with an optional port (192.0.2.1, 192.0.2.1:5300, [2001:db8::1]:53)`);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid(`secondary ${JSON.stringify(g)}: port ${port} is outside 1..65535`);
    if (out.some((x) => x.host === host && x.port === port)) throw invalid(`secondary ${host}:${port} is given twice`);
    out.push({ host, port });
  }
  return out;
}

function requireExists(s: ZoneState): void {
  if (!s.exists) throw notFound(`zone ${s.zone} does not exist`);
}

const defaultSoa = (soa: Partial<SoaFields> & { mname: string; rname: string }, zone: string): SoaFields => ({
  mname: lowerName(readName(soa.mname, zone, "SOA mname")),
  rname: lowerName(readName(soa.rname, zone, "SOA rname")),
  refresh: soa.refresh ?? 3600,
  retry: soa.retry ?? 900,
  expire: soa.expire ?? 1_209_600,
  minimum: assertTtl(soa.minimum ?? 300, "SOA minimum"),
  ttl: assertTtl(soa.ttl ?? 3600, "SOA TTL"),
});

/** The zone aggregate: id is the absolute zone name. SOA serial goes up by one with every change. */
export const zoneDecider: Decider<ZoneState, ZoneCommand> = {
  aggregateType: "zone",
  initialState: (zone) => ({ zone, exists: false, serial: 0, soa: null, rrsets: new Map() }),

  decide(s, c): NewEvent[] {
    const zone = s.zone;
    const serial = s.serial + 1;
    switch (c.type) {
      case "create": {
        if (s.exists) throw alreadyExists(`zone ${zone} already exists`);
        absoluteName(zone);
        const ns = c.ns.map((n) => lowerName(readName(n, zone, "name server")));
        const soa = defaultSoa(c.soa, zone);
        if (ns.length === 0) throw invalid(`zone ${zone} needs at least one name server`);
        const createSerial = c.serial ?? Math.max(1, s.serial + 1);
        const data: ZoneCreatedData = { zone, serial: createSerial, soa, ns: [...new Set(ns)] };
        return [{ type: DnsEvents.ZoneCreated, data }];
      }
      case "updateSoa": {
        requireExists(s);
        const soa = defaultSoa({ ...s.soa!, ...c.soa }, zone);
        return [{ type: DnsEvents.ZoneSoaChanged, data: { soa, serial } }];
      }
      case "delete":
        requireExists(s);
        return [{ type: DnsEvents.ZoneDeleted, data: { zone, serial } }];
      case "add": {
        requireExists(s);
        const r = normalizeRecord(zone, c.record, s.soa!.ttl);
        if (r.type === "SOA") throw invalid("the SOA record is the zone's own; change it with zone.soa");
        const key = rrKey(r.name, r.type);
        const cur = s.rrsets.get(key);
        if (cur?.data.some((d) => d === r.data || storedForm(r.type, d) === r.data)) throw alreadyExists(`${r.name} ${r.type} ${r.data} already exists`);
        if (cur && cur.ttl !== r.ttl && c.record.ttl !== undefined) throw invalid(`${r.name} ${r.type} has TTL ${cur.ttl}; records of one RRset share a TTL (use record.set to change it)`);
        const ttl = cur ? cur.ttl : r.ttl;
        checkChange(s, { name: r.name, type: r.type, ttl, data: [...(cur?.data ?? []), r.data] });
        const data: RecordChangeData = { ...r, ttl, serial };
        return [{ type: DnsEvents.RecordAdded, data }];
      }
      case "remove": {
        requireExists(s);
        const type = readType(c.rtype);
        const name = readName(c.name, zone);
        const cur = s.rrsets.get(rrKey(name, type));
        if (!cur) throw notFound(`no ${type} records at ${name}`);
        // Matched by their canonical form, so data stored by earlier versions (storedForm) is found too; the event names the data as stored.
        const victims =
          c.data === undefined
            ? cur.data
            : [canonicalRdata(type, tokenize(c.data), zone, apiNames(zone))].map((v) => {
                const hit = cur.data.find((d) => d === v || storedForm(type, d) === v);
                if (hit === undefined) throw notFound(`no ${name} ${type} ${v}`);
                return hit;
              });
        const left = cur.data.filter((d) => !victims.includes(d));
        checkChange(s, { ...cur, data: left });
        return victims.map((d, i) => ({ type: DnsEvents.RecordRemoved, data: { name, type, ttl: cur.ttl, data: d, serial: serial + i } satisfies RecordChangeData }));
      }
      case "set": {
        requireExists(s);
        const recs = c.data.map((d) => normalizeRecord(zone, { name: c.name, type: c.rtype, ttl: c.ttl, data: d }, s.soa!.ttl));
        const type = readType(c.rtype);
        const given = readName(c.name, zone);
        if (type === "SOA") throw invalid("the SOA record is the zone's own; change it with zone.soa");
        const before = s.rrsets.get(rrKey(given, type));
        // The RRset keeps the case its owner was first written in.
        const name = before?.name ?? given;
        const ttl = c.ttl ?? before?.ttl ?? s.soa!.ttl;
        const data = recs.map((r) => r.data);
        checkChange(s, { name, type, ttl, data });
        const ev: RecordSetChangedData = { name, type, ttl, data, serial };
        return [{ type: DnsEvents.RecordSetChanged, data: ev }];
      }
      case "import":
        return decideImport(s, c);
      case "secondaries": {
        requireExists(s);
        const list = readSecondaries(c.secondaries);
        const same = (s.secondaries ?? []).length === list.length && list.every((x, i) => x.host === s.secondaries![i]!.host && x.port === s.secondaries![i]!.port);
        if (same) return [];
        return [{ type: DnsEvents.ZoneSecondariesSet, data: { secondaries: list } satisfies ZoneSecondariesSetData }];
      }
    }
  },

  evolve(s, e: EventEnvelope): ZoneState {
    return applyZoneEvent(s, e.type, e.data);
  },
};

/**
 * Several zone commands decided as one change (one append, one serial step each): each decides on the state
 * the earlier ones produce. That state is a scratch copy, so the state it starts from (a projection's live
 * zone) is never modified.
 */
export const zoneBatchDecider: Decider<ZoneState, ZoneCommand[]> = {
  aggregateType: zoneDecider.aggregateType,
  initialState: zoneDecider.initialState,
  decide(s, cmds): NewEvent[] {
    const out: NewEvent[] = [];
    let st = s;
    for (const [i, c] of cmds.entries()) {
      const evs = zoneDecider.decide(st, c);
      out.push(...evs);
      if (i === cmds.length - 1) break;
      if (st === s) {
        st = { ...s, rrsets: new Map(s.rrsets) };
        const g = genericCache.get(s.rrsets);
        if (g) genericCache.set(st.rrsets, new Set(g));
      }
      for (const e of evs) applyToScratch(st, e);
    }
    return out;
  },
  evolve: zoneDecider.evolve,
};

/**
 * Applies an event to a scratch zone. The scratch has its own RRset map; the RRsets it shares with the
 * original are safe, since applying an event replaces an RRset instead of changing it.
 */
function applyToScratch(t: ZoneState, e: NewEvent): void {
  applyZoneEvent(t, e.type, e.data);
}

/** Groups records into RRsets (into `sets`, new by default), refusing RRsets whose records disagree on the TTL. */
export function groupRecords(zone: string, records: DnsRecord[], sets = new Map<string, { name: string; type: RecordType; ttl: number; data: string[] }>()): Map<string, { name: string; type: RecordType; ttl: number; data: string[] }> {
  for (const r of records) {
    if (!inZone(r.name, zone)) throw invalid(`${r.name} is not in zone ${zone}`);
    const key = rrKey(r.name, r.type);
    const cur = sets.get(key);
    if (cur) {
      if (cur.ttl !== r.ttl) throw invalid(`${r.name} ${r.type} records have different TTLs (${cur.ttl} and ${r.ttl})`);
      if (cur.data.includes(r.data)) throw invalid(`duplicate record ${r.name} ${r.type} ${r.data}`);
      cur.data.push(r.data);
    } else sets.set(key, { name: r.name, type: r.type, ttl: r.ttl, data: [r.data] });
  }
  return sets;
}

/**
 * Folds one zone event into a state (mutates and returns it: states are never shared; RRset data arrays
 * are replaced, never changed, see ZoneState.rrsets).
 */
export function applyZoneEvent(s: ZoneState, type: string, raw: unknown): ZoneState {
  if (isImportEvent(type)) return applyImportEvent(s, type, raw);
  // Any other event of the zone ends an import left unfinished (its chunks can never be committed now).
  s.staged = undefined;
  switch (type) {
    case DnsEvents.ZoneCreated: {
      const d = raw as ZoneCreatedData;
      s.exists = true;
      s.serial = d.serial;
      s.soa = d.soa;
      s.rrsets = new Map();
      s.rrsets.set(rrKey(s.zone, "NS"), { name: s.zone, type: "NS", ttl: d.soa.ttl, data: d.ns });
      return s;
    }
    case DnsEvents.ZoneSoaChanged: {
      const d = raw as { soa: SoaFields; serial: number };
      s.soa = d.soa;
      s.serial = d.serial;
      return s;
    }
    case DnsEvents.ZoneDeleted:
      s.exists = false;
      s.serial = (raw as { serial: number }).serial;
      s.soa = null;
      s.rrsets = new Map();
      s.secondaries = undefined;
      return s;
    case DnsEvents.ZoneSecondariesSet: {
      const list = (raw as ZoneSecondariesSetData).secondaries;
      s.secondaries = list.length > 0 ? list.map((x) => ({ host: x.host, port: x.port })) : undefined;
      return s;
    }
    case DnsEvents.RecordAdded: {
      const d = raw as RecordChangeData;
      const key = rrKey(d.name, d.type);
      const cur = s.rrsets.get(key);
      s.rrsets.set(key, cur ? { ...cur, data: [...cur.data, d.data] } : { name: d.name, type: d.type, ttl: d.ttl, data: [d.data] });
      noteType(s, d.type);
      s.serial = d.serial;
      return s;
    }
    case DnsEvents.RecordRemoved: {
      const d = raw as RecordChangeData;
      const key = rrKey(d.name, d.type);
      const cur = s.rrsets.get(key);
      if (cur) {
        const left = cur.data.filter((x) => x !== d.data);
        if (left.length === 0) s.rrsets.delete(key);
        else s.rrsets.set(key, { ...cur, data: left });
      }
      s.serial = d.serial;
      return s;
    }
    case DnsEvents.RecordSetChanged: {
      const d = raw as RecordSetChangedData;
      const key = rrKey(d.name, d.type);
      if (d.data.length === 0) s.rrsets.delete(key);
      else s.rrsets.set(key, { name: d.name, type: d.type, ttl: d.ttl, data: [...d.data] });
      noteType(s, d.type);
      s.serial = d.serial;
      return s;
    }
    case DnsEvents.ZoneImported: {
      const d = raw as ZoneImportedData;
      s.exists = true;
      s.soa = d.soa;
      s.serial = d.serial;
      s.rrsets = groupRecords(s.zone, d.records);
      return s;
    }
    default:
      return s;
  }
}
