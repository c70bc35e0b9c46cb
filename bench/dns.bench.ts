/**
 * DNS benchmark: dnsperf for 10 s against Knot DNS (the Debian package, started here with the zone in a
 * temp dir on a free port) and against cim-realm's authoritative server serving the same zone, printing
 * both QPS and the ratio.
 *   npx tsx bench/dns.bench.ts [--seconds 10] [--hosts 2000] [--clients 4]
 * cim-realm: first answering in the realm's own Node process (one JS thread), then with one DNS worker
 * process per core (node:cluster sharing the UDP socket and TCP listener, each following REALM_DNS);
 * nats-server runs beside, idle. Knot: one knotd process with udp-workers = the number of cores.
 * dnsperf runs beside all of them on the same cores.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, cpus } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { spawn, execFile } from "node:child_process";
import { promisify } from "node:util";
import net from "node:net";
import { connect } from "@nats-io/transport-node";
import { NatsSupervisor } from "../services/nats/supervisor.js";
import { createLogger } from "../services/host/logger.js";
import { createDnsContext } from "../dns/service.js";
import { newId } from "../services/kernel/index.js";
import { testTrust } from "../test/support/trust.js";

const run = promisify(execFile);
const { values } = parseArgs({ options: { seconds: { type: "string", default: "10" }, hosts: { type: "string", default: "2000" }, clients: { type: "string", default: "4" } } });
const SECONDS = Number(values.seconds);
const HOSTS = Number(values.hosts);
const cores = cpus().length;

const dir = mkdtempSync(join(tmpdir(), "realm-bench-dns-"));
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
  "_sip._tcp IN SRV 10 60 5060 host2",
  "*.wild IN A 192.0.2.99",
  ...Array.from({ length: HOSTS }, (_, i) => `host${i} IN A 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}\nhost${i} IN AAAA 2001:db8::${i.toString(16)}`),
  "",
].join("\n");
writeFileSync(join(dir, "bench.test.zone"), zoneText);

// Query mix: names that exist (A, AAAA, MX, TXT, SRV, CNAME), wildcard hits, NODATA and NXDOMAIN.
const queries: string[] = [];
for (let i = 0; i < 20_000; i++) {
  const k = i % 10;
  const h = `host${(i * 7919) % HOSTS}.bench.test`;
  queries.push(
    k < 4 ? `${h} A` : k < 6 ? `${h} AAAA` : k === 6 ? "bench.test MX" : k === 7 ? `w${i}.wild.bench.test A` : k === 8 ? "www.bench.test A" : `nx${i}.bench.test A`,
  );
}
writeFileSync(join(dir, "queries.txt"), `${queries.join("\n")}\n`);

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => res(p));
    });
  });
}

async function dnsperf(port: number): Promise<{ qps: number; lost: string; latency: string }> {
  const { stdout } = await run("dnsperf", ["-s", "127.0.0.1", "-p", String(port), "-d", join(dir, "queries.txt"), "-l", String(SECONDS), "-c", values.clients!, "-q", "200"], { maxBuffer: 1 << 24 });
  const qps = Number(/Queries per second:\s+([\d.]+)/.exec(stdout)?.[1] ?? 0);
  const lost = /Queries lost:\s+(.+)/.exec(stdout)?.[1]?.trim() ?? "?";
  const latency = /Average Latency \(s\):\s+([\d.]+)/.exec(stdout)?.[1] ?? "?";
  const completed = /Queries completed:\s+(.+)/.exec(stdout)?.[1]?.trim();
  if (!completed) throw new Error(`dnsperf printed no summary:\n${stdout}`);
  return { qps, lost, latency: `${(Number(latency) * 1000).toFixed(2)} ms` };
}

async function checkAnswers(port: number, who: string): Promise<void> {
  const { stdout } = await run("dig", ["@127.0.0.1", "-p", String(port), "+short", "host5.bench.test", "A"]);
  if (stdout.trim() !== "10.0.0.5") throw new Error(`${who} does not serve the zone: ${stdout}`);
}

// --- Knot ---
const knotVersion = /version ([\d.]+)/.exec((await run("knotd", ["--version"])).stdout)?.[1] ?? "?";
const knotPort = await freePort();
writeFileSync(
  join(dir, "knot.conf"),
  `server:\n  rundir: "${dir}"\n  listen: 127.0.0.1@${knotPort}\n  udp-workers: ${cores}\n  tcp-workers: 1\n  background-workers: 1\ndatabase:\n  storage: "${dir}/knotdb"\nlog:\n  - target: stderr\n    any: warning\ntemplate:\n  - id: default\n    storage: "${dir}"\n    semantic-checks: off\nzone:\n  - domain: bench.test\n    file: "bench.test.zone"\n`,
);
const knot = spawn("knotd", ["-c", join(dir, "knot.conf")], { stdio: ["ignore", "ignore", "pipe"] });
let knotErr = "";
knot.stderr.on("data", (d: Buffer) => (knotErr += d.toString()));
for (let i = 0; ; i++) {
  try {
    await checkAnswers(knotPort, "knot");
    break;
  } catch (err) {
    if (i > 50) throw new Error(`knot did not start: ${knotErr} ${String(err)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
console.log(`knot ${knotPort}: running dnsperf for ${SECONDS} s ...`);
const knotResult = await dnsperf(knotPort);
knot.kill("SIGTERM");

// --- cim-realm: once answering in its own process, once with one DNS worker process per core ---
const nats = new NatsSupervisor({ dataDir: join(dir, "nats") });
await nats.start();
const nc = await connect({ servers: nats.url, noAsyncTraces: true });
const log = createLogger({ level: "warn" });

async function realmRun(workers: number): Promise<{ qps: number; lost: string; latency: string }> {
  const dns = await createDnsContext({ dns: { port: 0, workers, natsUrl: nats.url } })({ nc, log, dataDir: dir, trust: testTrust() });
  if (dns.projection.state.zones.size === 0) {
    const imp = dns.endpoints.find((e) => e.name === "zone.import")!;
    const id = newId();
    await imp.handle({ zone: "bench.test", text: zoneText }, { commandId: id, correlationId: id, causationId: id, actor: "bench", log });
  }
  const port = dns.server?.port ?? dns.workers!.port;
  for (let i = 0; ; i++) {
    try {
      await checkAnswers(port, "cim-realm");
      break;
    } catch (err) {
      if (i > 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  console.log(`cim-realm ${port} (${workers ? `${workers} DNS worker processes` : "in-process"}): running dnsperf for ${SECONDS} s ...`);
  const r = await dnsperf(port);
  await dns.stop?.();
  return r;
}
const realmSingle = await realmRun(0);
const realmResult = await realmRun(cores);
await nc.close();
await nats.stop();
rmSync(dir, { recursive: true, force: true });

const ratio = realmResult.qps / knotResult.qps;
console.log(`\nDNS authoritative, dnsperf ${SECONDS} s, ${queries.length} query mix over a zone of ${HOSTS * 2 + 8} records, ${values.clients} dnsperf clients, ${cores} cores`);
console.table([
  { server: `knot ${knotVersion} (1 process, ${cores} UDP workers)`, qps: Math.round(knotResult.qps), "avg latency": knotResult.latency, lost: knotResult.lost },
  { server: "cim-realm (1 Node process answering)", qps: Math.round(realmSingle.qps), "avg latency": realmSingle.latency, lost: realmSingle.lost, "vs knot": `${((realmSingle.qps / knotResult.qps) * 100).toFixed(1)} %` },
  { server: `cim-realm (${cores} DNS worker processes, shared port)`, qps: Math.round(realmResult.qps), "avg latency": realmResult.latency, lost: realmResult.lost, "vs knot": `${(ratio * 100).toFixed(1)} %` },
]);
console.log(`ratio cim-realm (${cores} workers) / knot: ${(ratio * 100).toFixed(1)} % (target >= 50 %); nats-server idle during the runs; dnsperf shares the same ${cores} cores`);
