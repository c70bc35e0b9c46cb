/**
 * Restarts at scale: appends N synthetic name-domain events to REALM_DNS (signed and chained by the kernel's
 * own append), then times a dns-names projection (command index on, as the DNS context runs it) from
 * start() to ready: from zero verifying every event, from the auditor's checkpoint, from a snapshot, and
 * from a snapshot with a tail; and what taking the snapshot cost (ingestion held, bytes, chunks).
 *   NODE_OPTIONS=--max-old-space-size=8192 npx tsx test/kernel/support/snapshot-scale.ts [--events 1000000] [--zones 256] [--tail 10000] [--skip-full]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import { NatsSupervisor } from "../../../services/nats/supervisor.js";
import { Auditor, EventStore, Projection, RealmTrust, type ProjectionOptions } from "../../../services/kernel/index.js";
import { nameProjection } from "../../../dns/projection.js";
import { testTrust } from "../../support/trust.js";
import { appendMany } from "./bulk-append.js";
import { dnsRecordEvents } from "./dns-events.js";

const { values } = parseArgs({ options: { events: { type: "string", default: "1000000" }, zones: { type: "string", default: "256" }, tail: { type: "string", default: "10000" }, "skip-full": { type: "boolean", default: false } } });
const N = Number(values.events);
const Z = Number(values.zones);
const T = Number(values.tail);

const dir = mkdtempSync(join(tmpdir(), "realm-scale-"));
const nats = new NatsSupervisor({ dataDir: dir });
await nats.start();
const conn = () => connect({ servers: nats.url, noAsyncTraces: true });
const trust = testTrust();
const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const line = (what: string, text: string) => console.log(`${what.padEnd(44)} ${text}`);

try {
  const nc = await conn();
  const store = await EventStore.open(nc, "dns", { trust });
  const seeded = dnsRecordEvents(N, Z);
  const appended = await appendMany(store, { ...seeded, onProgress: (n) => n % 100_000 === 0 && process.stderr.write(`appended ${n}\n`) });
  line(`append ${N.toLocaleString("en-US")} events (${Z} zones in flight)`, `${s(appended.ms)} (${Math.round((N / appended.ms) * 1000).toLocaleString("en-US")} events/s)`);
  const info = await store.jsm.streams.info(store.stream);
  line("stream", `${info.state.messages.toLocaleString("en-US")} messages, ${mb(info.state.bytes)}`);

  /** A fresh process's view: its own connection, nothing verified yet (keys only where it writes snapshots). */
  const timedStart = async (what: string, opts: ProjectionOptions, withKeys = false) => {
    const t = withKeys ? new RealmTrust(trust.doc, new Map([["dns", trust.signer("dns")]])) : new RealmTrust(trust.doc);
    const p = new Projection(await EventStore.open(await conn(), "dns", { trust: t }), nameProjection(), { indexCommands: true, ...opts });
    const heap = process.memoryUsage().heapUsed;
    const t0 = performance.now();
    await p.start();
    const ms = performance.now() - t0;
    const from = p.resumedFrom ? `snapshot at seq ${p.resumedFrom.seq} (loaded in ${s(p.resumedFrom.ms)})` : "zero";
    line(what, `${s(ms)} to ready; from ${from}; read ${p.read.toLocaleString("en-US")} messages, ${t.verifier.verifications.toLocaleString("en-US")} Ed25519 verifications; heap +${mb(process.memoryUsage().heapUsed - heap)}`);
    return p;
  };

  if (!values["skip-full"]) await (await timedStart("start, no checkpoint, no snapshot", { checkpoints: false, snapshots: false })).stop();

  const a0 = performance.now();
  const auditor = await Auditor.start(await conn(), trust, { snapshots: false });
  await auditor.checkpoint("dns");
  await auditor.stop();
  line("auditor: verify all, checkpoint", s(performance.now() - a0));

  const writer = await timedStart("start from the checkpoint, no snapshot", { snapshots: { everyMessages: Number.MAX_SAFE_INTEGER } }, true);
  const taken = (await writer.snapshot())!;
  line("take a snapshot", `${s(taken.ms)} in all, ingestion held ${s(taken.holdMs!)}; ${taken.records.toLocaleString("en-US")} records, ${mb(taken.bytes)} in ${taken.chunks} chunks`);
  await writer.stop();

  await (await timedStart("start from the snapshot", {})).stop();

  const tail = dnsRecordEvents(N + T, Z);
  // The same zones go on: new positions are where the seeding left them.
  const more = await appendMany(store, { ...tail, events: T, from: appended.positions, event: (lane, n) => tail.event(lane, Math.ceil(N / Z) + n) });
  line(`append a tail of ${T.toLocaleString("en-US")}`, s(more.ms));
  await (await timedStart("start from the snapshot, with that tail", {})).stop();
  await nc.close();
} finally {
  await nats.stop();
  rmSync(dir, { recursive: true, force: true });
}
