/**
 * Scale bench: how the realm's costs grow with the work, one table, every row measured in this run.
 *   npx tsx bench/scale.bench.ts [--sizes 1000,10000,100000,1000000] [--adds 300] [--zones 250]
 *
 * - record.add p50/p99 by zone size: the zone imported (through the uploads bucket) at that size, then
 *   `--adds` record.add commands one after another over NATS through the realm host (validation, policy
 *   off, write model, append, projection applied); the reference is the same on an empty zone.
 * - zone import: a generated master file of that many records, uploaded and imported (parsed, checked,
 *   appended in chunks, projection applied); the process's peak RSS while it runs.
 * - restart-to-ready by events in REALM_DNS: a new process's dns-names projection (command index on) from
 *   start() to live, from the newest snapshot; the reference is from event zero (every event verified).
 * - creds per second with their event (user.create one by one, user.createMany in one batch), beside bare
 *   @nats-io/jwt (nkeys.js keys; sign and format, no validation, no event).
 * One local nats-server (operator mode for the creds rows); 2 cores shared with it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import { createUser, encodeUser, fmtCreds } from "@nats-io/jwt";
import { fromSeed } from "@nats-io/nkeys";
import { NatsSupervisor } from "../services/nats/supervisor.js";
import { createLogger } from "../services/host/logger.js";
import { startHost } from "../services/host/host.js";
import { callRealm } from "../services/host/client.js";
import { EventStore, Projection, RealmTrust, newId, type AggregatePosition } from "../services/kernel/index.js";
import { createDnsContext } from "../dns/service.js";
import { nameProjection } from "../dns/projection.js";
import { uploadZoneFile } from "../dns/upload-client.js";
import { NatsAccounts } from "../identity/nats/service.js";
import { KeyStore } from "../identity/nats/keystore.js";
import { testTrust } from "../test/support/trust.js";
import { startOperatorNats } from "../test/support/realm-nats.js";
import { writeZoneFile } from "../test/support/zone-files.js";
import { appendMany } from "../test/kernel/support/bulk-append.js";
import { dnsRecordEvents } from "../test/kernel/support/dns-events.js";

const { values } = parseArgs({ options: { sizes: { type: "string", default: "1000,10000,100000,1000000" }, adds: { type: "string", default: "300" }, zones: { type: "string", default: "250" } } });
const SIZES = values.sizes.split(",").map(Number).filter((n) => n > 0).sort((a, b) => a - b);
const ADDS = Number(values.adds);
const LANES = Number(values.zones);
const label = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1000 ? `${n / 1000}k` : String(n));
const ms = (x: number) => (x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : x >= 100 ? `${Math.round(x)} ms` : `${x.toFixed(1)} ms`);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const progress = (s: string) => process.stderr.write(`${s}\n`);

/** Row name -> size -> cell. */
const table = new Map<string, Map<number, string>>();
const cell = (row: string, size: number, text: string) => {
  if (!table.has(row)) table.set(row, new Map());
  table.get(row)!.set(size, text);
};
const notes: string[] = [];

let peak = 0;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);

const work = mkdtempSync(join(tmpdir(), "realm-bench-scale-"));
try {
  await dnsRows();
  await restartRows();
  await credsRows();
} finally {
  clearInterval(sampler);
  rmSync(work, { recursive: true, force: true });
}

const cols = SIZES.map(label);
console.log(`| what | ${cols.map((c) => `at ${c}`).join(" | ")} |`);
console.log(`|---|${cols.map(() => "---").join("|")}|`);
for (const [row, cells] of table) console.log(`| ${row} | ${SIZES.map((s) => cells.get(s) ?? "-").join(" | ")} |`);
for (const n of notes) console.log(n);

/** record.add by zone size, and zone imports by file size, through the realm host over NATS. */
async function dnsRows(): Promise<void> {
  const nats = new NatsSupervisor({ dataDir: join(work, "dns-nats") });
  await nats.start();
  const nc = await connect({ servers: nats.url, noAsyncTraces: true });
  const log = createLogger({ level: "silent" });
  const dns = await createDnsContext({ dns: { port: 0 } })({ nc, log, dataDir: join(work, "dns-nats"), trust: testTrust() });
  const host = await startHost({ nc, contexts: [dns], log });
  const command = <T extends object>(name: string, input: object) => callRealm<T>(nc, `realm.dns.commands.${name}`, input, { timeoutMs: 15 * 60_000 });
  let added = 0;
  const adds = async (zone: string) => {
    const lat: number[] = [];
    for (let i = 0; i < ADDS; i++) {
      const t0 = performance.now();
      await command("record.add", { zone, name: `added${added++}`, type: "A", data: `192.0.2.${i % 250}` });
      lat.push(performance.now() - t0);
    }
    return { p50: pct(lat, 50), p99: pct(lat, 99) };
  };
  try {
    await command("zone.create", { zone: "empty.test.", ns: ["ns1.empty.test."] });
    await adds("empty.test."); // warm-up: JIT, connections, first appends
    const empty = await adds("empty.test.");
    notes.push(`record.add on an empty zone (reference): p50 ${ms(empty.p50)}, p99 ${ms(empty.p99)}`);
    let previous: string | undefined;
    for (const size of SIZES) {
      const zone = `z${label(size).toLowerCase()}.test.`;
      const file = join(work, `${zone}zone`);
      await writeZoneFile(file, { zone, hosts: size - 2, serial: 1 });
      if (previous) await command("zone.delete", { zone: previous });
      (globalThis as { gc?: () => void }).gc?.();
      peak = process.memoryUsage().rss;
      const t0 = performance.now();
      const up = await uploadZoneFile({ nats: nats.url }, zone, file);
      await command("zone.import", { zone, upload: up.name, sha256: up.sha256 });
      const took = performance.now() - t0;
      cell("zone import (upload + parse + check + append + applied)", size, `${ms(took)}, ${(up.bytes / 2 ** 20).toFixed(1)} MiB`);
      cell("zone import: peak RSS of the realm process", size, `${Math.round(peak / 2 ** 20)} MiB`);
      progress(`imported ${size} records in ${ms(took)}`);
      const r = await adds(zone);
      cell("record.add p50 / p99 (zone of this size)", size, `${ms(r.p50)} / ${ms(r.p99)}`);
      cell("record.add p50 vs empty zone", size, `${(r.p50 / empty.p50).toFixed(2)}x`);
      progress(`record.add at ${size}: p50 ${ms(r.p50)} p99 ${ms(r.p99)}`);
      previous = zone;
      rmSync(file, { force: true });
    }
  } finally {
    await host.stop();
    await dns.stop?.();
    await nc.close();
    await nats.stop();
  }
}

/** Restart-to-ready of the dns-names projection by events in REALM_DNS. */
async function restartRows(): Promise<void> {
  const dir = join(work, "restart-nats");
  const nats = new NatsSupervisor({ dataDir: dir });
  await nats.start();
  const conn = () => connect({ servers: nats.url, noAsyncTraces: true });
  const trust = testTrust();
  const nc = await conn();
  try {
    const store = await EventStore.open(nc, "dns", { trust });
    const max = SIZES[SIZES.length - 1]!;
    const gen = dnsRecordEvents(max, LANES);
    let positions: AggregatePosition[] | undefined;
    let appended = 0;
    const start = async (opts: { snapshots?: false; checkpoints?: false }, withKey: boolean) => {
      const t = withKey ? new RealmTrust(trust.doc, new Map([["dns", trust.signer("dns")]])) : new RealmTrust(trust.doc);
      const c = await conn();
      const p = new Projection(await EventStore.open(c, "dns", { trust: t }), nameProjection(), { indexCommands: true, ...opts, ...(opts.snapshots === false ? {} : { snapshots: { everyMessages: Number.MAX_SAFE_INTEGER } }) });
      const t0 = performance.now();
      await p.start();
      return { p, ms: performance.now() - t0, close: async () => (await p.stop(), await c.close()) };
    };
    for (const size of SIZES) {
      const delta = size - appended;
      const perLane = appended / LANES;
      const t0 = performance.now();
      const r = await appendMany(store, { ...gen, events: delta, ...(positions ? { from: positions } : {}), event: (lane, n) => gen.event(lane, perLane + n), onProgress: (n) => n % 100_000 === 0 && progress(`appended ${appended + n}`) });
      positions = r.positions;
      appended = size;
      progress(`${size} events in REALM_DNS (${Math.round(delta / ((performance.now() - t0) / 1000))} appends/s)`);
      if (size <= 100_000) {
        const zero = await start({ snapshots: false, checkpoints: false }, false);
        cell("restart to ready, from event zero (reference: every event verified)", size, ms(zero.ms));
        await zero.close();
      }
      // The context's own process takes a snapshot (it holds the key); a new process starts from it.
      const writer = await start({}, true);
      const taken = await writer.p.snapshot();
      await writer.close();
      const fresh = await start({}, false);
      cell("restart to ready, from the newest snapshot", size, `${ms(fresh.ms)}${fresh.p.resumedFrom ? "" : " (no snapshot!)"}`);
      if (taken) cell("snapshot: take (ingestion held) / size", size, `${ms(taken.ms)} (${ms(taken.holdMs ?? 0)}) / ${(taken.bytes / 2 ** 20).toFixed(1)} MiB`);
      await fresh.close();
      progress(`restart at ${size}: ${ms(fresh.ms)}`);
    }
  } finally {
    await nc.close();
    await nats.stop();
  }
}

/** Creds with their event, one by one and in a batch, beside bare @nats-io/jwt. */
async function credsRows(): Promise<void> {
  const realm = await startOperatorNats();
  const nc = await realm.connectAs("realm-identity");
  const svc = await NatsAccounts.open(nc, { dir: realm.paths.operator, realmTrust: realm.trust, sysCredsFile: realm.credsFile("realm-sys") });
  const meta = () => ({ commandId: newId(), actor: "bench" });
  const perms = { pub: { allow: ["bench.>"] }, sub: { allow: ["_INBOX.>"] } };
  try {
    await svc.createAccount({ name: "bench" }, meta());
    let n = 0;
    for (const size of SIZES.filter((s) => s <= 10_000)) {
      if (size <= 1000) {
        const t0 = performance.now();
        for (let i = 0; i < size; i++) await svc.createUser({ account: "bench", name: `one${n++}`, kind: "service", permissions: perms }, meta());
        cell("creds/s with their event, one by one (user.create)", size, `${Math.round(size / ((performance.now() - t0) / 1000))}/s`);
      }
      const t0 = performance.now();
      const batch = await svc.createUsers({ account: "bench", users: Array.from({ length: size }, () => ({ name: `b${n++}`, kind: "service" as const, permissions: perms })) }, meta());
      if (batch.issued !== size) throw new Error(`batch: ${batch.issued} of ${size} issued`);
      cell("creds/s with their event, in one batch (user.createMany)", size, `${Math.round(size / ((performance.now() - t0) / 1000))}/s`);
      progress(`creds batch of ${size} done`);
    }
    const acct = await svc.account("bench");
    const sk = fromSeed(new TextEncoder().encode(new KeyStore(realm.paths.operator).seed(acct.signingKeys[0]!.key)));
    const M = 200;
    const t0 = performance.now();
    for (let i = 0; i < M; i++) {
      const u = createUser();
      fmtCreds(await encodeUser(`ref${i}`, u, acct.publicKey, { pub: perms.pub, sub: perms.sub }, { signer: sk }), u);
    }
    notes.push(`bare @nats-io/jwt (reference: createUser + encodeUser + fmtCreds, nkeys.js keys, no validation, no event): ${Math.round(M / ((performance.now() - t0) / 1000))}/s`);
  } finally {
    await svc.close();
    await nc.close();
    await realm.stop();
  }
}
