import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { v7 as uuidv7 } from "uuid";
import { EventStore, execute, executeNew, fold, RealmError, verifyCid, Projection, type EventEnvelope } from "../../services/kernel/index.js";
import { startNats, type TestNats } from "../support/nats.js";
import { testTrust } from "../support/trust.js";
import { balancesProjection, ledgerDecider } from "../fixtures/ledger.js";

let nats: TestNats;
let store: EventStore;
const meta = (actor = "test") => ({ commandId: uuidv7(), actor });

beforeAll(async () => {
  nats = await startNats();
  store = await EventStore.open(await nats.connect(), "kerneltest", { trust: testTrust(["kerneltest"]) });
});
afterAll(async () => nats?.stop());

describe("event store on JetStream", () => {
  it("appends, reads back and folds an aggregate", async () => {
    await execute(store, ledgerDecider, "acct-1", { type: "open" }, meta());
    await execute(store, ledgerDecider, "acct-1", { type: "deposit", amount: 50 }, meta());
    const r = await execute(store, ledgerDecider, "acct-1", { type: "withdraw", amount: 20 }, meta());
    expect(r.state.balance).toBe(30);
    const h = await store.load({ type: "ledger", id: "acct-1" });
    expect(h.events.map((e) => e.type)).toEqual(["LedgerOpened", "Deposited", "Withdrawn"]);
    expect(h.events.map((e) => e.version)).toEqual([1, 2, 3]);
    expect(h.events[0]!.prev).toBeNull();
    expect(h.events[1]!.prev).toBe(h.events[0]!.cid);
    expect(h.events.every(verifyCid)).toBe(true);
    expect(fold(ledgerDecider, "acct-1", h.events).balance).toBe(30);
    expect(h.events[0]!.cid).toMatch(/^bagaa/); // CIDv1, json codec, base32
  });

  it("executeNew appends a new aggregate without loading it, and falls back to execute when it exists", async () => {
    const m = meta();
    const first = await executeNew(store, ledgerDecider, "acct-new", { type: "open" }, m);
    expect(first.replayed).toBe(false);
    expect(first.position.version).toBe(1);
    // A retry of the same command after it landed is answered from the stored events.
    const again = await executeNew(store, ledgerDecider, "acct-new", { type: "open" }, { ...m, commandId: m.commandId });
    expect(again.replayed).toBe(true);
    expect(again.events[0]!.id).toBe(first.events[0]!.id);
    // A different command on an aggregate that exists is decided on its real state (here: refused).
    await expect(executeNew(store, ledgerDecider, "acct-new", { type: "open" }, meta())).rejects.toBeInstanceOf(RealmError);
    expect((await store.load({ type: "ledger", id: "acct-new" })).events).toHaveLength(1);
  });

  it("keeps root command ids as correlation and causation", async () => {
    const m = meta("alice");
    const r = await execute(store, ledgerDecider, "acct-corr", { type: "open" }, m);
    const e = r.events[0]!;
    expect(e.correlationId).toBe(m.commandId);
    expect(e.causationId).toBe(m.commandId);
    expect(e.actor).toBe("alice");
    const msg = await store.jsm.streams.getMessage(store.stream, { last_by_subj: store.subjectOf({ type: "ledger", id: "acct-corr" }) });
    expect(msg?.header?.get("Nats-Msg-Id")).toBe(e.id);
    // Nothing but what nats-server acts on travels unsealed beside the body.
    expect([...(msg?.header ?? [])].map(([k]) => k).sort()).toEqual(["Nats-Expected-Last-Subject-Sequence", "Nats-Msg-Id"]);
  });

  it("lets exactly one of two concurrent appends win; the other gets CONFLICT", async () => {
    await execute(store, ledgerDecider, "acct-race", { type: "open" }, meta());
    const pos = await store.position({ type: "ledger", id: "acct-race" });
    const results = await Promise.allSettled([
      store.append({ type: "ledger", id: "acct-race" }, pos, [{ type: "Deposited", data: { amount: 1 } }], meta()),
      store.append({ type: "ledger", id: "acct-race" }, pos, [{ type: "Deposited", data: { amount: 2 } }], meta()),
    ]);
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.reason).toBeInstanceOf(RealmError);
    expect((lost[0]!.reason as RealmError).code).toBe("CONFLICT");
    const h = await store.load({ type: "ledger", id: "acct-race" });
    expect(h.events).toHaveLength(2);
  });

  it("stores one event for a duplicated command id", async () => {
    await execute(store, ledgerDecider, "acct-dup", { type: "open" }, meta());
    const m = meta();
    const first = await execute(store, ledgerDecider, "acct-dup", { type: "deposit", amount: 5 }, m);
    const again = await execute(store, ledgerDecider, "acct-dup", { type: "deposit", amount: 5 }, m);
    expect(again.replayed).toBe(true);
    expect(again.events[0]!.id).toBe(first.events[0]!.id);
    // Two racing deliveries of the same command both pass the load and meet JetStream's Nats-Msg-Id dedupe.
    const pos = await store.position({ type: "ledger", id: "acct-dup" });
    const m2 = meta();
    await Promise.allSettled([
      store.append({ type: "ledger", id: "acct-dup" }, pos, [{ type: "Deposited", data: { amount: 7 } }], m2),
      store.append({ type: "ledger", id: "acct-dup" }, pos, [{ type: "Deposited", data: { amount: 7 } }], m2),
    ]);
    const h = await store.load({ type: "ledger", id: "acct-dup" });
    expect(h.events.map((e) => e.type)).toEqual(["LedgerOpened", "Deposited", "Deposited"]);
    expect(fold(ledgerDecider, "acct-dup", h.events).balance).toBe(12);
  });

  it("refuses a command the domain rejects, and stores nothing", async () => {
    await execute(store, ledgerDecider, "acct-rule", { type: "open" }, meta());
    await expect(execute(store, ledgerDecider, "acct-rule", { type: "withdraw", amount: 1 }, meta())).rejects.toMatchObject({ code: "VALIDATION" });
    expect((await store.load({ type: "ledger", id: "acct-rule" })).events).toHaveLength(1);
  });

  it("encodes aggregate ids that are not subject tokens", async () => {
    await execute(store, ledgerDecider, "example.com", { type: "open" }, meta());
    expect(store.subjectOf({ type: "ledger", id: "example.com" })).toBe("realm.kerneltest.events.ledger.example~2ecom");
    const h = await store.load({ type: "ledger", id: "example.com" });
    expect(h.events[0]!.aggregate.id).toBe("example.com");
  });
});

describe("projections", () => {
  const balances = balancesProjection;

  it("follows the stream live, and a rebuild from zero equals the live state", async () => {
    const live = new Projection(store, balances);
    await live.start();
    for (let i = 0; i < 20; i++) {
      const id = `p-${i % 4}`;
      if (i < 4) await execute(store, ledgerDecider, id, { type: "open" }, meta());
      const r = await execute(store, ledgerDecider, id, { type: "deposit", amount: i }, meta());
      await live.waitFor(r.position.lastSeq);
    }
    expect(live.state.get("p-1")).toBe(1 + 5 + 9 + 13 + 17);
    const rebuilt = new Projection(store, balances);
    const { events } = await rebuilt.rebuild();
    expect(events).toBe(await store.lastSequence());
    expect([...rebuilt.state.entries()].sort()).toEqual([...live.state.entries()].sort());
    expect(rebuilt.lastSeq).toBe(live.lastSeq);
    await live.stop();
  });

  it("quarantines an event it cannot apply, names it, and goes on", async () => {
    const broken = new Projection(store, {
      ...balances,
      name: "broken",
      apply(m: Map<string, number>, e: EventEnvelope) {
        if (e.type === "Withdrawn" && e.aggregate.id === "acct-broken") throw new Error("withdrawals not supported");
        return balances.apply(m, e);
      },
    });
    await execute(store, ledgerDecider, "acct-broken", { type: "open" }, meta());
    await execute(store, ledgerDecider, "acct-broken", { type: "deposit", amount: 3 }, meta());
    const w = await execute(store, ledgerDecider, "acct-broken", { type: "withdraw", amount: 1 }, meta());
    const later = await execute(store, ledgerDecider, "acct-broken", { type: "deposit", amount: 4 }, meta());
    await broken.start();
    expect(broken.status).toBe("live");
    expect(broken.lastSeq).toBeGreaterThanOrEqual(later.position.lastSeq);
    expect(broken.state.get("acct-broken")).toBe(7);
    const q = broken.quarantined.find((x) => x.eventId === w.events[0]!.id);
    expect(q).toMatchObject({ reason: "unapplicable", seq: w.position.lastSeq, projection: "broken" });
    expect(q!.message).toContain("withdrawals not supported");
    expect(broken.degraded).toBe(true);
    await broken.stop();
  });
});

describe("envelope", () => {
  it("writes the envelope's canonical JSON exactly as the general serializer does", async () => {
    const { canonicalEnvelope, canonicalJson, sealWithJson, eventIdFor } = await import("../../services/kernel/index.js");
    const u = {
      id: uuidv7(),
      type: "T\u00e9st",
      aggregate: { type: "zone", id: "exämple.com" },
      version: 3,
      occurredAt: new Date().toISOString(),
      actor: 'a"b',
      correlationId: uuidv7(),
      causationId: uuidv7(),
      data: { z: [1, { b: 2, a: null }], a: "x", u: undefined },
      prev: "bagaaiera",
    };
    expect(canonicalEnvelope(u)).toBe(canonicalJson(u));
    const t = testTrust(["zone"]);
    const { envelope, json } = sealWithJson(u, t.signer("zone"));
    expect(JSON.parse(json)).toEqual(JSON.parse(JSON.stringify(envelope)));
    expect(verifyCid(JSON.parse(json) as EventEnvelope)).toBe(true);
    const cmd = uuidv7();
    const ids = [0, 1, 2].map((n) => eventIdFor(cmd, n));
    expect(new Set(ids).size).toBe(3);
    for (const id of ids) {
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(id.slice(0, 13)).toBe(cmd.slice(0, 13));
    }
    expect(eventIdFor(cmd, 1)).toBe(ids[1]);
  });
});
