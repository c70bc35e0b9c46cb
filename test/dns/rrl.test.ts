import { afterAll, beforeAll, describe, expect, it } from "vitest";
import dgram from "node:dgram";
import * as dnsPacket from "dns-packet";
import { dig, startDns, ZONE, type DnsHarness } from "./harness.js";
import { prefixKey, ResponseRateLimiter } from "../../dns/server/rrl.js";
import { rateLimitFromEnv } from "../../dns/service.js";
import { runTool } from "./update-wire.js";

/**
 * Response rate limiting (per-source token buckets, slip to TC=1) and the recursion ACL, against the real
 * server over loopback: a flood from 127.0.0.2 is slipped and dropped while 127.0.0.3 is answered in full.
 * The limiter's clock stands still in the flood test, so every count is exact (no timing involved).
 */
let h: DnsHarness;
let upstream: DnsHarness;
const BURST = 20;
const FLOOD = 200;

beforeAll(async () => {
  upstream = await startDns();
  await upstream.command("zone.create", { zone: "other.test", ns: ["ns.other.test."] });
  await upstream.command("record.add", { name: "www.other.test.", type: "A", data: "203.0.113.80" });
  h = await startDns({
    // One bucket per address here (/32), so two loopback addresses are two sources.
    dns: { port: 0, rateLimit: { rate: 5, burst: BURST, slip: 2, ipv4Prefix: 32, now: () => 1_000_000 }, recursionAllow: ["127.0.0.1"] },
    forward: { upstreams: [{ host: "127.0.0.1", port: upstream.port }], timeoutMs: 1000 },
  });
  await h.command("zone.import", { zone: "example.test", text: ZONE });
}, 60_000);
afterAll(async () => {
  await h?.stop();
  await upstream?.stop();
});

/** Sends `n` queries from `source` and collects the replies until the server has decided on all of them and every reply it sent has arrived. */
async function flood(source: string, n: number): Promise<{ full: number; truncated: number; silent: number }> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, source, () => r()));
  const got = new Map<number, boolean>();
  s.on("message", (m) => got.set(m.readUInt16BE(0), (m.readUInt16BE(2) & 0x0200) !== 0));
  const st = h.dns.server!.rrl!.stats;
  const decided = () => st.answered + st.slipped + st.dropped;
  const start = decided();
  const sentBack = { answered: st.answered, slipped: st.slipped };
  for (let i = 0; i < n; i++) s.send(dnsPacket.encode({ type: "query", id: i, questions: [{ name: "www.example.test", type: "A", class: "IN" }] }), h.port, "127.0.0.1");
  const until = Date.now() + 10_000;
  while (Date.now() < until && decided() - start < n) await new Promise((r) => setTimeout(r, 20));
  const expected = st.answered - sentBack.answered + (st.slipped - sentBack.slipped);
  while (Date.now() < until && got.size < expected) await new Promise((r) => setTimeout(r, 20));
  s.close();
  const truncated = [...got.values()].filter(Boolean).length;
  return { full: got.size - truncated, truncated, silent: n - got.size };
}

describe("response rate limiting", () => {
  it("a flood from one source gets its burst in full, then every 2nd answer truncated and the rest dropped; another source is answered in full", async () => {
    const a = await flood("127.0.0.2", FLOOD);
    expect(a).toEqual({ full: BURST, truncated: (FLOOD - BURST) / 2, silent: (FLOOD - BURST) / 2 });
    const b = await flood("127.0.0.3", BURST);
    expect(b).toEqual({ full: BURST, truncated: 0, silent: 0 });
  });

  it("a slipped client is answered over TCP, which is not limited", async () => {
    const { out, code } = await runTool("dig", ["@127.0.0.1", "-p", String(h.port), "-b", "127.0.0.2", "+norec", "+time=2", "+tries=1", "+tcp", "www.example.test", "A"]);
    expect(code).toBe(0);
    expect(out).toMatch(/www\.example\.test\.\s+3600\s+IN\s+A\s+192\.0\.2\.20/);
  });

  it("refills at the rate and keeps one bucket per /24 (v4) or /56 (v6) prefix by default", () => {
    let t = 0;
    const rl = new ResponseRateLimiter({ rate: 10, burst: 2, slip: 0, now: () => t });
    expect([rl.decide("192.0.2.1"), rl.decide("192.0.2.99"), rl.decide("192.0.2.7")]).toEqual(["answer", "answer", "drop"]);
    expect(rl.decide("198.51.100.1")).toBe("answer");
    t += 100; // one token back
    expect([rl.decide("192.0.2.1"), rl.decide("192.0.2.1")]).toEqual(["answer", "drop"]);
    expect(prefixKey("2001:db8:0:ab::1", 24, 56)).toBe(prefixKey("2001:db8:0:ff::2", 24, 56));
    expect(prefixKey("2001:db8:0:100::1", 24, 56)).not.toBe(prefixKey("2001:db8:0:ff::1", 24, 56));
    expect(prefixKey("::ffff:192.0.2.9", 24, 56)).toBe(prefixKey("192.0.2.200", 24, 56));
  });

  it("reads REALM_DNS_RRL and refuses a bad setting", () => {
    expect(rateLimitFromEnv(undefined)).toBe(false);
    expect(rateLimitFromEnv("on")).toEqual({});
    expect(rateLimitFromEnv("rate=50,slip=3,v6=48")).toEqual({ rate: 50, slip: 3, ipv6Prefix: 48 });
    expect(() => rateLimitFromEnv("speed=5")).toThrow(/REALM_DNS_RRL/);
    expect(() => new ResponseRateLimiter({ ipv4Prefix: 33 })).toThrow(/ipv4Prefix/);
  });
});

describe("the recursion ACL", () => {
  it("forwards for an allowed client only; others get REFUSED (EDE 18) for outside names and answers for the realm's", async () => {
    const allowed = await dig(h.port, ["+rec", "www.other.test", "A"]);
    expect(allowed.status).toBe("NOERROR");
    expect(allowed.answer).toEqual(["www.other.test. 3600 IN A 203.0.113.80"]);
    const other = await runTool("dig", ["@127.0.0.1", "-p", String(h.port), "-b", "127.0.0.4", "+rec", "+time=2", "+tries=1", "www.other.test", "A"]);
    expect(other.out).toMatch(/status: REFUSED/);
    expect(other.out).toMatch(/EDE: 18/);
    const own = await runTool("dig", ["@127.0.0.1", "-p", String(h.port), "-b", "127.0.0.4", "+rec", "+time=2", "+tries=1", "www.example.test", "A"]);
    expect(own.out).toMatch(/status: NOERROR/);
  });
});
