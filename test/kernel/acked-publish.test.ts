import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/nats-core";
import { jetstreamManager, StorageType } from "@nats-io/jetstream";
import { AckedPublisher, JetStreamRefusal } from "../../services/kernel/acked-publish.js";
import { RealmError } from "../../services/kernel/errors.js";
import { startNats, type TestNats } from "../support/nats.js";

let nats: TestNats;
let nc: NatsConnection;

beforeAll(async () => {
  nats = await startNats();
  nc = await nats.connect();
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "ACKED", subjects: ["acked.>"], storage: StorageType.File, duplicate_window: 60_000_000_000 });
});
afterAll(async () => nats?.stop());

const guarded = (msgId: string, lastSeq?: number) => {
  const h = natsHeaders();
  h.set("Nats-Msg-Id", msgId);
  if (lastSeq !== undefined) h.set("Nats-Expected-Last-Subject-Sequence", String(lastSeq));
  return h;
};

describe("acknowledged JetStream publish (the event store's append)", () => {
  it("answers each of many concurrent publishes with its own stream sequence, sent together", async () => {
    const p = new AckedPublisher(nc);
    const acks = await Promise.all(Array.from({ length: 500 }, (_, i) => p.publish(`acked.many.${i % 7}`, `m${i}`, guarded(`many-${i}`))));
    expect(acks.every((a) => a.stream === "ACKED" && !a.duplicate)).toBe(true);
    expect(new Set(acks.map((a) => a.seq)).size).toBe(500);
    const jsm = await jetstreamManager(nc);
    // Each publish stored its own body under its own subject.
    const m = await jsm.streams.getMessage("ACKED", { seq: acks[123]!.seq });
    expect(m?.subject).toBe("acked.many.4");
    expect(m?.string()).toBe("m123");
  });

  it("reports a resent message id as a duplicate, and a wrong expected subject sequence as JetStream's refusal 10071", async () => {
    const p = new AckedPublisher(nc);
    const first = await p.publish("acked.guard.a", "one", guarded("guard-1", 0));
    const again = await p.publish("acked.guard.a", "one", guarded("guard-1", 0));
    expect(again).toEqual({ stream: "ACKED", seq: first.seq, duplicate: true });
    const stale = p.publish("acked.guard.a", "two", guarded("guard-2", 0));
    await expect(stale).rejects.toBeInstanceOf(JetStreamRefusal);
    await expect(stale).rejects.toMatchObject({ errCode: 10071 });
    await expect(p.publish("acked.guard.a", "two", guarded("guard-2", first.seq))).resolves.toMatchObject({ duplicate: false });
  });

  it("no stream for the subject: UNAVAILABLE (no responders), not a hang", async () => {
    const p = new AckedPublisher(nc, 10_000);
    const err = await p.publish("nostream.x", "x", guarded("nostream-1")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RealmError);
    expect(err).toMatchObject({ code: "UNAVAILABLE", message: expect.stringMatching(/no JetStream stream takes nostream\.x/) });
  });

  it("no acknowledgement within the timeout: UNAVAILABLE saying the outcome is unknown", async () => {
    // A plain subscriber takes the subject (so the server has a responder) and never answers.
    const silent = nc.subscribe("silent.>");
    const p = new AckedPublisher(nc, 300);
    const err = await p.publish("silent.x", "x", guarded("silent-1")).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "UNAVAILABLE", message: expect.stringMatching(/did not acknowledge silent\.x within 300 ms; the event may or may not be stored/) });
    silent.unsubscribe();
  });

  it("a connection closed under pending publishes fails them UNAVAILABLE at once", async () => {
    const own = await nats.connect();
    const silent = own.subscribe("silent2.>");
    const p = new AckedPublisher(own, 60_000);
    const pending = p.publish("silent2.x", "x", guarded("closed-1")).catch((e: unknown) => e);
    await own.flush();
    void silent;
    await own.close();
    expect(await pending).toMatchObject({ code: "UNAVAILABLE", message: expect.stringMatching(/connection closed/) });
  });
});
