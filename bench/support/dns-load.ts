/**
 * The DNS benches' shared load: one zone (`bench.test.`, `hosts` hosts with A and AAAA, MX, TXT, a CNAME and a
 * wildcard), one 20,000-query mix (A, AAAA, MX, wildcard, CNAME, NXDOMAIN), and dnsperf run against a port.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import net from "node:net";

const run = promisify(execFile);

/** Writes `bench.test.zone` and `queries.txt` into `dir`; answers the zone's text, the query file and its length. */
export function writeDnsLoad(dir: string, hosts: number, opts: { srv?: boolean } = {}): { zoneText: string; queryFile: string; queries: number } {
  const zoneText = [
    "$ORIGIN bench.test.",
    "$TTL 3600",
    "@ IN SOA ns1.bench.test. hostmaster.bench.test. 1 7200 900 1209600 300",
    "@ IN NS ns1",
    "@ IN MX 10 mail",
    '@ IN TXT "v=spf1 mx -all"',
    "ns1 IN A 192.0.2.1",
    "mail IN A 192.0.2.10",
    "www IN CNAME host1",
    ...(opts.srv ? ["_sip._tcp IN SRV 10 60 5060 host2"] : []),
    "*.wild IN A 192.0.2.99",
    ...Array.from({ length: hosts }, (_, i) => `host${i} IN A 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}\nhost${i} IN AAAA 2001:db8::${i.toString(16)}`),
    "",
  ].join("\n");
  writeFileSync(join(dir, "bench.test.zone"), zoneText);
  // Query mix: names that exist (A, AAAA, MX, CNAME), wildcard hits, NODATA and NXDOMAIN.
  const queries: string[] = [];
  for (let i = 0; i < 20_000; i++) {
    const k = i % 10;
    const h = `host${(i * 7919) % hosts}.bench.test`;
    queries.push(k < 4 ? `${h} A` : k < 6 ? `${h} AAAA` : k === 6 ? "bench.test MX" : k === 7 ? `w${i}.wild.bench.test A` : k === 8 ? "www.bench.test A" : `nx${i}.bench.test A`);
  }
  const queryFile = join(dir, "queries.txt");
  writeFileSync(queryFile, `${queries.join("\n")}\n`);
  return { zoneText, queryFile, queries: queries.length };
}

export function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => res(p));
    });
  });
}

/** dnsperf against 127.0.0.1:`port` for `seconds` with `clients` clients (DO bit set with `dnssec`). */
export async function dnsperf(port: number, o: { queryFile: string; seconds: number; clients: string; dnssec?: boolean }): Promise<{ qps: number; lost: string; latency: string }> {
  const { stdout } = await run("dnsperf", ["-s", "127.0.0.1", "-p", String(port), "-d", o.queryFile, "-l", String(o.seconds), "-c", o.clients, "-q", "200", ...(o.dnssec ? ["-D"] : [])], { maxBuffer: 1 << 24 });
  const qps = Number(/Queries per second:\s+([\d.]+)/.exec(stdout)?.[1] ?? 0);
  const lost = /Queries lost:\s+(.+)/.exec(stdout)?.[1]?.trim() ?? "?";
  const latency = /Average Latency \(s\):\s+([\d.]+)/.exec(stdout)?.[1] ?? "?";
  if (!/Queries completed:\s+\S/.test(stdout)) throw new Error(`dnsperf printed no summary:\n${stdout}`);
  return { qps, lost, latency: `${(Number(latency) * 1000).toFixed(2)} ms` };
}
