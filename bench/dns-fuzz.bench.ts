/**
 * DNS bad-input run: 1,000,000 random and mutated packets (truncated, compression loops, pointer chains,
 * huge counts, responses, odd opcodes, EDNS garbage) sent over UDP to the realm's DNS server from a worker
 * thread, with a real question every 5,000 packets that must be answered correctly; then dig over TCP.
 * The unit suite runs the full million through the query handler and 100,000 over UDP (test/dns/fuzz.test.ts).
 *   npx tsx bench/dns-fuzz.bench.ts [--packets 1000000]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { execFile } from "node:child_process";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import dgram from "node:dgram";
import * as dnsPacket from "dns-packet";
import { badPacket, query, rng } from "../test/dns/packets.js";
import { testTrust } from "../test/support/trust.js";

const run = promisify(execFile);

if (!isMainThread) {
  // Sender thread.
  const { port, packets } = workerData as { port: number; packets: number };
  const sock = dgram.createSocket("udp4");
  const next = rng(424242);
  let probes = 0;
  let wrong = 0;
  const probe = (id: number) =>
    new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => (sock.off("message", on), resolve(false)), 3000);
      const on = (m: Buffer) => {
        if (m.length < 2 || m.readUInt16BE(0) !== id) return;
        try {
          const p = dnsPacket.decode(m);
          if (p.questions?.[0]?.name !== "www.example.test") return;
          clearTimeout(timer);
          sock.off("message", on);
          resolve((p.answers ?? []).some((a) => (a as { data?: unknown }).data === "192.0.2.20"));
        } catch {
          /* a reply to a bad packet */
        }
      };
      sock.on("message", on);
      sock.send(query("www.example.test", "A", id), port, "127.0.0.1");
    });
  sock.bind(0, "127.0.0.1", async () => {
    sock.on("message", () => undefined);
    const t0 = performance.now();
    for (let n = 0; n < packets; n++) {
      sock.send(badPacket(next, n), port, "127.0.0.1");
      if (n % 5000 === 4999) {
        probes++;
        if (!(await probe(50000 + (probes % 10000)))) wrong++;
        parentPort!.postMessage({ progress: n + 1 });
      }
    }
    const ms = performance.now() - t0;
    sock.close();
    parentPort!.postMessage({ done: true, ms, probes, wrong });
  });
} else {
  const { values } = parseArgs({ options: { packets: { type: "string", default: "1000000" } } });
  const PACKETS = Number(values.packets);
  const { NatsSupervisor } = await import("../services/nats/supervisor.js");
  const { connect } = await import("@nats-io/transport-node");
  const { createLogger } = await import("../services/host/logger.js");
  const { createDnsContext } = await import("../dns/service.js");
  const { newId } = await import("../services/kernel/index.js");
  const { ZONE } = await import("../test/dns/harness.js");
  const dir = mkdtempSync(join(tmpdir(), "realm-bench-dnsfuzz-"));
  const nats = new NatsSupervisor({ dataDir: dir });
  await nats.start();
  const nc = await connect({ servers: nats.url });
  const log = createLogger({ level: "warn" });
  const dns = await createDnsContext({ dns: { port: 0 } })({ nc, log, dataDir: dir, trust: testTrust() });
  const id = newId();
  await dns.endpoints.find((e) => e.name === "zone.import")!.handle({ zone: "example.test", text: ZONE }, { commandId: id, correlationId: id, causationId: id, actor: "bench", log });
  const port = dns.server!.port;
  const result = await new Promise<{ ms: number; probes: number; wrong: number }>((resolve, reject) => {
    // The sender is this file again, in a thread: load it through tsx's loader (workers do not inherit it).
    const boot = `import { register } from ${JSON.stringify(import.meta.resolve("tsx/esm/api"))}; register(); await import(${JSON.stringify(import.meta.url)});`;
    const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(boot)}`), { workerData: { port, packets: PACKETS } });
    w.on("message", (m: { progress?: number; done?: boolean; ms: number; probes: number; wrong: number }) => {
      if (m.progress && m.progress % 100_000 === 0) process.stderr.write(`  ${m.progress.toLocaleString("en")} packets sent\n`);
      if (m.done) resolve(m);
    });
    w.on("error", reject);
  });
  const { stdout } = await run("dig", ["@127.0.0.1", "-p", String(port), "+tcp", "+short", "chain1.example.test", "A"]);
  const s = dns.server!.stats;
  console.table([
    {
      packets: PACKETS,
      "sent/s": Math.round(PACKETS / (result.ms / 1000)),
      "handled by server": s.queries,
      formerr: s.formerr,
      dropped: s.dropped,
      refused: s.refused,
      "probes ok": `${result.probes - result.wrong}/${result.probes}`,
      "dig after (TCP)": stdout.trim().split("\n").pop(),
    },
  ]);
  console.log("(UDP is lossy: 'handled' below 'packets' means the kernel dropped datagrams under load, not the server.)");
  await dns.stop?.();
  await nc.close();
  await nats.stop();
  rmSync(dir, { recursive: true, force: true });
  if (result.wrong > 0 || !stdout.includes("192.0.2.20")) process.exit(1);
}
