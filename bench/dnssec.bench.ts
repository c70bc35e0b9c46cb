/**
 * DNSSEC benchmark: answers per second of a signed zone to DO queries against the same zone unsigned, for
 * cim-realm (online signing in its own Node process: signatures made at first need and cached per RRset
 * until the zone changes) and for Knot DNS with `dnssec-signing: on` (signed ahead, NSEC3 with no salt and
 * no extra iterations, ECDSA P-256) as the reference; then how many signatures node:crypto makes per second
 * (what a cache miss costs: a cold zone, or a flood of distinct NXDOMAIN names, each proven by fresh NSEC3s).
 *   npx tsx bench/dnssec.bench.ts [--seconds 5] [--hosts 2000] [--clients 4]
 * The query mix is bench/dns.bench.ts's (20,000 queries: A, AAAA, MX, CNAME, wildcard, NXDOMAIN), repeated.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
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
import { Sealer } from "../services/kernel/seal.js";
import { testTrust } from "../test/support/trust.js";
import { dnsperf, freePort, writeDnsLoad } from "./support/dns-load.js";
import { generateKey } from "../dns/dnssec/keys.js";
import { signRRset } from "../dns/dnssec/rrsig.js";

const run = promisify(execFile);
const { values } = parseArgs({ options: { seconds: { type: "string", default: "5" }, hosts: { type: "string", default: "2000" }, clients: { type: "string", default: "4" } } });
const SECONDS = Number(values.seconds);
const HOSTS = Number(values.hosts);
const cores = cpus().length;

const dir = mkdtempSync(join(tmpdir(), "realm-bench-dnssec-"));
const { zoneText, queryFile, queries } = writeDnsLoad(dir, HOSTS);
const load = { queryFile, seconds: SECONDS, clients: values.clients! };

/** Resolves once the server answers host5 with an RRSIG (signed) or at all. */
async function ready(port: number, who: string, signed: boolean): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      const { stdout } = await run("dig", ["@127.0.0.1", "-p", String(port), "+dnssec", "+norec", "host5.bench.test", "A"]);
      if (stdout.includes("10.0.0.5") && (!signed || /\sRRSIG\s+A\s/.test(stdout))) return;
    } catch {
      // not up yet
    }
    if (i > 100) throw new Error(`${who} does not serve the zone${signed ? " signed" : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

type Result = Awaited<ReturnType<typeof dnsperf>>;
const rows: Record<string, unknown>[] = [];
const row = (server: string, r: Result, base?: Result) => rows.push({ server, qps: Math.round(r.qps), "avg latency": r.latency, lost: r.lost, ...(base ? { "vs unsigned": `${((r.qps / base.qps) * 100).toFixed(1)} %` } : {}) });

// --- Knot, unsigned then signed ---
const knotVersion = /version ([\d.]+)/.exec((await run("knotd", ["--version"])).stdout)?.[1] ?? "?";
async function knotRun(signed: boolean): Promise<Result> {
  const port = await freePort();
  const kdir = join(dir, signed ? "knot-signed" : "knot");
  mkdirSync(kdir, { recursive: true });
  const policy = signed ? `policy:\n  - id: p13\n    algorithm: ecdsap256sha256\n    nsec3: on\n    nsec3-iterations: 0\n    nsec3-salt-length: 0\n` : "";
  writeFileSync(
    join(dir, `knot-${signed}.conf`),
    `server:\n  rundir: "${dir}"\n  listen: 127.0.0.1@${port}\n  udp-workers: ${cores}\n  tcp-workers: 1\n  background-workers: 1\ndatabase:\n  storage: "${kdir}"\nlog:\n  - target: stderr\n    any: warning\n${policy}` +
      `template:\n  - id: default\n    storage: "${dir}"\n    semantic-checks: off\n    zonefile-sync: -1\nzone:\n  - domain: bench.test\n    file: "bench.test.zone"\n${signed ? "    dnssec-signing: on\n    dnssec-policy: p13\n" : ""}`,
  );
  const knot = spawn("knotd", ["-c", join(dir, `knot-${signed}.conf`)], { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  knot.stderr.on("data", (d: Buffer) => (err += d.toString()));
  try {
    await ready(port, `knot ${err}`, signed);
    console.log(`knot ${port} (${signed ? "signed" : "unsigned"}): dnsperf ${SECONDS} s ...`);
    return await dnsperf(port, { ...load, dnssec: signed });
  } finally {
    knot.kill("SIGTERM");
  }
}
const knotPlain = await knotRun(false);
const knotSigned = await knotRun(true);

// --- cim-realm in its own process (worker processes hold no keys and answer unsigned) ---
const nats = new NatsSupervisor({ dataDir: join(dir, "nats") });
await nats.start();
const nc = await connect({ servers: nats.url, noAsyncTraces: true });
const log = createLogger({ level: "warn" });
const dns = await createDnsContext({ dns: { port: 0 }, sealer: Sealer.generate() })({ nc, log, dataDir: dir, trust: testTrust() });
const call = async (name: string, input: object) => {
  const id = newId();
  await dns.endpoints.find((e) => e.name === name)!.handle(input, { commandId: id, correlationId: id, causationId: id, actor: "bench", log });
};
await call("zone.import", { zone: "bench.test", text: zoneText });
const port = dns.server!.port;
await ready(port, "cim-realm", false);
console.log(`cim-realm ${port} (unsigned): dnsperf ${SECONDS} s ...`);
const realmPlain = await dnsperf(port, { ...load, dnssec: false });
await call("dnssec.enable", { zone: "bench.test" });
await ready(port, "cim-realm", true);
console.log(`cim-realm ${port} (signed, DO): dnsperf ${SECONDS} s (the first pass over the mix signs; later ones hit the caches) ...`);
const realmSigned = await dnsperf(port, { ...load, dnssec: true });
await dns.stop?.();
await nc.close();
await nats.stop();
rmSync(dir, { recursive: true, force: true });

// --- signatures per second (node:crypto), one A RRset ---
function signRate(alg: 13 | 15): number {
  const key = generateKey(alg);
  const rdata = [Buffer.from([10, 0, 0, 5])];
  const n = 3000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) signRRset(`host${i}.bench.test.`, 1, 3600, rdata, "bench.test.", { tag: 1, algorithm: alg, key }, { inception: 0, expiration: 1 });
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

row(`knot ${knotVersion} unsigned, no DO (${cores} UDP workers)`, knotPlain);
row(`knot ${knotVersion} signed (dnssec-signing: on), DO`, knotSigned, knotPlain);
row("cim-realm unsigned, no DO (1 Node process)", realmPlain);
row("cim-realm signed online, DO (1 Node process)", realmSigned, realmPlain);
console.log(`\nDNSSEC, dnsperf ${SECONDS} s, ${queries} query mix over a zone of ${HOSTS * 2 + 7} records, ${values.clients} dnsperf clients, ${cores} cores`);
console.table(rows);
console.log(`cim-realm signed / knot signed: ${((realmSigned.qps / knotSigned.qps) * 100).toFixed(1)} %`);
console.log(`signatures per second, one core (node:crypto): algorithm 13 ${Math.round(signRate(13))}, algorithm 15 ${Math.round(signRate(15))}`);
