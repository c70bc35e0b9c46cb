import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Auditor,
  chunkHash,
  eventIdFor,
  EventStore,
  generateTrust,
  Projection,
  RealmTrust,
  RecordChunker,
  recordsOf,
  signManifest,
  SNAPSHOT_SLOTS,
  SnapshotStore,
  verifyRealm,
  type EventSigningKey,
  type ProjectionDefinition,
  type SnapshotManifest,
} from "../../services/kernel/index.js";
import { SEGMENT_MESSAGES } from "../../services/kernel/stream-digest.js";
import { startNats, type TestNats } from "../support/nats.js";
import { testTrust } from "../support/trust.js";
import { ledgerDecider, ledgersProjection, type Ledger } from "../fixtures/ledger.js";
import { appendMany } from "./support/bulk-append.js";
import { followRealmZones } from "../../pki/realm-zones.js";

let nats: TestNats;
const contexts = ["snaptail", "snapforged", "snapcid", "snapversion", "snapmoving", "snapaudit"];
const trust = testTrust(contexts);

beforeAll(async () => {
  nats = await startNats();
});
afterAll(async () => nats?.stop());

/** The ledgers read model with a snapshot codec, counting what it folds. */
function ledgers(version = 1): ProjectionDefinition<Map<string, Ledger>> & { applied: number } {
  const def = {
    ...ledgersProjection,
    version,
    applied: 0,
    apply(m: Map<string, Ledger>, e: Parameters<typeof ledgersProjection.apply>[1]) {
      def.applied++;
      return ledgersProjection.apply(m, e);
    },
    snapshot: {
      encode: (m: Map<string, Ledger>) => m.values(),
      decode(records: Iterable<unknown>) {
        const m = new Map<string, Ledger>();
        for (const r of records) m.set((r as Ledger).id, r as Ledger);
        return m;
      },
    },
  };
  return def;
}

function log() {
  const lines: string[] = [];
  const push = (_: object, msg: string) => void lines.push(msg);
  return { lines, warn: push, error: push, info: push };
}

/** A store on its own connection and a fresh verifier cache: what a restarted process has. */
async function freshStore(context: string): Promise<EventStore> {
  return EventStore.open(await nats.connect(), context, { trust: new RealmTrust(trust.doc, new Map(trust.doc.writers.map((w) => [w.name, trust.signer(w.name)]))) });
}

/** Ledger events: the first of each lane opens it, the rest deposit 1..n. */
const ledgerEvents = (context: string, events: number, lanes = 16) => ({
  events,
  lanes,
  aggregate: (lane: number) => ({ type: ledgerDecider.aggregateType, id: `${context}-${lane}` }),
  event: (_lane: number, n: number) => (n === 0 ? { type: "LedgerOpened", data: {} } : { type: "Deposited", data: { amount: n } }),
});

/** The full rebuild to compare with: no snapshot, no checkpoint, every event verified. */
async function fullRebuild(context: string) {
  const p = new Projection(await freshStore(context), ledgersProjection, { indexCommands: true, checkpoints: false, snapshots: false });
  await p.start();
  await p.stop();
  return p;
}

/** Reads a stored snapshot back (manifest and body records) to forge variants of it. */
async function storedSnapshot(p: Projection<unknown>) {
  const bucket = (await SnapshotStore.open(p.store.nc, p.snapshots!.owner, { create: false }))!;
  for (const slot of SNAPSHOT_SLOTS) {
    const bytes = await bucket.manifest(p.snapshots!.prefix, slot);
    if (!bytes) continue;
    const manifest = JSON.parse(Buffer.from(bytes).toString()) as SnapshotManifest;
    const chunks: Uint8Array[] = [];
    for (let n = 0; n < manifest.chunks.length; n++) chunks.push((await bucket.chunk(p.snapshots!.prefix, slot, n))!);
    return { bucket, manifest, records: [...recordsOf(chunks)] };
  }
  throw new Error("no snapshot stored");
}

/** Writes a snapshot body and manifest into a slot as anyone who can write the bucket could. */
async function plant(bucket: SnapshotStore, prefix: string, base: SnapshotManifest, records: unknown[], key: EventSigningKey, change: Partial<SnapshotManifest> = {}) {
  const chunks: Buffer[] = [];
  const chunker = new RecordChunker(64 * 1024, (c) => chunks.push(c));
  for (const r of records) chunker.push(r);
  chunker.end();
  const { signer: _s, sig: _g, ...body } = base;
  const manifest = signManifest({ ...body, chunks: chunks.map(chunkHash), bytes: chunker.bytes, records: chunker.records, ...change }, key);
  const slot = manifest.slot as (typeof SNAPSHOT_SLOTS)[number];
  for (const [n, c] of chunks.entries()) await bucket.putChunk(prefix, slot, n, c);
  await bucket.putManifest(prefix, slot, Buffer.from(JSON.stringify(manifest)));
  for (const other of SNAPSHOT_SLOTS) if (other !== slot) await bucket.clear(prefix, other);
}

describe("projection snapshots", () => {
  it("a projection restarted after a snapshot folds only the tail and ends as a full rebuild does: state, heads, command index, digest", async () => {
    const context = "snaptail";
    const store = await freshStore(context);
    const before = await appendMany(store, ledgerEvents(context, 2 * SEGMENT_MESSAGES + 500));
    const first = new Projection(store, ledgers(), { indexCommands: true });
    await first.start();
    const taken = await first.snapshot();
    expect(taken).toMatchObject({ seq: 2 * SEGMENT_MESSAGES + 500, messages: 2 * SEGMENT_MESSAGES + 500 });
    await first.stop();
    // More events after the snapshot, on the same aggregates (their chains go on from the snapshot's heads).
    const after = await appendMany(store, { ...ledgerEvents(context, 700), from: before.positions, event: (_l, n) => ({ type: "Deposited", data: { amount: 1000 + n } }) });

    const def = ledgers();
    const restarted = new Projection(await freshStore(context), def, { indexCommands: true });
    await restarted.start();
    expect(restarted.resumedFrom?.seq).toBe(taken!.seq);
    expect(def.applied).toBe(700);
    expect(restarted.read).toBe(700);

    const full = await fullRebuild(context);
    expect(full.read).toBe(taken!.seq + 700);
    expect(restarted.state).toEqual(full.state);
    expect(restarted.lastSeq).toBe(full.lastSeq);
    expect(restarted.messages).toBe(full.messages);
    for (let lane = 0; lane < 16; lane++) expect(restarted.headOf({ type: "ledger", id: `${context}-${lane}` })).toEqual(full.headOf({ type: "ledger", id: `${context}-${lane}` }));
    // The command index answers alike for commands before and after the snapshot, and for an unknown one.
    const ids = [...before.commandIds.flat().slice(0, 50), ...before.commandIds.flat().slice(-50), ...after.commandIds.flat()].map((c) => eventIdFor(c, 0));
    for (const id of [...ids, eventIdFor("0190aaaa-0000-7000-8000-000000000000", 0)]) expect(restarted.commands!.lookup(id)).toEqual(full.commands!.lookup(id));
    expect(restarted.digest.hex).toBe(full.digest.hex);
    const { at: _a, ...cp } = restarted.checkpointData();
    const { at: _b, ...fullCp } = full.checkpointData();
    expect(cp).toEqual(fullCp);

    // The auditor (verifying every event) and audit verify agree with that digest at the same seq.
    const auditor = await Auditor.start(await nats.connect(), trust, { snapshots: false });
    const [written] = await auditor.checkpoint(context);
    await auditor.stop();
    expect(written).toMatchObject({ seq: restarted.lastSeq, digest: restarted.digest.hex, digestVersion: 2 });
    const [report] = await verifyRealm(store.nc, trust, { contexts: [context] });
    expect(report).toMatchObject({ ok: true, checkpoint: { seq: restarted.lastSeq, matched: true } });
    await restarted.stop();
  });

  it("a forged snapshot (state changed and signed by another key) is ignored: the projection rebuilds from zero, correct", async () => {
    const context = "snapforged";
    const store = await freshStore(context);
    await appendMany(store, ledgerEvents(context, 300, 4));
    const p = new Projection(store, ledgers(), { indexCommands: true });
    await p.start();
    await p.snapshot();
    await p.stop();
    const { bucket, manifest, records } = await storedSnapshot(p as Projection<unknown>);
    // Someone who may write the bucket doubles a balance and signs with a key of their own, then with the
    // key of another context of this realm: neither is the owner's key.
    const forged = records.map((r) => (typeof r === "object" && r !== null && !Array.isArray(r) && (r as Ledger).id === `${context}-0` ? { ...(r as Ledger), balance: 1_000_000 } : r));
    const rogue = generateTrust("rogue", [{ name: context, subjects: [`realm.${context}.events.>`] }]).signer(context);
    for (const key of [rogue, trust.signer("dns")]) {
      await plant(bucket, p.snapshots!.prefix, manifest, forged, key);
      const l = log();
      const def = ledgers();
      const again = new Projection(await freshStore(context), def, { indexCommands: true, log: l });
      await again.start();
      expect(again.resumedFrom).toBeUndefined();
      expect(def.applied).toBe(300);
      expect(again.state).toEqual((await fullRebuild(context)).state);
      expect(again.state.get(`${context}-0`)!.balance).not.toBe(1_000_000);
      expect(l.lines.some((m) => /snapshot .* ignored: its signature \(by .*\) is not by a key the trust document gives snapforged/.test(m))).toBe(true);
      await again.stop();
    }
  });

  it("a snapshot signed by the owner but bound to a CID the stream does not have at its seq is ignored", async () => {
    const context = "snapcid";
    const store = await freshStore(context);
    await appendMany(store, ledgerEvents(context, 200, 4));
    const p = new Projection(store, ledgers(), { indexCommands: true });
    await p.start();
    await p.snapshot();
    await p.stop();
    const { bucket, manifest, records } = await storedSnapshot(p as Projection<unknown>);
    const other = (await store.jsm.streams.getMessage(store.stream, { seq: 10 }))!;
    const otherCid = (JSON.parse(Buffer.from(other.data).toString()) as { cid: string }).cid;
    // A valid signature by the owner's own key, over a manifest that names another event at its seq.
    await plant(bucket, p.snapshots!.prefix, manifest, records, trust.signer(context), { headCid: otherCid });
    const l = log();
    const def = ledgers();
    const again = new Projection(await freshStore(context), def, { indexCommands: true, log: l });
    await again.start();
    expect(again.resumedFrom).toBeUndefined();
    expect(def.applied).toBe(200);
    expect(again.state).toEqual((await fullRebuild(context)).state);
    expect(l.lines.some((m) => m.includes(`the snapshot is bound to ${otherCid}`))).toBe(true);
    await again.stop();
    // And the one it was bound to, signed as it was: used.
    await plant(bucket, p.snapshots!.prefix, manifest, records, trust.signer(context));
    const good = new Projection(await freshStore(context), ledgers(), { indexCommands: true });
    await good.start();
    expect(good.resumedFrom?.seq).toBe(200);
    await good.stop();
  });

  it("a snapshot of an older projection version is ignored", async () => {
    const context = "snapversion";
    const store = await freshStore(context);
    await appendMany(store, ledgerEvents(context, 120, 4));
    const v1 = new Projection(store, ledgers(1), { indexCommands: true });
    await v1.start();
    await v1.snapshot();
    await v1.stop();
    const def = ledgers(2);
    const v2 = new Projection(await freshStore(context), def, { indexCommands: true });
    await v2.start();
    expect(v2.resumedFrom).toBeUndefined();
    expect(def.applied).toBe(120);
    await v2.stop();
    // Put under version 2's name, with its valid signature: it still says version 1.
    const { bucket, manifest, records } = await storedSnapshot(v1 as Projection<unknown>);
    await plant(bucket, v2.snapshots!.prefix, manifest, records, trust.signer(context));
    const l = log();
    const def2 = ledgers(2);
    const again = new Projection(await freshStore(context), def2, { indexCommands: true, log: l, snapshots: { everyMessages: 1e9 } });
    await again.start();
    expect(again.resumedFrom?.seq).toBeUndefined();
    expect(def2.applied).toBe(120);
    expect(l.lines.some((m) => m.includes("it is of projection ledgers v1, not ledgers v2"))).toBe(true);
    await again.stop();
  });

  it("events appended while a snapshot is taken wait for it, and the snapshot is of one position", async () => {
    const context = "snapmoving";
    const store = await freshStore(context);
    const before = await appendMany(store, ledgerEvents(context, 1500));
    const p = new Projection(store, ledgers(), { indexCommands: true, snapshots: { chunkBytes: 4096 } });
    await p.start();
    const [info] = await Promise.all([p.snapshot(), appendMany(store, { ...ledgerEvents(context, 400), from: before.positions, event: () => ({ type: "Deposited", data: { amount: 7 } }) })]);
    await p.waitFor(await store.lastSequence());
    expect(info!.chunks).toBeGreaterThan(1);
    // Resumed from that snapshot, the deposits after its seq are folded once: had the state moved past
    // the seq it names while it was encoded, they would count twice.
    const full = await fullRebuild(context);
    const l = log();
    const mid = new Projection(await freshStore(context), ledgers(), { indexCommands: true, log: l });
    await mid.start();
    expect(l.lines.filter((m) => /ignored/.test(m))).toEqual([]);
    expect(mid.resumedFrom?.seq).toBe(info!.seq);
    expect(mid.read).toBe(1900 - info!.seq);
    expect(mid.state).toEqual(full.state);
    await mid.stop();
    await p.stop(); // moved since its snapshot: a last one at stop, into the other slot
    expect(p.snapshots!.last!.seq).toBe(1900);
    expect(p.snapshots!.last!.slot).not.toBe(info!.slot);
    const again = new Projection(await freshStore(context), ledgers(), { indexCommands: true });
    await again.start();
    expect(again.resumedFrom).toMatchObject({ seq: 1900, slot: p.snapshots!.last!.slot });
    expect(again.read).toBe(0);
    expect(again.state).toEqual(full.state);
    await again.stop();
  });

  it("the auditor goes on from its own snapshot: it verifies only the tail, and its checkpoint agrees with audit verify", async () => {
    const context = "snapaudit";
    const store = await freshStore(context);
    const before = await appendMany(store, ledgerEvents(context, 1200, 4));
    const first = await Auditor.start(await nats.connect(), trust);
    await first.checkpoint(context);
    await first.stop(); // live and moved: a last snapshot of its projection, signed by the realm key
    await appendMany(store, { ...ledgerEvents(context, 40, 4), from: before.positions, event: () => ({ type: "Deposited", data: { amount: 3 } }) });
    const cold = new RealmTrust(trust.doc, new Map([["realm", trust.signer("realm")]]));
    const second = await Auditor.start(await nats.connect(), cold);
    const [cp] = await second.checkpoint(context);
    const followed = second.projections().find((p) => p.store.context === context)!;
    expect(followed.resumedFrom?.seq).toBe(1200);
    expect(followed.read).toBe(40);
    expect(followed.degraded).toBe(false);
    await second.stop();
    expect(cp).toMatchObject({ seq: 1240, messages: 1240 });
    const [report] = await verifyRealm(store.nc, trust, { contexts: [context] });
    expect(report).toMatchObject({ ok: true, checkpoint: { seq: 1240, matched: true } });
  });

  it("the PKI's projection of the DNS stream keeps its snapshots in the PKI's bucket, signed by the PKI's key", async () => {
    const dns = await EventStore.open(await nats.connect(), "dns", { trust });
    await appendMany(dns, { events: 30, lanes: 30, aggregate: (l) => ({ type: "zone", id: `z${l}.example.` }), event: () => ({ type: "ZoneCreated", data: {} }) });
    const zones = await followRealmZones(await nats.connect(), { trust });
    expect(zones.projection.snapshots!.owner).toBe("pki");
    const taken = await zones.projection.snapshot();
    expect(taken?.seq).toBe(30);
    await zones.stop();
    const again = await followRealmZones(await nats.connect(), { trust: new RealmTrust(trust.doc) });
    expect(again.projection.resumedFrom?.seq).toBe(30);
    expect(again.projection.read).toBe(0);
    expect(new Set(again.zones())).toEqual(new Set(Array.from({ length: 30 }, (_, l) => `z${l}.example.`)));
    await again.stop();
    expect(await SnapshotStore.open(dns.nc, "dns", { create: false })).toBeUndefined();
    expect(await SnapshotStore.open(dns.nc, "pki", { create: false })).toBeDefined();
  });
});
