/**
 * Beyond one machine (issue 14): event append throughput on R1 vs R3 streams of a 3-node nats-server
 * cluster (the kernel's append, with its fork check on 2.9.10, beside a raw guarded js.publish), the write
 * outage when the stream leader is SIGKILLed under load, and the replication lag to a leaf-node site's
 * mirror (beside a consumer on the hub itself). Every row in one run, on loopback.
 *   npx tsx bench/cluster.bench.ts [--events 5000] [--concurrency 32] [--lag-events 500]
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { DeliverPolicy, jetstream, jetstreamManager, StorageType, type JetStreamManager } from "@nats-io/jetstream";
import { EventStore, newId, provisionEventStream, type AggregatePosition } from "../services/kernel/index.js";
import { freePort } from "../services/nats/supervisor.js";
import { streamName } from "../services/kernel/subjects.js";
import { startCluster } from "../test/support/nats-cluster.js";
import { testTrust } from "../test/support/trust.js";

const { values } = parseArgs({ options: { events: { type: "string", default: "5000" }, concurrency: { type: "string", default: "32" }, "lag-events": { type: "string", default: "500" } } });
const N = Number(values.events);
const C = Number(values.concurrency);
const L = Number(values["lag-events"]);
const payload = { zone: "example.com", name: "www", type: "A", ttl: 300, value: "192.0.2.10" };
const trust = testTrust(["r1", "r3", "outage", "lag"]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;
const rate = (n: number, ms: number) => Math.round(n / (ms / 1000));

async function pool(total: number, workers: number, job: (w: number) => Promise<void>): Promise<number> {
  const per = Math.ceil(total / workers);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: workers }, async (_, w) => {
    for (let i = 0; i < per && w * per + i < total; i++) await job(w);
  }));
  return performance.now() - t0;
}

async function kernelAppends(nc: NatsConnection, context: "r1" | "r3"): Promise<number> {
  const store = await EventStore.open(nc, context, { trust, replicas: context === "r3" ? 3 : 1 });
  const pos: AggregatePosition[] = Array.from({ length: C }, () => ({ version: 0, lastSeq: 0, lastCid: null }));
  return rate(N, await pool(N, C, async (w) => {
    pos[w] = (await store.append({ type: "record", id: `w${w}` }, pos[w]!, [{ type: "RecordAdded", data: payload }], { commandId: newId(), actor: "bench" })).position;
  }));
}

async function rawGuarded(nc: NatsConnection, jsm: JetStreamManager, replicas: number): Promise<number> {
  const name = `RAW${replicas}`;
  await jsm.streams.add({ name, subjects: [`raw${replicas}.>`], storage: StorageType.File, num_replicas: replicas });
  const js = jetstream(nc);
  const last: number[] = Array(C).fill(0);
  const body = JSON.stringify({ id: newId(), data: payload, pad: "x".repeat(600) });
  return rate(N, await pool(N, C, async (w) => {
    last[w] = (await js.publish(`raw${replicas}.w${w}`, body, { msgID: newId(), expect: { lastSubjectSequence: last[w]! } })).seq;
  }));
}

// --- R1 vs R3 on one 3-node cluster, then the leader loss
const cluster = await startCluster(3);
const nc = await cluster.connect({ noAsyncTraces: true, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
const jsm = await jetstreamManager(nc);
const serverVersion = nc.info?.version ?? "?";
const r1 = await kernelAppends(nc, "r1");
const r3 = await kernelAppends(nc, "r3");
const raw1 = await rawGuarded(nc, jsm, 1);
const raw3 = await rawGuarded(nc, jsm, 3);

// Write outage: 8 writers append in a loop (retrying what fails) while the stream leader is SIGKILLed.
await provisionEventStream(jsm, "outage", { replicas: 3 });
const outageStore = await EventStore.open(nc, "outage", { trust });
const acks: number[] = [];
let running = true;
const writers = Array.from({ length: 8 }, async (_, w) => {
  let pos: AggregatePosition = { version: 0, lastSeq: 0, lastCid: null };
  while (running) {
    try {
      pos = (await outageStore.append({ type: "record", id: `w${w}` }, pos, [{ type: "RecordAdded", data: payload }], { commandId: newId(), actor: "bench" })).position;
      acks.push(Date.now());
    } catch {
      // UNAVAILABLE or CONFLICT while the leader moves: read the aggregate's position again and go on.
      await sleep(50);
      try {
        const h = await outageStore.load({ type: "record", id: `w${w}` });
        pos = { version: h.version, lastSeq: h.lastSeq, lastCid: h.lastCid };
      } catch {
        /* still moving */
      }
    }
  }
});
await sleep(2_000);
const leader = (await jsm.streams.info(streamName("outage"))).cluster?.leader ?? "n1";
const killedAt = Date.now();
await cluster.kill(leader);
await sleep(12_000);
await cluster.start(leader);
await sleep(3_000);
running = false;
await Promise.all(writers);
const after = acks.filter((t) => t > killedAt).sort((a, b) => a - b);
const firstAck = (after[0] ?? Infinity) - killedAt;
let outage = firstAck;
let outageStart = 0;
for (let i = 1; i < after.length; i++) if (after[i]! - after[i - 1]! > outage) [outage, outageStart] = [after[i]! - after[i - 1]!, after[i - 1]! - killedAt];
await nc.close();
await cluster.stop();

// --- replication lag to a leaf-node site: a hub server and a site server (own JetStream domains), the
// site's stream a mirror of the hub's, as `realm up --hub` makes it.
const dir = mkdtempSync(join(tmpdir(), "realm-bench-leaf-"));
const [hubPort, leafPort, sitePort] = await Promise.all([freePort(), freePort(), freePort()]);
writeFileSync(join(dir, "hub.conf"), `server_name: hub\nlisten: 127.0.0.1:${hubPort}\njetstream { store_dir: "${join(dir, "hub")}", domain: hub }\nleafnodes { listen: 127.0.0.1:${leafPort} }\n`);
writeFileSync(join(dir, "site.conf"), `server_name: site\nlisten: 127.0.0.1:${sitePort}\njetstream { store_dir: "${join(dir, "site")}", domain: site }\nleafnodes { remotes: [ { url: "nats-leaf://127.0.0.1:${leafPort}" } ] }\n`);
const servers = [spawn("nats-server", ["-c", join(dir, "hub.conf")], { stdio: "ignore" }), spawn("nats-server", ["-c", join(dir, "site.conf")], { stdio: "ignore" })];
const connectRetry = async (port: number) => {
  for (let i = 0; ; i++) {
    try {
      return await connect({ servers: `127.0.0.1:${port}`, noAsyncTraces: true });
    } catch (err) {
      if (i > 50) throw err;
      await sleep(100);
    }
  }
};
const hub = await connectRetry(hubPort);
const site = await connectRetry(sitePort);
const stream = streamName("lag");
const hubJsm = await jetstreamManager(hub);
await provisionEventStream(hubJsm, "lag");
const siteJsm = await jetstreamManager(site);
for (let i = 0; ; i++) {
  try {
    await siteJsm.streams.add({ name: stream, storage: StorageType.File, mirror: { name: stream, external: { api: "$JS.hub.API", deliver: "" } } });
    break;
  } catch (err) {
    if (i > 50) throw err; // the leaf link is not up yet
    await sleep(100);
  }
}
const hubStore = await EventStore.open(hub, "lag", { trust });
const ackedAt = new Map<number, number>();
// Live followers (ordered consumers) of the site's mirror and of the hub's stream, noting when each event arrives.
const seenAt = (js: ReturnType<typeof jetstream>, fromSeq: number, until: number, into: Map<number, number>) =>
  (async () => {
    const consumer = await js.consumers.get(stream, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSeq });
    const messages = await consumer.consume({ max_messages: 1024 });
    for await (const m of messages) {
      into.set(m.seq, performance.now());
      if (m.seq >= until) break;
    }
    await messages.close().catch(() => undefined);
  })();
const firstSeq = (await hubJsm.streams.info(stream)).state.last_seq + 1;
const siteSeen = new Map<number, number>();
const hubSeen = new Map<number, number>();
const untilSeq = firstSeq + L - 1;
const watchers = [seenAt(jetstream(site), firstSeq, untilSeq, siteSeen), seenAt(jetstream(hub), firstSeq, untilSeq, hubSeen)];
let pos: AggregatePosition = { version: 0, lastSeq: 0, lastCid: null };
for (let i = 0; i < L; i++) {
  const r = await hubStore.append({ type: "record", id: "lag" }, pos, [{ type: "RecordAdded", data: payload }], { commandId: newId(), actor: "bench" });
  ackedAt.set(r.position.lastSeq, performance.now());
  pos = r.position;
  await sleep(5);
}
await Promise.race([Promise.all(watchers), sleep(30_000)]);
const lagOf = (seen: Map<number, number>) => [...ackedAt].map(([seq, t]) => (seen.get(seq) ?? NaN) - t).filter((x) => Number.isFinite(x));
const siteLag = lagOf(siteSeen);
const hubLag = lagOf(hubSeen);
await hub.close();
await site.close();
for (const s of servers) s.kill("SIGTERM");
rmSync(dir, { recursive: true, force: true });

const f = (x: number) => (Number.isFinite(x) ? x.toLocaleString("en-US", { maximumFractionDigits: 1 }) : "n/a");
console.log(`cluster bench: 3-node nats-server ${serverVersion} cluster on loopback, ${N} events, ${C} in flight; leaf lag over ${L} events (one every ~5 ms); node ${process.versions.node}`);
console.log("| what | R1 | R3 | reference |");
console.log("|---|---:|---:|---|");
console.log(`| kernel append, events/s | ${f(r1)} | ${f(r3)} | raw guarded js.publish R1 ${f(raw1)}, R3 ${f(raw3)} (msg-id + expected subject seq, no fork check) |`);
console.log(`| R3 / R1 | | ${f((100 * r3) / r1)}% | raw ${f((100 * raw3) / raw1)}% |`);
console.log(`| write outage after the stream leader (${leader}) was SIGKILLed | | ${f(outage)} ms | target < 10,000 ms; longest gap without an ack, from ${f(outageStart)} ms after the kill (first ack after the kill at ${f(firstAck)} ms; the node restarted at 12,000 ms); 8 writers, ${after.length} acks after the kill |`);
console.log(`| hub append -> seen on the site's mirror, p50 / p99 ms | | ${f(pct(siteLag, 50))} / ${f(pct(siteLag, 99))} | the hub's own consumer ${f(pct(hubLag, 50))} / ${f(pct(hubLag, 99))} (${siteLag.length}/${L} seen on the site) |`);
