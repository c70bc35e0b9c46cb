import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startVaultwardenDouble, type VaultwardenDouble } from "../support/vaultwarden/server.js";
import { postJson, registerAccount, registrationBody, setupOrganization, type RealmVault } from "../support/vaultwarden/setup.js";
import { VaultwardenClient } from "../../secrets-client/client.js";
import { SecretsError } from "../../secrets-client/errors.js";
import { rejectionOf } from "../support/errors.js";

let vw: VaultwardenDouble;
let realm: RealmVault;

beforeAll(async () => {
  vw = await startVaultwardenDouble();
  realm = await setupOrganization(vw);
});
afterAll(async () => {
  realm?.client.close();
  await vw?.stop();
});

const newClient = (o: Partial<ConstructorParameters<typeof VaultwardenClient>[0]> = {}) => new VaultwardenClient({ url: vw.url, ca: vw.ca, retry: { baseDelayMs: 10, maxDelayMs: 50 }, ...o });
const errOf = (p: Promise<unknown>): Promise<SecretsError> => rejectionOf(p, SecretsError);

describe("Vaultwarden double: registration rules", () => {
  it("refuses PBKDF2 below 100000 iterations (Vaultwarden's server-side minimum) and a duplicate email", async () => {
    const weak = await postJson(`${vw.url}/identity/accounts/register`, vw.ca, await registrationBody("weak@example.test", "pw-weak-1", { kdfType: 0, iterations: 5000 }));
    expect(weak.status).toBe(400);
    expect(JSON.stringify(weak.json)).toContain("at least 100000");
    const dup = await postJson(`${vw.url}/identity/accounts/register`, vw.ca, await registrationBody(realm.owner.email, "x-y-z-w", { kdfType: 0, iterations: 100_000 }));
    expect(dup.status).toBe(400);
  });

  it("accepts an Argon2id account and the client logs in to it", async () => {
    const a = await registerAccount(vw, "argon@example.test", "argon password", { kdfType: 1, iterations: 3, memory: 16, parallelism: 2 });
    const c = newClient();
    await c.login({ email: a.email, password: a.password });
    expect(c.loggedIn).toBe(true);
    c.close();
  });
});

describe("secrets-client against the double", () => {
  it("prelogin answers the account's KDF (and defaults for unknown accounts)", async () => {
    const c = newClient();
    expect(await c.prelogin(realm.owner.email)).toEqual({ kdfType: 0, iterations: 100_000, memory: null, parallelism: null });
    expect((await c.prelogin("nobody@example.test")).iterations).toBe(600_000);
    c.close();
  });

  it("round-trips a login item in the organization collection: create, read, update, trash, restore, delete", async () => {
    const c = realm.client;
    const created = await c.createItem({ type: "login", name: "db", organizationId: realm.organizationId, collectionIds: [realm.collectionId], login: { username: "svc", password: "s3cr3t-1", uris: ["https://db.example.test"] }, fields: [{ name: "role", value: "primary", type: 0 }], notes: "n" });
    expect(created).toMatchObject({ type: "login", name: "db", organizationId: realm.organizationId, collectionIds: [realm.collectionId], hasItemKey: true, login: { username: "svc", password: "s3cr3t-1", uris: ["https://db.example.test"] }, fields: [{ name: "role", value: "primary", type: 0 }] });
    // What the server holds is ciphertext only.
    const stored = vw.ciphers.get(created.id)!;
    expect(JSON.stringify(stored)).not.toContain("s3cr3t-1");
    expect(stored.key).toMatch(/^2\./);
    expect((await c.getItem(created.id)).login?.password).toBe("s3cr3t-1");

    const updated = await c.updateItem(created.id, { type: "login", name: "db", login: { username: "svc", password: "s3cr3t-2" }, passwordHistory: [{ password: "s3cr3t-1", lastUsedDate: new Date().toISOString() }] });
    expect(updated.login?.password).toBe("s3cr3t-2");
    expect(updated.passwordHistory.map((p) => p.password)).toEqual(["s3cr3t-1"]);
    expect(updated.hasItemKey).toBe(true);
    expect(vw.ciphers.get(created.id)!.key).toBe(stored.key);

    await c.deleteItem(created.id);
    expect((await c.getItem(created.id)).deletedDate).not.toBeNull();
    expect((await c.listItems({ organizationId: realm.organizationId })).some((i) => i.id === created.id)).toBe(false);
    expect((await c.restoreItem(created.id)).deletedDate).toBeNull();
    await c.deleteItem(created.id, { permanent: true });
    expect((await errOf(c.getItem(created.id))).kind).toBe("NOT_FOUND");
  });

  it("secure notes, items without per-item key (org key directly), personal items and folders", async () => {
    const plain = newClient({ itemKeys: false });
    await plain.login({ email: realm.owner.email, password: realm.owner.password });
    const note = await plain.createItem({ type: "secureNote", name: "note", notes: "multi\nline ✓", organizationId: realm.organizationId, collectionIds: [realm.collectionId] });
    expect(note).toMatchObject({ type: "secureNote", notes: "multi\nline ✓", hasItemKey: false });
    expect(vw.ciphers.get(note.id)!.key).toBeNull();
    // The item-keyed client reads it too (same org key).
    expect((await realm.client.getItem(note.id)).notes).toBe("multi\nline ✓");

    const folder = await plain.createFolder("ops");
    expect((await plain.folders()).map((f) => f.name)).toContain("ops");
    const mine = await plain.createItem({ type: "login", name: "personal", folderId: folder.id, login: { password: "p" } });
    expect(mine).toMatchObject({ organizationId: null, folderId: folder.id });
    await plain.renameFolder(folder.id, "ops2");
    expect((await plain.folders()).find((f) => f.id === folder.id)?.name).toBe("ops2");
    await plain.deleteFolder(folder.id);
    expect((await plain.getItem(mine.id)).folderId).toBeNull();
    plain.close();
  });

  it("collections: create one, and a second member (RSA-wrapped org key) reads only what it is given", async () => {
    const col = await realm.client.createCollection(realm.organizationId, "principal:alice");
    expect(realm.client.collections(realm.organizationId).map((c) => c.name)).toContain("principal:alice");
    const bob = await registerAccount(vw, "bob@example.test", "bob's long password");
    await realm.client.addMember(realm.organizationId, bob.email, { collectionIds: [col.id] });
    const item = await realm.client.createItem({ type: "login", name: "alice key", organizationId: realm.organizationId, collectionIds: [col.id], login: { password: "alice-secret" } });
    const other = await realm.client.createItem({ type: "login", name: "elsewhere", organizationId: realm.organizationId, collectionIds: [realm.collectionId], login: { password: "x" } });
    const b = newClient();
    await b.login({ email: bob.email, password: bob.password });
    expect((await b.getItem(item.id)).login?.password).toBe("alice-secret");
    expect((await errOf(b.getItem(other.id))).kind).toBe("NOT_FOUND");
    b.close();
  });

  it("logs in with the personal API key (client_credentials) and unlocks with the master password", async () => {
    const c = newClient();
    await c.login({ email: realm.owner.email, password: realm.owner.password, apiKey: realm.apiKey });
    expect(c.organization("realm").id).toBe(realm.organizationId);
    const { inspect } = await import("node:util");
    for (const shown of [inspect(c, { showHidden: true, depth: 5 }), JSON.stringify({ c })]) {
      expect(shown).not.toContain(realm.apiKey.clientSecret);
      expect(shown).not.toContain(c.accessToken!);
    }
    const it1 = await c.createItem({ type: "secureNote", name: "via api key", notes: "ok", organizationId: realm.organizationId, collectionIds: [realm.collectionId] });
    expect((await realm.client.getItem(it1.id)).notes).toBe("ok");
    c.close();
  });

  it("stale update is a CONFLICT", async () => {
    const c = realm.client;
    const i = await c.createItem({ type: "secureNote", name: "race", notes: "1", organizationId: realm.organizationId, collectionIds: [realm.collectionId] });
    await new Promise((r) => setTimeout(r, 1100));
    await c.updateItem(i.id, { type: "secureNote", name: "race", notes: "2" });
    await new Promise((r) => setTimeout(r, 1100));
    expect((await errOf(c.updateItem(i.id, { type: "secureNote", name: "race", notes: "3" }, i.revisionDate))).kind).toBe("CONFLICT");
  });
});

describe("secrets-client errors", () => {
  it("wrong master password (password grant): AUTH, and the password is not in the message", async () => {
    const c = newClient();
    const e = await errOf(c.login({ email: realm.owner.email, password: "wrong password 123" }));
    expect(e.kind).toBe("AUTH");
    expect(e.code).toBe("UNAUTHORIZED");
    expect(e.message).not.toContain("wrong password 123");
    c.close();
  });

  it("right API key but wrong master password: AUTH (the user key does not unlock), nothing decrypted", async () => {
    const c = newClient();
    const e = await errOf(c.login({ email: realm.owner.email, password: "not it", apiKey: realm.apiKey }));
    expect(e.kind).toBe("AUTH");
    expect(e.message).not.toContain(realm.apiKey.clientSecret);
    expect(c.loggedIn).toBe(false);
    c.close();
  });

  it("wrong API key secret: AUTH", async () => {
    const c = newClient();
    expect((await errOf(c.login({ email: realm.owner.email, password: realm.owner.password, apiKey: { clientId: realm.apiKey.clientId, clientSecret: "x".repeat(30) } }))).kind).toBe("AUTH");
    c.close();
  });

  it("wrong server URL: UNREACHABLE after bounded retries", async () => {
    const c = new VaultwardenClient({ url: "https://127.0.0.1:1", ca: vw.ca, retry: { retries: 2, baseDelayMs: 10 } });
    const t0 = Date.now();
    const e = await errOf(c.login({ email: realm.owner.email, password: realm.owner.password }));
    expect(e.kind).toBe("UNREACHABLE");
    expect(e.code).toBe("UNAVAILABLE");
    expect(e.message).toContain("3 attempts");
    expect(Date.now() - t0).toBeLessThan(5000);
    c.close();
  });

  it("an untrusted certificate is UNREACHABLE (TLS refused), and http:// is refused outright", async () => {
    const c = new VaultwardenClient({ url: vw.url, retry: { retries: 0 } });
    expect((await errOf(c.prelogin("a@b.c"))).kind).toBe("UNREACHABLE");
    c.close();
    expect(() => new VaultwardenClient({ url: vw.url.replace("https", "http") })).toThrow(/https/);
  });

  it("expired access token: the client refreshes and carries on", async () => {
    const c = newClient();
    await c.login({ email: realm.owner.email, password: realm.owner.password });
    const before = c.accessToken;
    vw.expireAccessTokens();
    const n = vw.log.length;
    const items = await c.listItems();
    expect(items.length).toBeGreaterThan(0);
    expect(c.accessToken).not.toBe(before);
    expect(vw.log.slice(n).map((l) => `${l.method} ${l.path} ${l.status}`)).toEqual(["GET /api/sync 401", "POST /identity/connect/token 200", "GET /api/sync 200"]);
    c.close();
  });

  it("expired token and refresh refused: typed AUTH for a password session; an API-key session logs in again", async () => {
    const p = newClient();
    await p.login({ email: realm.owner.email, password: realm.owner.password });
    const k = newClient();
    await k.login({ email: realm.owner.email, password: realm.owner.password, apiKey: realm.apiKey });
    vw.expireAccessTokens();
    vw.revokeRefreshTokens();
    expect((await errOf(p.listItems())).kind).toBe("AUTH");
    expect((await k.listItems()).length).toBeGreaterThan(0);
    p.close();
    k.close();
  });

  it("500 from the server: retried with backoff, then SERVER; a 503 that clears is survived; Retry-After honoured", async () => {
    const c = newClient({ retry: { retries: 3, baseDelayMs: 10, maxDelayMs: 20 } });
    await c.login({ email: realm.owner.email, password: realm.owner.password });
    vw.faults = [{ status: 500, times: Infinity, path: /^\/api\/ciphers/ }];
    const n = vw.log.length;
    const e = await errOf(c.createItem({ type: "secureNote", name: "x", notes: "y", organizationId: realm.organizationId, collectionIds: [realm.collectionId] }));
    vw.faults = [];
    expect(e.kind).toBe("SERVER");
    expect(e.status).toBe(500);
    expect(vw.log.slice(n).filter((l) => l.path === "/api/ciphers/create").length).toBe(4);

    vw.faults = [{ status: 503, times: 2, path: /^\/api\/sync/ }, { status: 429, times: 1, path: /^\/api\/sync/, retryAfter: "1" }];
    const t0 = Date.now();
    await c.listItems();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    expect(vw.faults.every((f) => f.times === 0)).toBe(true);
    vw.faults = [];
    c.close();
  });

  it("a tampered item on the server is an INTEGRITY error, never a wrong plaintext", async () => {
    // (the earlier tests expired realm.client's session: log in afresh)
    await realm.client.login({ email: realm.owner.email, password: realm.owner.password });
    const i = await realm.client.createItem({ type: "login", name: "t", organizationId: realm.organizationId, collectionIds: [realm.collectionId], login: { password: "tamper-me" } });
    const stored = vw.ciphers.get(i.id)!;
    const pw = String(stored.login!.password);
    const [iv, ct, mac] = pw.slice(2).split("|") as [string, string, string];
    const raw = Buffer.from(ct, "base64");
    raw[0] = raw[0]! ^ 0x80;
    stored.login!.password = `2.${iv}|${raw.toString("base64")}|${mac}`;
    expect((await errOf(realm.client.getItem(i.id))).kind).toBe("INTEGRITY");
  });
});
