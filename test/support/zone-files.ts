import { createWriteStream } from "node:fs";
import { once } from "node:events";

/**
 * Big RFC 1035 master files made on the fly for tests and benchmarks of zone imports: `n` hosts
 * `h0000000 .. h<n-1>` (A, AAAA and TXT in turn), after the SOA, one apex NS and its glue. `hostRecord(i)`
 * is what the realm stores, serves and transfers for line `hostLine(i)`, and `fixedRecords` for the rest.
 */
export interface GeneratedZone {
  zone: string;
  /** Host records (the file holds two more: the apex NS and the name server's A). */
  hosts: number;
  serial: number;
}

const TTL = 300;

/** Width of the host number: `h0000000` for a million hosts. */
const width = (hosts: number) => Math.max(7, String(Math.max(0, hosts - 1)).length);

export const hostName = (g: GeneratedZone, i: number) => `h${String(i).padStart(width(g.hosts), "0")}`;

/** The data of the i-th host's record as the file writes it. */
function writtenData(i: number): { type: "A" | "AAAA" | "TXT"; data: string } {
  switch (i % 3) {
    case 0:
      return { type: "A", data: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` };
    case 1:
      // Not in RFC 5952 form on purpose (`::0:5`): the realm stores and serves the canonical one.
      return { type: "AAAA", data: `2001:db8::${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}` };
    default:
      return { type: "TXT", data: `"host ${i}" "generated"` };
  }
}

/** The i-th host's record as the realm stores it (absolute name, canonical data; IPv6 per the URL standard). */
export function hostRecord(g: GeneratedZone, i: number): { name: string; type: "A" | "AAAA" | "TXT"; ttl: number; data: string } {
  const { type, data } = writtenData(i);
  const canonical = type === "AAAA" ? new URL(`http://[${data}]`).hostname.slice(1, -1) : data;
  return { name: `${hostName(g, i)}.${g.zone}`, type, ttl: TTL, data: canonical };
}

/** The SOA, NS and glue records of the file, as the realm stores them (the SOA with `serial`). */
export function fixedRecords(g: GeneratedZone, serial = g.serial): { name: string; type: string; ttl: number; data: string }[] {
  return [
    { name: g.zone, type: "SOA", ttl: 3600, data: `ns1.${g.zone} hostmaster.${g.zone} ${serial} 7200 900 1209600 300` },
    { name: g.zone, type: "NS", ttl: 3600, data: `ns1.${g.zone}` },
    { name: `ns1.${g.zone}`, type: "A", ttl: 3600, data: "192.0.2.1" },
  ];
}

export function headerLines(g: GeneratedZone): string[] {
  return [`$ORIGIN ${g.zone}`, `$TTL ${TTL}`, `@ 3600 IN SOA ns1 hostmaster ( ${g.serial} 7200 900 1209600 300 )`, `@ 3600 IN NS ns1`, `ns1 3600 IN A 192.0.2.1`];
}

export function hostLine(g: GeneratedZone, i: number): string {
  const r = writtenData(i);
  return `${hostName(g, i)} IN ${r.type} ${r.data}`;
}

/**
 * Writes the zone file to `path` (streamed: a million hosts never sit in memory as one string), with
 * `trailer` lines appended (a broken last line, say). Resolves with the number of lines written.
 */
export async function writeZoneFile(path: string, g: GeneratedZone, trailer: string[] = []): Promise<{ lines: number; bytes: number }> {
  const out = createWriteStream(path);
  let lines = 0;
  let bytes = 0;
  let buf: string[] = [];
  const flush = async () => {
    const text = `${buf.join("\n")}\n`;
    buf = [];
    bytes += Buffer.byteLength(text);
    if (!out.write(text)) await once(out, "drain");
  };
  for (const l of headerLines(g)) (buf.push(l), lines++);
  for (let i = 0; i < g.hosts; i++) {
    buf.push(hostLine(g, i));
    lines++;
    if (buf.length >= 4096) await flush();
  }
  for (const l of trailer) (buf.push(l), lines++);
  if (buf.length) await flush();
  out.end();
  await once(out, "finish");
  return { lines, bytes };
}
