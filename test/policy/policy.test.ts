/**
 * Fine-grained, resource-scoped authorization, against a whole realm (`startRealm` in operator mode, its
 * own nats-server): every endpoint of /openapi.json over HTTP and NATS for every built-in role and a
 * scoped binding, the scopes themselves, and the cases the review tried.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/nats-core";
import { startRealm, type RunningRealm } from "../../services/cli/runtime.js";
import { connectAs } from "../../services/cli/connection.js";
import { callRealm } from "../../services/host/client.js";
import { createLogger } from "../../services/host/logger.js";
import { patternCovers } from "../../services/host/authz.js";
import { BUILTIN_ROLES } from "../../identity/authorize.js";
import type { PermissionEntry } from "../../services/host/host.js";
import { RealmError } from "../../services/kernel/errors.js";

const data = mkdtempSync(join(tmpdir(), "realm-policy-"));
let realm: RunningRealm;
let op: NatsConnection;
let admin: string;
let http: string;
/** role (or case) -> API key */
const keys = new Map<string, string>();

const call = <T extends object = Record<string, unknown>>(subject: string, input: object, key?: string) => callRealm<T>(op, subject, input, key ? { authorization: `Bearer ${key}` } : {});
const cmd = <T extends object = Record<string, unknown>>(name: string, input: object, key = admin) => {
  const [ctx, ...rest] = name.split(":");
  return call<T>(`realm.${ctx}.commands.${rest.join(":")}`, input, key);
};
const query = <T extends object = Record<string, unknown>>(name: string, input: object, key = admin) => {
  const [ctx, ...rest] = name.split(":");
  return call<T>(`realm.${ctx}.queries.${rest.join(":")}`, input, key);
};
const codeOf = (p: Promise<unknown>) => p.then(() => "ok", (e: unknown) => (e instanceof RealmError ? e.code : "?"));

/** A service principal holding `role` (optionally within a scope), and an API key with that role. */
async function holder(name: string, role: string, scope?: object): Promise<string> {
  await cmd("identity:principal.create", { id: name, kind: "service", displayName: name });
  await cmd("identity:policy.bind", { id: `${name}-${role}`, role, subject: { kind: "principal", id: name }, ...(scope ? { scope } : {}) });
  const k = await cmd<{ key: string }>("identity:apikey.issue", { owner: name, label: "test", roles: [role] });
  return k.key;
}

beforeAll(async () => {
  realm = await startRealm({ dataDir: data, natsPort: 0, httpPort: 0, dnsPort: 0, log: createLogger({ level: "silent" }) });
  http = realm.httpUrl!;
  op = await connectAs(realm.natsUrl, join(data, "operator", "admin.creds"), "policy-test");
  admin = (await callRealm<{ key: string }>(op, "realm.identity.commands.admin.bootstrap", {})).key;
  for (const r of BUILTIN_ROLES) keys.set(r.id, await holder(`p-${r.id}`, r.id));
  keys.set("dns-scoped", await holder("p-dns-scoped", "dns-operator", { kind: "zone", id: "lab.example" }));
}, 120_000);

afterAll(async () => {
  await op?.close();
  await realm?.stop();
  rmSync(data, { recursive: true, force: true });
});

describe("the permission table", () => {
  it("names every endpoint's permission, in /openapi.json per route and in realm.realm.queries.permissions", async () => {
    const { permissions } = await query<{ permissions: PermissionEntry[] }>("realm:permissions", {});
    expect(permissions.length).toBeGreaterThan(60);
    expect(permissions.find((p) => p.permission === "dns:zone.create")).toMatchObject({ kind: "command", scoped: "resource" });
    expect(permissions.find((p) => p.permission === "dns:zones")).toMatchObject({ kind: "query", scoped: "filtered" });
    expect(permissions.find((p) => p.permission === "identity:whoami")).toMatchObject({ auth: "authenticated" });
    const doc = (await (await fetch(`${http}/openapi.json`)).json()) as { paths: Record<string, Record<string, { "x-permission"?: string }>> };
    expect(doc.paths["/api/dns/zone/create"]!.post!["x-permission"]).toBe("dns:zone.create");
    for (const p of permissions.filter((x) => x.http)) {
      for (const route of p.http!.split(", ")) {
        const [method, path] = route.split(" ");
        const openapiPath = path!.replace(/:([a-zA-Z]+)/g, "{$1}");
        expect(doc.paths[openapiPath]?.[method!.toLowerCase()]?.["x-permission"], route).toBe(p.permission);
      }
    }
  });
});

describe("docs/permissions.md", () => {
  it("is what the realm's endpoints declare (npm run docs:permissions writes it)", async () => {
    const { readFileSync } = await import("node:fs");
    const { renderPermissionsDoc } = await import("../../services/host/permissions-doc.js");
    expect(readFileSync(new URL("../../docs/permissions.md", import.meta.url), "utf8")).toBe(renderPermissionsDoc(realm.host.permissions()));
  });
});

describe("the matrix: every endpoint, every built-in role and a scoped binding, over HTTP and NATS", () => {
  it("allows exactly what the role's permission patterns cover, and names the permission when it refuses", async () => {
    const { permissions } = await query<{ permissions: PermissionEntry[] }>("realm:permissions", {});
    const cases = [...BUILTIN_ROLES.map((r) => ({ name: r.id, patterns: r.permissions, scoped: false })), { name: "dns-scoped", patterns: ["dns:*"], scoped: true }];
    const mismatches: string[] = [];
    for (const c of cases) {
      const key = keys.get(c.name)!;
      for (const p of permissions.filter((x) => x.auth !== "none")) {
        // self-service grants hold only about the caller, and these calls name nobody: only its unscopable queries would pass
        const self = BUILTIN_ROLES.find((r) => r.id === c.name)?.self === true;
        const covered = p.auth === "authenticated" || c.patterns.some((pat) => patternCovers(pat, p.permission, p.kind));
        const expectAllowed = p.auth === "authenticated" || (covered && (c.scoped || self ? p.scoped !== "unscoped-only" : true));
        // NATS
        const nats = await codeOf(callRealm(op, p.subject, {}, { authorization: `Bearer ${key}` }));
        // HTTP
        const httpCodes: [string, string][] = [];
        for (const route of p.http ? p.http.split(", ") : []) {
          const [method, path] = route.split(" ");
          const res = await fetch(`${http}${path!.replace(/:([a-zA-Z]+)/g, "x")}`, { method, headers: { authorization: `Bearer ${key}`, ...(method === "POST" ? { "content-type": "application/json" } : {}) }, ...(method === "POST" ? { body: "{}" } : {}) });
          const body = (await res.json()) as { ok: boolean; error?: { code: string; details?: { permission?: string } } };
          const code = body.ok ? "ok" : body.error!.code;
          httpCodes.push([`http ${route}`, code]);
          if (code === "FORBIDDEN" && body.error!.details?.permission !== p.permission) mismatches.push(`${c.name} ${route}: refusal names ${body.error!.details?.permission}`);
        }
        for (const [transport, code] of [["nats", nats], ...httpCodes] as const) {
          const allowed = code !== "FORBIDDEN" && code !== "UNAUTHORIZED";
          // a self-scoped or zone-scoped grant may still refuse a call whose input names nothing in scope
          if (allowed !== expectAllowed && !(expectAllowed && (c.scoped || self) && code === "FORBIDDEN")) mismatches.push(`${c.name} ${transport} ${p.permission}: ${code}, expected ${expectAllowed ? "allowed" : "FORBIDDEN"}`);
          if (!expectAllowed && code !== "FORBIDDEN") mismatches.push(`${c.name} ${transport} ${p.permission}: ${code}, expected FORBIDDEN`);
        }
      }
    }
    expect(mismatches).toEqual([]);
  }, 300_000);
});

describe("resource scopes", () => {
  it("a dns-operator scoped to lab.example changes records there and in its subzones, nothing in other.example, and lists only its zones", async () => {
    const scoped = keys.get("dns-scoped")!;
    await cmd("dns:zone.create", { zone: "other.example", ns: ["ns1.other.example"] });
    expect(await codeOf(cmd("dns:zone.create", { zone: "lab.example", ns: ["ns1.lab.example"] }, scoped))).toBe("ok");
    expect(await codeOf(cmd("dns:zone.create", { zone: "eu.lab.example", ns: ["ns1.lab.example"] }, scoped))).toBe("ok");
    expect(await codeOf(cmd("dns:record.add", { name: "web.lab.example.", type: "A", data: "192.0.2.10" }, scoped))).toBe("ok");
    expect(await codeOf(cmd("dns:record.add", { name: "api.eu.lab.example.", type: "A", data: "192.0.2.11" }, scoped))).toBe("ok");
    const refused = await cmd("dns:record.add", { name: "web.other.example.", type: "A", data: "192.0.2.12" }, scoped).catch((e: unknown) => e as RealmError);
    expect(refused).toMatchObject({ code: "FORBIDDEN", details: { permission: "dns:record.add" } });
    expect((refused as RealmError).message).toContain("zone lab.example");
    expect(await codeOf(cmd("dns:zone.delete", { zone: "other.example" }, scoped))).toBe("FORBIDDEN");
    // a name that only ends like the zone is not in it
    expect(await codeOf(cmd("dns:zone.create", { zone: "notlab.example", ns: ["ns1.notlab.example"] }, scoped))).toBe("FORBIDDEN");
    const zones = await query<{ zones: { zone: string }[] }>("dns:zones", {}, scoped);
    expect(zones.zones.map((z) => z.zone).sort()).toEqual(["eu.lab.example.", "lab.example."]);
    const all = await query<{ zones: { zone: string }[] }>("dns:zones", {});
    expect(all.zones.map((z) => z.zone)).toContain("other.example.");
  });

  it("an account scope, an issuer scope, an org subtree and self", async () => {
    // NATS accounts
    const natsOp = await holder("p-nats-lab", "nats-operator", { kind: "account", id: "lab" });
    expect(await codeOf(cmd("identity:account.create", { name: "lab" }, natsOp))).toBe("ok");
    expect(await codeOf(cmd("identity:account.create", { name: "billing" }, natsOp))).toBe("FORBIDDEN");
    await cmd("identity:account.create", { name: "billing" });
    const accounts = await query<{ accounts: { name: string }[] }>("identity:accounts", {}, natsOp);
    expect(accounts.accounts.map((a) => a.name)).toEqual(["lab"]);
    expect(await codeOf(cmd("identity:user.create", { account: "billing", name: "eve", kind: "service" }, natsOp))).toBe("FORBIDDEN");
    // PKI issuers
    const pkiOps = await holder("p-pki-ops", "pki-operator", { kind: "issuer", id: "ops" });
    expect(await codeOf(cmd("pki:issuer.prepare", { issuer: "ops", commonName: "Ops CA" }, pkiOps))).toBe("ok");
    expect(await codeOf(cmd("pki:issuer.prepare", { issuer: "web", commonName: "Web CA" }, pkiOps))).toBe("FORBIDDEN");
    // organizations: an identity-admin of acme/eng
    await cmd("identity:organization.create", { id: "acme", displayName: "ACME" });
    await cmd("identity:organization.addUnit", { id: "acme", unit: "eng", displayName: "Engineering" });
    await cmd("identity:organization.addUnit", { id: "acme", unit: "platform", displayName: "Platform", parent: "eng" });
    await cmd("identity:organization.addUnit", { id: "acme", unit: "sales", displayName: "Sales" });
    const engAdmin = await holder("p-eng-admin", "identity-admin", { kind: "org", id: "acme", unit: "eng" });
    expect(await codeOf(cmd("identity:principal.create", { id: "pia", kind: "person", displayName: "Pia", organization: "acme", orgUnit: "platform" }, engAdmin))).toBe("ok");
    expect(await codeOf(cmd("identity:principal.create", { id: "sam", kind: "person", displayName: "Sam", organization: "acme", orgUnit: "sales" }, engAdmin))).toBe("FORBIDDEN");
    await cmd("identity:principal.create", { id: "sam", kind: "person", displayName: "Sam", organization: "acme", orgUnit: "sales" });
    expect(await codeOf(cmd("identity:principal.disable", { id: "sam", reason: "x" }, engAdmin))).toBe("FORBIDDEN");
    expect(await codeOf(cmd("identity:principal.disable", { id: "pia", reason: "x" }, engAdmin))).toBe("ok");
    // granting roles is never within a scope: an org admin cannot make herself realm-admin
    expect(await codeOf(cmd("identity:policy.bind", { id: "esc", role: "realm-admin", subject: { kind: "principal", id: "p-eng-admin" } }, engAdmin))).toBe("FORBIDDEN");
    const seen = await query<{ principals: { id: string }[] }>("identity:principals", {}, engAdmin);
    expect(seen.principals.map((p) => p.id)).toEqual(["pia"]);
    // self-service: one's own password and keys, nobody else's
    await cmd("identity:principal.create", { id: "cara", kind: "person", displayName: "Cara" });
    await cmd("identity:policy.bind", { id: "cara-self", role: "self-service", subject: { kind: "principal", id: "cara" } });
    const cara = (await cmd<{ key: string }>("identity:apikey.issue", { owner: "cara", label: "own", roles: ["self-service"] })).key;
    expect(await codeOf(cmd("identity:principal.setPassword", { id: "cara", password: "a long own password" }, cara))).toBe("ok");
    expect(await codeOf(cmd("identity:principal.setPassword", { id: "sam", password: "a long foreign password" }, cara))).toBe("FORBIDDEN");
    expect(await codeOf(cmd("identity:apikey.issue", { owner: "cara", label: "more", roles: ["self-service"] }, cara))).toBe("ok");
    const who = await query<{ principal: { id: string }; roles: string[]; bindings: { binding: string; scope?: { kind: string } }[] }>("identity:whoami", {}, cara);
    expect(who).toMatchObject({ principal: { id: "cara" }, roles: ["self-service"], bindings: [{ binding: "cara-self", scope: { kind: "self" } }] });
  });
});

describe("the cases the review tried", () => {
  it("a role with dns:zone.create may create zones (role permissions are enforced, no admin role needed)", async () => {
    await cmd("identity:role.define", { id: "zone-maker", description: "makes zones", permissions: ["dns:zone.create"] });
    const k = await holder("p-zone-maker", "zone-maker");
    expect(await codeOf(cmd("dns:zone.create", { zone: "made.example", ns: ["ns1.made.example"] }, k))).toBe("ok");
    expect(await codeOf(cmd("dns:zone.delete", { zone: "made.example" }, k))).toBe("FORBIDDEN");
  });

  it("a key carries only roles its owner holds, and stops the moment the owner's binding is revoked", async () => {
    await cmd("identity:principal.create", { id: "dora", kind: "person", displayName: "Dora" });
    await cmd("identity:policy.bind", { id: "dora-self", role: "self-service", subject: { kind: "principal", id: "dora" } });
    const dora = (await cmd<{ key: string }>("identity:apikey.issue", { owner: "dora", label: "own", roles: ["self-service"] })).key;
    // she cannot give herself an admin key
    expect(await codeOf(cmd("identity:apikey.issue", { owner: "dora", label: "admin please", roles: ["realm-admin"] }, dora))).toBe("VALIDATION");
    expect(await codeOf(cmd("identity:apikey.issue", { owner: "dora", label: "admin please", roles: ["realm-admin"] }))).toBe("VALIDATION");
    // a key for a role, then the binding goes: the key stops at once
    await cmd("identity:policy.bind", { id: "dora-dns", role: "dns-operator", subject: { kind: "principal", id: "dora" } });
    const dk = (await cmd<{ key: string }>("identity:apikey.issue", { owner: "dora", label: "dns", roles: ["dns-operator"] })).key;
    expect(await codeOf(query("dns:zones", {}, dk))).toBe("ok");
    await cmd("identity:policy.revoke", { id: "dora-dns" });
    expect(await codeOf(query("dns:zones", {}, dk))).toBe("FORBIDDEN");
  });

  it("an unauthenticated caller gets 401 before its body is read, and events record the decision", async () => {
    const res = await fetch(`${http}/api/dns/zone/create`, { method: "POST", headers: { "content-type": "application/json" }, body: "{not json" });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("UNAUTHORIZED");
    const nats = await codeOf(callRealm(op, "realm.dns.commands.zone.create", { nonsense: true }));
    expect(nats).toBe("UNAUTHORIZED");
    // the zone created by the scoped operator above carries the binding that allowed it
    const store = realm.contexts.find((c) => c.name === "dns") as unknown as { store: { readEvents(o: { filter: string }): AsyncGenerator<{ event: { authz?: unknown } }>; subjectOf(r: object): string } };
    const events = [];
    for await (const { event } of store.store.readEvents({ filter: store.store.subjectOf({ type: "zone", id: "lab.example." }) })) events.push(event);
    expect(events[0]!.authz).toMatchObject({ permission: "dns:zone.create", binding: "p-dns-scoped-dns-operator", role: "dns-operator", via: expect.stringMatching(/^apikey:/) });
    const audit = await query<{ entries: { type: string; authz?: { permission: string } }[] }>("identity:audit", { aggregateType: "policy", aggregateId: "dora-dns" });
    expect(audit.entries.map((e) => [e.type, e.authz?.permission])).toEqual([
      ["RoleBound", "identity:policy.bind"],
      ["RoleBindingRevoked", "identity:policy.revoke"],
    ]);
    const { denials } = await query<{ denials: { principal: string; permission: string }[] }>("realm:denials", {});
    expect(denials).toEqual(expect.arrayContaining([expect.objectContaining({ principal: "dora", permission: "dns:zones" })]));
  });
});
