import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { registerDnsCommands } from "../../dns/cli.js";
import { RealmError } from "../../services/kernel/errors.js";
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

  it("reads names one way: the README's quick start builds the zone it means; ambiguous names are refused naming both readings", async () => {
    // README: `realm zone create lab.example --ns ns1.lab.example` (no trailing dot), then `realm host add web1.lab.example`
    await realm("zone", "create", "lab.example", "--ns", "ns1.lab.example");
    expect((await dig(h.port, ["lab.example", "NS"])).answer).toEqual(["lab.example. 3600 IN NS ns1.lab.example."]);
    expect((await dig(h.port, ["lab.example", "SOA"])).answer[0]).toMatch(/^lab\.example\. 3600 IN SOA ns1\.lab\.example\. hostmaster\.lab\.example\. /);
    expect(JSON.parse(await realm("host", "add", "web1.lab.example", "--ip", "192.0.2.80"))).toMatchObject({ name: "web1.lab.example." });
    expect((await dig(h.port, ["web1.lab.example", "A"])).answer).toEqual(["web1.lab.example. 3600 IN A 192.0.2.80"]);
    const serial = async () => (JSON.parse(await realm("zone", "list")) as { zones: { zone: string; serial: number }[] }).zones.find((z) => z.zone === "lab.example.")!.serial;
    const before = await serial();
    const refused = async (...args: string[]) => {
      const err = await realm(...args).then(() => undefined, (e: unknown) => e);
      expect(err, args.join(" ")).toBeInstanceOf(RealmError);
      expect((err as RealmError).code).toBe("VALIDATION");
      return (err as RealmError).message;
    };
    const msg = await refused("record", "add", "www.other.example", "A", "192.0.2.81", "--zone", "lab.example");
    expect(msg).toContain('"www.other.example" is ambiguous in zone lab.example.');
    expect(msg).toContain("www.other.example. (absolute)");
    expect(msg).toContain("www.other.example.lab.example. (relative to the zone)");
    expect(await refused("record", "add", "www", "CNAME", "www.other.example", "--zone", "lab.example")).toMatch(/CNAME target "www.other.example" is ambiguous/);
    expect(await refused("record", "add", "@", "MX", "10", "mx.other.example", "--zone", "lab.example")).toMatch(/MX exchange "mx.other.example" is ambiguous/);
    expect(await refused("record", "set", "a.b", "A", "--data", "192.0.2.1", "--zone", "lab.example")).toMatch(/ambiguous/);
    expect(await refused("host", "add", "db.other", "--ip", "192.0.2.82", "--zone", "lab.example")).toMatch(/ambiguous/);
    expect(await refused("zone", "create", "lab2.example", "--ns", "ns1.other.net")).toMatch(/name server "ns1.other.net" is ambiguous/);
    expect(await serial()).toBe(before);
    expect((JSON.parse(await realm("zone", "list")) as { zones: { zone: string }[] }).zones.map((z) => z.zone)).not.toContain("lab2.example.");
    // The API reads names the same way (one function behind every verb).
    await expect(h.command("record.add", { zone: "lab.example", name: "www.other.example", type: "A", data: "192.0.2.81" })).rejects.toMatchObject({ code: "VALIDATION", message: expect.stringMatching(/ambiguous/) });
    // What is not ambiguous works: a trailing dot, a name ending in the zone, a single label, a service name.
    await realm("record", "add", "www", "CNAME", "www.other.example.", "--zone", "lab.example");
    await realm("record", "add", "@", "MX", "10", "mail", "--zone", "lab.example");
    await realm("record", "add", "mail.lab.example", "A", "192.0.2.25");
    await realm("record", "add", "_sip._tcp", "SRV", "0", "5", "5060", "sip.lab.example", "--zone", "lab.example");
    await realm("record", "add", "Zero", "A", "192.0.2.9", "--zone", "lab.example", "--ttl", "0");
    expect((await dig(h.port, ["www.lab.example", "CNAME"])).answer).toEqual(["www.lab.example. 3600 IN CNAME www.other.example."]);
    expect((await dig(h.port, ["lab.example", "MX"])).answer).toEqual(["lab.example. 3600 IN MX 10 mail.lab.example."]);
    expect((await dig(h.port, ["_sip._tcp.lab.example", "SRV"])).answer).toEqual(["_sip._tcp.lab.example. 3600 IN SRV 0 5 5060 sip.lab.example."]);
    expect((await dig(h.port, ["zero.lab.example", "A"])).answer).toEqual(["Zero.lab.example. 0 IN A 192.0.2.9"]);
    expect(JSON.parse(await realm("record", "list", "lab.example", "--name", "ZERO", "--type", "a"))).toMatchObject({ records: [{ name: "Zero.lab.example.", type: "A", ttl: 0 }] });
  });

  it("`zone check` and `zone import` give the same verdict on every file (one validation)", async () => {
    const head = "$TTL 300\n@ SOA ns1 hm 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n";
    const files: Record<string, string> = {
      good: `${head}www A 192.0.2.2\n`,
      cnameAndData: `${head}www CNAME ns1\nwww TXT x\n`,
      noApexNs: "$TTL 300\n@ SOA ns1 hm 1 2 3 4 5\nns1 A 192.0.2.1\n",
      duplicate: `${head}www A 192.0.2.2\nwww A 192.0.2.2\n`,
      ttlsDiffer: `${head}www 60 A 192.0.2.2\nwww 120 A 192.0.2.3\n`,
      belowDname: `${head}old DNAME x.test.\na.old A 192.0.2.2\n`,
      cnameAtApex: `${head}@ CNAME www\n`,
      svcbDuplicateKey: `${head}s HTTPS 1 . alpn=h2 alpn=h3\n`,
      badLine: `${head}www A 192.0.2.300\n`,
      missingInclude: `${head}$INCLUDE nowhere.inc\n`,
    };
    const verdict = async (...args: string[]) => realm(...args).then(() => "ok", (e: unknown) => (e instanceof RealmError ? e.code : String(e)));
    for (const [name, text] of Object.entries(files)) {
      const file = join(dir, `${name}.zone`);
      writeFileSync(file, text);
      const zoneName = `${name.toLowerCase()}.check.test`;
      const check = await verdict("zone", "check", zoneName, file);
      const imported = await verdict("zone", "import", zoneName, file);
      expect({ name, check }).toEqual({ name, check: imported });
      expect({ name, check }).toEqual({ name, check: name === "good" ? "ok" : check === "ok" ? "an error" : check });
    }
  });

  it("imports a file that is not UTF-8 octet for octet (through the uploads bucket), and one with $INCLUDEs read next to it", async () => {
    const latin1 = join(dir, "latin1.zone");
    writeFileSync(latin1, Buffer.concat([Buffer.from('$TTL 300\n@ SOA ns1 hm 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\nt TXT "caf'), Buffer.from([0xe9]), Buffer.from('"\n')]));
    expect(JSON.parse(await realm("zone", "check", "latin1.test", latin1))).toMatchObject({ records: 3 });
    await realm("zone", "import", "latin1.test", latin1);
    expect((await dig(h.port, ["t.latin1.test", "TXT"])).answer).toEqual(['t.latin1.test. 300 IN TXT "caf\\233"']);
    mkdirSync(join(dir, "inc"), { recursive: true });
    writeFileSync(join(dir, "inc", "top.zone"), '$TTL 300\n@ SOA ns1 hm 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n$INCLUDE parts/hosts.inc\n');
    mkdirSync(join(dir, "inc", "parts"), { recursive: true });
    writeFileSync(join(dir, "inc", "parts", "hosts.inc"), "web A 192.0.2.7\n");
    await realm("zone", "import", "inc.test", join(dir, "inc", "top.zone"));
    expect((await dig(h.port, ["web.inc.test", "A"])).answer).toEqual(["web.inc.test. 300 IN A 192.0.2.7"]);
    // The API has no directory: the same file sent as text, or as the body of the HTTP upload route, is refused, naming the line and why.
    await expect(h.command("zone.import", { zone: "inc.test", text: readFileSync(join(dir, "inc", "top.zone"), "utf8") })).rejects.toMatchObject({ code: "MALFORMED", message: expect.stringMatching(/^line 5: \$INCLUDE is not possible here/) });
    const res = await fetch(`${h.host.httpUrl}/api/dns/zones/inc.test/file`, { method: "POST", headers: { "content-type": "text/dns" }, body: readFileSync(join(dir, "inc", "top.zone")) });
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(JSON.stringify(body)).toMatch(/line 5: \$INCLUDE is not possible here: this file came over the API/);
    expect((await dig(h.port, ["web.inc.test", "A"])).answer).toEqual(["web.inc.test. 300 IN A 192.0.2.7"]);
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
