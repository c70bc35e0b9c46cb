import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { v7 as uuidv7 } from "uuid";
import { Auditor, EventStore, eventStreamConfig, execute, seal, sealWithJson, verifyChains, verifyRealm, type EventEnvelope, type RealmTrust } from "../../services/kernel/index.js";
import { startNats, type TestNats } from "../support/nats.js";
import { testTrust } from "../support/trust.js";
import { ledgerDecider } from "../fixtures/ledger.js";

let nats: TestNats;
let trust: RealmTrust;
const meta = () => ({ commandId: uuidv7(), actor: "auditor-test" });

beforeAll(async () => {
  nats = await startNats();
  trust = testTrust(["auditok", "audittamper", "auditmissing", "auditrecid", "auditsigned", "audittail", "auditrealm"]);
});
afterAll(async () => nats?.stop());

async function seed(context: string) {
  const store = await EventStore.open(await nats.connect(), context, { trust });
  for (const id of ["a", "b", "c"]) {
    await execute(store, ledgerDecider, id, { type: "open" }, meta());
    for (let i = 1; i <= 3; i++) await execute(store, ledgerDecider, id, { type: "deposit", amount: i }, meta());
  }
  return store;
}

async function stored(store: EventStore): Promise<{ seq: number; subject: string; event: EventEnvelope; data: Uint8Array; headers: [string, string[]][] }[]> {
  const out = [];
  const last = await store.lastSequence();
  for (let s = 1; s <= last; s++) {
    const m = await store.jsm.streams.getMessage(store.stream, { seq: s }).catch(() => null);
    if (m) out.push({ seq: s, subject: m.subject, event: JSON.parse(new TextDecoder().decode(m.data)) as EventEnvelope, data: m.data, headers: m.header ? [...m.header] : [] });
  }
  return out;
}

/**
 * Rewrites history the only way left once streams deny deletes and purges: with the stream-admin rights of
 * break-glass maintenance, delete the whole stream and make it again, publishing every message in order,
 * one changed (`change` returns the new bytes, or null to leave the message out).
 */
async function rewrite(store: EventStore, change: (m: { seq: number; event: EventEnvelope; data: Uint8Array }) => Uint8Array | string | null) {
  const all = await stored(store);
  await store.jsm.streams.delete(store.stream);
  await store.jsm.streams.add(eventStreamConfig(store.context));
  for (const m of all) {
    const data = change(m);
    if (data === null) continue;
    const h = natsHeaders();
    for (const [k, v] of m.headers) if (!k.startsWith("Nats-")) for (const x of v) h.append(k, x);
    await store.js.publish(m.subject, data, { headers: h });
  }
}

describe("streams that cannot be rewritten", () => {
  it("refuses to delete or purge a single event, even to a client with every right", async () => {
    const store = await seed("auditok");
    const [first] = await stored(store);
    await expect(store.jsm.streams.deleteMessage(store.stream, first!.seq)).rejects.toThrow(/not permitted|deny/i);
    await expect(store.jsm.streams.purge(store.stream)).rejects.toThrow(/not permitted|deny/i);
    // and no update turns the guard off again (nats-server refuses to cancel deny_delete / deny_purge)
    const info = await store.jsm.streams.info(store.stream);
    await expect(store.jsm.streams.update(store.stream, { ...info.config, deny_delete: false })).rejects.toThrow();
    expect((await store.jsm.streams.info(store.stream)).state.messages).toBe(12);
  });
});

describe("realm audit verify", () => {
  it("passes on an untouched stream", async () => {
    const store = await EventStore.open(await nats.connect(), "auditok", { trust });
    const r = await verifyChains(store);
    expect(r).toMatchObject({ ok: true, events: 12, aggregates: 3, firstBreak: null, problemCount: 0 });
  });

  it("fails on the exact event whose payload was altered", async () => {
    const store = await seed("audittamper");
    const victim = (await stored(store)).find((m) => m.event.aggregate.id === "b" && m.event.version === 3)!;
    await rewrite(store, (m) => (m.seq === victim.seq ? JSON.stringify({ ...m.event, data: { amount: 1_000_000 } }) : m.data));
    const r = await verifyChains(store);
    expect(r.ok).toBe(false);
    expect(r.firstBreak).toMatchObject({ eventId: victim.event.id, reason: "altered" });
    expect(r.firstBreak?.message).toContain(victim.event.id);
  });

  it("fails at the event after a missing one", async () => {
    const store = await seed("auditmissing");
    const c = (await stored(store)).filter((m) => m.event.aggregate.id === "c");
    await rewrite(store, (m) => (m.seq === c[1]!.seq ? null : m.data));
    const r = await verifyChains(store);
    expect(r.ok).toBe(false);
    expect(r.firstBreak).toMatchObject({ eventId: c[2]!.event.id, reason: "missing-or-reordered" });
  });

  it("names an event resealed by someone without the context's key (its CID recomputed, signature not)", async () => {
    const store = await seed("auditrecid");
    const a = (await stored(store)).filter((m) => m.event.aggregate.id === "a");
    await rewrite(store, (m) => {
      if (m.seq !== a[1]!.seq) return m.data;
      const { cid: _c, signer: _s, sig: _g, ...rest } = m.event;
      // a CID anyone can recompute, and the old signature (over the old CID) kept
      return JSON.stringify({ ...seal({ ...rest, data: { amount: 999 } }), signer: m.event.signer, sig: m.event.sig });
    });
    const r = await verifyChains(store);
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatchObject({ eventId: a[1]!.event.id, reason: "bad-signature" });
    // and the next event of "a" no longer links to a verified one
    expect(r.problems[1]).toMatchObject({ eventId: a[2]!.event.id, reason: "missing-or-reordered" });
  });

  it("names an event signed by another context's key, and an unsigned one", async () => {
    const store = await seed("auditsigned");
    const b = (await stored(store)).filter((m) => m.event.aggregate.id === "b");
    const forged = (e: EventEnvelope, signer?: string) => {
      const { cid: _c, signer: _s, sig: _g, ...rest } = e;
      return sealWithJson({ ...rest, data: { amount: 5 } }, signer ? trust.signer(signer) : { kid: "", sign: () => "" }).json;
    };
    await rewrite(store, (m) => (m.seq === b[1]!.seq ? forged(m.event, "dns") : m.seq === b[2]!.seq ? forged(m.event) : m.data));
    const r = await verifyChains(store);
    expect(r.problems.map((p) => [p.eventId, p.reason])).toEqual(
      expect.arrayContaining([
        [b[1]!.event.id, "foreign-signer"],
        [b[2]!.event.id, "unsigned"],
      ]),
    );
  });

  it("reports a cut-off tail through the auditor's signed checkpoint, and a changed middle through its digest", async () => {
    const nc = await nats.connect();
    const store = await seed("audittail");
    const auditor = await Auditor.start(nc, trust);
    const [cp] = await auditor.checkpoint("audittail");
    expect(cp).toMatchObject({ stream: "REALM_AUDITTAIL", seq: 12, complete: true, quarantined: [] });
    await auditor.stop();
    // Without the checkpoint the walk could not tell: every event left still verifies and chains.
    const last = (await stored(store)).at(-1)!;
    await rewrite(store, (m) => (m.seq === last.seq ? null : m.data));
    expect((await verifyChains(store)).ok).toBe(true);
    const [report] = await verifyRealm(nc, trust, { contexts: ["audittail"] });
    expect(report!.ok).toBe(false);
    expect(report!.checkpoint).toMatchObject({ seq: 12, matched: false });
    expect(report!.problems).toEqual([expect.objectContaining({ reason: "missing-tail", seq: 12 })]);
    expect(report!.problems[0]!.message).toContain("ends at seq 11");
  });

  it("keeps the checkpoint chain itself verifiable (REALM_REALM audits clean)", async () => {
    const nc = await nats.connect();
    await seed("auditrealm");
    const auditor = await Auditor.start(nc, trust);
    await auditor.checkpoint("auditrealm");
    await auditor.checkpoint("auditrealm"); // nothing moved: no second checkpoint
    await auditor.stop();
    const reports = await verifyRealm(nc, trust, { contexts: ["realm", "auditrealm"] });
    expect(reports.map((r) => [r.context, r.ok])).toEqual([
      ["realm", true],
      ["auditrealm", true],
    ]);
    expect(reports[1]!.checkpoint).toMatchObject({ seq: 12, matched: true });
  });
});
