import https from "node:https";
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
/** Runs `run` once, before the double handles the next matching request. */
const hooksOnce = (path: RegExp, method: string, run: () => Promise<void>) => vw.hooks.push({ path, method, times: 1, run });
/** POST a form body as is (to see the server's raw answer). */
function postForm(url: string, form: string): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: "POST", ca: vw.ca, headers: { "content-type": "application/x-www-form-urlencoded", "content-length": Buffer.byteLength(form) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown }));
    });
    req.on("error", reject);
    req.end(form);
  });
}

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

  it("the double's stale-write rule is Vaultwarden's: only a copy at least 2 whole seconds older is refused", async () => {
    const c = realm.client;
    const i = await c.createItem({ type: "secureNote", name: "race", notes: "1", organizationId: realm.organizationId, collectionIds: [realm.collectionId] });
    // Raw PUTs, as any client may send them (the encrypted body read back from the server).
    const put = async (lastKnownRevisionDate: string) => c.api("PUT", `api/ciphers/${i.id}`, { ...(await c.getRawItem(i.id)), lastKnownRevisionDate });
    vw.clock.advance(1500);
    await put(i.revisionDate); // server at R0, copy R0: accepted -> R1 = R0 + 1.5 s
    const r1 = vw.ciphers.get(i.id)!.revisionDate;
    await put(i.revisionDate); // server at R1, copy 1.5 s old: 1 whole second, accepted (a real Vaultwarden does too)
    const r2 = vw.ciphers.get(i.id)!.revisionDate;
    vw.clock.advance(600);
    await put(r2); // -> R3 = R2 + 0.6 s
    expect(Date.parse(vw.ciphers.get(i.id)!.revisionDate) - Date.parse(i.revisionDate)).toBeGreaterThanOrEqual(2000);
    const e = await errOf(put(i.revisionDate)); // server at R3, copy >= 2 s old: refused
    expect(e).toMatchObject({ kind: "CONFLICT", code: "CONFLICT", status: 400 });
    expect(e.message).toContain("out of date");
    await put(r1.replace(/Z$/, "garbage")); // a date that does not parse is only logged by Vaultwarden: accepted
  });

  it("updateItem with an expected revision is exact: a write 1 s after ours (which Vaultwarden would accept) is a CONFLICT", async () => {
    const c = realm.client;
    const i = await c.createItem({ type: "secureNote", name: "race2", notes: "1", organizationId: realm.organizationId, collectionIds: [realm.collectionId] });
    vw.clock.advance(1000);
    await c.updateItem(i.id, { type: "secureNote", name: "race2", notes: "2" }, i.revisionDate);
    const n = vw.log.length;
    // Stale by 1 s only: refused here, before any PUT.
    expect((await errOf(c.updateItem(i.id, { type: "secureNote", name: "race2", notes: "3" }, i.revisionDate))).kind).toBe("CONFLICT");
    expect(vw.log.slice(n).some((l) => l.method === "PUT")).toBe(false);
    // And on the wire the copy's date makes the server itself refuse any later revision (lastKnown = revision - 1.999999 s).
    const cur = await c.getItem(i.id);
    hooksOnce(/^\/api\/ciphers\/[^/]+$/, "PUT", async () => {
      vw.clock.advance(1);
      await c.updateItem(i.id, { type: "secureNote", name: "race2", notes: "other writer" });
    });
    expect((await errOf(c.updateItem(i.id, { type: "secureNote", name: "race2", notes: "4" }, cur.revisionDate))).kind).toBe("CONFLICT");
    expect((await c.getItem(i.id)).notes).toBe("other writer");
  });
});

describe("organization roles, as Vaultwarden checks them (src/auth.rs guards, organizations.rs, ciphers.rs)", () => {
  it("a plain user's 401 for a manager-only call is final (FORBIDDEN): no renewal, no login; managers without access-all are refused where Vaultwarden refuses them", async () => {
    const col = await realm.client.createCollection(realm.organizationId, "roles");
    const user = await registerAccount(vw, "role-user@example.test", "role user password");
    const manager = await registerAccount(vw, "role-manager@example.test", "role manager password");
    const allManager = await registerAccount(vw, "role-all@example.test", "role all password");
    const reader = await registerAccount(vw, "role-reader@example.test", "role reader password");
    await realm.client.addMember(realm.organizationId, user.email, { role: 2, collectionIds: [col.id] });
    await realm.client.addMember(realm.organizationId, manager.email, { role: 3, collectionIds: [col.id] });
    await realm.client.addMember(realm.organizationId, allManager.email, { role: 4, permissions: { editAnyCollection: true, deleteAnyCollection: true, createNewCollections: true } });
    await realm.client.addMember(realm.organizationId, reader.email, { role: 2, collectionIds: [col.id], readOnly: true });
    const item = await realm.client.createItem({ type: "login", name: "in roles", organizationId: realm.organizationId, collectionIds: [col.id], login: { password: "pw" } });
    const other = await realm.client.createItem({ type: "login", name: "not in roles", organizationId: realm.organizationId, collectionIds: [realm.collectionId], login: { password: "pw2" } });

    const u = newClient();
    await u.login({ email: user.email, password: user.password });
    const n = vw.log.length;
    const e = await errOf(u.createCollection(realm.organizationId, "mine"));
    expect(e).toMatchObject({ kind: "FORBIDDEN", status: 401 });
    expect(vw.log.slice(n).map((l) => `${l.method} ${l.path} ${l.status}`)).toEqual([`POST /api/organizations/${realm.organizationId}/collections 401`, "GET /api/accounts/revision-date 200"]);
    // The user reads and writes its collection's items, and nothing else.
    expect((await u.getItem(item.id)).login?.password).toBe("pw");
    expect(await errOf(u.getItem(other.id))).toMatchObject({ kind: "NOT_FOUND", status: 400 });
    u.close();

    const m = newClient();
    await m.login({ email: manager.email, password: manager.password });
    const me = await errOf(m.createCollection(realm.organizationId, "manager's"));
    expect(me).toMatchObject({ kind: "FORBIDDEN", status: 400 });
    expect(me.message).toContain("You don't have permission to create collections");
    expect(await errOf(m.getItem(other.id))).toMatchObject({ kind: "NOT_FOUND" });
    m.close();

    const a = newClient();
    await a.login({ email: allManager.email, password: allManager.password });
    expect((await a.createCollection(realm.organizationId, "all manager's")).name).toBe("all manager's");
    expect((await a.getItem(other.id)).login?.password).toBe("pw2");
    a.close();

    const r = newClient();
    await r.login({ email: reader.email, password: reader.password });
    expect((await r.getItem(item.id)).login?.password).toBe("pw");
    const we = await errOf(r.updateItem(item.id, { type: "login", name: "in roles", login: { password: "changed" } }));
    expect(we).toMatchObject({ kind: "FORBIDDEN", status: 400 });
    expect(we.message).toContain("not write accessible");
    expect(await errOf(r.createItem({ type: "login", name: "x", organizationId: realm.organizationId, collectionIds: [col.id], login: { password: "y" } }))).toMatchObject({ kind: "FORBIDDEN" });
    r.close();
  });
});

describe("login rate limit (ratelimit.rs: a burst of 10, then one per 60 s per IP)", () => {
  it("the 11th login in a minute is RATE_LIMITED at once (no retry, the password grant and the API key share the budget); a minute later one more passes", async () => {
    vw.loginRateLimit.enabled = true;
    vw.loginRateLimit.reset();
    try {
      const token = () => vw.log.filter((l) => l.path === "/identity/connect/token").length;
      const logins = [];
      for (let i = 0; i < 10; i++) {
        const c = newClient();
        await c.login(i % 2 ? { email: realm.owner.email, password: realm.owner.password, apiKey: realm.apiKey } : { email: realm.owner.email, password: realm.owner.password });
        logins.push(c);
      }
      const c = newClient();
      const before = token();
      const e = await errOf(c.login({ email: realm.owner.email, password: realm.owner.password }));
      expect(e).toMatchObject({ kind: "RATE_LIMITED", code: "RATE_LIMITED", status: 429, httpStatus: 429 });
      expect(e.message).toMatch(/rate limit/);
      expect(e.message).not.toContain(realm.owner.password);
      expect(token() - before).toBe(1);
      expect(await errOf(c.login({ email: realm.owner.email, password: realm.owner.password, apiKey: realm.apiKey }))).toMatchObject({ kind: "RATE_LIMITED" });
      // A session already held keeps working (refresh grants are not limited either).
      vw.expireAccessTokens();
      expect((await logins[0]!.listItems()).length).toBeGreaterThan(0);
      vw.clock.advance(60_000);
      await c.login({ email: realm.owner.email, password: realm.owner.password });
      expect(c.loggedIn).toBe(true);
      expect(await errOf(newClient().login({ email: realm.owner.email, password: realm.owner.password }))).toMatchObject({ kind: "RATE_LIMITED" });
      for (const x of [...logins, c]) x.close();
    } finally {
      vw.loginRateLimit.enabled = false;
    }
  });
});

describe("kept sessions (what `realm secrets` reuses between commands)", () => {
  it("resume() unlocks with a kept session without a login; an expired one is refreshed (not a login); a wrong password or another account is AUTH", async () => {
    const c1 = newClient();
    await c1.login({ email: realm.owner.email, password: realm.owner.password });
    const kept = c1.sessionState()!;
    expect(JSON.stringify(kept)).not.toContain(realm.owner.password);
    c1.close();
    const grants = () => vw.bodies.filter((b) => /grant_type=(password|client_credentials)/.test(b)).length;
    const before = grants();
    const c2 = newClient();
    await c2.resume({ email: realm.owner.email, password: realm.owner.password }, kept);
    expect(c2.organization(realm.organizationId).id).toBe(realm.organizationId);
    expect((await c2.getItem((await c2.createItem({ type: "secureNote", name: "resumed", notes: "ok", organizationId: realm.organizationId, collectionIds: [realm.collectionId] })).id)).notes).toBe("ok");
    c2.close();
    vw.expireAccessTokens();
    const c3 = newClient();
    await c3.resume({ email: realm.owner.email, password: realm.owner.password }, { ...kept, expiresAt: 0 });
    expect(c3.loggedIn).toBe(true);
    c3.close();
    expect(grants()).toBe(before);
    const fresh = (await (async () => {
      const c = newClient();
      await c.login({ email: realm.owner.email, password: realm.owner.password });
      const st = c.sessionState()!;
      c.close();
      return st;
    })());
    const c4 = newClient();
    expect(await errOf(c4.resume({ email: realm.owner.email, password: "not the password" }, fresh))).toMatchObject({ kind: "AUTH" });
    expect(c4.loggedIn).toBe(false);
    expect(await errOf(c4.resume({ email: "bob@example.test", password: "x" }, fresh))).toMatchObject({ kind: "AUTH" });
    c4.close();
  });
});

describe("secrets-client errors", () => {
  it("wrong master password (password grant): Vaultwarden's plain 400 with error \"\" is AUTH, and the password is not in the message", async () => {
    const c = newClient();
    const body = vw.bodies.length;
    const e = await errOf(c.login({ email: realm.owner.email, password: "wrong password 123" }));
    expect(e).toMatchObject({ kind: "AUTH", code: "UNAUTHORIZED", status: 400 });
    expect(e.message).toContain("Username or password is incorrect");
    expect(e.message).not.toContain("wrong password 123");
    // What the server answered is identity.rs password_login's err!(): not invalid_grant.
    const raw = await postForm(`${vw.url}/identity/connect/token`, vw.bodies[vw.bodies.length - 1]!);
    expect(vw.bodies.length).toBeGreaterThan(body);
    expect(raw.status).toBe(400);
    expect(raw.json).toMatchObject({ message: "Username or password is incorrect. Try again", error: "", error_description: "", object: "error", errorModel: { message: "Username or password is incorrect. Try again" } });
    // An unknown account gets the same answer.
    expect(await errOf(c.login({ email: "nobody-here@example.test", password: "x" }))).toMatchObject({ kind: "AUTH", status: 400 });
    c.close();
  });

  it("an account with two-factor login: the password grant's \"Two factor required.\" (invalid_grant) is AUTH saying to use the API key, which works", async () => {
    const a = await registerAccount(vw, "two-factor@example.test", "two factor password");
    vw.userByEmail(a.email)!.twoFactor = true;
    const c = newClient();
    const e = await errOf(c.login({ email: a.email, password: a.password }));
    expect(e).toMatchObject({ kind: "AUTH", status: 400 });
    expect(e.message).toMatch(/two-factor.*API key/);
    const key = { clientId: `user.${vw.userByEmail(a.email)!.id}`, clientSecret: vw.userByEmail(a.email)!.apiKey };
    await c.login({ email: a.email, password: a.password, apiKey: key });
    expect(c.loggedIn).toBe(true);
    c.close();
  });

  it("a missing or invisible item or folder is Vaultwarden's 400 and NOT_FOUND; a non-UUID id is a 404 and NOT_FOUND", async () => {
    const c = realm.client;
    const missing = await errOf(c.getItem("00000000-0000-4000-8000-000000000001"));
    expect(missing).toMatchObject({ kind: "NOT_FOUND", code: "NOT_FOUND", status: 400 });
    expect(missing.message).toContain("Cipher doesn't exist");
    expect(await errOf(c.deleteItem("00000000-0000-4000-8000-000000000001"))).toMatchObject({ kind: "NOT_FOUND", status: 400 });
    expect(await errOf(c.getItem("not-a-uuid"))).toMatchObject({ kind: "NOT_FOUND", status: 404 });
    expect(await errOf(c.renameFolder("00000000-0000-4000-8000-000000000002", "x"))).toMatchObject({ kind: "NOT_FOUND", status: 400 });
    expect((await errOf(c.deleteFolder("00000000-0000-4000-8000-000000000002"))).message).toContain("Invalid folder");
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
    // The 401 is checked first (is the token dead, or is it a missing right?), then the session is renewed once.
    expect(vw.log.slice(n).map((l) => `${l.method} ${l.path} ${l.status}`)).toEqual(["GET /api/sync 401", "GET /api/accounts/revision-date 401", "POST /identity/connect/token 200", "GET /api/sync 200"]);
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
