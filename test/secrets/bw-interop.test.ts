import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startVaultwardenDouble, type VaultwardenDouble } from "../support/vaultwarden/server.js";
import { setupOrganization, type RealmVault } from "../support/vaultwarden/setup.js";
import { bwCli, type BwCli } from "../support/vaultwarden/bw.js";
import { VaultwardenClient } from "../../secrets-client/client.js";
import { VaultwardenEscrow } from "../../secrets-client/escrow.js";

/**
 * Interop with the official client (@bitwarden/cli, the version pinned in devDependencies, or REALM_TEST_BW_BIN)
 * against the double as Vaultwarden 1.37.2 behaves: what secrets-client writes, bw decrypts, and what bw writes,
 * secrets-client decrypts - both for organization items in a collection. bw 2026.9.0 cannot log in to 1.37.2 (its
 * user-key-id backfill POSTs /api/accounts/key-management/user-key-id, which 1.37.2 does not have: 404,
 * KeyIdBackfillError, exit 1); 2026.8.0 is the newest that can.
 */
let vw: VaultwardenDouble;
let realm: RealmVault;
let bw: BwCli;

beforeAll(async () => {
  vw = await startVaultwardenDouble();
  realm = await setupOrganization(vw);
  bw = bwCli(vw.caFile);
  await bw.run(["config", "server", vw.url]);
  const n = vw.log.length;
  bw.session = (await bw.run(["login", realm.owner.email, realm.owner.password, "--raw"])).trim();
  expect(bw.session.length).toBeGreaterThan(20);
  const paths = vw.log.slice(n).map((l) => l.path);
  expect(paths).toContain("/identity/accounts/prelogin/password");
}, 120_000);
afterAll(async () => {
  bw?.cleanup();
  realm?.client.close();
  await vw?.stop();
});

describe("official bw CLI <-> secrets-client", () => {
  it("bw decrypts an organization login item written by secrets-client (per-item key) and its password history", async () => {
    const created = await realm.client.createItem({
      type: "login",
      name: "cert:01AB:key",
      notes: "fingerprint sha256:abcd",
      organizationId: realm.organizationId,
      collectionIds: [realm.collectionId],
      login: { username: "svc-web", password: "-----BEGIN PRIVATE KEY-----\nMIIB...\n-----END PRIVATE KEY-----\n", uris: ["https://web.example.test"] },
      fields: [{ name: "serial", value: "01AB", type: 0 }],
      passwordHistory: [{ password: "older value", lastUsedDate: "2026-01-01T00:00:00.000Z" }],
    });
    expect(created.hasItemKey).toBe(true);
    await bw.run(["sync"]);
    const item = JSON.parse(await bw.run(["get", "item", created.id])) as Record<string, any>;
    expect(item).toMatchObject({
      id: created.id,
      name: "cert:01AB:key",
      notes: "fingerprint sha256:abcd",
      organizationId: realm.organizationId,
      collectionIds: [realm.collectionId],
      login: { username: "svc-web", password: "-----BEGIN PRIVATE KEY-----\nMIIB...\n-----END PRIVATE KEY-----\n", uris: [{ uri: "https://web.example.test" }] },
      fields: [{ name: "serial", value: "01AB", type: 0 }],
      passwordHistory: [{ password: "older value" }],
    });
    // And a secure note without a per-item key.
    const plain = new VaultwardenClient({ url: vw.url, ca: vw.ca, itemKeys: false });
    await plain.login({ email: realm.owner.email, password: realm.owner.password });
    const note = await plain.createItem({ type: "secureNote", name: "nats:ops/alice:creds", notes: "-----BEGIN NATS USER JWT-----\neyJ0...", organizationId: realm.organizationId, collectionIds: [realm.collectionId] });
    plain.close();
    await bw.run(["sync"]);
    expect(JSON.parse(await bw.run(["get", "item", note.id]))).toMatchObject({ type: 2, name: "nats:ops/alice:creds", notes: "-----BEGIN NATS USER JWT-----\neyJ0...", organizationId: realm.organizationId });
    const cols = JSON.parse(await bw.run(["list", "collections"])) as { id: string; name: string }[];
    expect(cols).toContainEqual(expect.objectContaining({ id: realm.collectionId, name: "realm-default" }));
  }, 120_000);

  it("secrets-client decrypts an organization item created by `bw create item`, and bw sees secrets-client's update", async () => {
    const template = {
      type: 1,
      name: "from bw",
      notes: "written by the official client",
      organizationId: realm.organizationId,
      collectionIds: [realm.collectionId],
      favorite: false,
      reprompt: 0,
      fields: [{ name: "hidden one", value: "h1dden", type: 1 }],
      login: { username: "bw-user", password: "bw-password-Ω", uris: [{ uri: "https://bw.example.test", match: null }], totp: null },
    };
    const out = JSON.parse(await bw.run(["create", "item", Buffer.from(JSON.stringify(template)).toString("base64")])) as { id: string };
    const raw = vw.ciphers.get(out.id)!;
    expect(raw.organizationId).toBe(realm.organizationId);
    expect(JSON.stringify(raw)).not.toContain("bw-password");
    const item = await realm.client.getItem(out.id);
    expect(item).toMatchObject({ name: "from bw", notes: "written by the official client", organizationId: realm.organizationId, collectionIds: [realm.collectionId], login: { username: "bw-user", password: "bw-password-Ω", uris: ["https://bw.example.test"] }, fields: [{ name: "hidden one", value: "h1dden", type: 1 }] });

    // secrets-client rotates it; bw sees the new value and the old one in the history.
    await realm.client.updateItem(out.id, { ...item, type: "login", login: { ...item.login!, password: "rotated" }, passwordHistory: [{ password: "bw-password-Ω", lastUsedDate: new Date().toISOString() }] });
    await bw.run(["sync"]);
    const seen = JSON.parse(await bw.run(["get", "item", out.id])) as { login: { password: string }; passwordHistory: { password: string }[] };
    expect(seen.login.password).toBe("rotated");
    expect(seen.passwordHistory.map((p) => p.password)).toEqual(["bw-password-Ω"]);
  }, 120_000);

  it("bw reads an escrowed, rotated secret: current value as the password, earlier ones in the history", async () => {
    const escrow = new VaultwardenEscrow({ url: vw.url, ca: vw.ca, organization: realm.organizationId, email: realm.owner.email, password: realm.owner.password, apiKey: realm.apiKey });
    try {
      await escrow.store({ principal: "svc-api", name: "api-key:svc-api", secret: "first-key", notes: "issued by the realm" });
      const ref = await escrow.store({ principal: "svc-api", name: "api-key:svc-api", secret: "second-key", notes: "issued by the realm" });
      await bw.run(["sync"]);
      const item = JSON.parse(await bw.run(["get", "item", ref.itemId])) as { login: { password: string; username: string }; passwordHistory: { password: string }[]; fields: { name: string; value: string }[]; notes: string };
      expect(item.login).toMatchObject({ username: "svc-api", password: "second-key" });
      expect(item.passwordHistory.map((p) => p.password)).toEqual(["first-key"]);
      expect(item.fields).toContainEqual(expect.objectContaining({ name: "realm:version", value: "2" }));
      expect(item.notes).toBe("issued by the realm");
      const cols = JSON.parse(await bw.run(["list", "collections"])) as { name: string }[];
      expect(cols.map((c) => c.name)).toContain("principal:svc-api");
      // bw sees the escrow's own read path agree.
      expect(await bw.run(["get", "password", ref.itemId])).toBe("second-key");
    } finally {
      escrow.close();
    }
  }, 120_000);

  it("bw logs in with the personal API key, unlocks locally, and creates items as it does against Vaultwarden (no per-item key: /api/config has no enableCipherKeyEncryption) that secrets-client decrypts", async () => {
    const other = bwCli(vw.caFile);
    try {
      await other.run(["config", "server", vw.url]);
      await other.run(["login", "--apikey"], { BW_CLIENTID: realm.apiKey.clientId, BW_CLIENTSECRET: realm.apiKey.clientSecret });
      other.session = (await other.run(["unlock", "--passwordenv", "BW_PASSWORD", "--raw"], { BW_PASSWORD: realm.owner.password })).trim();
      const orgs = JSON.parse(await other.run(["list", "organizations"])) as { id: string }[];
      expect(orgs.map((o) => o.id)).toEqual([realm.organizationId]);
      const template = { type: 2, name: "bw note", notes: "org key, as on Vaultwarden", secureNote: { type: 0 }, organizationId: realm.organizationId, collectionIds: [realm.collectionId] };
      const out = JSON.parse(await other.run(["create", "item", Buffer.from(JSON.stringify(template)).toString("base64")])) as { id: string };
      // Vaultwarden's config (src/api/core/mod.rs `config`) cannot turn per-cipher keys on for bw.
      expect(vw.featureStates).toEqual({ "pm-19148-innovation-archive": true });
      expect(vw.ciphers.get(out.id)!.key).toBeNull();
      expect(await realm.client.getItem(out.id)).toMatchObject({ type: "secureNote", name: "bw note", notes: "org key, as on Vaultwarden", hasItemKey: false });
    } finally {
      other.cleanup();
    }
  }, 120_000);
});
