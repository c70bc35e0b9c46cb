import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import dgram from "node:dgram";
import * as dnsPacket from "dns-packet";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Sealer } from "../../services/kernel/seal.js";
import { dig, dnsCli, startDns, ZONE, type DnsHarness } from "./harness.js";
import { freePort } from "./knot.js";
import { runTool } from "./update-wire.js";

/**
 * IXFR (RFC 1995) from the realm's event history and NOTIFY (RFC 1996) with retries: knot as a secondary
 * told by NOTIFY follows changes by IXFR; kdig shows the differences; an unknown serial gets the whole zone.
 */
let h: DnsHarness;
let knot: ChildProcess;
let knotPort: number;
let dir: string;
let knotLog = "";
let secret = "";

async function eventually(what: string, check: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await Promise.resolve(check()).catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not happen within ${ms} ms; knot said: ${knotLog.slice(-2000)}`);
}

const serial = async (zone = "example.test.") => (await h.query<{ zones: { zone: string; serial: number }[] }>("zones", {})).zones.find((z) => z.zone === zone)!.serial;
const kdig = (args: string[]) => runTool("kdig", ["@127.0.0.1", "-p", String(h.port), "+nocomments", "+nostats", "+noquestion", ...args]);
/** kdig's record lines, white space squeezed. */
const lines = (out: string) => out.split("\n").filter((l) => l && !l.startsWith(";")).map((l) => l.replace(/\s+/g, " ").trim());

beforeAll(async () => {
  knotPort = await freePort();
  h = await startDns({ sealer: Sealer.generate(), dns: { port: 0, notifyRetry: { firstDelayMs: 100, maxDelayMs: 400, tries: 4 } } });
  await h.command("zone.import", { zone: "example.test", text: ZONE });
  secret = (await h.command<{ secret: string }>("tsig.create", { name: "xfr.example.test", zones: ["example.test"], principal: "user:secondary" })).secret;
  // The secondary is a setting of the zone (an event), made through the CLI.
  const set = JSON.parse(await dnsCli(h.nats.url, ["zone", "secondaries", "example.test", `127.0.0.1:${knotPort}`])) as { secondaries: string[] };
  expect(set.secondaries).toEqual([`127.0.0.1:${knotPort}`]);
  dir = mkdtempSync(join(tmpdir(), "realm-knot-ixfr-"));
  // Knot asks its primary for IXFR by itself once it holds the zone (knot 3.2 has no switch for it).
  writeFileSync(
    join(dir, "knot.conf"),
    `server:\n  rundir: "${dir}"\n  listen: 127.0.0.1@${knotPort}\ndatabase:\n  storage: "${dir}/db"\nlog:\n  - target: stderr\n    any: info\nremote:\n  - id: realm\n    address: 127.0.0.1@${h.port}\nacl:\n  - id: realm_notify\n    address: 127.0.0.1\n    action: notify\ntemplate:\n  - id: default\n    storage: "${dir}"\nzone:\n  - domain: example.test\n    master: realm\n    acl: realm_notify\n`,
  );
  knot = spawn("knotd", ["-c", join(dir, "knot.conf")], { stdio: ["ignore", "ignore", "pipe"] });
  knot.stderr!.on("data", (d: Buffer) => (knotLog += d.toString()));
  await eventually("knot serving the zone (first AXFR)", async () => (await dig(knotPort, ["www.example.test", "A"])).answer[0] === "www.example.test. 3600 IN A 192.0.2.20");
}, 60_000);
afterAll(async () => {
  knot?.kill("SIGTERM");
  await new Promise((r) => (knot && knot.exitCode === null ? knot.once("exit", r) : r(null)));
  await h?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("IXFR and NOTIFY with knot as the secondary", () => {
  it("knot follows a change by IXFR after the realm's NOTIFY, which it answers", async () => {
    const diffsBefore = h.dns.server!.stats.ixfrDiffs;
    const answeredBefore = h.dns.server!.notifier.stats.answered;
    await h.command("record.add", { name: "ixfr1.example.test.", type: "A", data: "192.0.2.101" });
    await eventually("knot serving the new record", async () => (await dig(knotPort, ["ixfr1.example.test", "A"])).answer[0] === "ixfr1.example.test. 3600 IN A 192.0.2.101");
    expect((await dig(knotPort, ["example.test", "SOA"])).answer[0]).toBe((await dig(h.port, ["example.test", "SOA"])).answer[0]);
    // The realm answered an IXFR with differences; knot says it took an IXFR, not an AXFR-style one.
    expect(h.dns.server!.stats.ixfrDiffs).toBeGreaterThan(diffsBefore);
    await eventually("knot's log of the incoming IXFR", () => /IXFR, incoming, remote 127\.0\.0\.1@\d+, finished/.test(knotLog));
    expect(knotLog).not.toMatch(/AXFR-style/i);
    expect(h.dns.server!.notifier.stats.answered).toBeGreaterThan(answeredBefore);
  });

  it("follows a replaced RRset and a removal by IXFR too", async () => {
    await h.command("record.set", { name: "ixfr1.example.test.", type: "A", data: ["192.0.2.102", "192.0.2.103"] });
    await h.command("record.remove", { name: "www.example.test.", type: "A" });
    await eventually("knot serving the replaced RRset", async () => (await dig(knotPort, ["ixfr1.example.test", "A"])).answer.sort().join("|") === "ixfr1.example.test. 3600 IN A 192.0.2.102|ixfr1.example.test. 3600 IN A 192.0.2.103");
    await eventually("knot's www gone", async () => (await dig(knotPort, ["www.example.test", "A"])).status === "NOERROR" && (await dig(knotPort, ["www.example.test", "A"])).answer.length === 0);
    expect((await dig(knotPort, ["example.test", "SOA"])).answer[0]).toBe((await dig(h.port, ["example.test", "SOA"])).answer[0]);
    expect(knotLog).not.toMatch(/AXFR-style/i);
  });

  it("kdig IXFR=<serial> shows the differences: old SOA, deleted, new SOA, added", async () => {
    const from = await serial();
    await h.command("record.set", { name: "ixfr1.example.test.", type: "A", data: ["192.0.2.103", "192.0.2.104"] });
    const to = await serial();
    const { code, out } = await kdig(["example.test", `IXFR=${from}`]);
    expect(code).toBe(0);
    const rr = lines(out);
    const soaSerials = rr.filter((l) => / SOA /.test(l)).map((l) => Number(l.split(" ")[6]));
    expect(soaSerials).toEqual([to, from, to, to]);
    expect(rr).toEqual([
      expect.stringMatching(/^example\.test\. 3600 IN SOA /),
      expect.stringMatching(/^example\.test\. 3600 IN SOA /),
      "ixfr1.example.test. 3600 IN A 192.0.2.102",
      expect.stringMatching(/^example\.test\. 3600 IN SOA /),
      "ixfr1.example.test. 3600 IN A 192.0.2.104",
      expect.stringMatching(/^example\.test\. 3600 IN SOA /),
    ]);
  });

  it("answers a current serial with the SOA alone and an unknown one with the whole zone", async () => {
    const now = await serial();
    const same = lines((await kdig(["example.test", `IXFR=${now}`])).out);
    expect(same).toHaveLength(1);
    expect(same[0]).toMatch(new RegExp(` SOA .* ${now} `));
    const whole = h.dns.server!.stats.ixfrWhole;
    const axfr = lines((await kdig(["example.test", "IXFR=7"])).out);
    expect(axfr.filter((l) => / SOA /.test(l))).toHaveLength(2);
    expect(axfr).toContain("ixfr1.example.test. 3600 IN A 192.0.2.104");
    expect(axfr.length).toBeGreaterThan(20);
    expect(h.dns.server!.stats.ixfrWhole).toBe(whole + 1);
  });

  it("a TSIG-signed IXFR is answered signed; a wrong secret is refused", async () => {
    const from = await serial();
    await h.command("record.add", { name: "signed.example.test.", type: "TXT", data: '"signed"' });
    const ok = await kdig(["-y", `hmac-sha256:xfr.example.test:${secret}`, "example.test", `IXFR=${from}`]);
    expect(ok.code).toBe(0);
    expect(lines(ok.out)).toContain('signed.example.test. 3600 IN TXT "signed"');
    expect(ok.out).not.toMatch(/failed|BADSIG|BADKEY/i);
    const bad = await kdig(["-y", `hmac-sha256:xfr.example.test:${Buffer.alloc(32, 1).toString("base64")}`, "example.test", `IXFR=${from}`]);
    expect(bad.code).not.toBe(0);
    expect(bad.out).toMatch(/BADSIG/);
    expect(lines(bad.out).some((l) => l.includes("signed.example.test"))).toBe(false);
  });

  it("refuses secondaries that are not IP addresses, changing nothing", async () => {
    await expect(h.command("zone.secondaries", { zone: "example.test", secondaries: ["ns2.example.net"] })).rejects.toMatchObject({ code: "VALIDATION" });
    await expect(h.command("zone.secondaries", { zone: "example.test", secondaries: ["127.0.0.1:99999"] })).rejects.toMatchObject({ code: "VALIDATION" });
    const z = (await h.query<{ zones: { zone: string; secondaries?: string[] }[] }>("zones", {})).zones.find((x) => x.zone === "example.test.")!;
    expect(z.secondaries).toEqual([`127.0.0.1:${knotPort}`]);
    // The CLI: addresses or --none, never neither (a usage error, exit 2, nothing sent); --help says so.
    await expect(dnsCli(h.nats.url, ["zone", "secondaries", "example.test"])).rejects.toMatchObject({ exitCode: 2 });
    await expect(dnsCli(h.nats.url, ["zone", "secondaries", "example.test", "--none", "127.0.0.1"])).rejects.toMatchObject({ exitCode: 2 });
    await expect(dnsCli(undefined, ["zone", "secondaries", "--help"])).rejects.toMatchObject({ code: "commander.helpDisplayed" });
  });

  it("realm zone secondaries --none removes them (and NOTIFY then goes nowhere)", async () => {
    await h.command("zone.create", { zone: "none.test", ns: ["ns1.none.test."] });
    // Loopback only: a test sends nothing beyond this machine.
    await dnsCli(h.nats.url, ["zone", "secondaries", "none.test", "127.0.0.1:9"]);
    const cleared = JSON.parse(await dnsCli(h.nats.url, ["zone", "secondaries", "none.test", "--none"])) as { secondaries: string[] };
    expect(cleared.secondaries).toEqual([]);
    const z = (await h.query<{ zones: { zone: string; secondaries?: string[] }[] }>("zones", {})).zones.find((x) => x.zone === "none.test.")!;
    expect(z.secondaries).toBeUndefined();
  });
});

describe("NOTIFY retransmission (RFC 1996 3.6)", () => {
  /** A UDP peer that drops the first `ignore` NOTIFYs and answers the rest; what it received. */
  async function peer(ignore: number): Promise<{ port: number; got: { id: number; serial: number }[]; close(): void }> {
    const s = dgram.createSocket("udp4");
    const got: { id: number; serial: number }[] = [];
    s.on("message", (m, r) => {
      // The NOTIFY's SOA (answer section, RFC 1996 3.7): its serial.
      const soa = dnsPacket.decode(m).answers?.[0] as { data: { serial: number } } | undefined;
      got.push({ id: m.readUInt16BE(0), serial: soa?.data.serial ?? -1 });
      const qEnd = m.indexOf(0, 12) + 5;
      if (got.length <= ignore) return;
      const reply = Buffer.from(m.subarray(0, qEnd));
      reply.writeUInt16BE(0x8000 | (4 << 11) | 0x0400, 2);
      reply.writeUInt16BE(1, 4);
      reply.writeUInt32BE(0, 6);
      reply.writeUInt16BE(0, 10);
      s.send(reply, r.port, r.address);
    });
    await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
    return { port: s.address().port, got, close: () => s.close() };
  }

  it("resends until the secondary answers, then stops; gives up after the configured tries", async () => {
    const late = await peer(2);
    const silent = await peer(Infinity);
    try {
      await h.command("zone.create", { zone: "notify.test", ns: ["ns1.notify.test."] });
      const st = h.dns.server!.notifier.stats;
      const before = { answered: st.answered, gaveUp: st.gaveUp };
      // Setting the secondaries tells them at once (as every change of the zone does).
      await h.command("zone.secondaries", { zone: "notify.test", secondaries: [`127.0.0.1:${late.port}`, `127.0.0.1:${silent.port}`] });
      const now = await serial("notify.test.");
      await eventually("the late secondary answered", () => st.answered > before.answered);
      await eventually("the silent one given up", () => st.gaveUp > before.gaveUp);
      // Three sends to the late one (two dropped), one NOTIFY (same id) of the newest serial; four to the silent one.
      expect(late.got).toHaveLength(3);
      expect(new Set(late.got.map((g) => g.id)).size).toBe(1);
      expect(late.got.every((g) => g.serial === now)).toBe(true);
      expect(silent.got).toHaveLength(4);
      expect(h.dns.server!.notifier.waiting).toBe(0);
    } finally {
      late.close();
      silent.close();
    }
  });
});
