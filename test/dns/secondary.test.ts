import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import { dig, startDns, ZONE, type DnsHarness } from "./harness.js";

/** Knot DNS as a real secondary of the realm: it transfers the zone by AXFR and refreshes on NOTIFY. */
let h: DnsHarness;
let knot: ChildProcess;
let knotPort: number;
let dir: string;
let knotLog = "";

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => res(p));
    });
  });
}

async function eventually(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // dig fails outright (exit 9) while knot is still starting: that is "not yet", not a failure.
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not happen within ${ms} ms; knot said: ${knotLog.slice(-2000)}`);
}

beforeAll(async () => {
  knotPort = await freePort();
  h = await startDns({ dns: { port: 0, notify: [{ host: "127.0.0.1", port: knotPort }] } });
  await h.command("zone.import", { zone: "example.test", text: ZONE });
  dir = mkdtempSync(join(tmpdir(), "realm-knot-secondary-"));
  writeFileSync(
    join(dir, "knot.conf"),
    `server:\n  rundir: "${dir}"\n  listen: 127.0.0.1@${knotPort}\ndatabase:\n  storage: "${dir}/db"\nlog:\n  - target: stderr\n    any: info\nremote:\n  - id: realm\n    address: 127.0.0.1@${h.port}\nacl:\n  - id: realm_notify\n    address: 127.0.0.1\n    action: notify\ntemplate:\n  - id: default\n    storage: "${dir}"\nzone:\n  - domain: example.test\n    master: realm\n    acl: realm_notify\n`,
  );
  knot = spawn("knotd", ["-c", join(dir, "knot.conf")], { stdio: ["ignore", "ignore", "pipe"] });
  knot.stderr!.on("data", (d: Buffer) => (knotLog += d.toString()));
});
afterAll(async () => {
  knot?.kill("SIGTERM");
  await new Promise((r) => (knot && knot.exitCode === null ? knot.once("exit", r) : r(null)));
  await h?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("knot as a secondary of the realm", () => {
  it("transfers the zone (AXFR) and serves it", async () => {
    await eventually("knot serving www.example.test", async () => (await dig(knotPort, ["www.example.test", "A"])).answer[0] === "www.example.test. 3600 IN A 192.0.2.20");
    expect((await dig(knotPort, ["chain1.example.test", "A"])).answer).toHaveLength(4);
    expect((await dig(knotPort, ["_sip._tcp.example.test", "SRV"])).answer).toEqual(["_sip._tcp.example.test. 3600 IN SRV 10 60 5060 sip.example.test."]);
  });

  it("picks up a change after the realm's NOTIFY", async () => {
    await h.command("record.add", { name: "notified.example.test.", type: "A", data: "192.0.2.222" });
    await eventually("knot serving the new record", async () => (await dig(knotPort, ["notified.example.test", "A"])).answer[0] === "notified.example.test. 3600 IN A 192.0.2.222");
    const soa = (await dig(knotPort, ["example.test", "SOA"])).answer[0]!;
    const ours = (await dig(h.port, ["example.test", "SOA"])).answer[0]!;
    expect(soa).toBe(ours);
    expect(h.dns.server!.stats.notifies).toBeGreaterThan(0);
  });
});
