import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { v7 as uuidv7 } from "uuid";
import { EventStore, execute, verifyChains, type EventEnvelope } from "../../services/kernel/index.js";
import { startNats, type TestNats } from "../support/nats.js";
import { ledgerDecider } from "../fixtures/ledger.js";

let nats: TestNats;
const meta = () => ({ commandId: uuidv7(), actor: "auditor-test" });

beforeAll(async () => {
  nats = await startNats();
});
afterAll(async () => nats?.stop());

async function seed(context: string) {
  const store = await EventStore.open(await nats.connect(), context);
  for (const id of ["a", "b", "c"]) {
    await execute(store, ledgerDecider, id, { type: "open" }, meta());
    for (let i = 1; i <= 3; i++) await execute(store, ledgerDecider, id, { type: "deposit", amount: i }, meta());
  }
  return store;
}

/**
 * Rewrites history the way someone with stream write access could: read every message, purge the stream,
 * publish everything again in the same order with one event altered.
 */
async function replaceStored(store: EventStore, seq: number, change: (e: EventEnvelope) => EventEnvelope) {
  const all: { seq: number; subject: string; data: Uint8Array; headers: [string, string[]][] }[] = [];
  const last = await store.lastSequence();
  for (let s = 1; s <= last; s++) {
    const m = await store.jsm.streams.getMessage(store.stream, { seq: s });
    if (m) all.push({ seq: s, subject: m.subject, data: m.data, headers: m.header ? [...m.header] : [] });
  }
  await store.jsm.streams.purge(store.stream);
  for (const m of all) {
    const h = natsHeaders();
    for (const [k, v] of m.headers) if (!k.startsWith("Nats-")) for (const x of v) h.append(k, x);
    const data = m.seq === seq ? JSON.stringify(change(JSON.parse(new TextDecoder().decode(m.data)) as EventEnvelope)) : m.data;
    await store.js.publish(m.subject, data, { headers: h });
  }
}

describe("realm audit verify", () => {
  it("passes on an untouched stream", async () => {
    const store = await seed("auditok");
    const r = await verifyChains(store);
    expect(r).toMatchObject({ ok: true, events: 12, aggregates: 3, firstBreak: null });
  });

  it("fails on the exact event whose payload was altered", async () => {
    const store = await seed("audittamper");
    const h = await store.load({ type: "ledger", id: "b" });
    const victim = h.events[2]!; // b's second deposit
    // find the victim's stream sequence
    let seq = 0;
    for await (const s of store.read()) if (s.event.id === victim.id) seq = s.seq;
    expect(seq).toBeGreaterThan(0);
    await replaceStored(store, seq, (e) => ({ ...e, data: { amount: 1_000_000 } }));
    const r = await verifyChains(store);
    expect(r.ok).toBe(false);
    expect(r.firstBreak?.eventId).toBe(victim.id);
    expect(r.firstBreak?.reason).toBe("altered");
    expect(r.firstBreak?.message).toContain(victim.id);
  });

  it("fails at the event after a missing one", async () => {
    const store = await seed("auditmissing");
    const stored: { seq: number; event: EventEnvelope }[] = [];
    for await (const s of store.read()) stored.push(s);
    const cEvents = stored.filter((s) => s.event.aggregate.id === "c");
    await store.jsm.streams.deleteMessage(store.stream, cEvents[1]!.seq);
    const r = await verifyChains(store);
    expect(r.ok).toBe(false);
    expect(r.firstBreak).toMatchObject({ eventId: cEvents[2]!.event.id, reason: "missing-or-reordered" });
  });

  it("detects an altered event even when its cid was recomputed (the chain link breaks)", async () => {
    const store = await seed("auditrecid");
    const stored: { seq: number; event: EventEnvelope }[] = [];
    for await (const s of store.read()) stored.push(s);
    const aEvents = stored.filter((s) => s.event.aggregate.id === "a");
    const { seal } = await import("../../services/kernel/envelope.js");
    await replaceStored(store, aEvents[1]!.seq, (e) => {
      const { cid: _cid, ...rest } = e;
      return seal({ ...rest, data: { amount: 999 } });
    });
    const r = await verifyChains(store);
    expect(r.ok).toBe(false);
    // The forged event verifies on its own; the next event of "a" no longer links to it.
    expect(r.firstBreak).toMatchObject({ eventId: aEvents[2]!.event.id, reason: "missing-or-reordered" });
  });
});
