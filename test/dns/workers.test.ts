import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dig, startDns, ZONE, type DnsHarness } from "./harness.js";

let h: DnsHarness;
beforeAll(async () => {
  h = await startDns({ dns: { port: 0, workers: 2 } });
  await h.command("zone.import", { zone: "example.test", text: ZONE });
});
afterAll(async () => h?.stop());

describe("DNS in worker processes (node:cluster, one shared port)", () => {
  it("answers from every worker and follows changes live", async () => {
    expect(h.dns.workers!.pids).toHaveLength(2);
    for (let i = 0; i < 50; i++) {
      const r = await dig(h.port, ["www.example.test", "A"]);
      if (r.answer.length > 0) {
        expect(r.answer).toEqual(["www.example.test. 3600 IN A 192.0.2.20"]);
        break;
      }
      await new Promise((res) => setTimeout(res, 50));
    }
    const before = (await h.query<{ zones: { zone: string; serial: number }[] }>("zones", {})).zones.find((z) => z.zone === "example.test.")!.serial;
    await h.command("record.add", { name: "late.example.test.", type: "A", data: "192.0.2.123" });
    let seen = 0;
    for (let i = 0; i < 200 && seen < 10; i++) {
      const r = await dig(h.port, ["late.example.test", "A"]);
      if (r.answer[0] === "late.example.test. 3600 IN A 192.0.2.123") seen++;
      else await new Promise((res) => setTimeout(res, 20));
    }
    expect(seen).toBe(10);
    expect((await dig(h.port, ["+tcp", "chain1.example.test", "A"])).answer).toHaveLength(4);
    // Each worker keeps its own IXFR journal and catalog: every transfer (either worker) gives the difference.
    for (let i = 0; i < 6; i++) {
      const ixfr = (await dig(h.port, [`example.test`, `IXFR=${before}`])).raw.split("\n").filter((l) => l && !l.startsWith(";")).map((l) => l.replace(/\s+/g, " ").trim());
      expect(ixfr).toHaveLength(5);
      expect(ixfr[3]).toBe("late.example.test. 3600 IN A 192.0.2.123");
      expect((await dig(h.port, ["catalog.realm", "AXFR"])).raw).toMatch(/zones\.catalog\.realm\.\s+0\s+IN\s+PTR\s+example\.test\./);
    }
  });
});

describe("a DNS worker that dies", () => {
  it("is replaced by a new process that follows the stream and answers", async () => {
    const [victim, other] = h.dns.workers!.pids;
    const t0 = performance.now();
    process.kill(victim!, "SIGKILL");
    const deadline = Date.now() + 30_000;
    while (h.dns.workers!.pids.includes(victim!) || h.dns.workers!.pids.length !== 2) {
      if (Date.now() > deadline) throw new Error("the killed worker was not replaced within 30 s");
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(h.dns.workers!.pids).toContain(other);
    // The replacement reads the stream from its start: a record added after it started shows too.
    await h.command("record.add", { name: "after.example.test.", type: "A", data: "192.0.2.124" });
    // Both workers share the port: ask until every answer of 20 in a row has the record (either worker may answer).
    let inRow = 0;
    while (inRow < 20) {
      if (Date.now() > deadline) throw new Error(`the workers did not all answer after.example.test within 30 s (${inRow} in a row)`);
      const r = await dig(h.port, ["after.example.test", "A"]);
      inRow = r.answer[0] === "after.example.test. 3600 IN A 192.0.2.124" ? inRow + 1 : 0;
      if (inRow === 0) await new Promise((res) => setTimeout(res, 100));
    }
    process.stdout.write(`dns worker killed -> replaced and answering in ${Math.round(performance.now() - t0)} ms\n`);
  }, 60_000);
});

describe("DNS workers in operator mode", () => {
  it("follow the name domain as the read-only DNS reader identity", async () => {
    const { startOperatorNats } = await import("../support/realm-nats.js");
    const { createDnsContext } = await import("../../dns/service.js");
    const { startHost } = await import("../../services/host/host.js");
    const { callRealm } = await import("../../services/host/client.js");
    const { createLogger } = await import("../../services/host/logger.js");
    const realm = await startOperatorNats();
    try {
      const log = createLogger({ level: "silent" });
      const svc = await realm.connectAs("realm-dns");
      const dns = await createDnsContext({ dns: { port: 0, workers: 1, natsUrl: realm.url, natsCreds: realm.credsFile("realm-dns-reader") } })({ nc: svc, log, dataDir: realm.dir, trust: realm.trust });
      const host = await startHost({ nc: svc, contexts: [dns], log });
      try {
        const op = await realm.connectAs("admin");
        await callRealm(op, "realm.dns.commands.zone.import", { zone: "example.test", text: ZONE });
        let answer: string[] = [];
        for (let i = 0; i < 200 && answer.length === 0; i++) answer = (await dig(dns.workers!.port, ["www.example.test", "A"])).answer;
        expect(answer).toEqual(["www.example.test. 3600 IN A 192.0.2.20"]);
        const { readFileSync } = await import("node:fs");
        expect(readFileSync(realm.server.logFile, "utf8")).not.toMatch(/violation/i);
      } finally {
        await host.stop();
        await dns.stop?.();
      }
    } finally {
      await realm.stop();
    }
  });
});
