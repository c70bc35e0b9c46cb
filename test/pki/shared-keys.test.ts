import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Kvm } from "@nats-io/kv";
import { createPublicKey, generateKeyPairSync } from "node:crypto";
import { createLogger } from "../../services/host/logger.js";
import { newId } from "../../services/kernel/index.js";
import { createPkiContext, type PkiContext } from "../../pki/service.js";
import { PKI_KEYS_BUCKET } from "../../pki/contract.js";
import { IssuerKeyStore, publicKeySha256 } from "../../pki/keystore.js";
import { signIntermediate } from "../../pki/ceremony/ceremony.js";
import { CEREMONY_PASSPHRASE, startPki, type PkiHarness } from "./harness.js";
import { testTrust } from "../support/trust.js";
import { openssl } from "./openssl.js";

/** Two PKI instances of one realm (two `realm up` on one NATS): either signs with any intermediate. */
const trust = testTrust();
let h: PkiHarness;
let other: PkiContext;
const dirs: string[] = [];
const log = createLogger({ level: "silent" });
const ctx = () => ({ commandId: newId(), correlationId: newId(), causationId: newId(), actor: "test" });

beforeAll(async () => {
  h = await startPki({ trust });
  const dataDir = mkdtempSync(join(tmpdir(), "realm-pki-b-"));
  dirs.push(dataDir);
  other = await createPkiContext({ publicUrl: h.baseUrl, ownedZones: () => ["example.test."], sealer: h.sealer })({ nc: h.nc, log, dataDir, trust });
}, 60_000);
afterAll(async () => {
  await other?.stop?.();
  await h?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("intermediate keys shared by every PKI instance (sealed in realm_pki_keys)", () => {
  it("an instance that did not prepare the intermediate issues with it, and openssl verifies the chain", async () => {
    const r = await other.issue({ issuer: "ops", profile: "server", dns: ["b.example.test"] }, ctx());
    const leaf = h.file("b.pem", r.certPem);
    expect(openssl(["verify", "-CAfile", h.files.root, "-untrusted", h.files.intermediate, leaf]).code).toBe(0);
  });

  it("an intermediate prepared after the other instance started reaches it through the bucket", async () => {
    const { csrPem } = await h.command<{ csrPem: string }>("issuer.prepare", { issuer: "web", commonName: "Example Realm Web CA" });
    const signed = signIntermediate({ dir: h.ceremonyDir, passphrase: CEREMONY_PASSPHRASE, csrPem, permittedDns: ["example.test"] });
    await h.command("issuer.import", { issuer: "web", certificate: signed.certPem, root: signed.rootPem });
    // The second instance decides on its projection: wait until it has applied the import. Its key store
    // then waits for the key itself if the bucket has not delivered it yet.
    await other.projection.waitFor(await other.store.lastSequence());
    const r = await other.issue({ issuer: "web", profile: "server", dns: ["w.example.test"] }, ctx());
    expect(r?.certPem).toContain("BEGIN CERTIFICATE");
  });

  it("keys an older realm kept as files in the data dir move into the bucket at start; a foreign entry is skipped, not trusted", async () => {
    const legacy = mkdtempSync(join(tmpdir(), "realm-pki-legacy-"));
    dirs.push(legacy);
    mkdirSync(join(legacy, "keys"));
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const sha = publicKeySha256(createPublicKey(privateKey));
    writeFileSync(join(legacy, "keys", `${sha}.key.pem`), privateKey.export({ format: "pem", type: "pkcs8" }), { mode: 0o600 });
    // An entry under a wrong name (another key's bytes): refused on read.
    const kv = await new Kvm(h.nc).open(PKI_KEYS_BUCKET);
    const wrong = "k." + "0".repeat(64);
    await kv.put(wrong, h.sealer.seal(privateKey.export({ format: "pem", type: "pkcs8" }).toString(), `${PKI_KEYS_BUCKET}/${wrong}`));
    const errors: unknown[] = [];
    const store = await IssuerKeyStore.open(h.nc, h.sealer, { legacyDir: join(legacy, "keys"), onError: (e) => errors.push(e) });
    try {
      expect(publicKeySha256(createPublicKey(store.load(sha)))).toBe(sha);
      expect(await kv.get(`k.${sha}`)).not.toBeNull();
      expect(() => store.load("0".repeat(64))).toThrow(/not in realm_pki_keys/);
      expect(errors.length).toBeGreaterThanOrEqual(1);
      // What the bucket holds is sealed: no PEM in its bytes.
      expect((await kv.get(`k.${sha}`))!.string()).not.toContain("PRIVATE KEY");
    } finally {
      store.stop();
      await kv.delete(wrong);
    }
  });
});
