import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { jetstreamManager } from "@nats-io/jetstream";
import { DNS_STREAM, DNS_UPLOADS_STREAM } from "../../dns/contract.js";
import { RealmError } from "../../services/kernel/errors.js";
import { dig, dnsCli, startDns, type DnsHarness } from "./harness.js";
import { fixedRecords, hostName, hostRecord, writeZoneFile, type GeneratedZone } from "../support/zone-files.js";

/**
 * A million-record zone through `realm zone import` (the CLI puts the file into the uploads bucket, the dns
 * context reads it from there): a broken last line changes nothing and is named; a good file is served by
 * the name server and its AXFR is the file, as a set of records.
 */
const HOSTS = 1_000_000;
const g: GeneratedZone = { zone: "big.test.", hosts: HOSTS, serial: 2026120201 };

let h: DnsHarness;
let dir: string;
beforeAll(async () => {
  h = await startDns();
  dir = mkdtempSync(join(tmpdir(), "realm-dns-million-"));
});
afterAll(async () => {
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** `realm <args>` through the real dns command group, in this process; the error it would print, if any. */
async function realm(...args: string[]): Promise<{ out: string; error?: RealmError }> {
  try {
    return { out: await dnsCli(h.nats.url, args) };
  } catch (e) {
    if (e instanceof RealmError) return { out: "", error: e };
    throw e;
  }
}

const lastSeq = async () => (await (await jetstreamManager(h.nc)).streams.info(DNS_STREAM)).state.last_seq;
const uploadsLeft = async () => (await (await jetstreamManager(h.nc)).streams.info(DNS_UPLOADS_STREAM)).state.messages;

/** Every record of an AXFR by dig, one line each with white space squeezed (streamed: ~50 MB of text). */
function axfr(zone: string): Promise<{ records: Set<string>; lines: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn("dig", ["@127.0.0.1", "-p", String(h.port), "+onesoa", "+nocmd", "+nostats", "+nocomments", zone, "AXFR"]);
    const records = new Set<string>();
    let lines = 0;
    createInterface({ input: child.stdout }).on("line", (l) => {
      if (!l || l.startsWith(";")) return;
      lines++;
      records.add(l.replace(/\s+/g, " ").trim());
    });
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve({ records, lines }) : reject(new Error(`dig AXFR exited ${code}`))));
  });
}

const line = (r: { name: string; ttl: number; type: string; data: string }) => `${r.name} ${r.ttl} IN ${r.type} ${r.data}`;

describe("realm zone import of a 1,000,000-record file", () => {
  it("with a broken last line changes nothing, names the line, and leaves no upload behind", async () => {
    await h.command("zone.create", { zone: g.zone, ns: [`ns1.${g.zone}`] });
    await h.command("record.add", { zone: g.zone, name: "old", type: "A", data: "192.0.2.7" });
    const file = join(dir, "broken.zone");
    const { lines } = await writeZoneFile(file, g, ["h-broken IN A 300.1.2.3"]);
    const before = await lastSeq();
    const r = await realm("zone", "import", g.zone, file);
    expect(r.error?.code).toBe("MALFORMED");
    expect(r.error?.message).toContain(`line ${lines}:`);
    expect(await lastSeq()).toBe(before);
    expect((await dig(h.port, [`old.${g.zone}`, "A"])).answer).toEqual([`old.${g.zone} 3600 IN A 192.0.2.7`]);
    expect((await dig(h.port, [`${hostName(g, 0)}.${g.zone}`, "A"])).status).toBe("NXDOMAIN");
    expect(await uploadsLeft()).toBe(0);
  }, 300_000);

  it("that is good replaces the zone: dig answers its first and last names, and its AXFR is the file", async () => {
    const file = join(dir, "good.zone");
    await writeZoneFile(file, g);
    // While it imports, readers see the old zone or the new one, never part of it: the first host (in the
    // first chunk) is asked before the last (in the last chunk), so a half-applied import would show the
    // first without the last; the switch from old to new shows the other way round at most.
    const first = hostRecord(g, 0);
    const last = hostRecord(g, HOSTS - 1);
    let importing = true;
    const seen: string[] = [];
    // A probe that times out (the one DNS thread busy with the import on a loaded machine) shows no state.
    const status = (name: string, type: string) => dig(h.port, [name, type]).then((r) => r.status, () => "timeout");
    const probe = (async () => {
      while (importing) {
        const a = await status(first.name, first.type);
        const b = await status(last.name, last.type);
        if (a !== "timeout" && b !== "timeout") seen.push(`${a}/${b}`);
      }
    })();
    const r = await realm("zone", "import", g.zone, file).finally(() => (importing = false));
    await probe;
    expect(r.error).toBeUndefined();
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.filter((x) => x === "NOERROR/NXDOMAIN")).toEqual([]);
    const reply = JSON.parse(r.out) as { zone: string; serial: number; records: number };
    expect(reply).toMatchObject({ zone: g.zone, records: HOSTS + 2 });
    expect(await uploadsLeft()).toBe(0);

    expect((await dig(h.port, [first.name, first.type])).answer).toEqual([line(first)]);
    expect((await dig(h.port, [last.name, last.type])).answer).toEqual([line(last)]);
    expect((await dig(h.port, [`old.${g.zone}`, "A"])).status).toBe("NXDOMAIN");

    const { records, lines } = await axfr(g.zone);
    const expected = [...fixedRecords(g, reply.serial).map(line)];
    for (let i = 0; i < HOSTS; i++) expected.push(line(hostRecord(g, i)));
    expect(lines).toBe(expected.length);
    expect(records.size).toBe(expected.length);
    const missing = expected.filter((e) => !records.has(e));
    expect(missing.slice(0, 5)).toEqual([]);
  }, 300_000);

  it("goes over HTTP too: the file as the body of POST /api/dns/zones/{zone}/file, of a type the route takes", async () => {
    const small: GeneratedZone = { zone: "http.test.", hosts: 50_000, serial: 7 };
    const file = join(dir, "http.zone");
    await writeZoneFile(file, small);
    const url = `${h.host.httpUrl}/api/dns/zones/${small.zone}/file`;
    const body = await readFile(file);
    const wrongType = await fetch(url, { method: "POST", headers: { "content-type": "text/plain" }, body });
    expect(((await wrongType.json()) as { error: { code: string } }).error.code).toBe("MALFORMED");
    const res = await fetch(url, { method: "POST", headers: { "content-type": "text/dns" }, body });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ zone: small.zone, records: small.hosts + 2 });
    const lastHost = hostRecord(small, small.hosts - 1);
    expect((await dig(h.port, [lastHost.name, lastHost.type])).answer).toEqual([line(lastHost)]);
  }, 120_000);
});
