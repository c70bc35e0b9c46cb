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
import { connect } from "@nats-io/transport-node";
import { NatsSupervisor } from "../services/nats/supervisor.js";
import { createLogger } from "../services/host/logger.js";
import { createDnsContext } from "../dns/service.js";
import { newId } from "../services/kernel/index.js";
import { testTrust } from "../test/support/trust.js";
import { dnsperf, freePort, writeDnsLoad } from "./support/dns-load.js";

const run = promisify(execFile);
const { values } = parseArgs({ options: { seconds: { type: "string", default: "10" }, hosts: { type: "string", default: "2000" }, clients: { type: "string", default: "4" } } });
const SECONDS = Number(values.seconds);
const HOSTS = Number(values.hosts);
const cores = cpus().length;

const dir = mkdtempSync(join(tmpdir(), "realm-bench-dns-"));
const { zoneText, queryFile, queries } = writeDnsLoad(dir, HOSTS, { srv: true });
const load = { queryFile, seconds: SECONDS, clients: values.clients! };

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
const knotResult = await dnsperf(knotPort, load);
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
  const r = await dnsperf(port, load);
  await dns.stop?.();
  return r;
}
const realmSingle = await realmRun(0);
const realmResult = await realmRun(cores);
await nc.close();
await nats.stop();
rmSync(dir, { recursive: true, force: true });

const ratio = realmResult.qps / knotResult.qps;
console.log(`\nDNS authoritative, dnsperf ${SECONDS} s, ${queries} query mix over a zone of ${HOSTS * 2 + 8} records, ${values.clients} dnsperf clients, ${cores} cores`);
console.table([
  { server: `knot ${knotVersion} (1 process, ${cores} UDP workers)`, qps: Math.round(knotResult.qps), "avg latency": knotResult.latency, lost: knotResult.lost },
  { server: "cim-realm (1 Node process answering)", qps: Math.round(realmSingle.qps), "avg latency": realmSingle.latency, lost: realmSingle.lost, "vs knot": `${((realmSingle.qps / knotResult.qps) * 100).toFixed(1)} %` },
  { server: `cim-realm (${cores} DNS worker processes, shared port)`, qps: Math.round(realmResult.qps), "avg latency": realmResult.latency, lost: realmResult.lost, "vs knot": `${(ratio * 100).toFixed(1)} %` },
]);
console.log(`ratio cim-realm (${cores} workers) / knot: ${(ratio * 100).toFixed(1)} % (target >= 50 %); nats-server idle during the runs; dnsperf shares the same ${cores} cores`);
