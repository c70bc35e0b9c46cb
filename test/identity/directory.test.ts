import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startIdentity, type IdentityHarness } from "./harness.js";
import { callRealm } from "../../services/host/client.js";
import { fold } from "../../services/kernel/index.js";
import { principalDecider, DEFAULT_LOCKOUT } from "../../identity/domain/principal.js";
import { effectiveRoles, policyDecider } from "../../identity/domain/policy.js";

let h: IdentityHarness;
beforeAll(async () => {
  h = await startIdentity();
});
afterAll(async () => {
  await h?.stop();
});

const http = async (method: string, path: string, auth?: string, body?: object) => {
  const headers: Record<string, string> = {};
  if (auth) headers.authorization = auth;
  if (body) headers["content-type"] = "application/json";
  const res = await fetch(`${h.url}${path}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
  return { status: res.status, body: (await res.json()) as { ok: boolean; error?: { code: string; message: string }; [k: string]: unknown } };
};

describe("identity domain (pure)", () => {
  it("locks a principal after maxFailures consecutive failures and unlocks on success/unlock", () => {
    let s = fold(principalDecider, "p", []);
    const apply = (c: Parameters<typeof principalDecider.decide>[1]) => {
      for (const e of principalDecider.decide(s, c)) s = principalDecider.evolve(s, { ...e, aggregate: { type: "principal", id: "p" } } as never);
    };
    apply({ type: "create", kind: "person", displayName: "P" });
    const at = "2026-01-01T00:00:00.000Z";
    for (let i = 0; i < DEFAULT_LOCKOUT.maxFailures - 1; i++) apply({ type: "recordLoginFailure", at, policy: DEFAULT_LOCKOUT });
    expect(s.lockedUntil).toBeUndefined();
    apply({ type: "recordLoginFailure", at, policy: DEFAULT_LOCKOUT });
    expect(s.lockedUntil).toBe("2026-01-01T00:15:00.000Z");
    expect(() => principalDecider.decide(s, { type: "recordLogin", at, method: "password" })).toThrow(/locked/);
    apply({ type: "unlock" });
    expect(s.failedLogins).toBe(0);
  });

  it("evaluates role bindings with time and organization conditions", () => {
    const bind = (id: string, c: Parameters<typeof policyDecider.decide>[1]) => {
      let s = policyDecider.initialState(id);
      for (const e of policyDecider.decide(s, c)) s = policyDecider.evolve(s, e as never);
      return s;
    };
    const ps = [
      bind("a", { type: "bind", role: "ops", subject: { kind: "group", id: "sre" }, conditions: { notAfter: "2030-01-01T00:00:00Z" } }),
      bind("b", { type: "bind", role: "auditor", subject: { kind: "principal", id: "ann" }, conditions: { organization: "acme" } }),
      bind("c", { type: "bind", role: "old", subject: { kind: "principal", id: "ann" }, conditions: { notAfter: "2020-01-01T00:00:00Z" } }),
    ];
    const now = new Date("2026-06-01T00:00:00Z");
    expect(effectiveRoles(ps, { id: "ann", groups: ["sre"], organization: "acme" }, now)).toEqual(["auditor", "ops"]);
    expect(effectiveRoles(ps, { id: "ann", groups: [], organization: "other" }, now)).toEqual([]);
    expect(() => bind("d", { type: "bind", role: "x", subject: { kind: "principal", id: "a" }, conditions: { notBefore: "2030-01-01T00:00:00Z", notAfter: "2020-01-01T00:00:00Z" } })).toThrow(/before/);
  });
});

describe("identity admin API", () => {
  it("creates organizations, units, principals, groups, roles and bindings; roles follow group membership", async () => {
    await h.call("organization.create", { id: "acme", displayName: "ACME" });
    await h.call("organization.addUnit", { id: "acme", unit: "eng", displayName: "Engineering" });
    await h.call("principal.create", { id: "ann", kind: "person", displayName: "Ann", email: "ann@acme.test", organization: "acme", orgUnit: "eng" });
    await h.call("group.create", { id: "sre", displayName: "SRE" });
    await h.call("group.addMember", { id: "sre", principal: "ann" });
    await h.call("role.define", { id: "operator", description: "Operate", permissions: ["dns:*"] });
    await h.call("policy.bind", { id: "sre-operator", role: "operator", subject: { kind: "group", id: "sre" }, conditions: { organization: "acme" } });
    const p = await h.call<{ principal: { groups: string[]; roles: string[]; organization: string } }>("principal", { id: "ann" });
    expect(p.principal).toMatchObject({ groups: ["sre"], roles: ["operator"], organization: "acme" });
    await expect(h.call("principal.create", { id: "ann", kind: "person", displayName: "Again" })).rejects.toMatchObject({ code: "ALREADY_EXISTS" });
    await expect(h.call("principal.create", { id: "bob", kind: "person", displayName: "B", organization: "nope" })).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(h.call("principal.setPassword", { id: "ann", password: "short" })).rejects.toMatchObject({ code: "VALIDATION" });
  });

  it("answers 401 without or with a bad credential, and 403 naming the permission a caller's roles do not grant", async () => {
    expect((await http("GET", "/api/identity/principals")).status).toBe(401);
    const bad = await http("GET", "/api/identity/principals", "Bearer rk_0000000000000000_nope");
    expect(bad).toMatchObject({ status: 401, body: { error: { code: "UNAUTHORIZED" } } });
    expect(bad.body.error!.message).not.toContain("nope");
    expect((await http("GET", "/api/identity/principals", "Basic abc")).status).toBe(401);
    await h.call("principal.create", { id: "svc-reader", kind: "service", displayName: "Reader" });
    await h.call("role.define", { id: "reader", description: "Read", permissions: ["identity:principals"] });
    // a key can carry only roles its owner holds
    await expect(h.call("apikey.issue", { owner: "svc-reader", label: "ci", roles: ["reader"] })).rejects.toMatchObject({ code: "VALIDATION" });
    await h.call("policy.bind", { id: "svc-reader-reader", role: "reader", subject: { kind: "principal", id: "svc-reader" } });
    const k = await h.call<{ key: string; id: string }>("apikey.issue", { owner: "svc-reader", label: "ci", roles: ["reader"] });
    expect((await http("GET", "/api/identity/principals", `Bearer ${k.key}`)).status).toBe(200);
    const forbidden = await http("GET", "/api/identity/roles", `Bearer ${k.key}`);
    expect(forbidden).toMatchObject({ status: 403, body: { error: { code: "FORBIDDEN", details: { permission: "identity:roles" } } } });
    expect(forbidden.body.error!.message).toContain("identity:roles");
    const ok = await http("GET", "/api/identity/roles", h.admin);
    expect(ok.status).toBe(200);
    // Over NATS the same.
    await expect(callRealm(h.nc, "realm.identity.queries.principals", {})).rejects.toMatchObject({ code: "UNAUTHORIZED" });
  });

  it("API keys: shown once, stored hashed, expire and revoke", async () => {
    const k = await h.call<{ key: string; id: string }>("apikey.issue", { owner: "root", label: "temp", roles: ["realm-admin"] });
    expect((await http("GET", "/api/identity/roles", `Bearer ${k.key}`)).status).toBe(200);
    const listed = JSON.stringify(await h.call("apikeys", {}));
    expect(listed).not.toContain(k.key.split("_")[2]);
    expect(listed).not.toContain("secretHash");
    await h.call("apikey.revoke", { id: k.id, reason: "test" });
    expect((await http("GET", "/api/identity/roles", `Bearer ${k.key}`)).status).toBe(401);
    await expect(h.call("apikey.issue", { owner: "root", label: "past", roles: ["realm-admin"], expiresAt: "2001-01-01T00:00:00Z" })).rejects.toMatchObject({ code: "VALIDATION" });
    // Disabling the owner stops its keys.
    await h.call("principal.create", { id: "svc-tmp", kind: "service", displayName: "Tmp" });
    await h.call("policy.bind", { id: "svc-tmp-admin", role: "realm-admin", subject: { kind: "principal", id: "svc-tmp" } });
    const k2 = await h.call<{ key: string }>("apikey.issue", { owner: "svc-tmp", label: "x", roles: ["realm-admin"] });
    expect((await http("GET", "/api/identity/roles", `Bearer ${k2.key}`)).status).toBe(200);
    await h.call("principal.disable", { id: "svc-tmp", reason: "gone" });
    expect((await http("GET", "/api/identity/roles", `Bearer ${k2.key}`)).status).toBe(401);
  });

  it("keeps password hashes out of the event stream and tells who did what in the audit trail", async () => {
    await h.call("principal.create", { id: "carl", kind: "person", displayName: "Carl" });
    const password = "correct horse battery staple";
    await h.call("principal.setPassword", { id: "carl", password });
    const audit = await h.call<{ entries: { type: string; actor: string; correlationId: string }[] }>("audit", { aggregateType: "principal", aggregateId: "carl" });
    expect(audit.entries.map((e) => e.type)).toEqual(["PrincipalCreated", "PasswordSet"]);
    expect(audit.entries.every((e) => e.actor === "root" && e.correlationId.length > 0)).toBe(true);
    const raw: string[] = [];
    for await (const m of h.ctx.core.store.read()) raw.push(new TextDecoder().decode(m.data));
    const all = raw.join("\n");
    expect(all).not.toContain(password);
    expect(all).not.toContain("argon2");
    expect(h.logs.join("")).not.toContain(password);
  });
});

describe("client secrets with an escrow", () => {
  it("escrows the secret: the reply and the events carry only the reference", async () => {
    const kept = new Map<string, string>();
    const { createIdentityContext } = await import("../../identity/service.js");
    const { createLogger } = await import("../../services/host/logger.js");
    const { newId } = await import("../../services/kernel/index.js");
    const { Sealer } = await import("../../services/kernel/seal.js");
    // An escrow that keeps secrets in memory: the contract only (the Vaultwarden client is tested in secrets-client).
    const escrow = {
      async store(req: { principal: string; name: string; secret: string }) {
        const itemId = `item-${kept.size + 1}`;
        kept.set(itemId, req.secret);
        return { itemId, revision: new Date().toISOString() };
      },
      async get(ref: { itemId: string }) {
        return kept.get(ref.itemId)!;
      },
    };
    const log = createLogger({ level: "silent" });
    const ctx = await createIdentityContext({ issuer: "http://127.0.0.1/oidc", escrow, sealer: h.sealer })({ nc: h.nc, log, dataDir: h.nats.dataDir, trust: h.trust });
    try {
      const register = ctx.endpoints.find((e) => e.name === "client.register")!;
      const r = (await register.handle({ id: "escrowed", displayName: "E", grantTypes: ["client_credentials"] }, { commandId: newId(), correlationId: newId(), causationId: newId(), actor: "root", log })) as Record<string, unknown>;
      expect(r.clientSecret).toBeUndefined();
      expect(r.secretRef).toMatchObject({ itemId: "item-1" });
      const secret = kept.get("item-1")!;
      expect(secret.length).toBeGreaterThan(40);
      for await (const m of ctx.core.store.read()) expect(new TextDecoder().decode(m.data)).not.toContain(secret);
      expect(ctx.core.dir.clients.get("escrowed")?.secretRef).toBe("item-1");
    } finally {
      await ctx.stop?.();
    }
  });
});
