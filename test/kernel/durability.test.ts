import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import { v7 as uuidv7 } from "uuid";
import { EventStore, EMPTY_POSITION } from "../../services/kernel/index.js";
import { startNats, type TestNats } from "../support/nats.js";
import { testTrust } from "../support/trust.js";

let nats: TestNats;

beforeAll(async () => {
  nats = await startNats();
});
afterAll(async () => nats?.stop());

describe("durability", () => {
  it("keeps every acknowledged event when nats-server is SIGKILLed mid-stream of 1,000 appends", async () => {
    const nc = await connect({ servers: nats.url, reconnect: false });
    const trust = testTrust(["durable"]);
    const store = await EventStore.open(nc, "durable", { trust });
    const acked = new Set<string>();
    let killed: Promise<void> | undefined;
    let attempted = 0;
    // Ten writers, 100 aggregates each, until the server dies under them.
    const writer = async (w: number) => {
      for (let i = 0; i < 100; i++) {
        attempted++;
        try {
          const r = await store.append({ type: "item", id: `w${w}-${i}` }, EMPTY_POSITION, [{ type: "ItemRecorded", data: { w, i } }], { commandId: uuidv7(), actor: "durability" });
          acked.add(r.events[0]!.id);
        } catch {
          return; // the server is gone: this append was never acknowledged
        }
        if (w === 0 && i === 40) killed = nats.supervisor.kill();
      }
    };
    await Promise.all(Array.from({ length: 10 }, (_, w) => writer(w)));
    await nc.close().catch(() => undefined);
    await killed;
    expect(acked.size).toBeGreaterThan(0);
    expect(acked.size).toBeLessThan(1000);

    await nats.supervisor.start();
    const nc2 = await nats.connect();
    const store2 = await EventStore.open(nc2, "durable", { trust });
    const found = new Set<string>();
    for await (const { event } of store2.readEvents()) found.add(event.id);
    const lost = [...acked].filter((id) => !found.has(id));
    expect(lost).toEqual([]);
    expect(attempted).toBeGreaterThanOrEqual(acked.size);
  });
});
