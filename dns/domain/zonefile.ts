import { relativeName } from "./names.js";
import { parseTtl } from "./rdata.js";
import { type ZoneState, zoneRecords } from "./zone.js";

export { parseZoneFile, ZoneFileParser, DEFAULT_MAX_RECORDS, type ParsedZone, type ZoneFileLimits } from "./zonefile-parser.js";
export { parseTtl };

/** Writes a zone as an RFC 1035 master file: `$ORIGIN`, `$TTL`, SOA first, owners relative to the origin. */
export function exportZoneFile(s: ZoneState): string {
  const lines = [`$ORIGIN ${s.zone}`, `$TTL ${s.soa?.ttl ?? 3600}`];
  for (const r of zoneRecords(s)) lines.push(`${relativeName(r.name, s.zone)}\t${r.ttl}\tIN\t${r.type}\t${r.data}`);
  return `${lines.join("\n")}\n`;
}
