import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { v7 as uuidv7 } from "uuid";
import {
  Auditor,
  CheckpointEvents,
  EventStore,
  LegacyStreamDigest,
  Projection,
  RealmTrust,
  StreamDigest,
  verifyRealm,
  type CheckpointData,
  type DigestResumePoint,
} from "../../services/kernel/index.js";
import { SEGMENT_BYTES, SEGMENT_MESSAGES } from "../../services/kernel/stream-digest.js";
import { startNats, type TestNats } from "../support/nats.js";
import { testTrust } from "../support/trust.js";
import { balancesProjection, ledgerDecider } from "../fixtures/ledger.js";
import { appendMany } from "./support/bulk-append.js";

describe("the segmented stream digest", () => {
  const messages = Array.from({ length: 3 * SEGMENT_MESSAGES + 77 }, (_, i) => ({ seq: i * 2 + 1, data: randomBytes(i % 97) }));

  it("goes on from its resume point at any message as if it had read everything before", () => {
    const full = new StreamDigest();
    const at: { hex: string; resume: DigestResumePoint }[] = [];
    for (const m of messages) {
      full.update(m.seq, m.data);
      at.push({ hex: full.hex, resume: full.resumePoint });
    }
    for (const cut of [0, 1, SEGMENT_MESSAGES - 1, SEGMENT_MESSAGES, SEGMENT_MESSAGES + 1, 2 * SEGMENT_MESSAGES + 500, messages.length - 1]) {
      const d = new StreamDigest();
      d.resumeAt(at[cut]!.resume);
      // The open segment is read again (what a snapshot's loader does), then the tail.
      const replay = messages.filter((m) => m.seq > at[cut]!.resume.afterSeq);
      for (const m of replay) {
        d.update(m.seq, m.data);
        if (m.seq === messages[cut]!.seq) expect(d.hex).toBe(at[cut]!.hex);
      }
      expect(d.hex).toBe(full.hex);
      expect(replay.length - (messages.length - 1 - cut)).toBeLessThanOrEqual(SEGMENT_MESSAGES);
    }
  });

  it("closes a segment at a byte budget too, and differs from the version-1 digest", () => {
    const big = Array.from({ length: 6 }, (_, i) => ({ seq: i + 1, data: Buffer.alloc(SEGMENT_BYTES / 2, i) }));
    const d = new StreamDigest();
    const legacy = new LegacyStreamDigest();
    for (const m of big) {
      d.update(m.seq, m.data);
      legacy.update(m.seq, m.data);
    }
    expect(d.resumePoint.afterSeq).toBe(4); // two messages of half the budget fill a segment
    expect(d.hex).not.toBe(legacy.hex);
    expect(() => d.resumeAt({ chain: "zz", afterSeq: 1 })).toThrow(TypeError);
  });
});

describe("checkpoints of both digest versions", () => {
  let nats: TestNats;
  const trust = testTrust(["legacycp"]);
  beforeAll(async () => {
    nats = await startNats();
  });
  afterAll(async () => nats?.stop());

  /** A checkpoint as an auditor from before the segmented digest wrote it: no digestVersion, version-1 digest. */
  async function legacyCheckpoint(store: EventStore, alter = false): Promise<CheckpointData> {
    const d = new LegacyStreamDigest();
    let seq = 0;
    let messages = 0;
    for await (const m of store.read()) {
      d.update(m.seq, m.data);
      seq = m.seq;
      messages++;
    }
    const data: CheckpointData = { stream: store.stream, seq, digest: alter ? "0".repeat(64) : d.hex, headCid: null, messages, quarantined: [], complete: true, at: new Date().toISOString() };
    const realm = await EventStore.open(store.nc, "realm", { trust });
    const ref = { type: "checkpoint", id: store.stream };
    await realm.append(ref, await realm.position(ref), [{ type: CheckpointEvents.checkpointed, data }], { commandId: uuidv7(), actor: "realm-auditor" });
    return data;
  }

  it("audit verify checks a version-1 checkpoint with the version-1 digest and a new one with the new; a projection does not take the old one for a mismatch", async () => {
    const nc = await nats.connect();
    const store = await EventStore.open(nc, "legacycp", { trust });
    const first = await appendMany(store, { events: 1500, lanes: 8, aggregate: (l) => ({ type: ledgerDecider.aggregateType, id: `l${l}` }), event: (_l, n) => (n === 0 ? { type: "LedgerOpened", data: {} } : { type: "Deposited", data: { amount: 1 } }) });
    await legacyCheckpoint(store);
    // The projection's fast path cannot compare a version-1 digest: it verifies every event and is not degraded.
    const cold = new RealmTrust(trust.doc);
    const p = new Projection(await EventStore.open(nc, "legacycp", { trust: cold }), balancesProjection);
    await p.start();
    expect(p.degraded).toBe(false);
    expect(cold.verifier.verifications).toBeGreaterThan(1);
    await p.stop();
    // The auditor then writes a checkpoint of the current definition after more events.
    await appendMany(store, { events: 300, lanes: 8, from: first.positions, aggregate: (l) => ({ type: ledgerDecider.aggregateType, id: `l${l}` }), event: () => ({ type: "Deposited", data: { amount: 2 } }) });
    const auditor = await Auditor.start(nc, trust, { snapshots: false });
    const [cp] = await auditor.checkpoint("legacycp");
    await auditor.stop();
    expect(cp).toMatchObject({ seq: 1800, digestVersion: 2 });
    const [ok] = await verifyRealm(nc, trust, { contexts: ["legacycp"] });
    expect(ok!.problems).toEqual([]);
    expect(ok).toMatchObject({ ok: true, checkpoint: { seq: 1800, matched: true } });
    // A version-1 checkpoint is still checked, not skipped: one whose digest differs is reported.
    await legacyCheckpoint(store, true);
    const [bad] = await verifyRealm(nc, trust, { contexts: ["legacycp"] });
    expect(bad!.ok).toBe(false);
    expect(bad!.problems).toEqual([expect.objectContaining({ reason: "checkpoint-mismatch", seq: 1800 })]);
  });
});
