import { describe, expect, it } from "vitest";
import { seal } from "../../services/kernel/index.js";
import { UpdateRcode, UpdateRefused, zoneUpdateDecider, type ZoneUpdate } from "../../dns/domain/update.js";
import { zoneDecider, type ZoneState } from "../../dns/domain/zone.js";
import { apply } from "./decide.js";

const Z = "example.test.";
const base = () =>
  apply([
    { type: "create", ns: ["ns1.example.test."], soa: { mname: "ns1.example.test.", rname: "hostmaster.example.test." } },
    { type: "add", record: { name: "www", type: "A", ttl: 300, data: "192.0.2.1" } },
    { type: "add", record: { name: "www", type: "A", data: "192.0.2.2" } },
    { type: "add", record: { name: "www", type: "TXT", ttl: 300, data: '"hi"' } },
    { type: "add", record: { name: "alias", type: "CNAME", ttl: 300, data: "www" } },
  ]).state;

/** Decides an update and folds its events: the zone after it (the input state is never changed). */
function update(s: ZoneState, u: Omit<ZoneUpdate, "type">): ZoneState {
  let st = { ...s, rrsets: new Map(s.rrsets) };
  for (const [i, e] of zoneUpdateDecider.decide(s, { type: "update", ...u }).entries()) {
    st = zoneDecider.evolve(st, seal({ id: `u${i}`, type: e.type, aggregate: { type: "zone", id: Z }, version: 1, occurredAt: "t", actor: "a", correlationId: "c", causationId: "c", data: e.data, prev: null }));
  }
  return st;
}
const rcodeOf = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    return err instanceof UpdateRefused ? err.rcode : -1;
  }
  return 0;
};
const data = (s: ZoneState, name: string, type: string) => s.rrsets.get(`${name} ${type}`)?.data ?? [];

describe("RFC 2136 update decisions on the zone aggregate", () => {
  it("prerequisites answer with the RFC's RCODEs and change nothing", () => {
    const s = base();
    const add = [{ kind: "add" as const, name: "new.example.test.", type: "A" as const, ttl: 60, data: "192.0.2.9" }];
    expect(rcodeOf(() => update(s, { prerequisites: [{ kind: "nameInUse", name: "nope.example.test." }], updates: add }))).toBe(UpdateRcode.NXDOMAIN);
    expect(rcodeOf(() => update(s, { prerequisites: [{ kind: "nameNotInUse", name: "www.example.test." }], updates: add }))).toBe(UpdateRcode.YXDOMAIN);
    expect(rcodeOf(() => update(s, { prerequisites: [{ kind: "rrsetExists", name: "www.example.test.", type: "MX" }], updates: add }))).toBe(UpdateRcode.NXRRSET);
    expect(rcodeOf(() => update(s, { prerequisites: [{ kind: "rrsetNotExists", name: "www.example.test.", type: "A" }], updates: add }))).toBe(UpdateRcode.YXRRSET);
    expect(rcodeOf(() => update(s, { prerequisites: [{ kind: "rrsetEquals", name: "www.example.test.", type: "A", data: ["192.0.2.1"] }], updates: add }))).toBe(UpdateRcode.NXRRSET);
    expect(rcodeOf(() => update(s, { prerequisites: [{ kind: "nameInUse", name: "www.other.test." }], updates: add }))).toBe(UpdateRcode.NOTZONE);
    const ok = update(s, { prerequisites: [{ kind: "rrsetEquals", name: "www.example.test.", type: "A", data: ["192.0.2.2"] }, { kind: "rrsetEquals", name: "www.example.test.", type: "A", data: ["192.0.2.1"] }], updates: add });
    expect(data(ok, "new.example.test.", "A")).toEqual(["192.0.2.9"]);
    expect(ok.serial).toBe(s.serial + 1);
  });

  it("deletes one record, an RRset, or a name; the apex SOA and NS stay, and the last apex NS", () => {
    const s = base();
    const a = update(s, { prerequisites: [], updates: [{ kind: "deleteRR", name: "www.example.test.", type: "A", data: "192.0.2.1" }] });
    expect(data(a, "www.example.test.", "A")).toEqual(["192.0.2.2"]);
    const b = update(s, { prerequisites: [], updates: [{ kind: "deleteName", name: "www.example.test." }] });
    expect(data(b, "www.example.test.", "A")).toEqual([]);
    expect(data(b, "www.example.test.", "TXT")).toEqual([]);
    const apex = update(s, { prerequisites: [], updates: [{ kind: "deleteName", name: Z }, { kind: "deleteRRset", name: Z, type: "NS" }, { kind: "deleteRR", name: Z, type: "NS", data: "ns1.example.test." }] });
    expect(data(apex, Z, "NS")).toEqual(["ns1.example.test."]);
    expect(apex.serial).toBe(s.serial);
  });

  it("a CNAME beside other data (or data beside a CNAME) is ignored; an add's TTL becomes its RRset's", () => {
    const s = base();
    const c = update(s, { prerequisites: [], updates: [{ kind: "add", name: "www.example.test.", type: "CNAME", ttl: 60, data: "alias.example.test." }, { kind: "add", name: "alias.example.test.", type: "A", ttl: 60, data: "192.0.2.5" }] });
    expect(c.serial).toBe(s.serial);
    const t = update(s, { prerequisites: [], updates: [{ kind: "add", name: "www.example.test.", type: "A", ttl: 120, data: "192.0.2.3" }] });
    expect(t.rrsets.get("www.example.test. A")).toMatchObject({ ttl: 120, data: ["192.0.2.1", "192.0.2.2", "192.0.2.3"] });
  });

  it("is all or nothing: a later refusal leaves the earlier operations unapplied", () => {
    const s = base();
    // a swap A -> CNAME works (removals first); a CNAME at the apex is the realm's own rule: REFUSED, nothing applied
    const swap = update(s, { prerequisites: [], updates: [{ kind: "deleteName", name: "www.example.test." }, { kind: "add", name: "www.example.test.", type: "CNAME", ttl: 60, data: "alias.example.test." }] });
    expect(data(swap, "www.example.test.", "CNAME")).toEqual(["alias.example.test."]);
    expect(rcodeOf(() => update(s, { prerequisites: [], updates: [{ kind: "add", name: "x.example.test.", type: "A", ttl: 60, data: "192.0.2.7" }, { kind: "add", name: "y.example.test.", type: "DNAME", ttl: 60, data: "other.test." }, { kind: "add", name: "z.y.example.test.", type: "A", ttl: 60, data: "192.0.2.8" }] }))).toBe(UpdateRcode.REFUSED);
    expect(data(s, "x.example.test.", "A")).toEqual([]);
  });
});
