import { describe, expect, it } from "vitest";
import { fold, RealmError, seal, type EventEnvelope } from "../../services/kernel/index.js";
import { apply } from "./decide.js";
import { zoneDecider, zoneRecords, type ZoneCommand, type ZoneState } from "../../dns/domain/zone.js";
import { exportZoneFile, parseZoneFile } from "../../dns/domain/zonefile.js";
import { absoluteName } from "../../dns/domain/names.js";
import { assertSubject, ownerOf, patternsOverlap, subjectDecider, type SubjectRegistry } from "../../dns/domain/subjects.js";
import { parseCidV1 } from "../../dns/domain/objects.js";
import { cidOfBytes, verifyContent } from "../../dns/cid.js";
import { ZONE } from "./harness.js";


const create: ZoneCommand = { type: "create", soa: { mname: "ns1", rname: "hostmaster" }, ns: ["ns1"] };
const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e instanceof RealmError ? e.code : "not a RealmError";
  }
  return "no error";
};

describe("zone aggregate", () => {
  it("bumps the SOA serial on every change and replays to the same state", () => {
    const { state, events } = apply([create, { type: "add", record: { name: "www", type: "A", data: "192.0.2.1" } }, { type: "add", record: { name: "www", type: "A", data: "192.0.2.2" } }, { type: "remove", name: "www", rtype: "A", data: "192.0.2.1" }]);
    expect(events.map((e) => (e.data as { serial: number }).serial)).toEqual([1, 2, 3, 4]);
    expect(state.serial).toBe(4);
    expect(zoneRecords(fold(zoneDecider, "example.test.", events))).toEqual(zoneRecords(state));
    expect(zoneRecords(state).filter((r) => r.type === "A")).toEqual([{ name: "www.example.test.", type: "A", ttl: 3600, data: "192.0.2.2" }]);
  });

  it("refuses bad names, out-of-zone names, bad data and TTLs out of bounds", () => {
    const base = apply([create]).state;
    const add = (name: string, type: string, data: string, ttl?: number) => () => zoneDecider.decide(base, { type: "add", record: { name, type, data, ttl } });
    expect(code(add("-bad", "A", "192.0.2.1"))).toBe("VALIDATION");
    expect(code(add("a..b", "A", "192.0.2.1"))).toBe("VALIDATION");
    expect(code(add(`${"x".repeat(64)}`, "A", "192.0.2.1"))).toBe("VALIDATION");
    expect(code(add("www.example.org.", "A", "192.0.2.1"))).toBe("VALIDATION");
    expect(code(add("www", "A", "300.1.1.1"))).toBe("VALIDATION");
    expect(code(add("www", "AAAA", "192.0.2.1"))).toBe("VALIDATION");
    expect(code(add("www", "MX", "mail"))).toBe("VALIDATION");
    expect(code(add("www", "A", "192.0.2.1", -1))).toBe("VALIDATION");
    expect(code(add("www", "A", "192.0.2.1", 0))).toBe("no error"); // TTL 0: RFC 1035 3.2.1
    expect(code(add("www", "A", "192.0.2.1", 604_801))).toBe("VALIDATION");
    expect(code(add("www", "SOA", "a b 1 2 3 4 5"))).toBe("VALIDATION");
    expect(code(add("www", "A", "192.0.2.1"))).toBe("no error");
    expect(code(add("_sip._tcp", "SRV", "0 5 5060 sip"))).toBe("no error");
  });

  it("keeps a CNAME alone at its name and off the apex", () => {
    const { state } = apply([create, { type: "add", record: { name: "www", type: "A", data: "192.0.2.1" } }, { type: "add", record: { name: "alias", type: "CNAME", data: "www" } }]);
    expect(code(() => zoneDecider.decide(state, { type: "add", record: { name: "www", type: "CNAME", data: "other" } }))).toBe("VALIDATION");
    expect(code(() => zoneDecider.decide(state, { type: "add", record: { name: "alias", type: "TXT", data: '"x"' } }))).toBe("VALIDATION");
    expect(code(() => zoneDecider.decide(state, { type: "add", record: { name: "alias", type: "CNAME", data: "other" } }))).toBe("VALIDATION");
    expect(code(() => zoneDecider.decide(state, { type: "add", record: { name: "@", type: "CNAME", data: "www" } }))).toBe("VALIDATION");
    expect(code(() => zoneDecider.decide(state, { type: "remove", name: "@", rtype: "NS" }))).toBe("VALIDATION");
    expect(code(() => zoneDecider.decide(state, { type: "add", record: { name: "www", type: "A", data: "192.0.2.1" } }))).toBe("ALREADY_EXISTS");
  });

  it("makes names absolute, keeping their case", () => {
    expect(absoluteName("WWW", "example.test.")).toBe("WWW.example.test.");
    expect(absoluteName("@", "example.test.")).toBe("example.test.");
    expect(absoluteName("*.wild", "example.test.")).toBe("*.wild.example.test.");
    expect(code(() => absoluteName("a.*.b", "example.test."))).toBe("VALIDATION");
  });
});

describe("zone files", () => {
  it("round-trip: import -> export -> import gives the same records", () => {
    const first = parseZoneFile(ZONE, "example.test.");
    const { state } = apply([{ type: "import", importId: "i1", soa: first.soa, serial: first.serial ?? undefined, records: first.records }]);
    const text = exportZoneFile(state);
    const second = parseZoneFile(text, "example.test.");
    expect(second.records).toEqual(zoneRecords(state).filter((r) => r.type !== "SOA"));
    expect(new Set(second.records.map((r) => JSON.stringify(r)))).toEqual(new Set(first.records.map((r) => JSON.stringify(r))));
    expect(second.soa).toEqual(first.soa);
    expect(second.serial).toBe(first.serial);
    const again = apply([{ type: "import", importId: "i2", soa: second.soa, serial: second.serial ?? undefined, records: second.records }]).state;
    expect(exportZoneFile(again)).toBe(text);
  });

  it("reads $ORIGIN changes, TTL units, blank owners, parentheses and comments", () => {
    const p = parseZoneFile(
      `$TTL 1h\n@ SOA ns hm ( 5 ; serial\n 1h 15m 1w 5m )\n  NS ns\nns A 192.0.2.1 ; the server\n$ORIGIN sub.example.test.\nhost 2d IN A 192.0.2.2\n     IN TXT "semi;colon" "quote\\"d"\n`,
      "example.test.",
    );
    expect(p.soa).toMatchObject({ mname: "ns.example.test.", rname: "hm.example.test.", refresh: 3600, retry: 900, expire: 604800, minimum: 300, ttl: 3600 });
    expect(p.records).toEqual([
      { name: "example.test.", type: "NS", ttl: 3600, data: "ns.example.test." },
      { name: "ns.example.test.", type: "A", ttl: 3600, data: "192.0.2.1" },
      { name: "host.sub.example.test.", type: "A", ttl: 172800, data: "192.0.2.2" },
      { name: "host.sub.example.test.", type: "TXT", ttl: 3600, data: '"semi;colon" "quote\\"d"' }, // $TTL, not the previous record's
    ]);
  });

  it("names the line of an error", () => {
    const broken = ZONE.replace("www     IN A   192.0.2.20", "www     IN A   192.0.2.300");
    const line = broken.split("\n").findIndex((l) => l.includes("192.0.2.300")) + 1;
    let err: unknown;
    try {
      parseZoneFile(broken, "example.test.");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RealmError);
    expect((err as RealmError).code).toBe("MALFORMED");
    expect((err as RealmError).message).toMatch(new RegExp(`^line ${line}: `));
    expect((err as RealmError).message).toContain("192.0.2.300");
    expect(() => parseZoneFile("$TTL 60\n@ SOA a b 1 2 3 4 5\n@ NS a\nx IN BOGUS 1\n", "example.test.")).toThrow(/^line 4: /);
    expect(() => parseZoneFile("$TTL 60\n@ SOA a b ( 1 2 3 4 5\n", "example.test.")).toThrow(/^line 2: /);
    expect(() => parseZoneFile("a.example.org. 60 A 192.0.2.1\n", "example.test.")).toThrow(/^line 1: /);
  });
});

describe("NATS subject namespaces", () => {
  it("validates the grammar", () => {
    expect(assertSubject("a.b.>", true)).toEqual(["a", "b", ">"]);
    expect(code(() => assertSubject("a.>.b", true))).toBe("VALIDATION");
    expect(code(() => assertSubject("a..b", true))).toBe("VALIDATION");
    expect(code(() => assertSubject("a.*", false))).toBe("VALIDATION");
    expect(code(() => assertSubject("a b", true))).toBe("VALIDATION");
  });

  it("detects overlaps", () => {
    expect(patternsOverlap("a.b.>", "a.b.c")).toBe(true);
    expect(patternsOverlap("a.*.c", "a.b.>")).toBe(true);
    expect(patternsOverlap("a.b", "a.b.>")).toBe(false);
    expect(patternsOverlap("a.b.c", "a.b.d")).toBe(false);
    expect(patternsOverlap("*.x", "a.*")).toBe(true);
    expect(patternsOverlap(">", "z")).toBe(true);
  });

  it("refuses another owner's overlapping namespace and answers who owns a subject", () => {
    let reg: SubjectRegistry = subjectDecider.initialState("registry");
    const step = (c: Parameters<typeof subjectDecider.decide>[1]) => {
      for (const e of subjectDecider.decide(reg, c)) reg = subjectDecider.evolve(reg, { type: e.type, data: e.data } as EventEnvelope);
    };
    step({ type: "register", pattern: "orders.>", owner: "ACC_SHOP" });
    step({ type: "register", pattern: "orders.eu.>", owner: "ACC_SHOP" });
    expect(code(() => step({ type: "register", pattern: "orders.eu.paid", owner: "ACC_OTHER" }))).toBe("CONFLICT");
    expect(code(() => step({ type: "register", pattern: "*.eu.paid", owner: "ACC_OTHER" }))).toBe("CONFLICT");
    step({ type: "register", pattern: "billing.*", owner: "ACC_OTHER" });
    expect(ownerOf(reg, "orders.eu.paid")).toMatchObject({ owner: "ACC_SHOP", pattern: "orders.eu.>" });
    expect(ownerOf(reg, "orders.us")).toMatchObject({ owner: "ACC_SHOP", pattern: "orders.>" });
    expect(ownerOf(reg, "billing.x")).toMatchObject({ owner: "ACC_OTHER" });
    expect(ownerOf(reg, "billing.x.y")).toBeNull();
    expect(ownerOf(reg, "orders")).toBeNull();
  });
});

describe("object CIDs", () => {
  it("verifies content against a CIDv1 and refuses v0", () => {
    const bytes = Buffer.from("hello realm");
    const cid = cidOfBytes(bytes);
    expect(cid).toMatch(/^bafkrei/);
    expect(verifyContent(cid, bytes)).toBe(true);
    expect(verifyContent(cid, Buffer.from("hello realm!"))).toBe(false);
    expect(code(() => parseCidV1("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"))).toBe("VALIDATION");
    expect(code(() => parseCidV1("not-a-cid"))).toBe("VALIDATION");
  });
});
