import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Kvm, KvWatchInclude, type KV, type KvWatchEntry } from "@nats-io/kv";
import type { QueuedIterator } from "@nats-io/nats-core";
import { followKv } from "../../services/kernel/kv-follow.js";
import { startNats, type TestNats } from "../support/nats.js";

let nats: TestNats;
let kv: KV;
beforeAll(async () => {
  nats = await startNats({ port: 0 });
  kv = await new Kvm(await nats.connect()).create("kv_follow_test", { history: 5 });
});
afterAll(async () => nats?.stop());

async function until(what: string, ms: number, check: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("followKv", () => {
  it("opens a watch again when its iterator ends (what nats.js does when it gives up), missing no entry", async () => {
    const seen: string[] = [];
    const opened: { after: number | undefined; reopen: boolean }[] = [];
    const logs: string[] = [];
    let current: QueuedIterator<KvWatchEntry> | undefined;
    const stop = await followKv(
      "kv_follow_test",
      async (after, reopen) => {
        opened.push({ after, reopen });
        current = await kv.watch({ key: "k.>", include: KvWatchInclude.UpdatesOnly, ...(after !== undefined ? { resumeFromRevision: after + 1 } : {}) });
        return current;
      },
      (e) => seen.push(e.key),
      { warn: (_o, m) => logs.push(m), info: (_o, m) => logs.push(m) },
    );
    await kv.put("k.a", "1");
    await until("k.a seen", 5_000, () => seen.includes("k.a"));
    // The iterator ends under the follower; an entry written before it is watched again is still delivered.
    current!.stop();
    await kv.put("k.b", "2");
    await until("k.b seen after the reopen", 10_000, () => seen.includes("k.b"));
    expect(seen).toEqual(["k.a", "k.b"]);
    expect(opened).toEqual([{ after: undefined, reopen: false }, { after: 1, reopen: true }]);
    expect(logs.some((l) => /lost/.test(l)) && logs.some((l) => /recovered/.test(l))).toBe(true);
    stop();
    await kv.put("k.c", "3");
    await new Promise((r) => setImmediate(r));
    expect(opened.length).toBe(2);
  });
});
