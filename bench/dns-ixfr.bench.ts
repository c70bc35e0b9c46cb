/**
 * What IXFR saves a secondary: after one record change in a zone of N records, `kdig IXFR=<old serial>`
 * against `kdig AXFR` of the same zone from the realm (bytes, records, wall time, median of 5); and the cost
 * of one response-rate-limiting decision (ns per decision over 1,000,000, distinct and repeating sources).
 *   npx tsx bench/dns-ixfr.bench.ts [--records 100000]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { execFile } from "node:child_process";
import { connect } from "@nats-io/transport-node";
import { NatsSupervisor } from "../services/nats/supervisor.js";
import { createLogger } from "../services/host/logger.js";
import { createDnsContext } from "../dns/service.js";
import { newId } from "../services/kernel/index.js";
import { testTrust } from "../test/support/trust.js";
import { ResponseRateLimiter } from "../dns/server/rrl.js";

const run = promisify(execFile);
const { values } = parseArgs({ options: { records: { type: "string", default: "100000" } } });
const N = Number(values.records);
const dir = mkdtempSync(join(tmpdir(), "realm-bench-ixfr-"));
const zoneText = ["$ORIGIN big.test.", "$TTL 3600", "@ IN SOA ns1 hostmaster 1 7200 900 1209600 300", "@ IN NS ns1", "ns1 IN A 192.0.2.1", ...Array.from({ length: N }, (_, i) => `h${i} IN A 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`), ""].join("\n");

const nats = new NatsSupervisor({ dataDir: join(dir, "nats") });
await nats.start();
const nc = await connect({ servers: nats.url, noAsyncTraces: true });
const log = createLogger({ level: "warn" });
const dns = await createDnsContext({ dns: { port: 0 } })({ nc, log, dataDir: dir, trust: testTrust() });
const call = async (name: string, input: unknown) => {
  const id = newId();
  return dns.endpoints.find((e) => e.name === name)!.handle(input, { commandId: id, correlationId: id, causationId: id, actor: "bench", log }) as Promise<{ serial: number }>;
};
await call("zone.import", { zone: "big.test", text: zoneText });
const before = (await call("record.add", { name: "a.big.test.", type: "A", data: "192.0.2.2" })).serial;
await call("record.set", { name: "a.big.test.", type: "A", data: ["192.0.2.3"] });
const port = dns.server!.port;

async function transfer(kind: string): Promise<{ ms: number; bytes: number; records: number }> {
  const times: number[] = [];
  let last = "";
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    last = (await run("kdig", ["@127.0.0.1", "-p", String(port), "big.test", kind], { maxBuffer: 1 << 28 })).stdout;
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const m = /Received (\d+) B \(\d+ messages, (\d+) records\)/.exec(last);
  return { ms: times[2]!, bytes: Number(m?.[1] ?? 0), records: Number(m?.[2] ?? 0) };
}
const ixfr = await transfer(`IXFR=${before}`);
const axfr = await transfer("AXFR");
console.log(`zone of ${N} records, a secondary one change (one serial step) behind:`);
console.log(`  IXFR=${before}: ${ixfr.records} records, ${ixfr.bytes} B, ${ixfr.ms.toFixed(1)} ms (kdig wall, median of 5)`);
console.log(`  AXFR:        ${axfr.records} records, ${axfr.bytes} B, ${axfr.ms.toFixed(1)} ms`);
console.log(`  IXFR is ${(axfr.bytes / Math.max(1, ixfr.bytes)).toFixed(0)}x fewer bytes`);

for (const [what, addr] of [["one source", (_: number) => "192.0.2.7"], ["1,000,000 distinct /24s", (i: number) => `${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}.1`]] as const) {
  const rl = new ResponseRateLimiter({ rate: 20 });
  const t = performance.now();
  for (let i = 0; i < 1_000_000; i++) rl.decide(addr(i));
  console.log(`RRL decision, ${what}: ${(((performance.now() - t) * 1e6) / 1_000_000).toFixed(0)} ns each`);
}

await dns.stop?.();
await nc.close();
await nats.stop();
rmSync(dir, { recursive: true, force: true });
