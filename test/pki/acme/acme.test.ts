import { createServer, type Server } from "node:http";
import { X509Certificate } from "node:crypto";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromPem } from "../../../pki/x509/der.js";
import { opensslCsr } from "../openssl.js";
import { accountKey, AcmeClient, signJws } from "./client.js";
import { startAcme, type AcmeHarness } from "./support.js";

const ERR = "urn:ietf:params:acme:error:";
const csrB64 = (pem: string) => fromPem(pem, ["CERTIFICATE REQUEST"], "csr").toString("base64url");

/** An http-01 responder on the issuer's validation port: serves the key authorizations it is given. */
function challengeServer(port: number): Promise<{ server: Server; tokens: Map<string, string>; hits: string[] }> {
  const tokens = new Map<string, string>();
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(`${req.headers.host} ${req.url}`);
    const token = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/.exec(req.url ?? "")?.[1];
    const ka = token ? tokens.get(token) : undefined;
    res.writeHead(ka ? 200 : 404, { "content-type": "text/plain" }).end(ka ?? "no");
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve({ server, tokens, hits })));
}

describe("ACME server: accounts, orders, http-01, refusals (RFC 8555)", () => {
  let h: AcmeHarness;
  let web: Awaited<ReturnType<typeof challengeServer>>;
  beforeAll(async () => {
    h = await startAcme();
    web = await challengeServer(h.http01Port);
  }, 60_000);
  afterAll(async () => {
    web?.server.close();
    await h?.stop();
  });

  const lastSeq = () => h.pki.store.lastSequence();
  const certCount = () => h.pki.projection.state.certificates.size;
  const client = async (alg: "ES256" | "RS256" | "EdDSA" = "ES256") => new AcmeClient(h.directory, await accountKey(alg)).init();

  /** newOrder, answer every http-01 challenge, wait until the order is ready. */
  async function readyOrder(c: AcmeClient, names: string[]) {
    const o = await c.post(c.dir.newOrder!, { identifiers: names.map((value) => ({ type: "dns", value })) });
    expect(o.status, o.text).toBe(201);
    for (const authzUrl of o.body.authorizations as string[]) {
      const az = await c.post(authzUrl, "");
      const ch = (az.body.challenges as { type: string; url: string; token: string }[]).find((x) => x.type === "http-01")!;
      web.tokens.set(ch.token, `${ch.token}.${c.key.thumbprint}`);
      const started = await c.post(ch.url, {});
      expect(started.status, started.text).toBe(200);
      await c.poll(authzUrl, (b) => b.status !== "pending");
    }
    const order = await c.poll(o.headers.get("location")!, (b) => b.status !== "pending");
    return { url: o.headers.get("location")!, order };
  }

  it("directory, nonces on HEAD (200) and GET (204), Replay-Nonce on every answer, nonces differ", async () => {
    const d = await fetch(h.directory);
    expect(d.status).toBe(200);
    const dir = (await d.json()) as Record<string, unknown>;
    expect(dir).toMatchObject({ newNonce: `${h.baseUrl}/acme/ops/new-nonce`, newAccount: `${h.baseUrl}/acme/ops/new-account`, meta: { externalAccountRequired: false } });
    expect(d.headers.get("replay-nonce")).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    const head = await fetch(dir.newNonce as string, { method: "HEAD" });
    const get = await fetch(dir.newNonce as string);
    expect([head.status, get.status]).toEqual([200, 204]);
    expect(head.headers.get("cache-control")).toBe("no-store");
    expect(head.headers.get("replay-nonce")).not.toBe(get.headers.get("replay-nonce"));
    expect((await fetch(`${h.baseUrl}/acme/nope/directory`)).status).toBe(404);
  });

  it("accounts with ES256, RS256 and EdDSA keys; the same key finds its account; onlyReturnExisting without one is accountDoesNotExist", async () => {
    for (const alg of ["ES256", "RS256", "EdDSA"] as const) {
      const c = await client(alg);
      const r = await c.newAccount({ termsOfServiceAgreed: true, contact: ["mailto:ops@example.test"] });
      expect(r.status, `${alg}: ${r.text}`).toBe(201);
      expect(r.body).toMatchObject({ status: "valid", contact: ["mailto:ops@example.test"] });
      const again = await c.newAccount();
      expect(again.status).toBe(200);
      expect(again.headers.get("location")).toBe(r.headers.get("location"));
    }
    const stranger = await client();
    const before = await lastSeq();
    const r = await stranger.newAccount({ onlyReturnExisting: true });
    expect(r.body.type).toBe(`${ERR}accountDoesNotExist`);
    expect(r.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(await lastSeq()).toBe(before);
  });

  it("a replayed nonce is badNonce, a wrong signature is malformed, an unaccepted algorithm badSignatureAlgorithm: nothing appended", async () => {
    const c = await client();
    await c.newAccount();
    const before = await lastSeq();
    const ok = await c.post(c.dir.newOrder!, { identifiers: [{ type: "dns", value: "replay.example.test" }] });
    expect(ok.status).toBe(201);
    const afterOne = await lastSeq();
    expect(afterOne).toBeGreaterThan(before);
    const replay = await c.post(c.dir.newOrder!, { identifiers: [{ type: "dns", value: "replay.example.test" }] }, { nonce: c.lastNonce! });
    expect(replay.status).toBe(400);
    expect(replay.body.type).toBe(`${ERR}badNonce`);
    expect(replay.headers.get("replay-nonce")).toBeTruthy();
    const other = await accountKey();
    const forged = await c.post(c.dir.newOrder!, { identifiers: [{ type: "dns", value: "forged.example.test" }] }, { signWith: other });
    expect(forged.body.type).toBe(`${ERR}malformed`);
    expect(forged.body.detail).toMatch(/signature/);
    const hs = await c.post(c.dir.newOrder!, {}, { rawBody: { protected: Buffer.from(JSON.stringify({ alg: "HS256", kid: c.kid, nonce: await c.nonce(), url: c.dir.newOrder })).toString("base64url"), payload: "", signature: "AAAA" } });
    expect(hs.body.type).toBe(`${ERR}badSignatureAlgorithm`);
    const wrongUrl = await c.post(c.dir.newOrder!, { identifiers: [{ type: "dns", value: "x.example.test" }] }, { header: { url: `${h.baseUrl}/acme/ops/elsewhere` } });
    expect(wrongUrl.body.type).toBe(`${ERR}unauthorized`);
    expect(await lastSeq()).toBe(afterOne);
  });

  it("a name the realm does not own is rejectedIdentifier, with a subproblem per name: nothing appended", async () => {
    const c = await client();
    await c.newAccount();
    const before = await lastSeq();
    const r = await c.post(c.dir.newOrder!, { identifiers: [{ type: "dns", value: "www.example.test" }, { type: "dns", value: "www.not-ours.test" }] });
    expect(r.status).toBe(400);
    expect(r.body.type).toBe(`${ERR}rejectedIdentifier`);
    expect(r.body.subproblems).toEqual([expect.objectContaining({ type: `${ERR}rejectedIdentifier`, identifier: { type: "dns", value: "www.not-ours.test" } })]);
    const ip = await c.post(c.dir.newOrder!, { identifiers: [{ type: "ip", value: "127.0.0.1" }] });
    expect(ip.body.type).toBe(`${ERR}unsupportedIdentifier`);
    expect(await lastSeq()).toBe(before);
  });

  it("http-01 order: a CSR with other names is badCSR (nothing issued, no event); the right CSR is issued, the chain downloaded", async () => {
    const c = await client("EdDSA");
    await c.newAccount();
    const { url, order } = await readyOrder(c, ["shop.example.test"]);
    expect(order.status).toBe("ready");
    const before = await lastSeq();
    const certsBefore = certCount();
    const wrong = await c.post(order.finalize as string, { csr: csrB64(opensslCsr("shop.example.test", ["DNS:shop.example.test", "DNS:admin.example.test"]).csrPem) });
    expect(wrong.status).toBe(400);
    expect(wrong.body.type).toBe(`${ERR}badCSR`);
    expect(wrong.body.detail).toMatch(/admin\.example\.test/);
    expect(await lastSeq()).toBe(before);
    expect(certCount()).toBe(certsBefore);
    const fin = await c.post(order.finalize as string, { csr: csrB64(opensslCsr("shop.example.test", ["DNS:shop.example.test"]).csrPem) });
    expect(fin.status, fin.text).toBe(200);
    expect(fin.body.status).toBe("valid");
    const dl = await c.post(fin.body.certificate as string, "");
    expect(dl.headers.get("content-type")).toMatch(/^application\/pem-certificate-chain/);
    const blocks = dl.text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!;
    expect(blocks).toHaveLength(2);
    const leaf = new X509Certificate(blocks[0]!);
    expect(leaf.subjectAltName).toBe("DNS:shop.example.test");
    expect(leaf.verify(new X509Certificate(blocks[1]!).publicKey)).toBe(true);
    expect(blocks[1]!.trim()).toBe(h.intermediatePem.trim());
    // The order as the projection serves it, and its story as events.
    expect((await c.post(url, "")).body).toMatchObject({ status: "valid", certificate: fin.body.certificate });
    // Another account cannot fetch it.
    const other = await client();
    await other.newAccount();
    expect((await other.post(fin.body.certificate as string, "")).body.type).toBe(`${ERR}unauthorized`);
  });

  it("SSRF guard: without loopback in the issuer's validation networks, http-01 never connects and the challenge fails", async () => {
    await h.command("acme.configure", { issuer: "ops", validationNetworks: [] });
    try {
      const c = await client();
      await c.newAccount();
      const o = await c.post(c.dir.newOrder!, { identifiers: [{ type: "dns", value: "guarded.example.test" }] });
      const authzUrl = (o.body.authorizations as string[])[0]!;
      const ch = ((await c.post(authzUrl, "")).body.challenges as { url: string; token: string }[])[0]!;
      web.tokens.set(ch.token, `${ch.token}.${c.key.thumbprint}`);
      const hitsBefore = web.hits.length;
      await c.post(ch.url, {});
      const az = await c.poll(authzUrl, (b) => b.status !== "pending");
      expect(az.status).toBe("invalid");
      expect((az.challenges as { error: { type: string; detail: string } }[])[0]!.error).toMatchObject({ type: `${ERR}rejectedIdentifier`, detail: expect.stringMatching(/127\.0\.0\.1/) });
      expect(web.hits.length).toBe(hitsBefore);
      expect((await c.post(o.headers.get("location")!, "")).body.status).toBe("invalid");
    } finally {
      await h.command("acme.configure", { issuer: "ops", validationNetworks: ["127.0.0.0/8"] });
    }
  });

  it("a wrong http-01 answer makes the challenge invalid with incorrectResponse", async () => {
    const c = await client();
    await c.newAccount();
    const o = await c.post(c.dir.newOrder!, { identifiers: [{ type: "dns", value: "wrong.example.test" }] });
    const authzUrl = (o.body.authorizations as string[])[0]!;
    const ch = ((await c.post(authzUrl, "")).body.challenges as { url: string; token: string }[])[0]!;
    web.tokens.set(ch.token, `${ch.token}.not-the-thumbprint`);
    await c.post(ch.url, {});
    const az = await c.poll(authzUrl, (b) => b.status !== "pending");
    expect((az.challenges as { error: { type: string } }[])[0]!.error.type).toBe(`${ERR}incorrectResponse`);
  });

  it("keyChange rolls the account to a new key (the old one no longer signs for it); deactivation ends the account", async () => {
    const c = await client("ES256");
    await c.newAccount();
    const next = await accountKey("ES256");
    const inner = await signJws(next, { jwk: next.jwk, url: c.dir.keyChange }, { account: c.kid, oldKey: c.key.jwk });
    const r = await c.post(c.dir.keyChange!, inner);
    expect(r.status, r.text).toBe(200);
    const old = c.key;
    c.key = next;
    expect((await c.post(c.kid!, "")).status).toBe(200);
    c.key = old;
    expect((await c.post(c.kid!, "")).body.type).toBe(`${ERR}malformed`);
    c.key = next;
    const found = await new AcmeClient(h.directory, next).init().then((x) => x.newAccount({ onlyReturnExisting: true }));
    expect(found.headers.get("location")).toBe(c.kid);
    // A key already bound to another account cannot be taken over.
    const d = await client();
    await d.newAccount();
    const steal = await signJws(next, { jwk: next.jwk, url: d.dir.keyChange }, { account: d.kid, oldKey: d.key.jwk });
    expect((await d.post(d.dir.keyChange!, steal)).status).toBe(409);
    const deact = await c.post(c.kid!, { status: "deactivated" });
    expect(deact.body.status).toBe("deactivated");
    expect((await c.post(c.dir.newOrder!, { identifiers: [{ type: "dns", value: "late.example.test" }] })).body.type).toBe(`${ERR}unauthorized`);
  });

  it("revokeCert signed with the certificate's own key; a second time is alreadyRevoked", async () => {
    const c = await client();
    await c.newAccount();
    const { order } = await readyOrder(c, ["revoked.example.test"]);
    // A CSR made with the account's own key is refused too (RFC 8555 §11.1).
    const { createCsr } = await import("../../../pki/x509/csr.js");
    const { buildName } = await import("../../../pki/x509/cert.js");
    const { signerFor } = await import("../../../pki/x509/keys.js");
    const { KeyObject } = await import("node:crypto");
    const accountPriv = KeyObject.from(c.key.privateKey as unknown as import("node:crypto").webcrypto.CryptoKey);
    const sameKey = createCsr(buildName({ CN: "revoked.example.test" }), (await import("node:crypto")).createPublicKey(accountPriv), signerFor(accountPriv));
    const refused = await c.post(order.finalize as string, { csr: sameKey.toString("base64url") });
    expect(refused.body.type).toBe(`${ERR}badCSR`);
    expect(refused.body.detail).toMatch(/account key/);
    const { csrPem, keyPem } = opensslCsr("revoked.example.test", ["DNS:revoked.example.test"]);
    const fin = await c.post(order.finalize as string, { csr: csrB64(csrPem) });
    const pem = (await c.post(fin.body.certificate as string, "")).text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)![0];
    const der = fromPem(pem, ["CERTIFICATE"], "cert").toString("base64url");
    const { importPKCS8, exportJWK } = await import("jose");
    const certKey = { alg: "ES256" as const, privateKey: await importPKCS8(keyPem, "ES256", { extractable: true }), jwk: {}, thumbprint: "" };
    certKey.jwk = await exportJWK((await import("node:crypto")).createPublicKey(keyPem));
    const byKey = new AcmeClient(h.directory, certKey);
    byKey.dir = c.dir;
    const r = await byKey.post(c.dir.revokeCert!, { certificate: der, reason: 1 }, { useJwk: true });
    expect(r.status, r.text).toBe(200);
    const serial = new X509Certificate(pem).serialNumber.toLowerCase().replace(/^(00)+/, "");
    expect(h.pki.projection.state.certificates.get(serial)?.revoked?.reason).toBe("keyCompromise");
    expect((await c.post(c.dir.revokeCert!, { certificate: der })).body.type).toBe(`${ERR}alreadyRevoked`);
  });

  it("ACME Renewal Information (RFC 9773): the directory names renewalInfo; the window lies in the certificate's life, and moves to now once it is revoked", async () => {
    const c = await client();
    await c.newAccount();
    expect(c.dir.renewalInfo).toBe(`${h.baseUrl}/acme/ops/renewal-info`);
    const { order } = await readyOrder(c, ["renew.example.test"]);
    const fin = await c.post(order.finalize as string, { csr: csrB64(opensslCsr("renew.example.test", ["DNS:renew.example.test"]).csrPem) });
    const pem = (await c.post(fin.body.certificate as string, "")).text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)![0];
    const x = new X509Certificate(pem);
    // certID from openssl's reading of the AKI and the serial (not from the realm's own parser).
    const { openssl } = await import("../openssl.js");
    const akiText = openssl(["x509", "-noout", "-ext", "authorityKeyIdentifier", "-in", h.file("renew.pem", pem)]).out;
    const aki = Buffer.from(/([0-9A-F]{2}(:[0-9A-F]{2})+)/.exec(akiText)![1]!.replace(/:/g, ""), "hex");
    const certId = `${aki.toString("base64url")}.${Buffer.from(x.serialNumber, "hex").toString("base64url")}`;
    const r = await fetch(`${c.dir.renewalInfo}/${certId}`);
    expect(r.status).toBe(200);
    expect(Number(r.headers.get("retry-after"))).toBeGreaterThan(0);
    const w = ((await r.json()) as { suggestedWindow: { start: string; end: string } }).suggestedWindow;
    const nb = Date.parse(x.validFrom);
    const na = Date.parse(x.validTo);
    expect(Date.parse(w.start)).toBeGreaterThan(nb + (na - nb) / 2);
    expect(Date.parse(w.end)).toBeGreaterThan(Date.parse(w.start));
    expect(Date.parse(w.end)).toBeLessThan(na);
    // A wrong AKI half, an unknown serial: 404.
    expect((await fetch(`${c.dir.renewalInfo}/${Buffer.alloc(20, 1).toString("base64url")}.${Buffer.from(x.serialNumber, "hex").toString("base64url")}`)).status).toBe(404);
    expect((await fetch(`${c.dir.renewalInfo}/not-a-cert-id`)).status).toBe(404);
    // An order may say which certificate it replaces (only one of this account's).
    const next = await c.post(c.dir.newOrder!, { identifiers: [{ type: "dns", value: "renew.example.test" }], replaces: certId });
    expect(next.status, next.text).toBe(201);
    const other = await client();
    await other.newAccount();
    expect((await other.post(other.dir.newOrder!, { identifiers: [{ type: "dns", value: "renew.example.test" }], replaces: certId })).body.type).toBe(`${ERR}malformed`);
    await c.post(c.dir.revokeCert!, { certificate: fromPem(pem, ["CERTIFICATE"], "cert").toString("base64url"), reason: 4 });
    const after = ((await (await fetch(`${c.dir.renewalInfo}/${certId}`)).json()) as { suggestedWindow: { start: string; end: string } }).suggestedWindow;
    expect(Date.parse(after.end)).toBeLessThanOrEqual(Date.now());
  });
});
