import { relativeName } from "./names.js";
import { parseTtl, storedForm } from "./rdata.js";
import { type DnsRecord, type SoaFields, type ZoneState, zoneRecords } from "./zone.js";
import type { ParsedZone } from "./zonefile-parser.js";

export { parseZoneFile, ZoneFileParser, DEFAULT_MAX_RECORDS, type ParsedZone, type ZoneFileLimits } from "./zonefile-parser.js";
export { parseTtl };

/** Master-file lines of records: owners relative to `origin` (their case kept), data in canonical form (pure ASCII, one line). */
function recordLines(origin: string, records: Iterable<DnsRecord>, lines: string[]): void {
  for (const r of records) lines.push(`${relativeName(r.name, origin)}\t${r.ttl}\tIN\t${r.type}\t${storedForm(r.type, r.data)}`);
}

/**
 * Writes a zone as an RFC 1035 master file: `$ORIGIN`, `$TTL`, SOA first, owners relative to the origin.
 * Every line is printable ASCII: octets of strings that are not are written `\DDD` (storedForm also turns
 * data of earlier versions into that form), so the realm and other servers (knot, BIND) read it back.
 */
export function exportZoneFile(s: ZoneState): string {
  const lines = [`$ORIGIN ${s.zone}`, `$TTL ${s.soa?.ttl ?? 3600}`];
  recordLines(s.zone, zoneRecords(s), lines);
  return `${lines.join("\n")}\n`;
}

/** A parsed master file written back as one (includes expanded): what `realm zone import` sends for a file with `$INCLUDE`s. */
export function writeParsedZone(p: ParsedZone): string {
  const lines = [`$ORIGIN ${p.origin}`];
  const soa: SoaFields | null = p.soa;
  if (soa) lines.push(`@\t${soa.ttl}\tIN\tSOA\t${soa.mname} ${soa.rname} ${p.serial ?? 0} ${soa.refresh} ${soa.retry} ${soa.expire} ${soa.minimum}`);
  recordLines(p.origin, p.records, lines);
  return `${lines.join("\n")}\n`;
}
