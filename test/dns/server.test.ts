import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { BIG_EXTRA, dig, startDns, ZONE, type DnsHarness } from "./harness.js";
import { parseZoneFile } from "../../dns/domain/zonefile.js";

const run = promisify(execFile);
let h: DnsHarness;

beforeAll(async () => {
  h = await startDns();
  await h.command("zone.import", { zone: "example.test", text: `${ZONE}${BIG_EXTRA}\n` });
  await h.command("zone.import", {
    zone: "2.0.192.in-addr.arpa",
    text: "$TTL 300\n@ SOA ns1.example.test. hostmaster.example.test. 1 3600 900 604800 60\n@ NS ns1.example.test.\n",
  });
});
afterAll(async () => h?.stop());

describe("authoritative answers (dig against the realm's server)", () => {
  it("answers A with the AA flag", async () => {
    const r = await dig(h.port, ["www.example.test", "A"]);
    expect(r.status).toBe("NOERROR");
    expect(r.flags).toContain("aa");
    expect(r.answer).toEqual(["www.example.test. 3600 IN A 192.0.2.20"]);
  });

  it("answers AAAA, MX (with the exchange's address), TXT, SRV, CAA, TLSA, HTTPS", async () => {
    expect((await dig(h.port, ["www.example.test", "AAAA"])).answer).toEqual(["www.example.test. 3600 IN AAAA 2001:db8::20"]);
    const mx = await dig(h.port, ["example.test", "MX"]);
    expect(mx.answer).toEqual(["example.test. 3600 IN MX 10 mail.example.test."]);
    expect(mx.additional).toContain("mail.example.test. 3600 IN A 192.0.2.10");
    expect((await dig(h.port, ["example.test", "TXT"])).answer).toEqual(['example.test. 3600 IN TXT "v=spf1 mx -all"']);
    const srv = await dig(h.port, ["_sip._tcp.example.test", "SRV"]);
    expect(srv.answer).toEqual(["_sip._tcp.example.test. 3600 IN SRV 10 60 5060 sip.example.test."]);
    expect(srv.additional).toContain("sip.example.test. 3600 IN A 192.0.2.30");
    expect((await dig(h.port, ["example.test", "CAA"])).answer).toEqual(['example.test. 3600 IN CAA 0 issue "letsencrypt.org"']);
    const tlsa = await dig(h.port, ["_443._tcp.www.example.test", "TLSA"]);
    expect(tlsa.answer[0]?.replace(/ /g, "")).toBe(`_443._tcp.www.example.test.3600INTLSA311${"0123456789ABCDEF".repeat(4)}`);
    const https = await dig(h.port, ["svc.example.test", "HTTPS"]);
    expect(https.answer).toEqual(['svc.example.test. 3600 IN HTTPS 1 . alpn="h2,h3" port=8443 ipv4hint=192.0.2.20']);
  });

  it("chases a CNAME chain inside the zone", async () => {
    const r = await dig(h.port, ["chain1.example.test", "A"]);
    expect(r.answer).toEqual([
      "chain1.example.test. 3600 IN CNAME chain2.example.test.",
      "chain2.example.test. 3600 IN CNAME alias.example.test.",
      "alias.example.test. 3600 IN CNAME www.example.test.",
      "www.example.test. 3600 IN A 192.0.2.20",
    ]);
  });

  it("NXDOMAIN with the SOA (negative TTL) in the authority section", async () => {
    const r = await dig(h.port, ["nope.example.test", "A"]);
    expect(r.status).toBe("NXDOMAIN");
    expect(r.flags).toContain("aa");
    expect(r.answer).toEqual([]);
    expect(r.authority).toEqual(["example.test. 300 IN SOA ns1.example.test. hostmaster.example.test. 2026010101 7200 900 1209600 300"]);
  });

  it("NODATA (NOERROR, no answer, SOA) for an existing name without that type and for an empty non-terminal", async () => {
    for (const [name, type] of [["www.example.test", "MX"], ["empty.nonterm.example.test", "A"]] as const) {
      const r = await dig(h.port, [name, type]);
      expect(r.status).toBe("NOERROR");
      expect(r.answer).toEqual([]);
      expect(r.authority[0]).toMatch(/^example\.test\. 300 IN SOA /);
    }
  });

  it("synthesizes wildcard answers", async () => {
    expect((await dig(h.port, ["anything.wild.example.test", "A"])).answer).toEqual(["anything.wild.example.test. 3600 IN A 192.0.2.99"]);
    expect((await dig(h.port, ["x.y.wild.example.test", "TXT"])).answer).toEqual(['x.y.wild.example.test. 3600 IN TXT "wildcard"']);
    const nodata = await dig(h.port, ["anything.wild.example.test", "MX"]);
    expect(nodata.status).toBe("NOERROR");
    expect(nodata.answer).toEqual([]);
  });

  it("refers delegated names with glue and without AA", async () => {
    const r = await dig(h.port, ["host.sub.example.test", "A"]);
    expect(r.status).toBe("NOERROR");
    expect(r.flags).not.toContain("aa");
    expect(r.answer).toEqual([]);
    expect(r.authority).toEqual(["sub.example.test. 3600 IN NS ns.sub.example.test."]);
    expect(r.additional).toContain("ns.sub.example.test. 3600 IN A 192.0.2.53");
  });

  it("answers an EDNS version it does not know with BADVERS", async () => {
    expect((await dig(h.port, ["+edns=1", "+noednsnegotiation", "www.example.test", "A"])).status).toBe("BADVERS");
  });

  it("REFUSED outside its zones when forwarding is off", async () => {
    expect((await dig(h.port, ["example.org", "A"])).status).toBe("REFUSED");
  });

  it("sets TC on a large answer over UDP, and gives the full answer over TCP", async () => {
    const udp = await dig(h.port, ["+noedns", "+ignore", "big.example.test", "TXT"]);
    expect(udp.flags).toContain("tc");
    expect(udp.answer).toEqual([]);
    const tcp = await dig(h.port, ["+tcp", "big.example.test", "TXT"]);
    expect(tcp.flags).not.toContain("tc");
    expect(tcp.answer).toHaveLength(7);
    const edns = await dig(h.port, ["+bufsize=4096", "big.example.test", "TXT"]);
    expect(edns.flags).not.toContain("tc");
    expect(edns.answer).toHaveLength(7);
  });

  it("AXFR over TCP equals the exported zone file", async () => {
    const { stdout } = await run("dig", ["@127.0.0.1", "-p", String(h.port), "example.test", "AXFR", "+nocmd", "+nostats", "+nocomments"]);
    const { text } = await h.query<{ text: string }>("zonefile", { zone: "example.test" });
    // AXFR frames the zone with its SOA at both ends: the closing copy must equal the opening one.
    const lines = stdout.trim().split("\n").filter((l) => l && !l.startsWith(";"));
    const soas = lines.filter((l) => /\sSOA\s/.test(l));
    expect(soas).toHaveLength(2);
    expect(soas[1]).toBe(soas[0]);
    expect(lines[lines.length - 1]).toBe(soas[1]);
    const fromAxfr = parseZoneFile(lines.slice(0, -1).join("\n"), "example.test.");
    const fromExport = parseZoneFile(text, "example.test.");
    const key = (r: { name: string; type: string; ttl: number; data: string }) => `${r.name} ${r.ttl} ${r.type} ${r.data}`;
    expect(fromAxfr.records.map(key).sort()).toEqual(fromExport.records.map(key).sort());
    expect(fromAxfr.serial).toBe(fromExport.serial);
    expect(fromAxfr.records.length).toBeGreaterThan(20);
  });

  it("host add creates A and PTR in the reverse zone, answered by the server", async () => {
    const r = await h.command<{ ptr: string[] }>("host.add", { name: "web1.example.test", ips: ["192.0.2.41", "2001:db8::41"] });
    expect(r.ptr).toEqual(["41.2.0.192.in-addr.arpa."]);
    expect((await dig(h.port, ["web1.example.test", "A"])).answer).toEqual(["web1.example.test. 3600 IN A 192.0.2.41"]);
    expect((await dig(h.port, ["-x", "192.0.2.41"])).answer).toEqual(["41.2.0.192.in-addr.arpa. 300 IN PTR web1.example.test."]);
    expect((await dig(h.port, ["web1.example.test", "AAAA"])).answer).toEqual(["web1.example.test. 3600 IN AAAA 2001:db8::41"]);
    // A second registration with one new and one existing address is refused whole: the new one is not added.
    const again = await h.command("host.add", { name: "web1.example.test", ips: ["192.0.2.42", "192.0.2.41"] }).catch((e: unknown) => e as { code: string });
    expect(again).toMatchObject({ code: "ALREADY_EXISTS" });
    expect((await dig(h.port, ["web1.example.test", "A"])).answer).toEqual(["web1.example.test. 3600 IN A 192.0.2.41"]);
    expect((await dig(h.port, ["-x", "192.0.2.42"])).status).toBe("NXDOMAIN");
  });

  it("kdig agrees (SOA serial went up with every change)", async () => {
    const { stdout } = await run("kdig", ["@127.0.0.1", "-p", String(h.port), "+short", "example.test", "SOA"]);
    const serial = Number(stdout.trim().split(/\s+/)[2]);
    expect(serial).toBeGreaterThan(2026010101);
  });
});
