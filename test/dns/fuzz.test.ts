import { afterAll, beforeAll, describe, expect, it } from "vitest";
import dgram from "node:dgram";
import net from "node:net";
import * as dnsPacket from "dns-packet";
import { dig, startDns, ZONE, type DnsHarness } from "./harness.js";
import { badPacket, query, rng } from "./packets.js";

let h: DnsHarness;
beforeAll(async () => {
  h = await startDns();
  await h.command("zone.import", { zone: "example.test", text: ZONE });
});
afterAll(async () => h?.stop());

/** Asks www.example.test A over UDP and resolves with the decoded answer (rejects after `ms`). */
function probe(sock: dgram.Socket, port: number, id: number, ms = 3000): Promise<dnsPacket.Packet> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sock.off("message", on);
      reject(new Error(`no answer to probe ${id} within ${ms} ms`));
    }, ms);
    const on = (msg: Buffer) => {
      if (msg.length < 2 || msg.readUInt16BE(0) !== id) return;
      const p = dnsPacket.decode(msg);
      if (p.questions?.[0]?.name !== "www.example.test") return;
      clearTimeout(timer);
      sock.off("message", on);
      resolve(p);
    };
    sock.on("message", on);
    sock.send(query("www.example.test", "A", id), port, "127.0.0.1");
  });
}

describe("bad input never crashes or hangs the server", () => {
  it("1,000,000 bad packets through the query handler: every one answered or dropped, no exception", () => {
    const next = rng(20260101);
    const counts = { replies: 0, dropped: 0, formerr: 0 };
    for (let n = 0; n < 1_000_000; n++) {
      const reply = h.dns.server!.handle(badPacket(next, n), n % 2 ? "udp" : "tcp", "127.0.0.1");
      if (reply instanceof Promise) throw new Error("no forwarding configured: nothing should be async");
      if (reply === null) counts.dropped++;
      else {
        counts.replies++;
        if ((reply.readUInt16BE(2) & 0xf) === 1) counts.formerr++;
      }
    }
    expect(counts.replies + counts.dropped).toBe(1_000_000);
    expect(counts.formerr).toBeGreaterThan(100_000);
    expect(counts.dropped).toBeGreaterThan(10_000);
  });

  it("100,000 bad packets over UDP and garbage over TCP, then still answers correctly", async () => {
    const sock = dgram.createSocket("udp4");
    await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
    sock.on("message", () => undefined);
    const next = rng(7);
    let probes = 0;
    for (let n = 0; n < 100_000; n++) {
      sock.send(badPacket(next, n), h.port, "127.0.0.1");
      // Every 2,000 packets the server must still answer a real question (and this paces the sender).
      if (n % 2000 === 1999) {
        const p = await probe(sock, h.port, 40000 + (probes++ % 20000));
        expect(p.answers?.map((a) => (a as { data?: unknown }).data)).toEqual(["192.0.2.20"]);
      }
    }
    // TCP: garbage frames, a frame longer than the data sent, a huge length prefix, then a valid question.
    for (let k = 0; k < 200; k++) {
      await new Promise<void>((resolve) => {
        const s = net.connect(h.port, "127.0.0.1", () => {
          const g = badPacket(next, k);
          const len = Buffer.alloc(2);
          len.writeUInt16BE(k % 3 === 0 ? 0xffff : g.length);
          s.end(Buffer.concat([len, g]));
        });
        s.on("data", () => undefined);
        s.on("error", () => resolve());
        s.on("close", () => resolve());
      });
    }
    sock.close();
    const r = await dig(h.port, ["+tcp", "chain1.example.test", "A"]);
    expect(r.answer.at(-1)).toBe("www.example.test. 3600 IN A 192.0.2.20");
    expect((await dig(h.port, ["nope.example.test", "A"])).status).toBe("NXDOMAIN");
    expect(h.dns.server!.stats.formerr).toBeGreaterThan(0);
  });
});
