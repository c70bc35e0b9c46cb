import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sealer } from "../../services/kernel/seal.js";
import { DEFAULT_POLICY, dnssecDecider, parentKsks, publishedKeys, signingKsks, signingZsks, type DnssecCommand, type DnssecKeyInfo, type DnssecState } from "../../dns/domain/dnssec.js";
import { dig, dnsCli, startDns, type DnsHarness } from "./harness.js";
import { dnssecTick } from "../../dns/dnssec/ticker.js";
import type { DnssecKeyStore } from "../../dns/dnssec/key-store.js";
import type { ZoneState } from "../../dns/domain/zone.js";
import { createLogger } from "../../services/host/logger.js";

const run = promisify(execFile);

/** The state after a command (decide, then fold its events). */
function step(s: DnssecState | null, c: DnssecCommand): DnssecState | null {
  let st = s;
  for (const e of dnssecDecider.decide(st, c)) st = dnssecDecider.evolve(st, { type: e.type, data: e.data, aggregate: { type: "dnssec", id: "z." } } as Parameters<typeof dnssecDecider.evolve>[1]);
  return st;
}

const key = (id: string, role: "ksk" | "zsk", state: DnssecKeyInfo["state"], at: string): DnssecKeyInfo => ({ id, role, algorithm: 13, tag: id.charCodeAt(0), publicKey: "", state, publishedAt: at, ...(state === "active" ? { activeAt: at } : {}) });

describe("the key state machine: a resolver with cached data never fails across a roll", () => {
  const T0 = Date.parse("2026-01-01T00:00:00Z");
  const iso = (s: number) => new Date(T0 + s * 1000).toISOString();
  const dnskeyTtl = 3600;
  const maxTtl = 14_400;
  const dsTtl = 7200;
  const policy = { ...DEFAULT_POLICY, algorithm: 13 as const, dnskeyTtl, propagationDelay: 300, dsTtl };

  /** Runs the schedule every 300 s from 0 to `until`, with `actions` at given times; returns the state at each time. */
  function timeline(actions: Record<number, DnssecCommand>, until: number): Map<number, DnssecState> {
    let s = step(null, { type: "enable", policy, keys: [key("K", "ksk", "active", iso(0)), key("A", "zsk", "active", iso(0))] });
    const out = new Map<number, DnssecState>();
    for (let t = 0; t <= until; t += 300) {
      const a = actions[t];
      if (a) s = step(s, a);
      s = step(s, { type: "advance", now: iso(t), maxTtl });
      out.set(t, s!);
    }
    return out;
  }

  it("ZSK pre-publication: every signature a cache may hold is by a key in every DNSKEY set it may hold", () => {
    const states = timeline({ 600: { type: "publish", key: key("B", "zsk", "published", iso(600)), reason: "rollover" } }, 30_000);
    const times = [...states.keys()];
    const last = states.get(times[times.length - 1]!)!;
    // The roll completed: B signs, A is gone.
    expect(last.keys.map((k) => `${k.id}:${k.state}`)).toEqual(["K:active", "A:removed", "B:active"]);
    let checked = 0;
    for (const t of times) {
      // A resolver at t holds a DNSKEY RRset fetched at tk (within its TTL) and a signature fetched at ts (within the data's TTL).
      for (const tk of times.filter((x) => x <= t && x > t - dnskeyTtl)) {
        const keys = new Set(publishedKeys(states.get(tk)!).map((k) => k.id));
        for (const ts of times.filter((x) => x <= t && x > t - maxTtl)) {
          for (const signer of signingZsks(states.get(ts)!)) {
            checked++;
            if (!keys.has(signer.id)) throw new Error(`at ${t}s a DNSKEY set from ${tk}s lacks ${signer.id}, which signed data fetched at ${ts}s`);
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(1000);
    // B signs only once every DNSKEY set a cache may hold has it: had it signed at once, a set from 300 s would lack it.
    expect(publishedKeys(states.get(300)!).map((k) => k.id)).not.toContain("B");
    expect(signingZsks(states.get(3900)!).map((k) => k.id)).toEqual(["A"]);
    expect(signingZsks(states.get(4500)!).map((k) => k.id)).toEqual(["B"]);
  });

  it("KSK rollover: the DNSKEY RRset is signed by a key of every DS set a cache may hold; CDS names the new KSK before the old one goes", () => {
    // The parent: DS = {K} until it sees CDS {K, L} (at 4800 s), then {K, L}; `ds-submitted` at 9000 s, after which CDS is {L} and the parent's DS {L} from 9600 s.
    const states = timeline({ 600: { type: "publish", key: key("L", "ksk", "published", iso(600)), reason: "rollover" }, 9000: { type: "dsSubmitted", now: iso(9000) } }, 30_000);
    const parentDs = (t: number) => (t < 4800 ? ["K"] : t < 9600 ? ["K", "L"] : ["L"]);
    const times = [...states.keys()];
    expect(parentKsks(states.get(4800)!).map((k) => k.id).sort()).toEqual(["K", "L"]);
    expect(parentKsks(states.get(9300)!).map((k) => k.id)).toEqual(["L"]);
    expect(states.get(times[times.length - 1]!)!.keys.map((k) => `${k.id}:${k.state}`)).toEqual(["K:removed", "A:active", "L:active"]);
    for (const t of times) {
      for (const td of times.filter((x) => x <= t && x > t - dsTtl)) {
        for (const tk of times.filter((x) => x <= t && x > t - dnskeyTtl)) {
          const signers = signingKsks(states.get(tk)!).map((k) => k.id);
          if (!parentDs(td).some((d) => signers.includes(d))) throw new Error(`at ${t}s the DS set from ${td}s (${parentDs(td).join(",")}) names no signer of the DNSKEY set from ${tk}s (${signers.join(",")})`);
        }
      }
    }
  });

  it("steps a signed zone's serial once a week, so secondaries transfer fresh signatures before theirs run out", async () => {
    const states = new Map([["z.", step(null, { type: "enable", policy, keys: [key("K", "ksk", "active", iso(0)), key("A", "zsk", "active", iso(0))] })!]]);
    const zones = new Map<string, ZoneState>([["z.", { zone: "z.", exists: true, serial: 1, soa: { mname: "ns.z.", rname: "h.z.", refresh: 1, retry: 1, expire: 1, minimum: 60, ttl: 60 }, rrsets: new Map() }]]);
    const bumped: string[] = [];
    let now = iso(0);
    const deps = {
      states: () => states,
      zones: () => zones,
      keys: {} as DnssecKeyStore, // not used: no key is made or purged in these ticks
      run: async (zone: string, cmd: DnssecCommand) => void states.set(zone, step(states.get(zone)!, cmd)!),
      bumpSerial: async (zone: string) => void bumped.push(`${zone}@${now}`),
      log: createLogger({ level: "silent" }),
      now: () => new Date(now),
    };
    for (const t of [3600, 6 * 86_400, 7 * 86_400 - 1]) {
      now = iso(t);
      await dnssecTick(deps);
    }
    expect(bumped).toEqual([]);
    now = iso(7 * 86_400);
    await dnssecTick(deps);
    await dnssecTick(deps);
    expect(bumped).toEqual([`z.@${iso(7 * 86_400)}`]);
    expect(states.get("z.")!.resignedAt).toBe(iso(7 * 86_400));
    now = iso(14 * 86_400);
    await dnssecTick(deps);
    expect(bumped).toHaveLength(2);
  });

  it("refuses a second rollover while one is under way, and ds-submitted with no KSK waiting, changing nothing", () => {
    const s = step(null, { type: "enable", policy, keys: [key("K", "ksk", "active", iso(0)), key("A", "zsk", "active", iso(0))] })!;
    expect(() => dnssecDecider.decide(s, { type: "dsSubmitted", now: iso(1) })).toThrow(expect.objectContaining({ code: "CONFLICT" }));
    const rolling = step(s, { type: "publish", key: key("B", "zsk", "published", iso(1)), reason: "rollover" })!;
    expect(() => dnssecDecider.decide(rolling, { type: "publish", key: key("C", "zsk", "published", iso(2)), reason: "rollover" })).toThrow(expect.objectContaining({ code: "CONFLICT" }));
    expect(() => dnssecDecider.decide(rolling, { type: "publish", key: { ...key("D", "ksk", "published", iso(2)), algorithm: 15 }, reason: "rollover" })).toThrow(expect.objectContaining({ code: "VALIDATION" }));
    expect(dnssecDecider.decide(rolling, { type: "advance", now: iso(2), maxTtl })).toEqual([]);
  });
});

/** Rollovers on a live realm with TTLs of a second, so a whole roll takes seconds. */
describe("rollovers on the server, checked with kdig and delv", () => {
  let h: DnsHarness;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "realm-dnssec-roll-"));
    h = await startDns({ sealer: Sealer.generate(), dnssecTickMs: 100 });
    await h.command("zone.create", { zone: "roll.test", ns: ["ns1.roll.test."], ttl: 1, minimum: 1 });
    await h.command("record.add", { name: "ns1.roll.test.", type: "A", data: "192.0.2.1", ttl: 1 });
    await h.command("record.add", { name: "www.roll.test.", type: "A", data: "192.0.2.80", ttl: 1 });
    await h.command("dnssec.enable", { zone: "roll.test", dnskeyTtl: 1, propagationDelay: 0, dsTtl: 1 });
  }, 30_000);
  afterAll(async () => {
    await h?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  type Status = { keys: { id: string; role: string; tag: number; state: string }[]; ds: string[]; dnskey: string[] };
  const status = () => h.query<Status>("dnssec", { zone: "roll.test" });
  /** Polls the status until `ok` holds (bounded). */
  async function until(ok: (s: Status) => boolean, what: string): Promise<Status> {
    for (let i = 0; i < 100; i++) {
      const s = await status();
      if (ok(s)) return s;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what}`);
  }
  const dnskeyTags = async () => new Set((await dig(h.port, ["roll.test.", "DNSKEY", "+dnssec"])).answer.filter((l) => / IN DNSKEY /.test(l)).map((l) => tagOf(l)));
  const sigTags = async (name: string, type: string) => (await dig(h.port, [name, type, "+dnssec"])).answer.filter((l) => new RegExp(` RRSIG ${type} `).test(l)).map((l) => Number(l.split(" ")[10]));
  const anchor = (file: string, dnskey: string) => {
    const [owner, , , , flags, proto, alg, k] = dnskey.split(/\s+/);
    writeFileSync(join(dir, file), `trust-anchors {\n  ${owner} static-key ${flags} ${proto} ${alg} "${k}";\n};\n`);
    return join(dir, file);
  };
  const validates = async (anchorFile: string) => {
    try {
      const r = await run("delv", ["@127.0.0.1", "-p", String(h.port), "-a", anchorFile, "+root=roll.test", "+tcp", "www.roll.test", "A"], { timeout: 20_000 });
      return /fully validated/.test(r.stdout);
    } catch {
      return false;
    }
  };

  it("ZSK rollover: the new ZSK is published first, signs after the DNSKEY TTL, the old one goes after the data's TTL; each step validates with the DNSKEY set of the step before", async () => {
    const s0 = await status();
    const ksk = s0.keys.find((k) => k.role === "ksk")!;
    const old = s0.keys.find((k) => k.role === "zsk")!;
    const trust = anchor("ksk.conf", s0.dnskey.find((l) => / 257 3 /.test(l))!);
    expect(await validates(trust)).toBe(true);
    let cached = await dnskeyTags();
    expect(await sigTags("www.roll.test.", "A")).toEqual([old.tag]);

    const rolled = await dnsCli(h.nats.url, ["zone", "dnssec", "rollover", "roll.test", "--zsk"]);
    expect(rolled).toMatch(/published/);
    const s1 = await status();
    const fresh = s1.keys.find((k) => k.role === "zsk" && k.state === "published")!;
    // Published, not signing: the signatures are still the old key's, which the cached DNSKEY set holds.
    expect([...(await dnskeyTags())].sort()).toEqual([ksk.tag, old.tag, fresh.tag].sort());
    for (const t of await sigTags("www.roll.test.", "A")) expect(cached.has(t)).toBe(true);
    cached = await dnskeyTags();

    await until((s) => s.keys.some((k) => k.id === fresh.id && k.state === "active"), "the new ZSK to sign");
    const signers = await sigTags("www.roll.test.", "A");
    expect(signers).toEqual([fresh.tag]);
    // A resolver that cached the DNSKEY set while the new key was only published has it.
    for (const t of signers) expect(cached.has(t)).toBe(true);
    expect((await dnskeyTags()).has(old.tag)).toBe(true);
    expect(await validates(trust)).toBe(true);
    cached = await dnskeyTags();

    await until((s) => s.keys.some((k) => k.id === old.id && k.state === "removed"), "the old ZSK to go");
    expect([...(await dnskeyTags())].sort()).toEqual([ksk.tag, fresh.tag].sort());
    for (const t of await sigTags("www.roll.test.", "A")) expect(cached.has(t)).toBe(true);
    expect(await validates(trust)).toBe(true);
  }, 30_000);

  it("KSK rollover: the new KSK co-signs DNSKEY, CDS/CDNSKEY name it, ds-submitted retires the old one; both anchors validate until the old key goes", async () => {
    const s0 = await status();
    const oldKsk = s0.keys.find((k) => k.role === "ksk" && k.state === "active")!;
    const oldAnchor = anchor("old.conf", s0.dnskey.find((l) => / 257 3 /.test(l))!);
    await expect(h.command("dnssec.ds-submitted", { zone: "roll.test" })).rejects.toMatchObject({ code: "CONFLICT" });
    await h.command("dnssec.rollover", { zone: "roll.test", role: "ksk" });
    const s1 = await status();
    const newKsk = s1.keys.find((k) => k.role === "ksk" && k.state === "published")!;
    expect((await sigTags("roll.test.", "DNSKEY")).sort()).toEqual([oldKsk.tag, newKsk.tag].sort());
    const newAnchor = anchor("new.conf", s1.dnskey.find((l) => l.includes(" 257 3 ") && !s0.dnskey.includes(l))!);

    await until((s) => s.keys.some((k) => k.id === newKsk.id && k.state === "active"), "the new KSK to be ready");
    const cds = (await dig(h.port, ["roll.test.", "CDS", "+dnssec"])).answer.filter((l) => / IN CDS /.test(l));
    expect(cds.map((l) => Number(l.split(" ")[4])).sort()).toEqual([oldKsk.tag, newKsk.tag].sort());
    expect((await dig(h.port, ["roll.test.", "CDNSKEY"])).answer.filter((l) => / IN CDNSKEY 257 /.test(l))).toHaveLength(2);
    expect(await validates(oldAnchor)).toBe(true);
    expect(await validates(newAnchor)).toBe(true);

    await h.command("dnssec.ds-submitted", { zone: "roll.test" });
    const ds = (await dnsCli(h.nats.url, ["zone", "dnssec", "ds", "roll.test"])).trim().split("\n");
    expect(ds).toHaveLength(1);
    expect(ds[0]).toContain(` DS ${newKsk.tag} 13 2 `);
    expect((await dig(h.port, ["roll.test.", "CDS"])).answer.filter((l) => / IN CDS /.test(l)).map((l) => Number(l.split(" ")[4]))).toEqual([newKsk.tag]);
    // Retired, the old KSK still signs DNSKEY (caches hold the old DS) until the DS TTL has passed.
    expect(await validates(oldAnchor)).toBe(true);
    await until((s) => s.keys.some((k) => k.id === oldKsk.id && k.state === "removed"), "the old KSK to go");
    expect(await sigTags("roll.test.", "DNSKEY")).toEqual([newKsk.tag]);
    expect(await validates(newAnchor)).toBe(true);
    expect(await validates(oldAnchor)).toBe(false);
  }, 30_000);

  it("a ZSK lifetime rolls the ZSK on schedule", async () => {
    const before = (await status()).keys.filter((k) => k.role === "zsk").length;
    await dnsCli(h.nats.url, ["zone", "dnssec", "policy", "roll.test", "--zsk-lifetime", "1"]);
    const s = await until((x) => x.keys.filter((k) => k.role === "zsk").length > before, "a scheduled ZSK rollover");
    expect(s.keys.some((k) => k.role === "zsk" && (k.state === "published" || k.state === "active"))).toBe(true);
    const events: { type: string; data: unknown }[] = [];
    for await (const { event } of h.dns.store.readEvents()) events.push(event as { type: string; data: unknown });
    expect(events.some((e) => e.type === "DnssecKeyPublished" && (e.data as { reason: string }).reason === "schedule")).toBe(true);
    await h.command("dnssec.policy", { zone: "roll.test", zskLifetime: 0 });
  }, 30_000);
});

function tagOf(dnskeyLine: string): number {
  // `roll.test. 1 IN DNSKEY 256 3 13 <key>`: the tag is computed the way the server does.
  const f = dnskeyLine.split(" ");
  const rdata = Buffer.concat([Buffer.from([Number(f[4]) >> 8, Number(f[4]) & 0xff, Number(f[5]), Number(f[6])]), Buffer.from(f.slice(7).join(""), "base64")]);
  let ac = 0;
  for (let i = 0; i < rdata.length; i++) ac += i & 1 ? rdata[i]! : rdata[i]! << 8;
  ac += (ac >> 16) & 0xffff;
  return ac & 0xffff;
}
