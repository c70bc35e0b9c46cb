import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { v7 as uuidv7 } from "uuid";
import { EventStore, execute, Projection, RealmError, verifyRealm, WriteModel } from "../../services/kernel/index.js";
import { freePort } from "../../services/nats/supervisor.js";
import { startNats, type TestNats } from "../support/nats.js";
import { testTrust } from "../support/trust.js";
import { ledgerDecider, ledgersProjection, type Ledger } from "../fixtures/ledger.js";

const CONTEXT = "writemodel";
let nats: TestNats;
let monitor: string;
const trust = testTrust([CONTEXT]);
const meta = (actor = "test") => ({ commandId: uuidv7(), actor });

/** One writer process: its own connection, store, projection and write model. */
async function writer(recent?: number) {
  const store = await EventStore.open(await nats.connect(), CONTEXT, { trust });
  const projection = new Projection(store, ledgersProjection, { indexCommands: recent ? { recent } : true });
  await projection.start();
  const writes = new WriteModel(store, projection as Projection<unknown>);
  const view = (id: string): Ledger => projection.state.get(id) ?? ledgerDecider.initialState(id);
  return { store, projection, writes, run: (id: string, c: Parameters<typeof ledgerDecider.decide>[1], m = meta()) => writes.execute(ledgerDecider, view, id, c, m) };
}

/** JetStream API requests the server has answered so far (consumer creates, direct gets, stream info...). */
async function apiRequests(): Promise<number> {
  const jsz = (await (await fetch(`${monitor}/jsz`)).json()) as { api: { total: number } };
  return jsz.api.total;
}

beforeAll(async () => {
  const httpPort = await freePort();
  nats = await startNats({ httpPort });
  monitor = `http://127.0.0.1:${httpPort}`;
});
afterAll(async () => nats?.stop());

describe("write model: commands decided on the live projection", () => {
  it("40 concurrent commands on one aggregate all land, in one chain, in the order they were sent", async () => {
    const w = await writer();
    await w.run("acct-many", { type: "open" });
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => w.run("acct-many", { type: "deposit", amount: i + 1 })));
    expect(results.every((r) => !r.replayed)).toBe(true);
    expect(w.projection.state.get("acct-many")!.balance).toBe((40 * 41) / 2);
    const h = await w.store.load({ type: "ledger", id: "acct-many" });
    expect(h.events.map((e) => e.version)).toEqual(Array.from({ length: 41 }, (_, i) => i + 1));
    expect(h.events.slice(1).map((e) => (e.data as { amount: number }).amount)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    for (let i = 1; i < h.events.length; i++) expect(h.events[i]!.prev).toBe(h.events[i - 1]!.cid);
    const [report] = await verifyRealm(w.store.nc, trust, { contexts: [CONTEXT] });
    expect(report!.problems).toEqual([]);
    expect(report!.ok).toBe(true);
  });

  it("a command reads no history: its JetStream API cost is the same on an aggregate of 1 and of 2,000 events", async () => {
    const w = await writer();
    await w.run("acct-short", { type: "open" });
    await w.run("acct-long", { type: "open" });
    for (let i = 0; i < 2_000; i += 100) await Promise.all(Array.from({ length: 100 }, () => w.run("acct-long", { type: "deposit", amount: 1 })));
    const cost = async (id: string) => {
      const before = await apiRequests();
      await w.run(id, { type: "deposit", amount: 1 });
      return (await apiRequests()) - before;
    };
    const short = await cost("acct-short");
    const long = await cost("acct-long");
    expect(long).toBe(short);
    expect(long).toBe(0);
    // The history-loading path pays for the history: at least one API request per command.
    const before = await apiRequests();
    await execute(w.store, ledgerDecider, "acct-long", { type: "deposit", amount: 1 }, meta());
    expect((await apiRequests()) - before).toBeGreaterThan(0);
  });

  it("two writers on one aggregate: a conflict is decided again on the newer state, never lost or doubled", async () => {
    const a = await writer();
    const b = await writer();
    await a.run("acct-shared", { type: "open" });
    await b.projection.waitFor(await a.store.tailSeq({ type: "ledger", id: "acct-shared" }));
    await Promise.all([...Array.from({ length: 25 }, () => a.run("acct-shared", { type: "deposit", amount: 1 })), ...Array.from({ length: 25 }, () => b.run("acct-shared", { type: "deposit", amount: 2 }))]);
    const h = await a.store.load({ type: "ledger", id: "acct-shared" });
    expect(h.events).toHaveLength(51);
    await a.projection.waitFor(h.lastSeq);
    await b.projection.waitFor(h.lastSeq);
    expect(a.projection.state.get("acct-shared")!.balance).toBe(75);
    expect(b.projection.state.get("acct-shared")!.balance).toBe(75);
  });

  it("a decision made on stale state is refused by the invariant it now breaks", async () => {
    const a = await writer();
    const b = await writer();
    await a.run("acct-funds", { type: "open" });
    await a.run("acct-funds", { type: "deposit", amount: 10 });
    await b.projection.waitFor(await a.store.tailSeq({ type: "ledger", id: "acct-funds" }));
    // Both see 10; only one withdrawal of 10 can land.
    const out = await Promise.allSettled([a.run("acct-funds", { type: "withdraw", amount: 10 }), b.run("acct-funds", { type: "withdraw", amount: 10 })]);
    expect(out.filter((o) => o.status === "fulfilled")).toHaveLength(1);
    const refused = out.find((o) => o.status === "rejected") as PromiseRejectedResult;
    expect(refused.reason).toBeInstanceOf(RealmError);
    expect((refused.reason as RealmError).code).toBe("VALIDATION");
  });

  it("a resent command is answered from its events, once, from the exact index and from history", async () => {
    const w = await writer(3);
    await w.run("acct-retry", { type: "open" });
    const m = meta();
    const first = await w.run("acct-retry", { type: "deposit", amount: 5 }, m);
    const again = await w.run("acct-retry", { type: "deposit", amount: 5 }, { ...m });
    expect(again.replayed).toBe(true);
    expect(again.events.map((e) => e.id)).toEqual(first.events.map((e) => e.id));
    // Push the command out of the exact part of the index (it keeps 3): the Bloom filter says "maybe".
    for (let i = 0; i < 5; i++) await w.run("acct-retry", { type: "deposit", amount: 1 });
    expect(w.projection.commands!.lookup(first.events[0]!.id)).toBe("maybe");
    const late = await w.run("acct-retry", { type: "deposit", amount: 5 }, { ...m });
    expect(late.replayed).toBe(true);
    expect(late.events.map((e) => e.id)).toEqual(first.events.map((e) => e.id));
    // Concurrent resends of one command: one append, all answered with it.
    const m2 = meta();
    const same = await Promise.all(Array.from({ length: 5 }, () => w.run("acct-retry", { type: "deposit", amount: 7 }, { ...m2 })));
    expect(new Set(same.map((r) => r.events[0]!.id)).size).toBe(1);
    expect(same.filter((r) => !r.replayed)).toHaveLength(1);
    expect(w.projection.state.get("acct-retry")!.balance).toBe(5 + 5 + 7);
  });

  it("a resend that another writer's decider would refuse (its view already has the first attempt) is answered as a replay", async () => {
    const a = await writer();
    const b = await writer();
    const m = meta();
    const first = await a.run("acct-lag", { type: "open" }, m);
    await b.projection.waitFor(first.position.lastSeq);
    // The race seen across instances under failover: b's check of the command id ran before its projection
    // indexed the first attempt, the decision after. Make that check miss once.
    const index = b.projection.commands!;
    const lookup = index.lookup.bind(index);
    let missed = false;
    index.lookup = (id: string) => (missed ? lookup(id) : ((missed = true), undefined));
    const again = await b.run("acct-lag", { type: "open" }, { ...m });
    expect(missed).toBe(true);
    expect(again.replayed).toBe(true);
    expect(again.events.map((e) => e.id)).toEqual(first.events.map((e) => e.id));
    // A real refusal still is one (after the same catching up).
    await expect(b.run("acct-lag", { type: "open" })).rejects.toMatchObject({ code: "VALIDATION" });
  });

  it("refuses a projection that does not index command ids", async () => {
    const store = await EventStore.open(await nats.connect(), CONTEXT, { trust });
    const p = new Projection(store, ledgersProjection);
    expect(() => new WriteModel(store, p as Projection<unknown>)).toThrow(/index command ids/);
  });
});
