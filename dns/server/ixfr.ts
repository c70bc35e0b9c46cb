import { packetData } from "../domain/rdata.js";
import type { DnsRecord } from "../domain/zone.js";
import type { ZoneStep } from "../domain/zone-diff.js";
import type { WireRecord } from "./authority.js";
import type { ZoneJournal } from "./journal.js";
import { readMessage, readName } from "./message.js";

const SOA = 6;

/**
 * The serial of the SOA an IXFR request carries in its authority section (RFC 1995 3), or null when it has
 * none (or it cannot be read).
 */
export function clientSerial(msg: Buffer): number | null {
  const m = readMessage(msg);
  const soa = m?.authorities.find((r) => r.type === SOA);
  if (!soa) return null;
  const mname = readName(msg, soa.rdata);
  const rname = mname ? readName(msg, mname.end) : null;
  if (!rname || rname.end + 20 > soa.rdata + soa.rdlength) return null;
  return msg.readUInt32BE(rname.end);
}

/** RFC 1982 serial arithmetic (32 bits): true when `a` is the same as or newer than `b`. */
export function serialAtLeast(a: number, b: number): boolean {
  const d = ((a >>> 0) - (b >>> 0) + 2 ** 32) % 2 ** 32;
  return d === 0 || d < 2 ** 31;
}

/** One stored record for the encoder (a DNAME's target written as a name, as authority.ts does). */
export function wireOf(r: DnsRecord): WireRecord {
  if (r.type === "DNAME") return { name: r.name, class: "IN", ttl: r.ttl, type: "DNAME", data: r.data === "." ? "." : r.data.replace(/\.$/, "") };
  return { name: r.name, class: "IN", ttl: r.ttl, ...(packetData(r.type, r.data) as { type: string; data: unknown }) };
}

/** What an IXFR request is answered with: its records, and whether they are a difference or the whole zone. */
export type IxfrAnswer = { kind: "current"; records: WireRecord[] } | { kind: "diff"; records: Iterable<WireRecord>; steps: number; from: number } | { kind: "whole" };

/**
 * Decides an IXFR (RFC 1995 4): the client's serial the same as or newer than ours: the current SOA alone;
 * the journal reaching back to it: the difference sequences (current SOA, then per serial step the old SOA,
 * the deleted records, the new SOA, the added records, then the current SOA again), unless they would
 * hold more records than the zone itself (then the whole zone is smaller); else the whole zone, AXFR-style.
 */
export function answerIxfr(journal: ZoneJournal | undefined, zone: string, current: WireRecord & { data: { serial: number } }, zoneRecords: number, msg: Buffer): IxfrAnswer {
  const serial = clientSerial(msg);
  const now = current.data.serial;
  if (serial === null) return { kind: "whole" };
  if (serialAtLeast(serial, now)) return { kind: "current", records: [current] };
  const steps = journal?.since(zone, serial, now) ?? null;
  if (!steps) return { kind: "whole" };
  let n = 0;
  for (const s of steps) n += s.deleted.length + s.added.length + 2;
  if (n > zoneRecords) return { kind: "whole" };
  return { kind: "diff", records: sequences(current, steps), steps: steps.length, from: serial };
}

function* sequences(current: WireRecord, steps: ZoneStep[]): Generator<WireRecord> {
  yield current;
  for (const s of steps) {
    yield wireOf(s.fromSoa);
    for (const r of s.deleted) yield wireOf(r);
    yield wireOf(s.toSoa);
    for (const r of s.added) yield wireOf(r);
  }
  yield current;
}
