import { afterAll, beforeAll, describe, expect, it } from "vitest";
import dgram from "node:dgram";
import { dig, startDns, BIG_EXTRA, type DnsHarness } from "./harness.js";

const UPSTREAM_ZONE = `$TTL 60
@ SOA ns.other.test. hm.other.test. 1 3600 900 604800 30
@ NS ns
ns A 203.0.113.1
www A 203.0.113.80
${BIG_EXTRA}
`;

let upstream: DnsHarness;
let realm: DnsHarness;
let silent: dgram.Socket;

beforeAll(async () => {
  upstream = await startDns();
  await upstream.command("zone.import", { zone: "other.test", text: UPSTREAM_ZONE });
  // An upstream that never answers, to show the timeout moves on to the next one.
  silent = dgram.createSocket("udp4");
  await new Promise<void>((r) => silent.bind(0, "127.0.0.1", () => r()));
  const silentPort = (silent.address() as { port: number }).port;
  realm = await startDns({ forward: { upstreams: [{ host: "127.0.0.1", port: silentPort }, { host: "127.0.0.1", port: upstream.port }], timeoutMs: 300 } });
  await realm.command("zone.create", { zone: "mine.test", ns: ["ns1.mine.test."] });
  await realm.command("record.add", { name: "ns1.mine.test.", type: "A", data: "192.0.2.1" });
});
afterAll(async () => {
  await realm?.stop();
  await upstream?.stop();
  silent?.close();
});

describe("forwarding to upstream resolvers", () => {
  it("answers non-authoritative names through the upstream (skipping one that times out), with RA and no AA", async () => {
    const r = await dig(realm.port, ["+rec", "www.other.test", "A"]);
    expect(r.status).toBe("NOERROR");
    expect(r.flags).toContain("ra");
    expect(r.flags).not.toContain("aa");
    expect(r.answer).toEqual(["www.other.test. 60 IN A 203.0.113.80"]);
    expect(realm.dns.server!.stats.forwarded).toBeGreaterThan(0);
    expect(realm.dns.server!.forwarder!.stats.timeouts).toBeGreaterThan(0);
  });

  it("serves repeats from a cache that honours the TTL", async () => {
    const before = upstream.dns.server!.stats.queries;
    const r = await dig(realm.port, ["+rec", "www.other.test", "A"]);
    expect(r.answer[0]).toMatch(/^www\.other\.test\. (5\d|60) IN A 203\.0\.113\.80$/);
    expect(upstream.dns.server!.stats.queries).toBe(before);
  });

  it("falls back to TCP when the upstream's UDP answer is truncated", async () => {
    const r = await dig(realm.port, ["+rec", "+tcp", "big.other.test", "TXT"]);
    expect(r.answer).toHaveLength(6);
    expect(realm.dns.server!.forwarder!.stats.tcpFallbacks).toBe(1);
  });

  it("negative answers pass through; own zones stay authoritative; no RD means REFUSED", async () => {
    expect((await dig(realm.port, ["+rec", "nope.other.test", "A"])).status).toBe("NXDOMAIN");
    const own = await dig(realm.port, ["+rec", "ns1.mine.test", "A"]);
    expect(own.flags).toContain("aa");
    expect(own.answer).toEqual(["ns1.mine.test. 3600 IN A 192.0.2.1"]);
    expect((await dig(realm.port, ["www.other.test", "A"])).status).toBe("REFUSED");
  });

  it("forwards only the listed zones when zones are given", async () => {
    const only = await startDns({ forward: { upstreams: [{ host: "127.0.0.1", port: upstream.port }], zones: ["sub.other.test."] } });
    try {
      expect((await dig(only.port, ["+rec", "www.other.test", "A"])).status).toBe("REFUSED");
      expect((await dig(only.port, ["+rec", "x.sub.other.test", "A"])).status).toBe("NXDOMAIN");
    } finally {
      await only.stop();
    }
  });

  it("SERVFAIL when no upstream answers", async () => {
    await upstream.dns.server!.stop();
    expect((await dig(realm.port, ["+rec", "fresh.other.test", "A"])).status).toBe("SERVFAIL");
  });
});
