import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { registerDnsCommands } from "../../dns/cli.js";
import { dig, dnsCli, startDns, ZONE, type DnsHarness } from "./harness.js";

let h: DnsHarness;
let dir: string;
beforeAll(async () => {
  h = await startDns();
  dir = mkdtempSync(join(tmpdir(), "realm-dns-cli-"));
});
afterAll(async () => {
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** `realm <args>` against the harness (no NATS for the verbs that work offline). */
const realm = (...args: string[]) => dnsCli(args.includes("--help") || args[1] === "check" || args[1] === "of" ? undefined : h.nats.url, args);

describe("realm zone / record / host / subject / cid", () => {
  it("imports a zone file, adds a host by short name, exports the zone", async () => {
    const file = join(dir, "example.test.zone");
    writeFileSync(file, ZONE);
    expect(JSON.parse(await realm("zone", "check", "example.test", file))).toMatchObject({ serial: 2026010101 });
    expect(JSON.parse(await realm("zone", "import", "example.test", file))).toMatchObject({ zone: "example.test." });
    expect(JSON.parse(await realm("host", "add", "web1", "--ip", "192.0.2.61"))).toMatchObject({ name: "web1.example.test." });
    expect((await dig(h.port, ["web1.example.test", "A"])).answer).toEqual(["web1.example.test. 3600 IN A 192.0.2.61"]);
    await realm("record", "add", "mx2.example.test.", "A", "192.0.2.62", "--ttl", "60");
    await realm("record", "add", "example.test.", "MX", "20", "mx2");
    const out = join(dir, "out.zone");
    await realm("zone", "export", "example.test", "-o", out);
    const text = readFileSync(out, "utf8");
    expect(text).toContain("web1\t3600\tIN\tA\t192.0.2.61");
    expect(text).toContain("@\t3600\tIN\tMX\t20 mx2.example.test.");
  });

  it("registers subjects and CIDs", async () => {
    await realm("subject", "register", "fleet.>", "--owner", "ACC_FLEET");
    expect(JSON.parse(await realm("subject", "owner", "fleet.truck1.gps"))).toMatchObject({ owner: "ACC_FLEET" });
    const file = join(dir, "blob.bin");
    writeFileSync(file, "blob");
    const { cid } = JSON.parse(await realm("cid", "of", file)) as { cid: string };
    await realm("cid", "register", "blob", cid);
    expect(JSON.parse(await realm("cid", "verify", file, "--name", "blob"))).toMatchObject({ valid: true });
  });

  it("every command has --help", async () => {
    const program = new Command("realm");
    registerDnsCommands(program);
    const walk = (c: Command): Command[] => [c, ...c.commands.flatMap(walk)];
    const all = walk(program).slice(1);
    expect(all.length).toBeGreaterThan(20);
    for (const c of all) expect(c.helpInformation()).toMatch(/Usage:/);
    expect(all.every((c) => c.description().length > 0)).toBe(true);
  });
});
