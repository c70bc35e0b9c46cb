import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VaultwardenClient } from "../../secrets-client/client.js";
import { VaultwardenEscrow } from "../../secrets-client/escrow.js";
import { SecretsError } from "../../secrets-client/errors.js";
import { rejectionOf } from "../support/errors.js";

/**
 * The same client and escrow behaviours against a real Vaultwarden, when REALM_TEST_VAULTWARDEN_URL is set (skipped
 * otherwise; the other files of test/secrets run against the double, whose internals they inspect):
 *   REALM_TEST_VAULTWARDEN_URL       https://… (no /api)
 *   REALM_TEST_VAULTWARDEN_EMAIL     an account that is a confirmed Owner or Admin of
 *   REALM_TEST_VAULTWARDEN_ORG       this organization (id or exact name)
 *   REALM_TEST_VAULTWARDEN_PASSWORD  its master password
 *   REALM_TEST_VAULTWARDEN_CLIENT_ID, REALM_TEST_VAULTWARDEN_CLIENT_SECRET  optional personal API key
 *   REALM_TEST_VAULTWARDEN_CA        optional PEM CA file
 * It logs in at most 4 times (Vaultwarden allows 10 a minute per address), writes items in collections named
 * `principal:realm-test-<random>` and deletes its items afterwards (the collections stay: remove them in the web vault).
 */
const env = process.env;
const url = env.REALM_TEST_VAULTWARDEN_URL;

describe.skipIf(!url)("secrets-client against a real Vaultwarden (REALM_TEST_VAULTWARDEN_URL)", () => {
  const need = (k: string) => {
    const v = env[k];
    if (!v) throw new Error(`${k} is required with REALM_TEST_VAULTWARDEN_URL`);
    return v;
  };
  let ca: string | undefined;
  let escrow: VaultwardenEscrow;
  let client: VaultwardenClient;
  const run = randomUUID().slice(0, 8);
  const written: string[] = [];
  const errOf = (p: Promise<unknown>): Promise<SecretsError> => rejectionOf(p, SecretsError);

  beforeAll(async () => {
    ca = env.REALM_TEST_VAULTWARDEN_CA ? readFileSync(env.REALM_TEST_VAULTWARDEN_CA, "utf8") : undefined;
    const apiKey = env.REALM_TEST_VAULTWARDEN_CLIENT_ID && env.REALM_TEST_VAULTWARDEN_CLIENT_SECRET ? { clientId: env.REALM_TEST_VAULTWARDEN_CLIENT_ID, clientSecret: env.REALM_TEST_VAULTWARDEN_CLIENT_SECRET } : undefined;
    escrow = new VaultwardenEscrow({ url: url!, organization: need("REALM_TEST_VAULTWARDEN_ORG"), email: need("REALM_TEST_VAULTWARDEN_EMAIL"), password: need("REALM_TEST_VAULTWARDEN_PASSWORD"), ...(apiKey ? { apiKey } : {}), ...(ca ? { ca } : {}) });
    await escrow.check();
    client = new VaultwardenClient({ url: url!, ...(ca ? { ca } : {}) });
    await client.login({ email: need("REALM_TEST_VAULTWARDEN_EMAIL"), password: need("REALM_TEST_VAULTWARDEN_PASSWORD") });
  });
  afterAll(async () => {
    for (const id of written) await client?.deleteItem(id, { permanent: true }).catch(() => undefined);
    escrow?.close();
    client?.close();
  });

  it("a wrong master password is AUTH (Vaultwarden's 400 with error \"\")", async () => {
    const c = new VaultwardenClient({ url: url!, ...(ca ? { ca } : {}) });
    const e = await errOf(c.login({ email: need("REALM_TEST_VAULTWARDEN_EMAIL"), password: `not the password ${run}` }));
    c.close();
    expect(e).toMatchObject({ kind: "AUTH", code: "UNAUTHORIZED", status: 400 });
  });

  it("a missing item is NOT_FOUND (Vaultwarden's 400), a non-UUID id too (404)", async () => {
    expect(await errOf(client.getItem(randomUUID()))).toMatchObject({ kind: "NOT_FOUND", status: 400 });
    expect(await errOf(client.getItem("not-a-uuid"))).toMatchObject({ kind: "NOT_FOUND", status: 404 });
  });

  it("escrow: store, rotate twice within a second, every version kept", async () => {
    const principal = `realm-test-${run}`;
    const r1 = await escrow.store({ principal, name: "rotating", secret: "v1" });
    written.push(r1.itemId);
    await escrow.store({ principal, name: "rotating", secret: "v2" });
    await escrow.store({ principal, name: "rotating", secret: "v3" });
    const v = await escrow.versions(r1);
    expect([v.current, ...v.previous.map((p) => p.value)]).toEqual(["v3", "v2", "v1"]);
    expect(await escrow.find(principal, "rotating")).toMatchObject({ itemId: r1.itemId });
  });
});
