/**
 * Kernel benchmark: event append throughput (every event sealed with Ed25519) and projection rebuild speed
 * (every event verified: from zero, and from the auditor's signed checkpoint), each beside the raw
 * JetStream operation it is built on, in the same run against the same local nats-server; and the cost of
 * one signature and one verification on this machine.
 *   npx tsx bench/kernel.bench.ts [--events 20000] [--concurrency 64]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { NatsSupervisor } from "../services/nats/supervisor.js";
import { Auditor, EventStore, Projection, RealmTrust, newId, readMessages, type AggregatePosition } from "../services/kernel/index.js";
import { testTrust } from "../test/support/trust.js";

const { values } = parseArgs({ options: { events: { type: "string", default: "20000" }, concurrency: { type: "string", default: "64" } } });
const N = Number(values.events);
const C = Number(values.concurrency);

const dir = mkdtempSync(join(tmpdir(), "realm-bench-kernel-"));
const nats = new NatsSupervisor({ dataDir: dir });
await nats.start();
// noAsyncTraces: the realm's services connect this way (no stack capture per request); both runs share the connection.
const nc = await connect({ servers: nats.url, noAsyncTraces: true });
const js = jetstream(nc);
const jsm = await jetstreamManager(nc);

const payload = { zone: "example.com", name: "www", type: "A", ttl: 300, value: "192.0.2.10" };
const trust = testTrust(["sample", "bench"]);

// The seal alone: one Ed25519 signature over a CID, one verification (node:crypto), per event.
const signer = trust.signer("bench");
const cidBytes = Buffer.from("bagaaierasords4njcts6vs7qvdjfcvgnume4hqohf65zsfguprqphs3icwea");
let t = performance.now();
let sig = "";
for (let i = 0; i < 5000; i++) sig = signer.sign(cidBytes);
const signUs = ((performance.now() - t) * 1000) / 5000;
const { createPublicKey, verify } = await import("node:crypto");
const pub = createPublicKey({ key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), Buffer.from(signer.publicKey, "base64url")]), format: "der", type: "spki" });
t = performance.now();
for (let i = 0; i < 5000; i++) verify(null, cidBytes, pub, Buffer.from(sig, "base64url"));
const verifyUs = ((performance.now() - t) * 1000) / 5000;

async function pool(total: number, workers: number, job: (worker: number, i: number) => Promise<void>): Promise<number> {
  const perWorker = Math.ceil(total / workers);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; i < perWorker && w * perWorker + i < total; i++) await job(w, i);
    }),
  );
  return performance.now() - t0;
}

// Raw JetStream: publish with an ack, the same payload wrapped as an envelope would be.
await jsm.streams.add({ name: "RAW", subjects: ["raw.>"], storage: StorageType.File });
const rawBody = JSON.stringify({ id: newId(), data: payload });
const rawMs = await pool(N, C, async (w) => {
  await js.publish(`raw.events.record.w${w}`, rawBody);
});

// Raw JetStream with the same guarantees the kernel gives: the same stored bytes and headers, a Nats-Msg-Id
// and an expected-last-subject-sequence per subject. The difference to the plain run is nats-server's cost
// of dedupe and optimistic concurrency; the difference to the kernel is the kernel's own work.
const sample = await (await EventStore.open(nc, "sample", { trust })).append({ type: "record", id: "sample" }, { version: 0, lastSeq: 0, lastCid: null }, [{ type: "RecordAdded", data: payload }], { commandId: newId(), actor: "bench" });
const sampleMsg = await jsm.streams.getMessage("REALM_SAMPLE", { seq: sample.position.lastSeq });
const sampleHeaders = [...(sampleMsg?.header ?? [])].filter(([k]) => !k.startsWith("Nats-"));
const lastRaw: number[] = Array(C).fill(0);
const rawGuardedMs = await pool(N, C, async (w) => {
  const h = natsHeaders();
  for (const [k, v] of sampleHeaders) h.set(k, v[0]!);
  const ack = await js.publish(`raw.guarded.record.w${w}`, sampleMsg!.data, { headers: h, msgID: newId(), expect: { lastSubjectSequence: lastRaw[w]! } });
  lastRaw[w] = ack.seq;
});

// Kernel: envelope + CID + prev chain, Nats-Msg-Id dedupe and expected-last-subject-sequence per aggregate.
const store = await EventStore.open(nc, "bench", { trust });
const positions: AggregatePosition[] = Array.from({ length: C }, () => ({ version: 0, lastSeq: 0, lastCid: null }));
const kernelMs = await pool(N, C, async (w) => {
  const r = await store.append({ type: "record", id: `w${w}` }, positions[w]!, [{ type: "RecordAdded", data: payload }], { commandId: newId(), actor: "bench" });
  positions[w] = r.position;
});

// Rebuild: a projection folding every event (JSON parse + apply) vs a raw ordered-consumer read.
const rawReadStart = performance.now();
let rawCount = 0;
const rawLast = (await jsm.streams.info("RAW")).state.last_seq;
for await (const m of readMessages(js, "RAW", { fromSeq: 1, untilSeq: rawLast })) {
  rawCount += m.data.length > 0 ? 1 : 0;
}
const rawReadMs = performance.now() - rawReadStart;

const counting = {
  name: "records-by-aggregate",
  version: 1,
  initial: () => new Map<string, number>(),
  apply: (m: Map<string, number>, e: { aggregate: { id: string } }) => m.set(e.aggregate.id, (m.get(e.aggregate.id) ?? 0) + 1),
};
// A fresh process's view (nothing verified yet): every event's signature checked.
const coldTrust = new RealmTrust(trust.doc);
const projection = new Projection(await EventStore.open(nc, "bench", { trust: coldTrust }), counting, { checkpoints: false });
const rebuild = await projection.rebuild();
const verified = coldTrust.verifier.verifications;
// The auditor checkpoints the stream; a fresh process then checks the digest instead of each signature.
const auditor = await Auditor.start(nc, trust);
await auditor.checkpoint("bench");
await auditor.stop();
const warmTrust = new RealmTrust(trust.doc);
const fromCheckpoint = await new Projection(await EventStore.open(nc, "bench", { trust: warmTrust }), counting).rebuild();

await nc.close();
await nats.stop();
rmSync(dir, { recursive: true, force: true });

const rate = (n: number, ms: number) => (n / ms) * 1000;
const rows = [
  ["append vs plain publish", rate(N, kernelMs), rate(N, rawMs), ">= 70% (signed)"],
  ["append vs guarded publish", rate(N, kernelMs), rate(N, rawGuardedMs), "(same bytes, headers, msg-id, expected seq)"],
  ["rebuild, all sigs verified", rate(rebuild.events, rebuild.ms), rate(rawCount, rawReadMs), `(${verified} Ed25519 verifications)`],
  ["rebuild from checkpoint", rate(fromCheckpoint.events, fromCheckpoint.ms), rate(rawCount, rawReadMs), `>= 50,000 events/s (${warmTrust.verifier.verifications} verifications)`],
] as const;
const fmt = (n: number) => Math.round(n).toLocaleString("en-US").padStart(10);
console.log(`kernel bench: ${N} events, ${C} writers in flight, one local nats-server ${nats.url}, node ${process.versions.node}, 1 client process`);
console.log(`${"events/s".padEnd(26)} ${"cim-realm".padStart(10)} ${"raw js".padStart(10)} ${"ratio".padStart(7)}  target`);
for (const [name, ours, raw, target] of rows) console.log(`${name.padEnd(26)} ${fmt(ours)} ${fmt(raw)} ${((ours / raw) * 100).toFixed(0).padStart(6)}%  ${target}`);
const appendOk = rate(N, kernelMs) >= 0.7 * rate(N, rawMs);
const rebuildOk = rate(fromCheckpoint.events, fromCheckpoint.ms) >= 50_000;
const seals = store.sealStats;
console.log(`seal cost: Ed25519 sign ${signUs.toFixed(1)} us, verify ${verifyUs.toFixed(1)} us (node:crypto, one core); the appends above made ${seals.signatures} signatures for ${seals.sealed} events (batch seals, ${(seals.sealed / Math.max(1, seals.signatures)).toFixed(1)} events per signature, ${((seals.signatures * signUs) / seals.sealed).toFixed(1)} us of signing per event); a verified read checks each signature once per process (cached by CID / batch root)`);
console.log(`append target (70% of plain publish): ${appendOk ? "met" : "MISSED"}; rebuild target: ${rebuildOk ? "met" : "MISSED"}`);
