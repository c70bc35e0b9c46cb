import { describe, expect, it } from "vitest";
import { BerError, bool, frameLength, int, seq, str, Tag } from "../../identity/directory-server/ber.js";
import { matches, normalizeDn, type Entry } from "../../identity/directory-server/filter.js";
import { decodeMessage } from "../../identity/directory-server/protocol.js";
import { posixDecider, type PosixIdsState } from "../../identity/directory-server/posix.js";
import type { EventEnvelope } from "../../services/kernel/index.js";

/** The pure parts of the directory: BER framing, message and filter decoding, matching, POSIX allocation. */
describe("BER framing", () => {
  it("frames complete elements, waits for partial ones and refuses what LDAP forbids", () => {
    const m = seq(Tag.Sequence, [int(1), str("x".repeat(300))]);
    expect(frameLength(m, 1 << 20)).toBe(m.length);
    expect(frameLength(m.subarray(0, 3), 1 << 20)).toBeUndefined();
    expect(frameLength(Buffer.concat([m, Buffer.from([0x30])]), 1 << 20)).toBe(m.length);
    expect(() => frameLength(Buffer.from([0x30, 0x80]), 1 << 20)).toThrow(BerError); // indefinite length
    expect(() => frameLength(Buffer.from([0x30, 0x85, 1, 1, 1, 1, 1]), 1 << 20)).toThrow(BerError);
    expect(() => frameLength(Buffer.from([0x30, 0x83, 0x20, 0, 0]), 1 << 20)).toThrow(/above the limit/);
    expect(() => frameLength(Buffer.from([0x1f, 0x01, 0x00]), 1 << 20)).toThrow(BerError);
  });

  it("writes integers with the right sign octet", () => {
    expect(int(127).toString("hex")).toBe("02017f");
    expect(int(128).toString("hex")).toBe("02020080");
    expect(int(-1).toString("hex")).toBe("0201ff");
    expect(int(65536).toString("hex")).toBe("0203010000");
  });
});

const search = (filter: Buffer, attrs: string[] = []) =>
  seq(Tag.Sequence, [int(7), seq(0x63, [str("dc=x"), int(2, Tag.Enumerated), int(0, Tag.Enumerated), int(5), int(0), bool(false), filter, seq(Tag.Sequence, attrs.map((a) => str(a)))])]);
const ava = (tag: number, a: string, v: string) => seq(tag, [str(a), str(v)]);

describe("LDAP message decoding", () => {
  it("decodes a search with and/or/not/substrings/present and attribute list", () => {
    const f = seq(0xa0, [ava(0xa3, "objectClass", "person"), seq(0xa1, [seq(0xa4, [str("cn"), seq(Tag.Sequence, [str("al", 0x80), str("ce", 0x81), str("ll", 0x82)])]), str("mail", 0x87)]), seq(0xa2, [ava(0xa5, "uidNumber", "10")])]);
    const m = decodeMessage(search(f, ["uid", "cn"]));
    expect(m.id).toBe(7);
    expect(m.request).toEqual({
      op: "search",
      search: {
        base: "dc=x",
        scope: "sub",
        sizeLimit: 5,
        typesOnly: false,
        attributes: ["uid", "cn"],
        filter: {
          type: "and",
          filters: [
            { type: "equal", attribute: "objectClass", value: "person" },
            { type: "or", filters: [{ type: "substrings", attribute: "cn", initial: "al", any: ["ce"], final: "ll" }, { type: "present", attribute: "mail" }] },
            { type: "not", filter: { type: "ge", attribute: "uidNumber", value: "10" } },
          ],
        },
      },
    });
  });

  it("refuses trailing bytes, bad scopes, unknown operations and invalid UTF-8", () => {
    const ok = search(str("cn", 0x87));
    expect(() => decodeMessage(Buffer.concat([ok, Buffer.from([0x05, 0x00])]))).toThrow(BerError);
    const badScope = seq(Tag.Sequence, [int(1), seq(0x63, [str("dc=x"), int(7, Tag.Enumerated), int(0, Tag.Enumerated), int(0), int(0), bool(false), str("cn", 0x87), seq(Tag.Sequence, [])])]);
    expect(() => decodeMessage(badScope)).toThrow(/scope/);
    expect(() => decodeMessage(seq(Tag.Sequence, [int(1), seq(0x79, [])]))).toThrow(BerError);
    expect(() => decodeMessage(search(seq(0x87, [Buffer.from([0xff])])))).toThrow(BerError);
    expect(decodeMessage(seq(Tag.Sequence, [int(3), seq(0x66, [str("uid=a")])])).request).toMatchObject({ op: "write", name: "modify" });
  });
});

describe("filter matching per attribute syntax", () => {
  const e: Entry = { dn: "uid=a,ou=people,dc=x", attributes: [["objectClass", ["inetOrgPerson"]], ["cn", ["Alice  Liddell"]], ["uidNumber", ["9"]], ["homeDirectory", ["/home/a"]], ["memberOf", ["cn=ops,ou=groups,dc=x"]]] };
  it("compares integers as numbers, DNs normalised, paths exactly, the rest ignoring case and spaces", () => {
    expect(matches(e, { type: "le", attribute: "uidNumber", value: "10" })).toBe(true); // "9" > "10" as text
    expect(matches(e, { type: "ge", attribute: "uidNumber", value: "10" })).toBe(false);
    expect(matches(e, { type: "equal", attribute: "memberOf", value: "CN=Ops, OU=Groups, DC=X" })).toBe(true);
    expect(matches(e, { type: "equal", attribute: "homeDirectory", value: "/HOME/A" })).toBe(false);
    expect(matches(e, { type: "equal", attribute: "commonName", value: "alice liddell" })).toBe(true);
    expect(matches(e, { type: "substrings", attribute: "cn", initial: "ALI", any: ["e l"], final: "dell" })).toBe(true);
    expect(matches(e, { type: "substrings", attribute: "cn", initial: "lid", any: [] })).toBe(false);
  });
  it("treats an unsupported component as Undefined: neither it nor its negation matches", () => {
    expect(matches(e, { type: "undefined" })).toBe(false);
    expect(matches(e, { type: "not", filter: { type: "undefined" } })).toBe(false);
    expect(matches(e, { type: "or", filters: [{ type: "undefined" }, { type: "present", attribute: "cn" }] })).toBe(true);
  });
  it("normalises DNs with escapes", () => {
    expect(normalizeDn("CN=A\\2C B , OU=x")).toBe("cn=a, b,ou=x");
  });
});

describe("POSIX id allocation", () => {
  const apply = (s: PosixIdsState, c: Parameters<typeof posixDecider.decide>[1]) => {
    const events = posixDecider.decide(s, c);
    return { events, state: events.reduce((st, e) => posixDecider.evolve(st, { type: e.type, data: e.data } as EventEnvelope), s) };
  };
  it("allocates upward from the base, once per name, never reusing or going back", () => {
    let s = posixDecider.initialState("ids");
    const a = apply(s, { type: "allocate", uids: ["bob", "alice"], gids: ["ops"], uidBase: 10000, gidBase: 20000 });
    s = a.state;
    expect(s.uids).toEqual({ alice: 10000, bob: 10001 });
    expect(s.gids).toEqual({ ops: 20000 });
    expect(apply(s, { type: "allocate", uids: ["alice"], gids: [], uidBase: 10000, gidBase: 20000 }).events).toEqual([]);
    // A lower base later does not go back; a higher one jumps ahead.
    s = apply(s, { type: "allocate", uids: ["carol"], gids: [], uidBase: 500, gidBase: 20000 }).state;
    expect(s.uids.carol).toBe(10002);
    s = apply(s, { type: "allocate", uids: ["dave"], gids: [], uidBase: 50000, gidBase: 20000 }).state;
    expect(s.uids.dave).toBe(50000);
    expect(() => posixDecider.decide(s, { type: "allocate", uids: ["x"], gids: [], uidBase: 0, gidBase: 1 })).toThrow(/base/);
  });
});
