import { RealmError } from "../../services/kernel/errors.js";
import { absoluteName, relativeName } from "./names.js";
import { canonicalRdata, isRecordType, parseTtl, tokenize, type Token } from "./rdata.js";
import { assertTtl, type DnsRecord, type SoaFields, type ZoneState, zoneRecords } from "./zone.js";

/** What a master file holds: its records (SOA apart) and its SOA, if it has one. */
export interface ParsedZone {
  origin: string;
  soa: SoaFields | null;
  serial: number | null;
  records: DnsRecord[];
}

export { parseTtl };

interface LogicalLine {
  line: number;
  /** True when the physical line started with white space (owner = the previous owner). */
  blankOwner: boolean;
  text: string;
}

function fail(line: number, message: string): RealmError {
  return new RealmError("MALFORMED", `line ${line}: ${message}`, { line });
}

/** Joins parenthesised continuations, drops comments; keeps the number of the line each entry starts on. */
function logicalLines(text: string): LogicalLine[] {
  const out: LogicalLine[] = [];
  const lines = text.split(/\r?\n/);
  let cur: LogicalLine | null = null;
  let depth = 0;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    let kept = "";
    let quoted = false;
    for (let j = 0; j < raw.length; j++) {
      const c = raw[j]!;
      if (c === "\\" && j + 1 < raw.length) {
        kept += c + raw[j + 1];
        j++;
        continue;
      }
      if (c === '"') quoted = !quoted;
      if (!quoted && c === ";") break;
      if (!quoted && c === "(") {
        depth++;
        kept += " ";
        continue;
      }
      if (!quoted && c === ")") {
        depth--;
        if (depth < 0) throw fail(i + 1, "')' without '('");
        kept += " ";
        continue;
      }
      kept += c;
    }
    if (quoted) throw fail(i + 1, "unterminated quoted string");
    if (cur) cur.text += ` ${kept}`;
    else if (kept.trim().length > 0) cur = { line: i + 1, blankOwner: /^[ \t]/.test(raw), text: kept };
    if (depth === 0 && cur) {
      out.push(cur);
      cur = null;
    }
  }
  if (depth > 0 && cur) throw fail(cur.line, "'(' is never closed");
  return out;
}

/**
 * Parses an RFC 1035 master file for `zone`: `$ORIGIN`, `$TTL`, `@`, relative names, blank owners,
 * parentheses, comments, TTL units, the IN class. Any error is a MALFORMED RealmError whose message starts
 * with `line N:`; nothing is returned for a file with an error.
 */
export function parseZoneFile(text: string, zone: string): ParsedZone {
  let origin = zone;
  let defaultTtl: number | null = null;
  let lastOwner: string | null = null;
  let lastTtl: number | null = null;
  let soa: SoaFields | null = null;
  let serial: number | null = null;
  const records: DnsRecord[] = [];
  for (const l of logicalLines(text)) {
    let tokens: Token[];
    try {
      tokens = tokenize(l.text);
    } catch (err) {
      throw fail(l.line, err instanceof Error ? err.message : String(err));
    }
    if (tokens.length === 0) continue;
    const first = tokens[0]!;
    try {
      if (!first.quoted && first.text.startsWith("$")) {
        const directive = first.text.toUpperCase();
        if (directive === "$ORIGIN") {
          if (tokens.length !== 2) throw new Error("$ORIGIN takes one name");
          origin = absoluteName(tokens[1]!.text, origin);
        } else if (directive === "$TTL") {
          const t = tokens[1] ? parseTtl(tokens[1].text) : null;
          if (tokens.length !== 2 || t === null) throw new Error("$TTL takes one TTL");
          defaultTtl = t;
        } else throw new Error(`directive ${first.text} is not supported`);
        continue;
      }
      let i = 0;
      let owner: string;
      if (l.blankOwner) {
        if (!lastOwner) throw new Error("no owner name and no previous owner");
        owner = lastOwner;
      } else {
        owner = absoluteName(first.text, origin);
        i = 1;
      }
      let ttl: number | null = null;
      for (let k = 0; k < 2 && i < tokens.length; k++) {
        const t = tokens[i]!.text;
        if (t.toUpperCase() === "IN") i++;
        else if (["CH", "HS", "CS"].includes(t.toUpperCase())) throw new Error(`class ${t} is not supported (only IN)`);
        else if (ttl === null && parseTtl(t) !== null && !isRecordType(t.toUpperCase())) {
          ttl = parseTtl(t);
          i++;
        }
      }
      const typeTok = tokens[i];
      if (!typeTok) throw new Error("record type is missing");
      const type = typeTok.text.toUpperCase();
      if (!isRecordType(type)) throw new Error(`record type ${typeTok.text} is not supported`);
      const data = canonicalRdata(type, tokens.slice(i + 1), origin);
      const effectiveTtl: number | null = ttl ?? defaultTtl ?? lastTtl;
      if (effectiveTtl === null) throw new Error("no TTL and no $TTL before it");
      assertTtl(effectiveTtl);
      lastOwner = owner;
      lastTtl = effectiveTtl;
      if (type === "SOA") {
        if (owner !== zone) throw new Error(`the SOA record must be at the apex ${zone}, not ${owner}`);
        if (soa) throw new Error("a second SOA record");
        const f = data.split(" ");
        soa = { mname: f[0]!, rname: f[1]!, refresh: Number(f[3]), retry: Number(f[4]), expire: Number(f[5]), minimum: assertTtl(Number(f[6]), "SOA minimum"), ttl: effectiveTtl };
        serial = Number(f[2]);
        continue;
      }
      if (!(owner === zone || owner.endsWith(`.${zone}`))) throw new Error(`${owner} is outside the zone ${zone}`);
      records.push({ name: owner, type, ttl: effectiveTtl, data });
    } catch (err) {
      if (err instanceof RealmError && err.code === "MALFORMED") throw err;
      throw fail(l.line, err instanceof Error ? err.message : String(err));
    }
  }
  return { origin: zone, soa, serial, records };
}

/** Writes a zone as an RFC 1035 master file: `$ORIGIN`, `$TTL`, SOA first, owners relative to the origin. */
export function exportZoneFile(s: ZoneState): string {
  const lines = [`$ORIGIN ${s.zone}`, `$TTL ${s.soa?.ttl ?? 3600}`];
  for (const r of zoneRecords(s)) lines.push(`${relativeName(r.name, s.zone)}\t${r.ttl}\tIN\t${r.type}\t${r.data}`);
  return `${lines.join("\n")}\n`;
}
