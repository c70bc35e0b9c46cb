import { describe, expect, it } from "vitest";
import { validateLimits, validateSubject, validateTemplateSubject, validatePermissions } from "../../identity/nats/domain/validation.js";
import { accountDecider } from "../../identity/nats/domain/account.js";
import { checkUserSpec } from "../../identity/nats/domain/user.js";
import { sealBundle, openBundle } from "../../identity/nats/keystore.js";

const A = "A" + "B".repeat(55);
const created = () => accountDecider.evolve(accountDecider.initialState("x"), { type: "NatsAccountCreated", data: { name: "x", publicKey: A, signingKeys: [A], limits: validateLimits({}), description: "" } } as never);

describe("NATS domain validation (pure)", () => {
  it("subjects: empty tokens, '>' not last, partial wildcards and white space are refused", () => {
    for (const bad of ["", "a..b", ".a", "a.", "a.>.b", "a>", "a.b*", "a b"]) expect(() => validateSubject(bad, "s")).toThrow(expect.objectContaining({ code: "VALIDATION" }));
    for (const ok of ["a", "a.*.c", "a.>", ">", "_INBOX.>"]) expect(validateSubject(ok, "s")).toBe(ok);
  });

  it("templates fill whole tokens only", () => {
    expect(validateTemplateSubject("{{name()}}.>", "t")).toBe("{{name()}}.>");
    expect(validateTemplateSubject("team.{{tag(team)}}.*", "t")).toBe("team.{{tag(team)}}.*");
    expect(() => validateTemplateSubject("x{{name()}}.>", "t")).toThrow(/whole token/);
    expect(() => validatePermissions({ pub: { allow: ["{{name()}}..x"] } }, "p", true)).toThrow(/empty token/);
  });

  it("limits: every field set, negative below -1 and unknown names refused", () => {
    const l = validateLimits({ conn: 5 });
    expect(Object.keys(l).sort()).toEqual(["conn", "consumer", "data", "diskStorage", "exports", "imports", "leaf", "memStorage", "payload", "streams", "subs", "wildcards"]);
    expect(() => validateLimits({ payload: -2 })).toThrow(expect.objectContaining({ code: "VALIDATION" }));
    expect(() => validateLimits({ bogus: 1 } as never)).toThrow(/unknown limit/);
  });

  it("account decider: duplicate create, update of a missing account, wildcard mapping destinations, weights over 100", () => {
    const s = created();
    expect(() => accountDecider.decide(s, { type: "create", publicKey: A, signingKey: A })).toThrow(expect.objectContaining({ code: "ALREADY_EXISTS" }));
    expect(() => accountDecider.decide(accountDecider.initialState("y"), { type: "update", knownAccounts: [] })).toThrow(expect.objectContaining({ code: "NOT_FOUND" }));
    expect(() => accountDecider.decide(s, { type: "update", knownAccounts: [], mappings: { "a.*": [{ subject: "b.*", weight: 100 }] } })).toThrow(expect.objectContaining({ code: "VALIDATION" }));
    expect(() => accountDecider.decide(s, { type: "update", knownAccounts: [], mappings: { a: [{ subject: "b", weight: 60 }, { subject: "c", weight: 60 }] } })).toThrow(/> 100/);
    expect(() => accountDecider.decide(s, { type: "update", knownAccounts: [], imports: [{ name: "i", account: "ghost", subject: "s", type: "service" }] })).toThrow(expect.objectContaining({ code: "NOT_FOUND" }));
  });

  it("users: unknown account, bad CIDR, unknown connection type, permissions on a scoped user", () => {
    const s = created();
    expect(() => checkUserSpec({ account: "ghost", name: "u", kind: "person" }, undefined)).toThrow(expect.objectContaining({ code: "NOT_FOUND" }));
    expect(() => checkUserSpec({ account: "x", name: "u", kind: "person", src: ["10.0.0.300/8"] }, s)).toThrow(/CIDR/);
    expect(() => checkUserSpec({ account: "x", name: "u", kind: "person", connectionTypes: ["CARRIER_PIGEON" as never] }, s)).toThrow(/connection type/);
    const scoped = accountDecider.evolve(s, { type: "NatsSigningKeyAdded", data: { key: "A" + "C".repeat(55), scope: { role: "r", template: {} } } } as never);
    expect(() => checkUserSpec({ account: "x", name: "u", kind: "agent", scopedSigningKey: "A" + "C".repeat(55), permissions: { pub: { allow: ["a"] } } }, scoped)).toThrow(/scoped/);
    expect(checkUserSpec({ account: "x", name: "u", kind: "service" }, s).expiresInDays).toBe(365);
    expect(checkUserSpec({ account: "x", name: "u", kind: "person" }, s).expiresInDays).toBe(90);
  });

  it("user nkeys made with node crypto decode and sign as nkeys.js reads them", async () => {
    const { newUserKey } = await import("../../identity/nats/jwt.js");
    const { fromSeed, fromPublic } = await import("@nats-io/nkeys");
    for (let i = 0; i < 20; i++) {
      const k = newUserKey();
      const ref = fromSeed(k.getSeed());
      expect(ref.getPublicKey()).toBe(k.getPublicKey());
      const msg = new TextEncoder().encode(`m${i}`);
      expect(fromPublic(k.getPublicKey()).verify(msg, k.sign(msg))).toBe(true);
    }
  });

  it("ceremony bundle: opens with the passphrase, refuses a wrong one", () => {
    const b = sealBundle("OPUB", "SOSECRET", "right");
    expect(JSON.stringify(b)).not.toContain("SOSECRET");
    expect(openBundle(b, "right")).toBe("SOSECRET");
    expect(() => openBundle(b, "wrong")).toThrow(expect.objectContaining({ code: "UNAUTHORIZED" }));
  });
});
