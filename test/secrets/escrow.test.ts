import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { startVaultwardenDouble, type VaultwardenDouble } from "../support/vaultwarden/server.js";
import { escrowEnv, registerAccount, setupOrganization, type RealmVault } from "../support/vaultwarden/setup.js";
import { VaultwardenClient } from "../../secrets-client/client.js";
import { VaultwardenEscrow, vaultwardenEscrowFromEnv } from "../../secrets-client/escrow.js";
import type { SecretEscrow } from "../../secrets-client/contract.js";
import { SecretsError } from "../../secrets-client/errors.js";
import { rejectionOf } from "../support/errors.js";

let vw: VaultwardenDouble;
let realm: RealmVault;
let escrow: VaultwardenEscrow;
let dir: string;

const KEY_PEM = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg" + "A".repeat(40) + "\n-----END PRIVATE KEY-----\n";

beforeAll(async () => {
  vw = await startVaultwardenDouble();
  realm = await setupOrganization(vw, { orgName: "realm-org" });
  dir = mkdtempSync(join(tmpdir(), "escrow-test-"));
  writeFileSync(join(dir, "ca.pem"), vw.ca);
  escrow = vaultwardenEscrowFromEnv({
    REALM_VAULTWARDEN_URL: vw.url,
    REALM_VAULTWARDEN_ORG: "realm-org",
    REALM_VAULTWARDEN_EMAIL: realm.owner.email,
    REALM_VAULTWARDEN_PASSWORD: realm.owner.password,
    REALM_VAULTWARDEN_CLIENT_ID: realm.apiKey.clientId,
    REALM_VAULTWARDEN_CLIENT_SECRET: realm.apiKey.clientSecret,
    REALM_VAULTWARDEN_CA: join(dir, "ca.pem"),
  })!;
});
afterAll(async () => {
  escrow?.close();
  realm?.client.close();
  await vw?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const errOf = (p: Promise<unknown>): Promise<SecretsError> => rejectionOf(p, SecretsError);

describe("VaultwardenEscrow (SecretEscrow on Vaultwarden)", () => {
  it("is a SecretEscrow: store returns {itemId, revision}, get gives the secret back; the server only saw ciphertext", async () => {
    const e: SecretEscrow = escrow;
    const before = vw.bodies.length;
    const ref = await e.store({ principal: "alice", name: "cert:01AB:key", secret: KEY_PEM, notes: "sha256 fingerprint 12:34" });
    expect(Object.keys(ref).sort()).toEqual(["itemId", "revision"]);
    expect(vw.ciphers.get(ref.itemId)!.revisionDate).toBe(ref.revision);
    expect(await e.get({ itemId: ref.itemId })).toBe(KEY_PEM);
    // The item sits in the principal's own collection.
    const cols = [...vw.collections.values()].filter((c) => vw.ciphers.get(ref.itemId)!.collectionIds.includes(c.id));
    expect(cols).toHaveLength(1);
    await realm.client.sync();
    expect(realm.client.collections().find((c) => c.id === cols[0]!.id)?.name).toBe("principal:alice");
    // Nothing of the secret crossed the wire in clear, nor of the master password.
    const wire = vw.bodies.slice(before).join("\n");
    expect(wire).not.toContain("MIGHAgEAMBMGByqGSM49");
    expect(wire).not.toContain(realm.owner.password);
  });

  it("rotation keeps the previous values in the password history and says which is current", async () => {
    const r1 = await escrow.store({ principal: "bob", name: "nats:ops/bob:creds", secret: "creds v1" });
    const r2 = await escrow.store({ principal: "bob", name: "nats:ops/bob:creds", secret: "creds v2" });
    const r3 = await escrow.store({ principal: "bob", name: "nats:ops/bob:creds", secret: "creds v3" });
    expect(r2.itemId).toBe(r1.itemId);
    expect(r3.itemId).toBe(r1.itemId);
    expect(r3.revision).not.toBe(r1.revision);
    expect(await escrow.get(r1)).toBe("creds v3");
    const v = await escrow.versions(r1);
    expect(v).toMatchObject({ principal: "bob", name: "nats:ops/bob:creds", current: "creds v3", version: 3 });
    expect(v.previous.map((p) => p.value)).toEqual(["creds v2", "creds v1"]);
    const item = await realm.client.getItem(r1.itemId);
    expect(item.fields.find((f) => f.name === "realm:current")?.value).toMatch(/^version 3 is the login password; 2 earlier/);
    expect(await escrow.find("bob", "nats:ops/bob:creds")).toEqual({ itemId: r1.itemId, revision: r3.revision });
    expect(await escrow.find("bob", "nothing")).toBeUndefined();
    expect(await escrow.find("nobody", "x")).toBeUndefined();
  });

  it("concurrent stores for a new principal make one collection and one item, every value kept", async () => {
    const refs = await Promise.all([1, 2, 3, 4, 5].map((n) => escrow.store({ principal: "gina", name: "rotating", secret: `value ${n}` })));
    expect(new Set(refs.map((r) => r.itemId)).size).toBe(1);
    await realm.client.sync();
    expect(realm.client.collections().filter((c) => c.name === "principal:gina")).toHaveLength(1);
    const v = await escrow.versions(refs[0]!);
    expect(v.version).toBe(5);
    expect([v.current, ...v.previous.map((p) => p.value)].sort()).toEqual(["value 1", "value 2", "value 3", "value 4", "value 5"]);
  });

  it("the same name for another principal is another item in another collection", async () => {
    const a = await escrow.store({ principal: "carol", name: "api-key", secret: "carol-key" });
    const b = await escrow.store({ principal: "dave", name: "api-key", secret: "dave-key" });
    expect(a.itemId).not.toBe(b.itemId);
    expect(vw.ciphers.get(a.itemId)!.collectionIds).not.toEqual(vw.ciphers.get(b.itemId)!.collectionIds);
    expect(await escrow.get(b)).toBe("dave-key");
  });

  it("a store that fails (server 500) throws a typed error and writes nothing", async () => {
    const before = vw.ciphers.size;
    const failing = new VaultwardenEscrow({ url: vw.url, ca: vw.ca, organization: realm.organizationId, email: realm.owner.email, password: realm.owner.password, retry: { retries: 2, baseDelayMs: 5, maxDelayMs: 10 } });
    vw.faults = [{ status: 500, times: Infinity, path: /^\/api\/ciphers/ }];
    try {
      const e = await errOf(failing.store({ principal: "erin", name: "oidc:client-secret", secret: "s" }));
      expect(e.kind).toBe("SERVER");
      expect(e.code).toBe("UNAVAILABLE");
      expect(e.message).not.toContain(realm.owner.password);
    } finally {
      vw.faults = [];
      failing.close();
    }
    expect(vw.ciphers.size).toBe(before);
    // Once the server is healthy, the retried store succeeds.
    const again = await escrow.store({ principal: "erin", name: "oidc:client-secret", secret: "s" });
    expect(await escrow.get(again)).toBe("s");
  });

  it("survives expired tokens whose refresh is refused (logs in again); get of an unknown id is NOT_FOUND", async () => {
    const ref = await escrow.store({ principal: "frank", name: "k", secret: "v1" });
    vw.expireAccessTokens();
    vw.revokeRefreshTokens();
    expect(await escrow.get(ref)).toBe("v1");
    expect((await errOf(escrow.get({ itemId: "00000000-0000-4000-8000-000000000000" }))).kind).toBe("NOT_FOUND");
  });

  it("wrong master password or unreachable server: typed errors; bad input: VALIDATION", async () => {
    const wrong = new VaultwardenEscrow({ url: vw.url, ca: vw.ca, organization: "realm-org", email: realm.owner.email, password: "nope" });
    expect((await errOf(wrong.store({ principal: "x", name: "y", secret: "z" }))).kind).toBe("AUTH");
    wrong.close();
    const down = new VaultwardenEscrow({ url: "https://127.0.0.1:1", ca: vw.ca, organization: "realm-org", email: realm.owner.email, password: realm.owner.password, retry: { retries: 1, baseDelayMs: 5 } });
    expect((await errOf(down.get({ itemId: "x" }))).kind).toBe("UNREACHABLE");
    down.close();
    expect((await errOf(escrow.store({ principal: "", name: "y", secret: "z" }))).kind).toBe("VALIDATION");
    expect((await errOf(escrow.store({ principal: "x", name: "y", secret: "" }))).kind).toBe("VALIDATION");
    const noOrg = new VaultwardenEscrow({ url: vw.url, ca: vw.ca, organization: "no-such-org", email: realm.owner.email, password: realm.owner.password });
    expect((await errOf(noOrg.store({ principal: "x", name: "y", secret: "z" }))).kind).toBe("NOT_FOUND");
    noOrg.close();
  });

  it("two writers rotating the same secret 1 s apart (which Vaultwarden's 2 s stale check lets through) lose no version", async () => {
    // (an earlier test revoked realm.client's session: log in afresh)
    await realm.client.login({ email: realm.owner.email, password: realm.owner.password });
    const admin = await registerAccount(vw, "second-writer@example.test", "second writer password");
    await realm.client.addMember(realm.organizationId, admin.email, { role: 1 });
    const other = new VaultwardenEscrow({ url: vw.url, ca: vw.ca, organization: "realm-org", email: admin.email, password: admin.password });
    try {
      const ref = await escrow.store({ principal: "rita", name: "rotating", secret: "v1" });
      // The escrow has read the item (sync) when the other writer rotates it, 1 s later, before our PUT.
      vw.hooks.push({ user: realm.owner.email, method: "GET", path: /^\/api\/ciphers\/[0-9a-f-]{36}$/, times: 1, run: async () => {
        vw.clock.advance(1000);
        await other.store({ principal: "rita", name: "rotating", secret: "v2" });
      } });
      await escrow.store({ principal: "rita", name: "rotating", secret: "v3" });
      expect(vw.hooks.every((h) => h.times === 0)).toBe(true);
      let v = await escrow.versions(ref);
      expect([v.current, ...v.previous.map((p) => p.value)]).toEqual(["v3", "v2", "v1"]);
      expect(v.version).toBe(3);
      // The other way round: the other writer has read and checked the item, and the escrow rotates it 1 s
      // later, just before the other writer's PUT lands: the server itself then refuses that PUT, and the other
      // writer redoes its rotation on top.
      vw.hooks.push({ user: admin.email, method: "PUT", path: /^\/api\/ciphers\/[0-9a-f-]{36}$/, times: 1, run: async () => {
        vw.clock.advance(1000);
        await escrow.store({ principal: "rita", name: "rotating", secret: "v4" });
      } });
      const n = vw.log.length;
      await other.store({ principal: "rita", name: "rotating", secret: "v5" });
      expect(vw.log.slice(n).filter((l) => l.method === "PUT" && l.status === 400)).toHaveLength(1);
      v = await escrow.versions(ref);
      expect([v.current, ...v.previous.map((p) => p.value)]).toEqual(["v5", "v4", "v3", "v2", "v1"]);
      expect(v.version).toBe(5);
    } finally {
      vw.hooks.length = 0;
      other.close();
    }
  });

  it("an account without the organization role: FORBIDDEN at once, and the escrow does not log in again", async () => {
    await realm.client.login({ email: realm.owner.email, password: realm.owner.password });
    const plain = await registerAccount(vw, "plain-member@example.test", "plain member password");
    await realm.client.addMember(realm.organizationId, plain.email, { role: 2, collectionIds: [realm.collectionId] });
    const weak = new VaultwardenEscrow({ url: vw.url, ca: vw.ca, organization: "realm-org", email: plain.email, password: plain.password });
    try {
      await weak.check();
      const token = () => vw.log.filter((l) => l.path === "/identity/connect/token").length;
      const before = token();
      for (let i = 0; i < 3; i++) {
        const e = await errOf(weak.store({ principal: `new-principal-${i}`, name: "k", secret: "s" }));
        expect(e).toMatchObject({ kind: "FORBIDDEN", code: "UNAUTHORIZED", status: 401 });
        expect(e.message).toContain("lacks the right");
      }
      expect(token()).toBe(before);
    } finally {
      weak.close();
    }
  });

  it("the 11th login in a minute is refused (RATE_LIMITED, typed, not retried) and the escrow keeps working through its cached session", async () => {
    const ref = await escrow.store({ principal: "rl", name: "k", secret: "before" });
    vw.loginRateLimit.enabled = true;
    vw.loginRateLimit.reset();
    const token = () => vw.log.filter((l) => l.path === "/identity/connect/token").length;
    try {
      for (let i = 0; i < 10; i++) {
        const c = new VaultwardenClient({ url: vw.url, ca: vw.ca });
        await c.login({ email: realm.owner.email, password: realm.owner.password, apiKey: realm.apiKey });
        c.close();
      }
      const fresh = new VaultwardenEscrow({ url: vw.url, ca: vw.ca, organization: "realm-org", email: realm.owner.email, password: realm.owner.password, apiKey: realm.apiKey });
      const before = token();
      const e = await errOf(fresh.check());
      fresh.close();
      expect(e).toMatchObject({ kind: "RATE_LIMITED", code: "RATE_LIMITED", status: 429 });
      expect(e.message).not.toContain(realm.apiKey.clientSecret);
      expect(token() - before).toBe(1);
      // The running escrow: no login needed, so nothing refused.
      const n = token();
      const r2 = await escrow.store({ principal: "rl", name: "k", secret: "after" });
      expect(r2.itemId).toBe(ref.itemId);
      expect(await escrow.get(ref)).toBe("after");
      expect((await escrow.versions(ref)).previous.map((p) => p.value)).toEqual(["before"]);
      expect(await escrow.find("rl", "k")).toMatchObject({ itemId: ref.itemId });
      expect(token()).toBe(n);
    } finally {
      vw.loginRateLimit.enabled = false;
    }
  });

  it("one device per installation: every escrow of this host and account logs in as the same Vaultwarden device", async () => {
    const owner = vw.userByEmail(realm.owner.email)!;
    const a = vaultwardenEscrowFromEnv(escrowEnv(vw, realm))!;
    const b = vaultwardenEscrowFromEnv(escrowEnv(vw, realm, { useApiKey: false }))!;
    const before = new Set(vw.devices.get(owner.id));
    await a.check();
    await b.check();
    a.close();
    b.close();
    const added = [...vw.devices.get(owner.id)!].filter((d) => !before.has(d));
    expect(added.length).toBeLessThanOrEqual(1);
    expect(vw.devices.get(owner.id)!.size).toBeLessThanOrEqual(before.size + 1);
    // Set explicitly, it is used as is.
    const c = vaultwardenEscrowFromEnv({ ...escrowEnv(vw, realm), REALM_VAULTWARDEN_DEVICE_ID: "3f1c2a9e-0000-4000-8000-00000000d001" })!;
    await c.check();
    c.close();
    expect(vw.devices.get(owner.id)!.has("3f1c2a9e-0000-4000-8000-00000000d001")).toBe(true);
  });

  it("vaultwardenEscrowFromEnv: undefined without a URL, VALIDATION naming the missing variable, never printing credentials", () => {
    expect(vaultwardenEscrowFromEnv({})).toBeUndefined();
    expect(() => vaultwardenEscrowFromEnv({ REALM_VAULTWARDEN_URL: vw.url, REALM_VAULTWARDEN_EMAIL: "a@b.c", REALM_VAULTWARDEN_PASSWORD: "pw" })).toThrow(/REALM_VAULTWARDEN_ORG is required/);
    expect(() => vaultwardenEscrowFromEnv({ REALM_VAULTWARDEN_URL: vw.url, REALM_VAULTWARDEN_ORG: "o", REALM_VAULTWARDEN_EMAIL: "a@b.c", REALM_VAULTWARDEN_PASSWORD: "pw", REALM_VAULTWARDEN_CLIENT_ID: "user.x" })).toThrow(/set together/);
    expect(() => vaultwardenEscrowFromEnv({ REALM_VAULTWARDEN_URL: "http://vault.example", REALM_VAULTWARDEN_ORG: "o", REALM_VAULTWARDEN_EMAIL: "a@b.c", REALM_VAULTWARDEN_PASSWORD: "pw" })).toThrow(/https/);
    expect(inspect(escrow)).not.toContain(realm.owner.password);
    // The helper for end-to-end tests builds a working configuration (password grant here).
    const fromHelper = vaultwardenEscrowFromEnv(escrowEnv(vw, realm, { useApiKey: false }));
    expect(fromHelper).toBeInstanceOf(VaultwardenEscrow);
    fromHelper!.close();
    expect(JSON.stringify({ escrow })).not.toContain(realm.owner.password);
  });
});
