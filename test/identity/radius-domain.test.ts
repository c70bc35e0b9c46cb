import { describe, expect, it } from "vitest";
import { clientFor, parseCidr, radiusClientDecider, type RadiusClientState } from "../../identity/radius/domain.js";
import { decode, RadiusPacketError } from "../../identity/radius/packet.js";

const client = (id: string, address: string): RadiusClientState => ({ id, exists: true, address, allowedGroups: ["staff"], replies: [] });

describe("RADIUS clients (pure)", () => {
  it("matches a source address to the client with the longest prefix, per address family", () => {
    const all = [client("net", "10.0.0.0/8"), client("lan", "10.1.0.0/16"), client("one", "10.1.2.3"), client("v6", "2001:db8::/64")];
    expect(clientFor(all, "10.1.2.3")?.id).toBe("one");
    expect(clientFor(all, "10.1.9.9")?.id).toBe("lan");
    expect(clientFor(all, "10.200.0.1")?.id).toBe("net");
    expect(clientFor(all, "2001:db8::5")?.id).toBe("v6");
    expect(clientFor(all, "192.0.2.1")).toBeUndefined();
    expect(clientFor(all, "not an address")).toBeUndefined();
  });

  it("refuses addresses that are not an IP or CIDR", () => {
    for (const bad of ["10.0.0.0/33", "10.0.0.0/8/1", "example.org", "2001:db8::/129", "10.0.0.0/-1", ""]) expect(() => parseCidr(bad), bad).toThrow(/not an IP address or CIDR/);
    const add = { type: "add" as const, address: "10.0.0.1", allowedGroups: [], replies: [], at: "2026-01-01T00:00:00Z" };
    expect(() => radiusClientDecider.decide(radiusClientDecider.initialState("sw1"), add)).toThrow(/at least one allowed group/);
    expect(() => radiusClientDecider.decide(radiusClientDecider.initialState("sw1"), { ...add, allowedGroups: ["staff"], replies: [{ group: "staff", vlan: "bad vlan" }] })).toThrow(/VLAN/);
  });

  it("parses strictly: every malformed packet is a RadiusPacketError", () => {
    const ok = Buffer.concat([Buffer.from([1, 7, 0, 26]), Buffer.alloc(16), Buffer.from([1, 6, 0x61, 0x62, 0x63, 0x64])]);
    expect(decode(ok).attributes).toEqual([{ type: 1, value: Buffer.from("abcd") }]);
    const padded = Buffer.concat([ok, Buffer.alloc(5)]);
    expect(decode(padded).raw.length).toBe(26);
    const cases: [Buffer, string][] = [
      [Buffer.alloc(5), "short"],
      [Buffer.from([1, 7, 0, 19, ...Buffer.alloc(16)]), "length"],
      [Buffer.from([1, 7, 0, 40, ...Buffer.alloc(22)]), "length"],
      [Buffer.from([99, 7, 0, 20, ...Buffer.alloc(16)]), "code"],
      [Buffer.concat([Buffer.from([1, 7, 0, 22]), Buffer.alloc(16), Buffer.from([1, 1])]), "attribute"],
      [Buffer.concat([Buffer.from([1, 7, 0, 23]), Buffer.alloc(16), Buffer.from([1, 4, 0])]), "attribute"],
      [Buffer.concat([Buffer.from([1, 7, 0, 21]), Buffer.alloc(16), Buffer.from([1])]), "attribute"],
    ];
    for (const [b, reason] of cases) {
      expect(() => decode(b)).toThrow(RadiusPacketError);
      try {
        decode(b);
      } catch (err) {
        expect((err as RadiusPacketError).reason).toBe(reason);
      }
    }
  });
});
