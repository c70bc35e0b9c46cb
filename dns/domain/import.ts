import type { NewEvent } from "../../services/kernel/index.js";
import { invalid } from "../../services/kernel/errors.js";
import { inZone } from "./names.js";
import type { RecordType } from "./rdata.js";
import { checkZoneInvariants, groupRecords, rrKey, type DnsRecord, type ImportCommand, type SoaFields, type ZoneState } from "./zone.js";

/**
 * A zone import as events that each fit in a NATS message: ZoneImportStarted (what is coming), the records
 * in ZoneImportChunk events of bounded size, ZoneImportCommitted. One command appends all of them in order
 * on the zone's subject, so nothing else of the zone can come between them. Applying them stages the
 * chunks aside (ZoneState.staged) and swaps the whole zone in at the commit: a reader sees the zone before
 * the import or after it, never in between. An import whose command died between chunks is never
 * committed; the zone's next event drops what it staged.
 */
export const ImportEvents = {
  Started: "ZoneImportStarted",
  Chunk: "ZoneImportChunk",
  Committed: "ZoneImportCommitted",
} as const;

export interface ZoneImportStartedData {
  importId: string;
  /** The zone's serial once committed: max(current + 1, the file's serial). */
  serial: number;
  soa: SoaFields;
  chunks: number;
  records: number;
  /** SHA-256 (hex) of the master file, when the import came from one. */
  sha256?: string | undefined;
}
/**
 * One record of a chunk: `[name, type, ttl, data]` (absolute name, canonical data). Tuples, not objects:
 * the canonical JSON every event is hashed over (once to append, once per reader to verify) costs less
 * than half as much for them, and a chunk holds a third more records.
 */
export type ChunkRecord = [name: string, type: RecordType, ttl: number, data: string];

export interface ZoneImportChunkData {
  importId: string;
  /** 0-based; chunks come in order. */
  index: number;
  records: ChunkRecord[];
}
export interface ZoneImportCommittedData {
  importId: string;
  serial: number;
}

/** An import being applied: what its start announced and the RRsets of the chunks seen so far. */
export interface StagedImport {
  importId: string;
  serial: number;
  soa: SoaFields;
  chunks: number;
  records: number;
  /** Index of the chunk expected next. */
  next: number;
  /** Records staged so far. */
  count: number;
  rrsets: Map<string, { name: string; type: RecordType; ttl: number; data: string[] }>;
}

/** Records per chunk are bounded by this much JSON by default (a quarter of nats-server's default max_payload). */
export const DEFAULT_CHUNK_BYTES = 256 * 1024;
/** Room left in a message for the envelope around a chunk (ids, actor, authz, CID, signature) and the headers. */
const ENVELOPE_RESERVE = 16 * 1024;

/** The chunk budget for a server whose messages may be `maxPayload` bytes (nc.info.max_payload). */
export function chunkBudget(maxPayload: number | undefined): number {
  if (!maxPayload || maxPayload <= 0) return DEFAULT_CHUNK_BYTES;
  return Math.max(1024, Math.min(DEFAULT_CHUNK_BYTES, maxPayload - ENVELOPE_RESERVE));
}

export const isImportEvent = (type: string): boolean => type === ImportEvents.Started || type === ImportEvents.Chunk || type === ImportEvents.Committed;

/** Characters JSON escapes, or that take more than one byte in UTF-8. */
const NOT_PLAIN = /["\\\x00-\x1f\x7f-\uffff]/;

/**
 * Bytes of a chunk record as JSON (`["name","type",ttl,"data"]` and a comma). Names and types are plain
 * ASCII (names are checked labels); only data may need escaping, and is measured exactly when it does.
 */
function tupleBytes(r: DnsRecord): number {
  const data = NOT_PLAIN.test(r.data) ? Buffer.byteLength(JSON.stringify(r.data)) - 2 : r.data.length;
  return 12 + r.name.length + r.type.length + String(r.ttl).length + data;
}

/** Splits records into chunks whose JSON array stays within `budget` bytes (a record larger than that goes alone). */
export function chunkRecords(records: DnsRecord[], budget: number): ChunkRecord[][] {
  const out: ChunkRecord[][] = [];
  let cur: ChunkRecord[] = [];
  let size = 2;
  for (const r of records) {
    const len = tupleBytes(r);
    if (cur.length > 0 && size + len > budget) {
      out.push(cur);
      cur = [];
      size = 2;
    }
    cur.push([r.name, r.type, r.ttl, r.data]);
    size += len;
  }
  if (cur.length > 0 || out.length === 0) out.push(cur);
  return out;
}

/** Adds a chunk's records to the staged RRsets (the same rules as groupRecords: one TTL per RRset, no duplicates). */
function stageRecords(zone: string, sets: StagedImport["rrsets"], records: ChunkRecord[]): void {
  const dotZone = `.${zone}`;
  for (const [name, type, ttl, data] of records) {
    if (!(name === zone || name.endsWith(dotZone)) && !inZone(name, zone)) throw invalid(`${name} is not in zone ${zone}`);
    const key = rrKey(name, type);
    const cur = sets.get(key);
    if (!cur) sets.set(key, { name, type, ttl, data: [data] });
    else if (cur.ttl !== ttl) throw invalid(`${name} ${type} records have different TTLs (${cur.ttl} and ${ttl})`);
    else if (cur.data.includes(data)) throw invalid(`duplicate record ${name} ${type} ${data}`);
    else cur.data.push(data);
  }
}

/**
 * The checks an import makes on a parsed master file's records (beyond the parser's, line by line): one
 * TTL per RRset, no duplicates, and the zone invariants (checkZoneInvariants). `realm zone check` and
 * `zone.import` both run this one function, so a file the check passes is one the import takes (given a
 * SOA in the file, or a zone that exists).
 */
export function checkImport(zone: string, records: DnsRecord[]): void {
  checkZoneInvariants(zone, groupRecords(zone, records).values());
}

/** The events of an import: checked whole against the zone invariants first, so a refusal appends nothing. */
export function decideImport(s: ZoneState, c: ImportCommand): NewEvent[] {
  const zone = s.zone;
  const soa = c.soa ?? s.soa;
  if (!soa) throw invalid(`zone ${zone} does not exist yet: the imported file must carry its SOA record`);
  checkImport(zone, c.records);
  const serial = Math.max(s.serial + 1, c.serial ?? 0);
  const chunks = chunkRecords(c.records, c.chunkBytes ?? DEFAULT_CHUNK_BYTES);
  const started: ZoneImportStartedData = { importId: c.importId, serial, soa, chunks: chunks.length, records: c.records.length, ...(c.sha256 ? { sha256: c.sha256 } : {}) };
  const committed: ZoneImportCommittedData = { importId: c.importId, serial };
  return [
    { type: ImportEvents.Started, data: started },
    ...chunks.map((records, index): NewEvent => ({ type: ImportEvents.Chunk, data: { importId: c.importId, index, records } satisfies ZoneImportChunkData })),
    { type: ImportEvents.Committed, data: committed },
  ];
}

/**
 * Folds an import event into a zone (mutates and returns it). A chunk or commit that does not continue the
 * staged import (a chunk was lost: quarantined, say) throws, after dropping what was staged: the import can
 * no longer complete, and the zone stays as it was.
 */
export function applyImportEvent(s: ZoneState, type: string, raw: unknown): ZoneState {
  switch (type) {
    case ImportEvents.Started: {
      const d = raw as ZoneImportStartedData;
      s.staged = { importId: d.importId, serial: d.serial, soa: d.soa, chunks: d.chunks, records: d.records, next: 0, count: 0, rrsets: new Map() };
      return s;
    }
    case ImportEvents.Chunk: {
      const d = raw as ZoneImportChunkData;
      const st = s.staged;
      if (!st || st.importId !== d.importId || st.next !== d.index) {
        s.staged = undefined;
        throw new Error(`chunk ${d.index} of import ${d.importId} does not follow the import staged for ${s.zone} (${st ? `${st.importId}, chunk ${st.next} expected` : "none"})`);
      }
      stageRecords(s.zone, st.rrsets, d.records);
      st.next++;
      st.count += d.records.length;
      return s;
    }
    case ImportEvents.Committed: {
      const d = raw as ZoneImportCommittedData;
      const st = s.staged;
      s.staged = undefined;
      if (!st || st.importId !== d.importId || st.next !== st.chunks || st.count !== st.records) {
        throw new Error(`import ${d.importId} of ${s.zone} is incomplete (${st && st.importId === d.importId ? `${st.next} of ${st.chunks} chunks, ${st.count} of ${st.records} records` : "never started"}): the zone stays as it was`);
      }
      s.exists = true;
      s.soa = st.soa;
      s.serial = d.serial;
      s.rrsets = st.rrsets;
      return s;
    }
    default:
      return s;
  }
}
