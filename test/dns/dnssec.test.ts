import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sealer } from "../../services/kernel/seal.js";
import { dnskeyRdata, dsText, generateKey, keyTag, KSK_FLAGS, publicKeyField } from "../../dns/dnssec/keys.js";
import { base32hex, nsec3Hash } from "../../dns/dnssec/nsec3.js";
import { nameOctets } from "../../dns/server/names-wire.js";
import { dig, dnsCli, startDns, ZONE, type DnsHarness } from "./harness.js";
import { createDnsContext } from "../../dns/service.js";
import { nameProjection } from "../../dns/projection.js";
import { createLogger } from "../../services/host/logger.js";

const run = promisify(execFile);

let h: DnsHarness;
let dir: string;
const sealer = Sealer.generate();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "realm-dnssec-"));
  h = await startDns({ sealer });
  await h.command("zone.import", { zone: "example.test.", text: ZONE });
  await h.command("record.add", { name: "dn.example.test.", type: "DNAME", data: "www.example.test." });
  await h.command("record.add", { name: "sec.example.test.", type: "NS", data: "ns.sec.example.test." });
  await h.command("record.add", { name: "sec.example.test.", type: "DS", data: "12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" });
  await h.command("record.add", { name: "ns.sec.example.test.", type: "A", data: "192.0.2.54" });
  await h.command("record.add", { name: "MiXed.example.test.", type: "A", data: "192.0.2.55" });
}, 30_000);
afterAll(async () => {
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs a tool, returning its exit code and what it printed (stdout and stderr). */
async function tool(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await run(cmd, args, { timeout: 20_000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : 1, out: (e.stdout ?? "") + (e.stderr ?? "") };
  }
}

/** A delv trust-anchors file with one static key (`zone. 257 3 13 <base64>`). */
function anchorFile(name: string, dnskey: string): string {
  const [owner, , , , flags, proto, alg, key] = dnskey.split(/\s+/);
  const file = join(dir, name);
  writeFileSync(file, `trust-anchors {\n  ${owner} static-key ${flags} ${proto} ${alg} "${key}";\n};\n`);
  return file;
}

const delv = (anchor: string, name: string, type: string) => tool("delv", ["@127.0.0.1", "-p", String(h.port), "-a", anchor, "+root=example.test", "+tcp", name, type]);

describe("DNSKEY, key tags and DS (RFC 4034, 6605, 8080)", () => {
  it.each([13, 15] as const)("algorithm %i: the key tag and the SHA-256 DS are the ones dnssec-dsfromkey computes", async (alg) => {
    const key = generateKey(alg);
    const rdata = dnskeyRdata(KSK_FLAGS, alg, publicKeyField(key));
    const file = join(dir, `dnskey-${alg}.zone`);
    writeFileSync(file, `example.test. 3600 IN DNSKEY 257 3 ${alg} ${publicKeyField(key).toString("base64")}\n`);
    const { code, out } = await tool("dnssec-dsfromkey", ["-2", "-f", file, "example.test."]);
    expect(code, out).toBe(0);
    expect(out.trim()).toBe(dsText("example.test.", rdata));
    expect(out).toContain(` DS ${keyTag(rdata)} ${alg} 2 `);
  });

  it("NSEC3 hashes and their base32hex owners are RFC 5155 Appendix A's", () => {
    // RFC 5155's examples use salt aabbccdd and 12 iterations; the realm uses RFC 9276's (no salt, none): the
    // same function with those parameters must give the appendix's owners, and the realm's hash is its case of it.
    const ih = (name: string, salt: Buffer, iterations: number) => {
      let x = createHash("sha1").update(Buffer.concat([nameOctets(name), salt])).digest();
      for (let i = 0; i < iterations; i++) x = createHash("sha1").update(Buffer.concat([x, salt])).digest();
      return x;
    };
    const salt = Buffer.from("aabbccdd", "hex");
    expect(base32hex(ih("example.", salt, 12))).toBe("0p9mhaveqvm6t7vbl5lop2u3t2rp3tom");
    expect(base32hex(ih("a.example.", salt, 12))).toBe("35mthgpgcu1qg68fab165klnsnk3dpvl");
    expect(base32hex(ih("ns1.example.", salt, 12))).toBe("2t7b4g4vsa5smi47k61mv5bv1a22bojr");
    expect(nsec3Hash("Example.")).toEqual(ih("example.", Buffer.alloc(0), 0));
  });
});

describe("realm zone dnssec enable | status | ds", () => {
  let ds: string;
  let anchor: string;

  beforeAll(async () => {
    await dnsCli(h.nats.url, ["zone", "dnssec", "enable", "example.test"]);
    const r = await h.query<{ keys: { role: string; state: string; tag: number }[]; ds: string[] }>("dnssec", { zone: "example.test" });
    expect(r.keys.map((k) => `${k.role}:${k.state}`).sort()).toEqual(["ksk:active", "zsk:active"]);
    ds = (await dnsCli(h.nats.url, ["zone", "dnssec", "ds", "example.test"])).trim();
    const dnskey = (await dnsCli(h.nats.url, ["zone", "dnssec", "ds", "example.test", "--dnskey"])).trim();
    anchor = anchorFile("anchor.conf", dnskey);
    writeFileSync(join(dir, "ksk.zone"), `${dnskey}\n`);
  }, 30_000);

  it("prints the DS the way dnssec-dsfromkey does for the served KSK", async () => {
    const { out } = await tool("dnssec-dsfromkey", ["-2", "-f", join(dir, "ksk.zone"), "example.test."]);
    expect(ds).toMatch(/^example\.test\. IN DS \d+ 13 2 [0-9A-F]{64}$/);
    expect(out.trim()).toBe(ds);
    // The DNSKEY RRset the server answers holds that KSK (and the ZSK).
    const r = await dig(h.port, ["example.test.", "DNSKEY", "+dnssec"]);
    expect(r.answer.filter((l) => / IN DNSKEY /.test(l))).toHaveLength(2);
    expect(r.answer.some((l) => / RRSIG DNSKEY 13 2 /.test(l))).toBe(true);
  });

  it("status shows keys, policy and DS; no private key is in any event", async () => {
    const st = await h.query<{ keys: { role: string }[]; ds: string[]; policy: { dnskeyTtl: number } }>("dnssec", { zone: "example.test" });
    expect(st.ds).toEqual([ds]);
    expect(st.policy.dnskeyTtl).toBe(3600);
    const events: unknown[] = [];
    for await (const { event } of h.dns.store.readEvents()) events.push(event);
    const text = JSON.stringify(events);
    expect(text).toContain("DnssecEnabled");
    expect(text).not.toMatch(/privateKey|pkcs8|"d":/i);
  });

  it("refuses a second enable and an unknown zone with typed errors, changing nothing", async () => {
    await expect(h.command("dnssec.enable", { zone: "example.test" })).rejects.toMatchObject({ code: "ALREADY_EXISTS" });
    await expect(h.command("dnssec.enable", { zone: "nope.test" })).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(h.command("dnssec.enable", { zone: "example.test", algorithm: 8 })).rejects.toMatchObject({ code: "VALIDATION" });
    const st = await h.query<{ keys: unknown[] }>("dnssec", { zone: "example.test" });
    expect(st.keys).toHaveLength(2);
  });

  it.each([
    ["a positive answer", "www.example.test", "A", /fully validated[\s\S]*192\.0\.2\.20/],
    ["an NXDOMAIN", "nope.example.test", "A", /; negative response, fully validated[\s\S]*ncache nxdomain/],
    ["a NODATA", "www.example.test", "MX", /; negative response, fully validated/],
    ["an empty non-terminal", "empty.nonterm.example.test", "A", /; negative response, fully validated/],
    ["a wildcard", "anything.wild.example.test", "A", /fully validated[\s\S]*192\.0\.2\.99/],
    ["a wildcard NODATA", "anything.wild.example.test", "MX", /; negative response, fully validated/],
    ["a CNAME chain", "chain1.example.test", "A", /fully validated[\s\S]*192\.0\.2\.20/],
    ["the apex", "example.test", "MX", /fully validated[\s\S]*10 mail\.example\.test/],
    ["an SRV", "_sip._tcp.example.test", "SRV", /fully validated[\s\S]*5060 sip\.example\.test/],
    ["a TXT", "example.test", "TXT", /fully validated[\s\S]*v=spf1/],
    ["a CAA", "example.test", "CAA", /fully validated[\s\S]*letsencrypt/],
    ["a TLSA", "_443._tcp.www.example.test", "TLSA", /fully validated[\s\S]*TLSA/],
    ["an HTTPS", "svc.example.test", "HTTPS", /fully validated[\s\S]*alpn/],
    ["a big TXT RRset", "big.example.test", "TXT", /fully validated[\s\S]*aaaa/],
    ["the NS RRset", "example.test", "NS", /fully validated[\s\S]*ns1\.example\.test/],
    ["the SOA", "example.test", "SOA", /fully validated[\s\S]*hostmaster/],
    ["the CDS", "example.test", "CDS", /fully validated[\s\S]*CDS/],
    ["a DNAME (its target does not exist)", "a.dn.example.test", "A", /fully validated[\s\S]*DNAME\s+www\.example\.test\./],
    ["a DNAME to data", "x.dn.example.test", "TXT", /; negative response, fully validated|fully validated/],
    ["an owner in mixed case", "mixed.example.test", "A", /fully validated[\s\S]*192\.0\.2\.55/],
    ["no DS at an insecure delegation", "sub.example.test", "DS", /; negative response, fully validated/],
    ["the DS of a secure delegation", "sec.example.test", "DS", /fully validated[\s\S]*12345 13 2/],
    ["an NXDOMAIN below an empty non-terminal", "x.nonterm.example.test", "A", /; negative response, fully validated[\s\S]*ncache nxdomain/],
    ["a CNAME to a NODATA", "alias.example.test", "MX", /fully validated[\s\S]*CNAME\s+www\.example\.test\./],
  ])("delv validates %s with the KSK as trust anchor", async (_what, name, type, expected) => {
    const { out } = await delv(anchor, name, type);
    expect(out).toMatch(expected);
    // delv ends a validated negative answer with "resolution failed: ncache nxdomain|nxrrset"; anything else failed.
    expect(out).not.toMatch(/unsigned answer|resolution failed: (?!ncache nx(?:domain|rrset))/);
  });

  it("NXDOMAIN keeps its RCODE and proves it with three NSEC3s (closest encloser, next closer, wildcard)", async () => {
    const r = await dig(h.port, ["nope.example.test.", "A", "+dnssec"]);
    expect(r.status).toBe("NXDOMAIN");
    expect(r.authority.filter((l) => / NSEC3 1 0 0 - /.test(l))).toHaveLength(3);
    const plain = await dig(h.port, ["nope.example.test.", "A"]);
    expect(plain.raw).not.toMatch(/RRSIG|NSEC3/);
  });

  it("a CNAME chain's end is proven in the same answer; a secure delegation's referral carries its signed DS", async () => {
    const r = await dig(h.port, ["alias.example.test.", "MX", "+dnssec"]);
    expect(r.answer.some((l) => / RRSIG CNAME 13 3 /.test(l))).toBe(true);
    expect(r.authority.some((l) => l.startsWith(`${base32hex(nsec3Hash("www.example.test."))}.example.test.`) && / NSEC3 1 0 0 - \S+ A AAAA RRSIG$/.test(l))).toBe(true);
    const ref = await dig(h.port, ["host.sec.example.test.", "A", "+dnssec"]);
    expect(ref.authority.some((l) => / DS 12345 13 2 /.test(l))).toBe(true);
    expect(ref.authority.some((l) => / RRSIG DS 13 3 /.test(l))).toBe(true);
    expect(ref.authority.some((l) => / RRSIG NS /.test(l))).toBe(false);
  });

  it("signatures are made once per RRset and zone version, not per query", async () => {
    const sig = async () => (await dig(h.port, ["mail.example.test.", "A", "+dnssec"])).answer.find((l) => / RRSIG A /.test(l))!;
    const first = await sig();
    // The encoded answers are dropped (as a change of another zone drops them): the RRset's signature is reused.
    h.dns.server!.changed("other.test.");
    expect(await sig()).toBe(first);
    // ECDSA signatures differ each time they are made: after a change of the zone, a new one.
    await h.command("record.add", { name: "cache-probe.example.test.", type: "A", data: "192.0.2.9" });
    expect(await sig()).not.toBe(first);
  });

  it("a question for type RRSIG gets the name's signatures", async () => {
    const r = await dig(h.port, ["www.example.test.", "RRSIG", "+dnssec"]);
    expect(r.status).toBe("NOERROR");
    expect(r.answer.map((l) => l.split(" ")[4]).sort()).toEqual(["A", "AAAA"]);
  });

  it("another instance on the same stream and seal key signs with the same keys; one with another seal key cannot sign", async () => {
    const log = createLogger({ level: "silent" });
    const same = await createDnsContext({ dns: { port: 0 }, sealer, dnssecTickMs: 60_000 })({ nc: h.nc, log, dataDir: dir, trust: h.trust });
    const other = await createDnsContext({ dns: { port: 0 }, sealer: Sealer.generate(), dnssecTickMs: 60_000 })({ nc: h.nc, log, dataDir: dir, trust: h.trust });
    try {
      const tags = async (port: number) => (await dig(port, ["www.example.test.", "A", "+dnssec"])).answer.filter((l) => / RRSIG A /.test(l)).map((l) => l.split(" ")[10]);
      expect(await tags(same.server!.port)).toEqual(await tags(h.port));
      const r = await tool("delv", ["@127.0.0.1", "-p", String(same.server!.port), "-a", anchor, "+root=example.test", "+tcp", "www.example.test", "A"]);
      expect(r.out).toMatch(/fully validated/);
      // Sealed under another key, the private halves do not open: no signatures (never a made-up key).
      expect(await tags(other.server!.port)).toEqual([]);
    } finally {
      await same.stop?.();
      await other.stop?.();
    }
  });

  it("the name model's snapshot keeps the zones' DNSSEC state", () => {
    const p = nameProjection();
    const m = h.dns.model();
    const back = p.snapshot!.decode([...p.snapshot!.encode(m)]);
    expect(back.dnssec.get("example.test.")).toEqual(m.dnssec.get("example.test."));
    expect(back.dnssec.size).toBe(1);
  });

  it("an insecure delegation is proven without DS", async () => {
    const r = await dig(h.port, ["host.sub.example.test.", "A", "+dnssec"]);
    expect(r.authority.some((l) => / NS ns\.sub\.example\.test\./.test(l))).toBe(true);
    expect(r.authority.some((l) => / NSEC3 1 0 0 - \S+ NS$/.test(l))).toBe(true);
    expect(r.authority.some((l) => / RRSIG NS /.test(l))).toBe(false);
  });

  it("a tampered trust anchor fails validation", async () => {
    const good = (await dnsCli(h.nats.url, ["zone", "dnssec", "ds", "example.test", "--dnskey"])).trim();
    const parts = good.split(/\s+/);
    const key = Buffer.from(parts[7]!, "base64");
    key[10] = key[10]! ^ 0xff;
    const bad = anchorFile("bad.conf", [...parts.slice(0, 7), key.toString("base64")].join(" "));
    const { out } = await delv(bad, "www.example.test", "A");
    expect(out).not.toMatch(/fully validated/);
    expect(out).toMatch(/resolution failed|no valid|broken trust chain|insecurity proof failed/);
  });

  it("a signed AXFR carries DNSKEY, RRSIGs and a full NSEC3 chain that kzonecheck --dnssec on and ldns-verify-zone accept", async () => {
    const axfr = await tool("kdig", ["@127.0.0.1", "-p", String(h.port), "example.test.", "AXFR", "+noall", "+answer"]);
    expect(axfr.code, axfr.out).toBe(0);
    const file = join(dir, "axfr.zone");
    // The transfer ends with the SOA again: a zone file holds it once.
    const lines = axfr.out.split("\n").filter((l) => l.trim() && !l.startsWith(";"));
    writeFileSync(file, `${lines.slice(0, -1).join("\n")}\n`);
    expect(lines.filter((l) => /\tNSEC3\t/.test(l)).length).toBeGreaterThan(10);
    expect(lines.some((l) => /\tNSEC3PARAM\t/.test(l))).toBe(true);
    const knot = await tool("kzonecheck", ["-o", "example.test.", "--dnssec", "on", file]);
    expect(knot.code, knot.out).toBe(0);
    const ldns = await tool("ldns-verify-zone", [file]);
    expect(ldns.code, ldns.out).toBe(0);
    expect(ldns.out).toMatch(/zone is verified/i);
    // A changed record breaks it: the check can fail.
    writeFileSync(file, `${lines.slice(0, -1).join("\n").replace("192.0.2.20", "192.0.2.21")}\n`);
    expect((await tool("ldns-verify-zone", [file])).code).not.toBe(0);
    expect((await tool("kzonecheck", ["-o", "example.test.", "--dnssec", "on", file])).code).not.toBe(0);
  });
});
