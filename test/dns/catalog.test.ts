import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dig, startDns, ZONE, type DnsHarness } from "./harness.js";
import { freePort } from "./knot.js";
import { runTool } from "./update-wire.js";
import { memberId } from "../../dns/server/catalog.js";

/**
 * The realm's catalog zone (RFC 9432 v2): knot, configured with nothing but the catalog (catalog-role:
 * interpret, a template for its members), serves every realm zone, one created after it started included,
 * and drops a deleted one.
 */
let h: DnsHarness;
let knot: ChildProcess;
let knotPort: number;
let dir: string;
let knotLog = "";

async function eventually(what: string, check: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await Promise.resolve(check()).catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not happen within ${ms} ms; knot said: ${knotLog.slice(-3000)}`);
}

const axfr = async (zone: string) => {
  const { code, out } = await runTool("kdig", ["@127.0.0.1", "-p", String(h.port), "+nocomments", "+nostats", "+noquestion", zone, "AXFR"]);
  expect(code).toBe(0);
  return out.split("\n").filter((l) => l && !l.startsWith(";")).map((l) => l.replace(/\s+/g, " ").trim());
};

beforeAll(async () => {
  knotPort = await freePort();
  // The catalog consumer is told of every zone's changes (the server's notify list), the catalog's included.
  h = await startDns({ dns: { port: 0, notify: [{ host: "127.0.0.1", port: knotPort }], notifyRetry: { firstDelayMs: 200, tries: 5 } } });
  await h.command("zone.import", { zone: "example.test", text: ZONE });
  dir = mkdtempSync(join(tmpdir(), "realm-knot-catalog-"));
  // Knot keeps the members it learnt from a catalog in its database: the directory must exist.
  mkdirSync(join(dir, "db"));
  writeFileSync(
    join(dir, "knot.conf"),
    [
      "server:",
      `  rundir: "${dir}"`,
      `  listen: 127.0.0.1@${knotPort}`,
      "database:",
      `  storage: "${dir}/db"`,
      "log:",
      "  - target: stderr",
      "    any: info",
      "remote:",
      "  - id: realm",
      `    address: 127.0.0.1@${h.port}`,
      "acl:",
      "  - id: realm_notify",
      "    address: 127.0.0.1",
      "    action: notify",
      "template:",
      "  - id: default",
      `    storage: "${dir}"`,
      "  - id: member",
      `    storage: "${dir}"`,
      "    master: realm",
      "    acl: realm_notify",
      "zone:",
      "  - domain: catalog.realm",
      "    master: realm",
      "    acl: realm_notify",
      "    catalog-role: interpret",
      "    catalog-template: member",
      "",
    ].join("\n"),
  );
  knot = spawn("knotd", ["-c", join(dir, "knot.conf")], { stdio: ["ignore", "ignore", "pipe"] });
  knot.stderr!.on("data", (d: Buffer) => (knotLog += d.toString()));
  await eventually("knot serving the catalog's member example.test", async () => (await dig(knotPort, ["www.example.test", "A"])).answer[0] === "www.example.test. 3600 IN A 192.0.2.20");
}, 60_000);
afterAll(async () => {
  knot?.kill("SIGTERM");
  await new Promise((r) => (knot && knot.exitCode === null ? knot.once("exit", r) : r(null)));
  await h?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("the realm's catalog zone with knot as its consumer", () => {
  it("is an RFC 9432 version 2 catalog: NS invalid., version TXT 2, one PTR per zone under zones.", async () => {
    const rr = await axfr("catalog.realm");
    expect(rr.filter((l) => / SOA /.test(l))).toHaveLength(2);
    expect(rr).toContain("catalog.realm. 0 IN NS invalid.");
    expect(rr).toContain('version.catalog.realm. 0 IN TXT "2"');
    expect(rr).toContain(`${memberId("example.test.")}.zones.catalog.realm. 0 IN PTR example.test.`);
    expect(rr.filter((l) => / PTR /.test(l))).toHaveLength(1);
  });

  it("knot serves a zone created after it started, and drops a deleted one", async () => {
    const ixfrs = h.dns.server!.stats.ixfrDiffs;
    await h.command("zone.create", { zone: "late.test", ns: ["ns1.late.test."] });
    await h.command("record.add", { name: "a.late.test.", type: "A", data: "192.0.2.77" });
    await eventually("knot serving late.test", async () => (await dig(knotPort, ["a.late.test", "A"])).answer[0] === "a.late.test. 3600 IN A 192.0.2.77");
    // Knot took the catalog's change as an IXFR (the realm answered differences).
    expect(h.dns.server!.stats.ixfrDiffs).toBeGreaterThan(ixfrs);
    await eventually("knot's log of the catalog's IXFR", () => /\[catalog\.realm\.\] IXFR, incoming, remote 127\.0\.0\.1@\d+, finished/.test(knotLog));
    expect(knotLog).not.toMatch(/AXFR-style/i);
    const ids = (await axfr("catalog.realm")).filter((l) => / PTR /.test(l)).map((l) => l.split(".")[0]);
    expect(new Set(ids).size).toBe(2);
    await h.command("zone.delete", { zone: "late.test" });
    await eventually("knot no longer serving late.test", async () => (await dig(knotPort, ["a.late.test", "A"])).status === "REFUSED");
    expect((await dig(knotPort, ["www.example.test", "A"])).answer[0]).toBe("www.example.test. 3600 IN A 192.0.2.20");
    expect((await axfr("catalog.realm")).filter((l) => / PTR /.test(l))).toEqual([`${memberId("example.test.")}.zones.catalog.realm. 0 IN PTR example.test.`]);
  });

  it("is not one of the realm's zones: not listed, and its name cannot be written to", async () => {
    const zones = (await h.query<{ zones: { zone: string }[] }>("zones", {})).zones.map((z) => z.zone);
    expect(zones).not.toContain("catalog.realm.");
    await expect(h.command("record.add", { name: "x.catalog.realm.", type: "A", data: "192.0.2.1" })).rejects.toMatchObject({ code: "NOT_FOUND" });
  });
});
