import { createServer, type Server } from "node:http";
import { realpathSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import { FlattenedSign } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { createIdentityContext, type IdentityContext } from "../../../identity/service.js";
import { grantsOf } from "../../../identity/authorize.js";
import { createLogger } from "../../../services/host/logger.js";
import { newId } from "../../../services/kernel/index.js";
import { Sealer } from "../../../services/kernel/seal.js";
import { PKI_STREAM } from "../../../pki/contract.js";
import { testTrust } from "../../support/trust.js";
import { opensslAsync } from "../openssl.js";
import { accountKey, AcmeClient, type AccountKey } from "./client.js";
import { run, startAcme, type AcmeHarness } from "./support.js";

const ERR = "urn:ietf:params:acme:error:";
const log = createLogger({ level: "silent" });

/** The externalAccountBinding JWS for an account key (RFC 8555 §7.3.4). */
async function binding(keyId: string, hmacKey: string, key: AccountKey, url: string) {
  return new FlattenedSign(new TextEncoder().encode(JSON.stringify(key.jwk))).setProtectedHeader({ alg: "HS256", kid: keyId, url }).sign(Buffer.from(hmacKey, "base64url"));
}

describe("external account binding: accounts tied to a realm principal, issuing under its grants", () => {
  let h: AcmeHarness;
  let identity: IdentityContext;
  let web: Server | undefined;
  /** An http-01 responder on the validation port (started after certbot, which listens there itself). */
  const ensureWeb = async () => {
    if (web) return;
    web = createServer((req, res) => {
      const ka = tokens.get((req.url ?? "").split("/").pop() ?? "");
      res.writeHead(ka ? 200 : 404).end(ka ?? "");
    });
    await new Promise<void>((r) => web!.listen(h.http01Port, "127.0.0.1", () => r()));
  };
  const tokens = new Map<string, string>();
  const id = async (name: string, input: object) => identity.endpoints.find((e) => e.name === name)!.handle(input, { commandId: newId(), correlationId: newId(), causationId: newId(), actor: "root", log });

  beforeAll(async () => {
    const trust = testTrust();
    h = await startAcme({ trust, externalAccountRequired: true, principalGrants: async (p) => grantsOf(identity.core.dir, p) });
    identity = await createIdentityContext({ issuer: "http://127.0.0.1/oidc", sealer: Sealer.generate() })({ nc: h.nc, log, dataDir: h.nats.dataDir, trust });
    await id("principal.create", { id: "svc-shop", kind: "service", displayName: "Shop" });
    await id("policy.bind", { id: "shop-certs", role: "pki-operator", subject: { kind: "principal", id: "svc-shop" }, scope: { kind: "zone", id: "shop.example.test" } });
  }, 60_000);
  afterAll(async () => {
    web?.close();
    await identity?.stop?.();
    await h?.stop();
  });

  const eab = () => h.command<{ keyId: string; hmacKey: string; principal: string }>("acme-eab.create", { issuer: "ops", principal: "svc-shop" });

  it("an account without EAB where EAB is required is externalAccountRequired, and nothing is appended", async () => {
    const c = await new AcmeClient(h.directory, await accountKey()).init();
    expect(c.dir.meta).toMatchObject({ externalAccountRequired: true });
    const before = await h.pki.store.lastSequence();
    const r = await c.newAccount();
    expect(r.body.type).toBe(`${ERR}externalAccountRequired`);
    expect(await h.pki.store.lastSequence()).toBe(before);
  });

  it("certbot with --eab-kid/--eab-hmac-key obtains a certificate for a name in the principal's scope, recorded as the principal's", async () => {
    const k = await eab();
    const dirs = ["--config-dir", join(h.work, "cb", "config"), "--work-dir", join(h.work, "cb", "work"), "--logs-dir", join(h.work, "cb", "logs")];
    const r = await run("certbot", ["certonly", "--standalone", "--non-interactive", "--agree-tos", "--register-unsafely-without-email", "--server", h.directory, "--http-01-port", String(h.http01Port), "--http-01-address", "127.0.0.1", "--eab-kid", k.keyId, "--eab-hmac-key", k.hmacKey, "-d", "www.shop.example.test", "--cert-name", "shop", "--key-type", "ecdsa", ...dirs]);
    expect(r.code, r.out).toBe(0);
    const live = join(h.work, "cb", "config", "live", "shop");
    const v = await opensslAsync(["verify", "-CAfile", h.files.root, "-untrusted", realpathSync(join(live, "chain.pem")), realpathSync(join(live, "cert.pem"))]);
    expect(v.out).toMatch(/: OK/);
    const serial = new X509Certificate(readFileSync(join(live, "cert.pem"))).serialNumber.toLowerCase().replace(/^(00)+/, "");
    expect(h.pki.projection.state.certificates.get(serial)?.principal).toBe("svc-shop");
    const keys = await h.query<{ keys: { keyId: string; principal: string; account?: string }[] }>("acme-eab-keys", { issuer: "ops" });
    expect(keys.keys.find((x) => x.keyId === k.keyId)).toMatchObject({ principal: "svc-shop", account: expect.any(String) });
    expect(JSON.stringify(keys)).not.toContain(k.hmacKey);
  }, 60_000);

  it("the principal's policy decides: a name outside its scope is unauthorized and nothing is appended", async () => {
    await ensureWeb();
    const k = await eab();
    const c = await new AcmeClient(h.directory, await accountKey()).init();
    const r = await c.newAccount({ termsOfServiceAgreed: true, externalAccountBinding: await binding(k.keyId, k.hmacKey, c.key, c.dir.newAccount!) });
    expect(r.status, r.text).toBe(201);
    expect(r.body.externalAccountBinding).toEqual({ keyId: k.keyId });
    const before = await h.pki.store.lastSequence();
    const refused = await c.post(c.dir.newOrder!, { identifiers: [{ type: "dns", value: "www.example.test" }] });
    expect(refused.body.type).toBe(`${ERR}unauthorized`);
    expect(refused.body.detail).toMatch(/svc-shop/);
    expect(await h.pki.store.lastSequence()).toBe(before);
    // Inside the scope it goes through to a certificate.
    const o = await c.post(c.dir.newOrder!, { identifiers: [{ type: "dns", value: "api.shop.example.test" }] });
    expect(o.status, o.text).toBe(201);
    const authzUrl = (o.body.authorizations as string[])[0]!;
    const ch = ((await c.post(authzUrl, "")).body.challenges as { type: string; url: string; token: string }[]).find((x) => x.type === "http-01")!;
    tokens.set(ch.token, `${ch.token}.${c.key.thumbprint}`);
    await c.post(ch.url, {});
    expect((await c.poll(authzUrl, (b) => b.status !== "pending")).status).toBe("valid");
    // The binding is revoked in identity before finalize: finalize decides again and refuses.
    await id("policy.revoke", { id: "shop-certs" });
    const { opensslCsr } = await import("../openssl.js");
    const { fromPem } = await import("../../../pki/x509/der.js");
    const csr = fromPem(opensslCsr("api.shop.example.test", ["DNS:api.shop.example.test"]).csrPem, ["CERTIFICATE REQUEST"], "csr").toString("base64url");
    const certs = h.pki.projection.state.certificates.size;
    const fin = await c.post((await c.post(o.headers.get("location")!, "")).body.finalize as string, { csr });
    expect(fin.body.type).toBe(`${ERR}unauthorized`);
    expect(h.pki.projection.state.certificates.size).toBe(certs);
    await id("policy.bind", { id: "shop-certs-2", role: "pki-operator", subject: { kind: "principal", id: "svc-shop" }, scope: { kind: "zone", id: "shop.example.test" } });
  });

  it("a wrong MAC, a key bound already, an unknown key id: unauthorized; the HMAC key is in no event", async () => {
    const k = await eab();
    const a = await new AcmeClient(h.directory, await accountKey()).init();
    const wrong = await a.newAccount({ externalAccountBinding: await binding(k.keyId, Buffer.alloc(32, 7).toString("base64url"), a.key, a.dir.newAccount!) });
    expect(wrong.body.type).toBe(`${ERR}unauthorized`);
    expect((await a.newAccount({ externalAccountBinding: await binding(k.keyId, k.hmacKey, a.key, a.dir.newAccount!) })).status).toBe(201);
    const b = await new AcmeClient(h.directory, await accountKey()).init();
    expect((await b.newAccount({ externalAccountBinding: await binding(k.keyId, k.hmacKey, b.key, b.dir.newAccount!) })).body.type).toBe(`${ERR}unauthorized`);
    expect((await b.newAccount({ externalAccountBinding: await binding("no-such-key", k.hmacKey, b.key, b.dir.newAccount!) })).body.type).toBe(`${ERR}unauthorized`);
    // A binding made for another account key does not carry over.
    const other = await accountKey();
    expect((await b.newAccount({ externalAccountBinding: await binding(k.keyId, k.hmacKey, other, b.dir.newAccount!) })).body.type).toBe(`${ERR}unauthorized`);
    const jsm = await jetstreamManager(h.nc);
    const last = (await jsm.streams.info(PKI_STREAM)).state.last_seq;
    const hex = Buffer.from(k.hmacKey, "base64url").toString("hex");
    for (let seq = 1; seq <= last; seq++) {
      const text = (await jsm.streams.getMessage(PKI_STREAM, { seq }))!.string();
      expect(text).not.toContain(k.hmacKey);
      expect(text).not.toContain(hex);
    }
  });

  it("a revoked EAB key binds no new account", async () => {
    const k = await eab();
    await h.command("acme-eab.revoke", { issuer: "ops", keyId: k.keyId });
    const c = await new AcmeClient(h.directory, await accountKey()).init();
    expect((await c.newAccount({ externalAccountBinding: await binding(k.keyId, k.hmacKey, c.key, c.dir.newAccount!) })).body.type).toBe(`${ERR}unauthorized`);
  });
});
