import { describe, expect, it } from "vitest";
import { acmeOrderDecider, csrMismatch, normalIdentifiers, orderStatus, validationAddressAllowed, type AcmeOrderState } from "../../../pki/acme/domain.js";
import { AcmeProblem } from "../../../pki/acme/problems.js";
import { NoncePool } from "../../../pki/acme/nonces.js";

const order = (statuses: ("pending" | "processing" | "valid" | "invalid")[], expires = "2030-01-01T00:00:00Z"): AcmeOrderState => ({
  id: "o",
  exists: true,
  issuer: "ops",
  account: "a",
  identifiers: statuses.map((_, i) => ({ type: "dns", value: `n${i}.example.test` })),
  authorizations: statuses.map((status, i) => ({ id: `z${i}`, identifier: { type: "dns", value: `n${i}.example.test` }, wildcard: false, challenges: [{ type: "http-01", token: "t", status }] })),
  expires,
});
const now = new Date("2029-01-01T00:00:00Z");

describe("ACME domain rules", () => {
  it("an order is ready only when every authorization is valid, invalid when one fails or it expired", () => {
    expect(orderStatus(order(["valid", "pending"]), now)).toBe("pending");
    expect(orderStatus(order(["valid", "valid"]), now)).toBe("ready");
    expect(orderStatus(order(["valid", "invalid"]), now)).toBe("invalid");
    expect(orderStatus(order(["valid"], "2028-01-01T00:00:00Z"), now)).toBe("invalid");
    expect(orderStatus({ ...order(["valid"]), certificate: "1f" }, now)).toBe("valid");
  });

  it("finalize is refused with orderNotReady unless the order is ready", () => {
    const e = (() => {
      try {
        acmeOrderDecider.decide(order(["pending"]), { type: "finalize", serial: "1f", at: now.toISOString(), now });
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(AcmeProblem);
    expect((e as AcmeProblem).acmeType).toBe("orderNotReady");
    expect(acmeOrderDecider.decide(order(["valid"]), { type: "finalize", serial: "1f", at: now.toISOString(), now })).toHaveLength(1);
  });

  it("a CSR must name exactly the order's identifiers (CN among them)", () => {
    const ids = normalIdentifiers([{ type: "dns", value: "WWW.Example.Test." }, { type: "dns", value: "api.example.test" }]);
    expect(ids.map((i) => i.value)).toEqual(["www.example.test", "api.example.test"]);
    const none = { ip: [], email: [], uri: [] };
    expect(csrMismatch(ids, { commonName: "www.example.test", dns: ["api.example.test"], ...none })).toBeUndefined();
    expect(csrMismatch(ids, { commonName: undefined, dns: ["www.example.test"], ...none })).toMatch(/missing: api\.example\.test/);
    expect(csrMismatch(ids, { commonName: "evil.example.test", dns: ["www.example.test", "api.example.test"], ...none })).toMatch(/common name/);
    expect(csrMismatch(ids, { commonName: undefined, dns: ["www.example.test", "api.example.test"], ...none, ip: ["127.0.0.1"] })).toMatch(/not DNS/);
  });

  it("the SSRF guard refuses loopback, private, link-local and mapped addresses unless a listed range holds them", () => {
    for (const ip of ["127.0.0.1", "10.1.2.3", "192.168.1.1", "172.20.0.1", "169.254.169.254", "::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "100.64.0.1"]) expect(validationAddressAllowed(ip, []), ip).toBe(false);
    expect(validationAddressAllowed("8.8.8.8", [])).toBe(true);
    expect(validationAddressAllowed("2606:4700::1111", [])).toBe(true);
    expect(validationAddressAllowed("127.0.0.1", ["127.0.0.0/8"])).toBe(true);
    expect(validationAddressAllowed("10.0.0.1", ["127.0.0.0/8"])).toBe(false);
  });

  it("a nonce is good once, and not after it expired", () => {
    let t = 0;
    const pool = new NoncePool({ maxAgeMs: 1000, now: () => t });
    const a = pool.issue();
    expect(pool.consume(a)).toBe(true);
    expect(pool.consume(a)).toBe(false);
    const b = pool.issue();
    t = 2000;
    expect(pool.consume(b)).toBe(false);
    expect(pool.consume("made-up")).toBe(false);
  });
});

describe("the PKI's view of the realm's zones keeps _acme-challenge TXT records", () => {
  it("follows RecordAdded, RecordRemoved, RecordSetChanged and ZoneDeleted; names outside realm zones are not its to answer", async () => {
    const { applyRealmZoneEvent, txtValue } = await import("../../../pki/realm-zones.js");
    const s = { zones: new Set<string>(), challenges: new Map<string, string[]>() };
    const ev = (type: string, data: unknown) => ({ aggregate: { type: "zone", id: "example.test." }, type, data });
    applyRealmZoneEvent(s, ev("ZoneCreated", {}));
    applyRealmZoneEvent(s, ev("RecordAdded", { name: "_acme-challenge.www.example.test.", type: "TXT", data: '"abc"' }));
    applyRealmZoneEvent(s, ev("RecordAdded", { name: "_acme-challenge.www.example.test.", type: "TXT", data: '"de" "f"' }));
    applyRealmZoneEvent(s, ev("RecordAdded", { name: "www.example.test.", type: "TXT", data: '"not a challenge"' }));
    expect(s.challenges.get("_acme-challenge.www.example.test")).toEqual(["abc", "def"]);
    applyRealmZoneEvent(s, ev("RecordRemoved", { name: "_acme-challenge.www.example.test.", type: "TXT", data: '"abc"' }));
    expect(s.challenges.get("_acme-challenge.www.example.test")).toEqual(["def"]);
    applyRealmZoneEvent(s, ev("RecordSetChanged", { name: "_acme-challenge.www.example.test.", type: "TXT", data: ['"x"', '"y"'] }));
    expect(s.challenges.get("_acme-challenge.www.example.test")).toEqual(["x", "y"]);
    applyRealmZoneEvent(s, ev("ZoneDeleted", {}));
    expect(s.challenges.size).toBe(0);
    expect(s.zones.size).toBe(0);
    expect(txtValue(String.raw`"a\"b" "\065"`)).toBe('a"bA');
  });
});

describe("the PKI projection's snapshot keeps the ACME state", () => {
  it("encodes and decodes configurations, EAB keys, accounts and orders with their indexes", async () => {
    const { pkiProjection } = await import("../../../pki/projection.js");
    const def = pkiProjection();
    const m = def.initial();
    const e = (type: string, aggregate: string, id: string, data: unknown) => ({ type, aggregate: { type: aggregate, id }, data }) as never;
    def.apply(m, e("AcmeIssuerConfigured", "acme-issuer", "ops", { issuer: "ops", enabled: true, externalAccountRequired: true, validationNetworks: [], http01Port: 80, tlsAlpn01Port: 443, profile: "server", days: 90 }), 0);
    def.apply(m, e("AcmeEabKeyCreated", "acme-eab", "k1", { issuer: "ops", keyId: "k1", principal: "svc", createdAt: "2026-01-01T00:00:00Z" }), 0);
    def.apply(m, e("AcmeAccountCreated", "acme-account", "a1", { issuer: "ops", jwk: { kty: "OKP", crv: "Ed25519", x: "x" }, thumbprint: "t1", contact: [], createdAt: "2026-01-01T00:00:00Z", eab: { keyId: "k1", principal: "svc" } }), 0);
    def.apply(m, e("AcmeOrderCreated", "acme-order", "o1", { issuer: "ops", account: "a1", identifiers: [{ type: "dns", value: "a.example.test" }], authorizations: [{ id: "z1", identifier: { type: "dns", value: "a.example.test" }, wildcard: false, challenges: [{ type: "http-01", token: "t", status: "pending" }] }], createdAt: "2026-01-01T00:00:00Z", expires: "2026-01-08T00:00:00Z" }), 0);
    def.apply(m, e("AcmeOrderFinalized", "acme-order", "o1", { certificate: "1f", finalizedAt: "2026-01-01T00:01:00Z" }), 0);
    const back = def.snapshot!.decode(JSON.parse(JSON.stringify([...def.snapshot!.encode(m)])) as unknown[]);
    expect(back.acme.configs.get("ops")?.config?.externalAccountRequired).toBe(true);
    expect(back.acme.eabKeys.get("k1")?.principal).toBe("svc");
    expect(back.acme.accountByKey.get("ops/t1")).toBe("a1");
    expect(back.acme.orderOfAuthz.get("z1")).toBe("o1");
    expect(back.acme.orderOfCertificate.get("1f")).toBe("o1");
    expect(back.acme.ordersOf.get("a1")).toEqual(["o1"]);
  });
});
