import { describe, expect, it } from "vitest";
import { ZoneJournal } from "../../dns/server/journal.js";
import { zoneEventDiff, type ZoneStep } from "../../dns/domain/zone-diff.js";
import { zoneDecider, type ZoneState } from "../../dns/domain/zone.js";
import { clientSerial, serialAtLeast } from "../../dns/server/ixfr.js";
import * as dnsPacket from "dns-packet";
import { nameProjection } from "../../dns/projection.js";
import type { EventEnvelope } from "../../services/kernel/index.js";

const soa = (zone: string, serial: number) => ({ name: zone, type: "SOA" as const, ttl: 3600, data: `ns1.${zone} h.${zone} ${serial} 1 1 1 1` });
const step = (zone: string, from: number, records = 1): ZoneStep => ({
  from,
  to: from + 1,
  fromSoa: soa(zone, from),
  toSoa: soa(zone, from + 1),
  deleted: [],
  added: Array.from({ length: records }, (_, i) => ({ name: `r${from}-${i}.${zone}`, type: "A" as const, ttl: 60, data: "192.0.2.1" })),
});

describe("the IXFR journal's bounds", () => {
  it("keeps the newest steps per zone and answers only a serial it reaches back to", () => {
    const j = new ZoneJournal({ stepsPerZone: 3 });
    for (let s = 1; s <= 5; s++) j.record("a.", step("a.", s));
    expect(j.since("a.", 3, 6)?.map((x) => x.from)).toEqual([3, 4, 5]);
    expect(j.since("a.", 2, 6)).toBeNull();
    expect(j.since("a.", 3, 7)).toBeNull(); // the journal must end at the zone's serial
    expect(j.held).toEqual({ zones: 1, steps: 3, records: 9 });
  });

  it("forgets a zone replaced whole, a step that does not follow, and a step over the zone's budget", () => {
    const j = new ZoneJournal({ recordsPerZone: 10 });
    j.record("a.", step("a.", 1));
    j.record("a.", "reset");
    expect(j.since("a.", 1, 2)).toBeNull();
    j.record("a.", step("a.", 1));
    j.record("a.", step("a.", 5));
    expect(j.since("a.", 1, 6)).toBeNull();
    expect(j.since("a.", 5, 6)).toHaveLength(1);
    j.record("a.", step("a.", 6, 50));
    expect(j.held.records).toBe(0);
  });

  it("holds at most the global record budget, taking from the zone holding the most", () => {
    const j = new ZoneJournal({ records: 20 });
    for (let s = 1; s <= 4; s++) j.record("big.", step("big.", s, 3));
    j.record("small.", step("small.", 1, 1));
    expect(j.held.records).toBeLessThanOrEqual(20);
    expect(j.since("small.", 1, 2)).toHaveLength(1);
    expect(j.since("big.", 1, 5)).toBeNull();
  });
});

describe("zone events as serial steps", () => {
  const zone = "example.test.";
  let s: ZoneState = zoneDecider.initialState(zone);
  const apply = (evs: { type: string; data: unknown }[]) => {
    for (const e of evs) s = zoneDecider.evolve(s, { type: e.type, data: e.data } as Parameters<typeof zoneDecider.evolve>[1]);
  };
  apply(zoneDecider.decide(s, { type: "create", ns: ["ns1.example.test."], soa: { mname: "ns1.example.test.", rname: "h.example.test." } }));
  apply(zoneDecider.decide(s, { type: "add", record: { name: "www", type: "A", ttl: 60, data: "192.0.2.1" } }));

  it("a replaced RRset deletes what went and adds what came; a TTL change replaces all of it", () => {
    const [e] = zoneDecider.decide(s, { type: "set", name: "www", rtype: "A", data: ["192.0.2.1", "192.0.2.2"] });
    expect(zoneEventDiff(s, e!.type, e!.data)).toEqual({ deleted: [], added: [{ name: "www.example.test.", type: "A", ttl: 60, data: "192.0.2.2" }] });
    const [t] = zoneDecider.decide(s, { type: "set", name: "www", rtype: "A", ttl: 120, data: ["192.0.2.1"] });
    expect(zoneEventDiff(s, t!.type, t!.data)).toEqual({ deleted: [{ name: "www.example.test.", type: "A", ttl: 60, data: "192.0.2.1" }], added: [{ name: "www.example.test.", type: "A", ttl: 120, data: "192.0.2.1" }] });
  });

  it("create, delete and import reset; the secondaries setting is no step", () => {
    const [d] = zoneDecider.decide(s, { type: "delete" });
    expect(zoneEventDiff(s, d!.type, d!.data)).toBe("reset");
    const [x] = zoneDecider.decide(s, { type: "secondaries", secondaries: ["192.0.2.53"] });
    expect(zoneEventDiff(s, x!.type, x!.data)).toBeNull();
    expect(x!.data).toEqual({ secondaries: [{ host: "192.0.2.53", port: 53 }] });
  });
});

describe("IXFR request reading", () => {
  it("reads the client's serial from the authority SOA; serials compare as RFC 1982 says", () => {
    const q = dnsPacket.encode({ type: "query", id: 1, questions: [{ name: "example.test", type: "IXFR", class: "IN" }], authorities: [{ name: "example.test", type: "SOA", ttl: 0, data: { mname: "a", rname: "b", serial: 4_000_000_000, refresh: 1, retry: 1, expire: 1, minimum: 1 } }] });
    expect(clientSerial(q)).toBe(4_000_000_000);
    expect(clientSerial(dnsPacket.encode({ type: "query", id: 1, questions: [{ name: "example.test", type: "IXFR", class: "IN" }] }))).toBeNull();
    expect(serialAtLeast(5, 5)).toBe(true);
    expect(serialAtLeast(4, 5)).toBe(false);
    expect(serialAtLeast(1, 4_294_967_000)).toBe(true); // wrapped: 1 comes after
  });
});

describe("the dns-names snapshot keeps what IXFR, NOTIFY and the catalog need", () => {
  it("round-trips each zone's secondaries and the membership count", () => {
    const def = nameProjection();
    let m = def.initial();
    const ev = (type: string, id: string, data: unknown) => ({ type, data, aggregate: { type: "zone", id } }) as unknown as EventEnvelope;
    let z = zoneDecider.initialState("a.test.");
    for (const e of [...zoneDecider.decide(z, { type: "create", ns: ["ns1.a.test."], soa: { mname: "ns1.a.test.", rname: "h.a.test." } })]) {
      m = def.apply(m, ev(e.type, "a.test.", e.data), 1);
      z = m.zones.get("a.test.")!;
    }
    for (const e of zoneDecider.decide(z, { type: "secondaries", secondaries: ["192.0.2.53:5300", "[2001:db8::53]"] })) m = def.apply(m, ev(e.type, "a.test.", e.data), 2);
    expect(m.memberships).toBe(1);
    const back = def.snapshot!.decode([...def.snapshot!.encode(m)]);
    expect(back.memberships).toBe(1);
    expect(back.zones.get("a.test.")!.secondaries).toEqual([{ host: "192.0.2.53", port: 5300 }, { host: "2001:db8::53", port: 53 }]);
  });
});
