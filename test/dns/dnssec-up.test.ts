import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { ok, realmProcesses } from "../support/realm-processes.js";

const rp = realmProcesses();

/** dig +dnssec at the realm: the answer section's lines (white space squeezed). */
const digDo = (port: number, name: string, type: string) =>
  spawnSync("dig", ["+dnssec", "+norec", "+time=2", "+tries=2", "-p", String(port), "@127.0.0.1", name, type], { encoding: "utf8" })
    .stdout.split("\n")
    .filter((l) => l && !l.startsWith(";"))
    .map((l) => l.replace(/\s+/g, " "));

describe("DNSSEC under `realm up` (least-privilege identities, sealed keys in realm_dns_dnssec)", () => {
  it("enables signing through the CLI, and signs with the same keys after a restart", async () => {
    const data = rp.tmp("realm-dnssec-up-");
    const realm = await rp.up(data);
    const key = (await ok(["identity", "bootstrap"], realm.env)).stdout.trim();
    const env = { ...realm.env, REALM_TOKEN: key };
    await ok(["zone", "create", "lab.example", "--ns", "ns1.lab.example"], env);
    await ok(["host", "add", "web1.lab.example", "--ip", "192.0.2.80"], env);
    await ok(["zone", "dnssec", "enable", "lab.example", "--algorithm", "15"], env);
    const ds = (await ok(["zone", "dnssec", "ds", "lab.example"], env)).stdout.trim();
    expect(ds).toMatch(/^lab\.example\. IN DS \d+ 15 2 [0-9A-F]{64}$/);
    const help = await ok(["zone", "dnssec", "rollover", "--help"], env);
    expect(help.stdout).toContain("--zsk");
    const signed = digDo(realm.ports.dns, "web1.lab.example", "A");
    expect(signed.some((l) => / RRSIG A 15 3 /.test(l))).toBe(true);
    const tagBefore = signed.find((l) => / RRSIG A /.test(l))!.split(" ")[10];

    await rp.stop(realm);
    const again = await rp.up(data);
    expect((await ok(["zone", "dnssec", "ds", "lab.example"], { ...again.env, REALM_TOKEN: key })).stdout.trim()).toBe(ds);
    const after = digDo(again.ports.dns, "web1.lab.example", "A");
    expect(after.find((l) => / RRSIG A /.test(l))?.split(" ")[10]).toBe(tagBefore);
    // Every event verifies (the dnssec events are signed by the dns identity like the rest).
    const audit = await ok(["audit", "verify"], { ...again.env, REALM_TOKEN: key });
    expect(audit.stdout).toMatch(/ok {6}dns: \d+ events/);
  }, 120_000);
});
