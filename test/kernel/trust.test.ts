import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { v7 as uuidv7 } from "uuid";
import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import { createHash } from "node:crypto";
import {
  Auditor,
  cidOfCanonical,
  EventStore,
  eventStreamConfig,
  eventSubject,
  execute,
  generateTrust,
  Projection,
  RealmError,
  RealmTrust,
  sealWithJson,
  TrustVerifier,
  type EventEnvelope,
} from "../../services/kernel/index.js";
import { startNats, type TestNats } from "../support/nats.js";
import { testTrust } from "../support/trust.js";
import { balancesProjection, ledgerDecider } from "../fixtures/ledger.js";

let nats: TestNats;
let trust: RealmTrust;
const meta = () => ({ commandId: uuidv7(), actor: "trust-test" });

beforeAll(async () => {
  nats = await startNats();
  trust = testTrust(["ledgers", "quarantine", "tail", "fast", "fastbad", "batchled"]);
});
afterAll(async () => nats?.stop());

const balances = balancesProjection;

function problemLog() {
  const lines: { obj: Record<string, unknown>; msg: string }[] = [];
  return { lines, warn: (obj: object, msg: string) => lines.push({ obj: obj as Record<string, unknown>, msg }), error: (obj: object, msg: string) => lines.push({ obj: obj as Record<string, unknown>, msg }) };
}

describe("the trust document", () => {
  it("verifies against its root and refuses a changed list of keys or another root", () => {
    const t = generateTrust("r", [{ name: "dns", subjects: ["realm.dns.events.>"] }]);
    expect(() => new TrustVerifier(t.doc)).not.toThrow();
    const widened = { ...t.doc, writers: [{ ...t.doc.writers[0]!, subjects: ["realm.>"] }] };
    expect(() => new TrustVerifier(widened)).toThrow(/signature does not verify/);
    expect(() => new TrustVerifier(t.doc, { pinnedRoot: "AAAA" })).toThrow(/another root/);
    // private keys never print
    expect(JSON.stringify(t)).not.toMatch(/PRIVATE/);
    expect(JSON.stringify(t.signer("dns"))).toBe(JSON.stringify({ writer: "dns", kid: t.signer("dns").kid }));
  });

  it("writes CIDs exactly as multiformats does", () => {
    for (const text of ["{}", '{"a":1}', "x".repeat(1000)]) {
      const expected = CID.createV1(0x0200, Digest.create(0x12, createHash("sha256").update(text).digest())).toString();
      expect(cidOfCanonical(text)).toBe(expected);
    }
  });
});

describe("a bad event never bricks a context", () => {
  it("quarantines an altered, an unsigned, a foreign-signed and a junk message, logs each, and applies the rest", async () => {
    const nc = await nats.connect();
    const store = await EventStore.open(nc, "quarantine", { trust });
    const log = problemLog();
    const live = new Projection(store, balances, { log });
    await live.start();
    await execute(store, ledgerDecider, "q", { type: "open" }, meta());
    const good = await execute(store, ledgerDecider, "q", { type: "deposit", amount: 1 }, meta());
    const subject = eventSubject("quarantine", "ledger", "q");
    const head = good.events[0]!;
    const next = (amount: number) => ({ id: uuidv7(), type: "Deposited", aggregate: head.aggregate, version: head.version + 1, occurredAt: new Date().toISOString(), actor: "mallory", correlationId: uuidv7(), causationId: uuidv7(), data: { amount }, prev: head.cid });
    // one byte changed in a signed event: its content no longer matches its CID
    const signed = sealWithJson(next(1000), trust.signer("quarantine")).json;
    const oneByte = signed.replace('"amount":1000', '"amount":9000');
    const unsigned = sealWithJson(next(2000), { kid: "", sign: () => "" }).json;
    const foreign = sealWithJson(next(3000), trust.signer("dns")).json;
    for (const data of [oneByte, unsigned, foreign, "not json at all"]) await store.js.publish(subject, data);
    // the context goes on: the next command is decided on the verified chain and applied
    const after = await execute(store, ledgerDecider, "q", { type: "deposit", amount: 5 }, meta());
    expect(after.events[0]!.prev).toBe(head.cid);
    expect(after.events[0]!.version).toBe(head.version + 1);
    await live.waitFor(after.position.lastSeq);
    expect(live.state.get("q")).toBe(6);
    expect(live.quarantined.map((q) => q.reason)).toEqual(["altered", "unsigned", "foreign-signer", "malformed"]);
    expect(live.degraded).toBe(true);
    expect(live.status).toBe("live");
    for (const q of live.quarantined) expect(q).toMatchObject({ stream: "REALM_QUARANTINE", projection: "balances" });
    expect(log.lines.filter((l) => l.msg.startsWith("quarantined")).map((l) => [l.obj.stream, l.obj.seq, l.obj.reason])).toEqual(live.quarantined.map((q) => [q.stream, q.seq, q.reason]));
    // a restart (rebuild from zero) comes to the same state and the same quarantine
    const again = new Projection(store, balances);
    await again.start();
    expect(again.state.get("q")).toBe(6);
    expect(again.quarantined.map((q) => q.seq)).toEqual(live.quarantined.map((q) => q.seq));
    await again.stop();
    await live.stop();
  });

  it("starts, without hanging, on a stream whose last message was deleted", async () => {
    const nc = await nats.connect();
    const jsm = (await EventStore.open(nc, "ledgers", { trust })).jsm;
    // a stream made before deletes were denied
    await jsm.streams.delete("REALM_TAIL").catch(() => undefined);
    await jsm.streams.add({ ...eventStreamConfig("tail"), deny_delete: false, deny_purge: false });
    const signer = trust.signer("tail");
    let prev: string | null = null;
    for (let v = 1; v <= 3; v++) {
      const { envelope, json }: { envelope: EventEnvelope; json: string } = sealWithJson({ id: uuidv7(), type: v === 1 ? "LedgerOpened" : "Deposited", aggregate: { type: "ledger", id: "t" }, version: v, occurredAt: new Date().toISOString(), actor: "t", correlationId: uuidv7(), causationId: uuidv7(), data: v === 1 ? {} : { amount: v }, prev }, signer);
      await nc.request(eventSubject("tail", "ledger", "t"), json);
      prev = envelope.cid;
    }
    await jsm.streams.deleteMessage("REALM_TAIL", 3);
    const store = await EventStore.open(nc, "tail", { trust });
    const p = new Projection(store, balances, { startTimeoutMs: 20_000 });
    await p.start();
    expect(p.status).toBe("live");
    expect(p.state.get("t")).toBe(2);
    await p.stop();
    // and the open turned the guard on
    expect((await jsm.streams.info("REALM_TAIL")).config.deny_delete).toBe(true);
  });

  it("gives up catching up after its start timeout with UNAVAILABLE naming the stream", async () => {
    const nc = await nats.connect();
    const store = await EventStore.open(nc, "ledgers", { trust });
    for (let i = 0; i < 50; i++) await execute(store, ledgerDecider, `slow-${i}`, { type: "open" }, meta());
    const slow = new Projection(store, { ...balances, apply: (m: Map<string, number>, e: EventEnvelope) => {
      const until = Date.now() + 20;
      while (Date.now() < until); // a projection far too slow for its timeout
      return balances.apply(m, e);
    } }, { startTimeoutMs: 200 });
    const err = await slow.start().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(RealmError);
    expect((err as RealmError).code).toBe("UNAVAILABLE");
    expect((err as RealmError).message).toMatch(/did not catch up with stream REALM_LEDGERS within/);
  });
});

describe("checkpoints", () => {
  it("let a rebuild skip the signature check of the prefix they cover, and catch a prefix that changed", async () => {
    const nc = await nats.connect();
    const store = await EventStore.open(nc, "fast", { trust });
    for (let i = 0; i < 40; i++) await execute(store, ledgerDecider, `f-${i % 8}`, i < 8 ? { type: "open" } : { type: "deposit", amount: i }, meta());
    const auditor = await Auditor.start(nc, trust);
    await auditor.checkpoint("fast");
    await auditor.stop();
    for (let i = 0; i < 5; i++) await execute(store, ledgerDecider, `f-${i}`, { type: "deposit", amount: 1 }, meta());
    // A fresh process: nothing verified yet.
    const fresh = new RealmTrust(trust.doc);
    const cold = await EventStore.open(nc, "fast", { trust: fresh });
    const p = new Projection(cold, balances);
    const before = fresh.verifier.verifications;
    await p.rebuild();
    expect(fresh.verifier.verifications - before).toBe(1 + 5); // the checkpoint itself, then only the events after it
    expect(p.degraded).toBe(false);
    const full = new Projection(await EventStore.open(nc, "fast", { trust: new RealmTrust(trust.doc) }), balances, { checkpoints: false });
    await full.rebuild();
    expect([...p.state.entries()].sort()).toEqual([...full.state.entries()].sort());
  });

  it("sends a projection back to verifying every event when the stream differs from its checkpoint", async () => {
    const nc = await nats.connect();
    const store = await EventStore.open(nc, "fastbad", { trust });
    for (let i = 0; i < 10; i++) await execute(store, ledgerDecider, "fb", i === 0 ? { type: "open" } : { type: "deposit", amount: 1 }, meta());
    const auditor = await Auditor.start(nc, trust);
    await auditor.checkpoint("fastbad");
    await auditor.stop();
    // someone with stream-admin rights remakes the stream without its last event
    const msgs = [];
    for (let s = 1; s <= 10; s++) msgs.push((await store.jsm.streams.getMessage(store.stream, { seq: s }))!);
    await store.jsm.streams.delete(store.stream);
    await store.jsm.streams.add(eventStreamConfig("fastbad"));
    for (const m of msgs.slice(0, 9)) await store.js.publish(m.subject, m.data);
    const log = problemLog();
    const p = new Projection(await EventStore.open(nc, "fastbad", { trust: new RealmTrust(trust.doc) }), balances, { log });
    await p.start();
    expect(p.state.get("fb")).toBe(8);
    expect(p.quarantined).toEqual([expect.objectContaining({ reason: "checkpoint-mismatch", seq: 10 })]);
    expect(log.lines.some((l) => /differs from its checkpoint/.test(l.msg))).toBe(true);
    await p.stop();
  });
});

describe("batch seals", () => {
  it("seal the events of one event-loop turn with one signature; each verifies alone; a changed proof or CID does not", async () => {
    const { BatchSealer, TrustVerifier: TV, cidOfCanonical: cidOf } = await import("../../services/kernel/index.js");
    const t = testTrust(["batch"]);
    const sealer = new BatchSealer(t.signer("batch"), 32);
    const cids = Array.from({ length: 7 }, (_, i) => cidOf(`{"n":${i}}`));
    const seals = await Promise.all(cids.map((c) => sealer.seal(c)));
    expect(sealer.signatures).toBe(1);
    expect(new Set(seals.map((s) => s.sig)).size).toBe(1);
    const v = new TV(t.doc);
    const subject = "realm.batch.events.x.y";
    for (let i = 0; i < cids.length; i++) expect(v.check(subject, { cid: cids[i]!, signer: seals[i]!.kid, sig: seals[i]!.sig, proof: seals[i]!.proof })).toBeNull();
    expect(v.verifications).toBe(1); // one Ed25519 verification for the whole batch
    // another event's CID with this proof, a flipped sibling, a batch seal without its proof: refused
    const fresh = new TV(t.doc);
    expect(fresh.check(subject, { cid: cids[1]!, signer: seals[0]!.kid, sig: seals[0]!.sig, proof: seals[0]!.proof })).toBe("bad-signature");
    const flipped = seals[0]!.proof!.map((p, i) => (i === 0 ? (p[0] === "l" ? "r" : "l") + p.slice(1) : p));
    expect(fresh.check(subject, { cid: cids[0]!, signer: seals[0]!.kid, sig: seals[0]!.sig, proof: flipped })).toBe("bad-signature");
    expect(fresh.check(subject, { cid: cids[0]!, signer: seals[0]!.kid, sig: seals[0]!.sig })).toBe("bad-signature");
    expect(fresh.check(subject, { cid: cids[0]!, signer: seals[0]!.kid, sig: seals[0]!.sig, proof: ["lnot-a-hash"] })).toBe("bad-signature");
    // a lone seal is a signature over the CID itself, with no proof
    const single = await sealer.seal(cids[0]!);
    expect(single.proof).toBeUndefined();
    expect(fresh.check(subject, { cid: cids[0]!, signer: single.kid, sig: single.sig })).toBeNull();
  });

  it("are what concurrent appends get, and readers verify them", async () => {
    const nc = await nats.connect();
    const t = trust;
    const store = await EventStore.open(nc, "batchled", { trust: t });
    await Promise.all(Array.from({ length: 20 }, (_, i) => execute(store, ledgerDecider, `batch-${i}`, { type: "open" }, meta())));
    expect(store.sealStats.sealed).toBe(20);
    expect(store.sealStats.signatures).toBeLessThan(20);
    const reader = new Projection(await EventStore.open(nc, "batchled", { trust: new RealmTrust(t.doc) }), balances, { checkpoints: false });
    await reader.rebuild();
    expect(reader.quarantined).toEqual([]);
    for (let i = 0; i < 20; i++) expect(reader.state.get(`batch-${i}`)).toBe(0);
  });
});
