import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sealer } from "../../services/kernel/seal.js";
import { readMessage } from "../../dns/server/message.js";
import { findTsig, signRequest, TsigError, verifyResponse } from "../../dns/server/tsig.js";
import { jetstreamManager } from "@nats-io/jetstream";
import { Command } from "commander";
import { registerDnsCommands } from "../../dns/cli.js";
import { DNS_STREAM } from "../../dns/contract.js";
import { dig, dnsCli, startDns, ZONE, type DnsHarness } from "./harness.js";
import { runTool, udpAsk, updateAddA } from "./update-wire.js";

let h: DnsHarness;
let secret = "";
let revokedSecret = "";
const KEY = "upd.example.test";

const serial = async () => (await h.query<{ zones: { zone: string; serial: number }[] }>("zones", {})).zones.find((z) => z.zone === "example.test.")!.serial;

/** nsupdate with a key and a script (server and zone lines added); its exit code and output. */
const nsupdate = (key: string, lines: string[], tcp = false) => runTool("nsupdate", ["-y", key, "-t", "3", ...(tcp ? ["-v"] : [])], `server 127.0.0.1 ${h.port}\nzone example.test\n${lines.join("\n")}\nsend\n`);

beforeAll(async () => {
  h = await startDns({ sealer: Sealer.generate() });
  await h.command("zone.import", { zone: "example.test", text: ZONE });
  const r = await h.command<{ secret: string; fingerprint: string }>("tsig.create", { name: KEY, zones: ["example.test"], names: ["*.dyn.example.test"], principal: "user:external-dns" });
  secret = r.secret;
  const r2 = await h.command<{ secret: string }>("tsig.create", { name: "old.example.test", zones: ["example.test"], principal: "user:old" });
  revokedSecret = r2.secret;
}, 60_000);
afterAll(async () => h?.stop());

describe("RFC 2136 updates signed with TSIG (nsupdate, kdig)", () => {
  it("lists keys without their secrets; the secret is in no event", async () => {
    const list = await h.query<{ keys: Record<string, unknown>[] }>("tsig-keys", {});
    expect(list.keys.map((k) => k.name)).toContain(`${KEY}.`);
    expect(JSON.stringify(list)).not.toContain(secret);
    const jsm = await jetstreamManager(h.nc);
    const last = (await jsm.streams.info(DNS_STREAM)).state.last_seq;
    const hex = Buffer.from(secret, "base64").toString("hex");
    let created = 0;
    for (let seq = 1; seq <= last; seq++) {
      const text = (await jsm.streams.getMessage(DNS_STREAM, { seq }))!.string();
      if (text.includes("TsigKeyCreated")) created++;
      expect(text).not.toContain(secret);
      expect(text).not.toContain(hex);
    }
    expect(created).toBe(2);
  });

  it("realm tsig create|list|revoke (and --help)", async () => {
    const made = JSON.parse(await dnsCli(h.nats.url, ["tsig", "create", "cli.example.test", "--zone", "example.test", "--names", "*.cli.example.test", "--algorithm", "hmac-sha512", "--principal", "user:cli"])) as { secret: string; algorithm: string; names: string[] };
    expect(made.algorithm).toBe("hmac-sha512");
    expect(made.names).toEqual(["*.cli.example.test."]);
    expect(Buffer.from(made.secret, "base64")).toHaveLength(32);
    const up = await nsupdate(`hmac-sha512:cli.example.test:${made.secret}`, ["update add x.cli.example.test 60 TXT \"hello\""]);
    expect(up.code).toBe(0);
    const listed = await dnsCli(h.nats.url, ["tsig", "list"]);
    expect(listed).toContain("cli.example.test.");
    expect(listed).not.toContain(made.secret);
    expect(await dnsCli(h.nats.url, ["tsig", "revoke", "cli.example.test"])).toContain('"revoked": true');
    const api = (await (await fetch(`${h.host.httpUrl}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(api.paths)).toEqual(expect.arrayContaining(["/api/dns/tsig/create", "/api/dns/tsig/revoke", "/api/dns/tsig-keys"]));
    const program = new Command("realm");
    registerDnsCommands(program);
    const tsig = program.commands.find((c) => c.name() === "tsig")!;
    expect(tsig.helpInformation()).toMatch(/create[\s\S]*list[\s\S]*revoke/);
    expect(tsig.commands.find((c) => c.name() === "create")!.helpInformation()).toMatch(/--zone[\s\S]*--names[\s\S]*--algorithm/);
  });

  it("nsupdate adds a record (dig answers it) and deletes it (over UDP, then TCP)", async () => {
    const add = await nsupdate(`hmac-sha256:${KEY}:${secret}`, ["update add a.dyn.example.test 300 A 192.0.2.50"]);
    expect(add.out).toBe("");
    expect(add.code).toBe(0);
    expect((await dig(h.port, ["a.dyn.example.test", "A"])).answer).toEqual(["a.dyn.example.test. 300 IN A 192.0.2.50"]);
    const del = await nsupdate(`hmac-sha256:${KEY}:${secret}`, ["update delete a.dyn.example.test A"], true);
    expect(del.out).toBe("");
    expect(del.code).toBe(0);
    expect((await dig(h.port, ["a.dyn.example.test", "A"])).status).toBe("NXDOMAIN");
  });

  it("a failing prerequisite changes nothing", async () => {
    const before = await serial();
    const r = await nsupdate(`hmac-sha256:${KEY}:${secret}`, ["prereq yxrrset nope.dyn.example.test A", "update add b.dyn.example.test 300 A 192.0.2.51"]);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/NXRRSET/);
    expect(await serial()).toBe(before);
    expect((await dig(h.port, ["b.dyn.example.test", "A"])).status).toBe("NXDOMAIN");
  });

  it("a wrong secret is NOTAUTH/BADSIG, an unknown key NOTAUTH/BADKEY, a name outside the binding REFUSED; nothing changes", async () => {
    const before = await serial();
    const wrong = await nsupdate(`hmac-sha256:${KEY}:${Buffer.alloc(32, 1).toString("base64")}`, ["update add c.dyn.example.test 300 A 192.0.2.52"]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.out).toMatch(/NOTAUTH/);
    expect(wrong.out).toMatch(/BADSIG|bad signature/i);
    const unknown = await nsupdate(`hmac-sha256:nobody.example.test:${secret}`, ["update add c.dyn.example.test 300 A 192.0.2.52"]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.out).toMatch(/NOTAUTH/);
    expect(unknown.out).toMatch(/BADKEY|bad key/i);
    const outside = await nsupdate(`hmac-sha256:${KEY}:${secret}`, ["update add www2.example.test 300 A 192.0.2.53"]);
    expect(outside.code).not.toBe(0);
    expect(outside.out).toMatch(/REFUSED/);
    const unsigned = await runTool("nsupdate", ["-t", "3"], `server 127.0.0.1 ${h.port}\nzone example.test\nupdate add d.dyn.example.test 300 A 192.0.2.54\nsend\n`);
    expect(unsigned.out).toMatch(/REFUSED/);
    expect(await serial()).toBe(before);
  });

  it("a time outside the fudge is NOTAUTH/BADTIME, signed, with the server's time; nothing changes", async () => {
    const before = await serial();
    const key = { name: `${KEY}.`, algorithm: "hmac-sha256" as const, secret: Buffer.from(secret, "base64") };
    const { message, mac } = signRequest(updateAddA(4242, "example.test.", "e.dyn.example.test.", "192.0.2.55"), key, Math.floor(Date.now() / 1000) - 1000);
    const answer = await udpAsk(h.port, message);
    expect(answer.readUInt16BE(2) & 0xf).toBe(9);
    const t = findTsig(answer, readMessage(answer)!);
    expect(t.kind).toBe("tsig");
    if (t.kind !== "tsig") return;
    expect(t.tsig.error).toBe(TsigError.BADTIME);
    expect(Math.abs(t.tsig.other.readUIntBE(0, 6) - Date.now() / 1000)).toBeLessThan(10);
    expect(verifyResponse(answer, t.tsig, key, mac, true)).toBe(true);
    expect(await serial()).toBe(before);
  });

  it("the same signed datagram sent twice (a retransmit) is applied once", async () => {
    const before = await serial();
    const key = { name: `${KEY}.`, algorithm: "hmac-sha256" as const, secret: Buffer.from(secret, "base64") };
    const { message } = signRequest(updateAddA(777, "example.test.", "f.dyn.example.test.", "192.0.2.56"), key);
    const [a, b] = await Promise.all([udpAsk(h.port, message), udpAsk(h.port, message)]);
    expect(a.readUInt16BE(2) & 0xf).toBe(0);
    expect(b.readUInt16BE(2) & 0xf).toBe(0);
    const again = await udpAsk(h.port, message);
    expect(again.readUInt16BE(2) & 0xf).toBe(0);
    expect(await serial()).toBe(before + 1);
    expect((await dig(h.port, ["f.dyn.example.test", "A"])).answer).toEqual(["f.dyn.example.test. 300 IN A 192.0.2.56"]);
  });

  it("kdig -y transfers the zone (every message signed); a wrong key fails", async () => {
    const ok = await runTool("kdig", ["@127.0.0.1", "-p", String(h.port), "-y", `hmac-sha256:${KEY}:${secret}`, "example.test", "AXFR"]);
    expect(ok.out).toMatch(/www\.example\.test\.\s+\d+\s+IN\s+A\s+192\.0\.2\.20/);
    expect(ok.out).not.toMatch(/failed|BADSIG|WARNING/i);
    const bad = await runTool("kdig", ["@127.0.0.1", "-p", String(h.port), "-y", `hmac-sha256:${KEY}:${Buffer.alloc(32, 2).toString("base64")}`, "example.test", "AXFR"]);
    expect(bad.out).not.toMatch(/www\.example\.test\.\s+\d+\s+IN\s+A/);
    expect(bad.out).toMatch(/NOTAUTH|BADSIG/);
  });

  it("kdig -y checks every message of a multi-message transfer", async () => {
    const lines = ["$ORIGIN big.test.", "$TTL 300", "@ SOA ns1 hostmaster 1 7200 900 1209600 300", "@ NS ns1", "ns1 A 192.0.2.1"];
    for (let i = 0; i < 3000; i++) lines.push(`h${i} TXT "${"x".repeat(100)}"`);
    await h.command("zone.import", { zone: "big.test", text: `${lines.join("\n")}\n` });
    const k = await h.command<{ secret: string }>("tsig.create", { name: "xfr.big.test", zones: ["big.test"], principal: "user:secondary" });
    const r = await runTool("kdig", ["@127.0.0.1", "-p", String(h.port), "-y", `hmac-sha256:xfr.big.test:${k.secret}`, "big.test", "AXFR"]);
    const m = /Received \d+ B \((\d+) messages, (\d+) records\)/.exec(r.out);
    expect(r.out).not.toMatch(/failed|BADSIG|WARNING/i);
    expect(Number(m?.[1])).toBeGreaterThan(3);
    // SOA, NS, A, 3000 TXT, SOA (kdig does not count the TSIG records, and fails on any that does not verify)
    expect(Number(m?.[2])).toBe(3004);
    // the key of another zone may not transfer this one
    const other = await runTool("kdig", ["@127.0.0.1", "-p", String(h.port), "-y", `hmac-sha256:${KEY}:${secret}`, "big.test", "AXFR"]);
    expect(other.out).not.toMatch(/h1\.big\.test/);
  });

  it("a revoked key is refused (BADKEY)", async () => {
    const ok = await nsupdate(`hmac-sha256:old.example.test:${revokedSecret}`, ["update add g.example.test 300 A 192.0.2.57"]);
    expect(ok.code).toBe(0);
    await h.command("tsig.revoke", { name: "old.example.test" });
    const before = await serial();
    const r = await nsupdate(`hmac-sha256:old.example.test:${revokedSecret}`, ["update add h.example.test 300 A 192.0.2.58"]);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/BADKEY|bad key/i);
    expect(await serial()).toBe(before);
  });
});
