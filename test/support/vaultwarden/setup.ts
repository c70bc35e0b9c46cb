/**
 * Test setup against the Vaultwarden double (or a real Vaultwarden with signups open): register accounts the
 * way a Bitwarden client does (keys made with secrets-client's crypto), make an organization + collection,
 * fetch the personal API key. Registration is an HTTP call like any client would make, so the double's
 * validation (PBKDF2 >= 100000...) applies.
 */
import https from "node:https";
import { SymmetricKey, deriveMasterKey, encryptBytes, generateRsaKeyPair, masterPasswordHash, KdfType, type KdfConfig } from "../../../secrets-client/crypto.js";
import { VaultwardenClient } from "../../../secrets-client/client.js";
import type { VaultwardenDouble } from "./server.js";

export interface TestAccount {
  email: string;
  password: string;
  kdf: KdfConfig;
}

export async function postJson(url: string, ca: string, body: unknown): Promise<{ status: number; json: unknown }> {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: "POST", ca, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(text) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const t = Buffer.concat(chunks).toString("utf8");
        resolve({ status: res.statusCode ?? 0, json: t ? (JSON.parse(t) as unknown) : null });
      });
    });
    req.on("error", reject);
    req.end(text);
  });
}

/** The registration body a Bitwarden client sends (old shape, as `POST /identity/accounts/register`). */
export async function registrationBody(email: string, password: string, kdf: KdfConfig): Promise<Record<string, unknown>> {
  const mk = await deriveMasterKey(password, email, kdf);
  const userKey = SymmetricKey.generate();
  const rsa = generateRsaKeyPair();
  return {
    email,
    name: email.split("@")[0],
    masterPasswordHint: null,
    masterPasswordHash: await masterPasswordHash(mk, password, 1),
    key: encryptBytes(userKey.toBytes(), SymmetricKey.stretch(mk)),
    kdf: kdf.kdfType,
    kdfIterations: kdf.iterations,
    kdfMemory: kdf.memory ?? null,
    kdfParallelism: kdf.parallelism ?? null,
    keys: { publicKey: rsa.publicKey.toString("base64"), encryptedPrivateKey: encryptBytes(rsa.privateKey, userKey) },
  };
}

export async function registerAccount(vw: Pick<VaultwardenDouble, "url" | "ca">, email: string, password: string, kdf: KdfConfig = { kdfType: KdfType.PBKDF2_SHA256, iterations: 100_000 }): Promise<TestAccount> {
  const r = await postJson(`${vw.url}/identity/accounts/register`, vw.ca, await registrationBody(email, password, kdf));
  if (r.status !== 200) throw new Error(`register ${email}: ${r.status} ${JSON.stringify(r.json)}`);
  return { email, password, kdf };
}

export interface RealmVault {
  owner: TestAccount;
  client: VaultwardenClient;
  organizationId: string;
  collectionId: string;
  apiKey: { clientId: string; clientSecret: string };
}

/** Registers an owner, logs in, creates an organization with one collection and fetches the API key. */
export async function setupOrganization(vw: Pick<VaultwardenDouble, "url" | "ca">, opts: { email?: string; password?: string; orgName?: string; collectionName?: string } = {}): Promise<RealmVault> {
  const owner = await registerAccount(vw, opts.email ?? "realm-service@example.test", opts.password ?? "correct horse battery staple");
  const client = new VaultwardenClient({ url: vw.url, ca: vw.ca });
  await client.login({ email: owner.email, password: owner.password });
  const { organization, collection } = await client.createOrganization(opts.orgName ?? "realm", opts.collectionName ?? "realm-default");
  const apiKey = await client.fetchApiKey(owner.password);
  return { owner, client, organizationId: organization.id, collectionId: collection!.id, apiKey };
}

/** The environment `vaultwardenEscrowFromEnv()` reads, pointing at the double (API key + master password). */
export function escrowEnv(vw: Pick<VaultwardenDouble, "url" | "caFile">, realm: RealmVault, opts: { useApiKey?: boolean } = {}): Record<string, string> {
  return {
    REALM_VAULTWARDEN_URL: vw.url,
    REALM_VAULTWARDEN_ORG: realm.organizationId,
    REALM_VAULTWARDEN_EMAIL: realm.owner.email,
    REALM_VAULTWARDEN_PASSWORD: realm.owner.password,
    REALM_VAULTWARDEN_CA: vw.caFile,
    ...(opts.useApiKey === false ? {} : { REALM_VAULTWARDEN_CLIENT_ID: realm.apiKey.clientId, REALM_VAULTWARDEN_CLIENT_SECRET: realm.apiKey.clientSecret }),
  };
}
