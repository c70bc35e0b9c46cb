import { X509Certificate } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RealmError } from "../../services/kernel/errors.js";
import { newId } from "../../services/kernel/index.js";
import { buildOcspRequest, readOcspResponse } from "../../pki/x509/ocsp.js";
import { fromPem } from "../../pki/x509/der.js";
import { CEREMONY_PASSPHRASE, startPki, type PkiHarness } from "./harness.js";
import { rejectionOf } from "../support/errors.js";
import { signIntermediate } from "../../pki/ceremony/ceremony.js";
import { openssl, opensslAsync, opensslCsr } from "./openssl.js";

interface Issued {
  serial: string;
  certPem: string;
  chainPem: string;
  privateKeyPem?: string;
  notAfter: string;
  fingerprint: string;
  replayed?: boolean;
  sans: { dns: string[]; ip: string[]; email: string[]; uri: string[] };
}

const codeOf = async (p: Promise<unknown>): Promise<string> => (await rejectionOf(p, RealmError)).code;

describe("online PKI: issuance by profile, checked by openssl", () => {
  let h: PkiHarness;
  beforeAll(async () => {
    h = await startPki();
  }, 60_000);
  afterAll(async () => h?.stop());

  const verify = (certPem: string, purpose: string, extra: string[] = []) =>
    openssl(["verify", "-CAfile", h.files.root, "-untrusted", h.files.intermediate, "-purpose", purpose, ...extra, h.file(`leaf-${newId()}.pem`, certPem)]);
  const text = (certPem: string) => openssl(["x509", "-noout", "-text", "-in", h.file(`text-${newId()}.pem`, certPem)]).out;

  it("server profile from an openssl CSR: serverAuth, DNS and IP SANs, 90 days, CRL and OCSP pointers; verifies to the root", async () => {
    const { csrPem } = opensslCsr("www.example.test", ["DNS:www.example.test", "DNS:api.example.test", "IP:127.0.0.1"]);
    const r = await h.command<Issued>("certificate.issue", { profile: "server", csr: csrPem });
    expect(verify(r.certPem, "sslserver")).toMatchObject({ code: 0 });
    expect(verify(r.certPem, "sslclient").code).not.toBe(0);
    const t = text(r.certPem);
    expect(t).toMatch(/Extended Key Usage:\s+TLS Web Server Authentication\n/);
    expect(t).toContain("DNS:www.example.test, DNS:api.example.test, IP Address:127.0.0.1");
    const intermediateSerial = new X509Certificate(h.intermediatePem).serialNumber.toLowerCase().replace(/^(00)+/, "");
    expect(t).toContain(`URI:${h.baseUrl}/pki/crl/ops/${intermediateSerial}.crl`);
    expect(t).toContain(`OCSP - URI:${h.baseUrl}/pki/ocsp`);
    expect(t).toMatch(/CA:FALSE/);
    const x = new X509Certificate(r.certPem);
    const days = (new Date(x.validTo).getTime() - new Date(x.validFrom).getTime()) / 86_400_000;
    expect(Math.round(days)).toBe(90);
    expect(x.serialNumber.toLowerCase().replace(/^0+/, "")).toBe(r.serial);
    expect(r.chainPem).toBe(h.intermediatePem + h.rootPem);
  });

  it("client profile with a key generated for the caller: clientAuth only, key returned once and matching", async () => {
    const r = await h.command<Issued>("certificate.issue", { profile: "client", commonName: "alice", email: ["alice@example.test"] });
    expect(verify(r.certPem, "sslclient").code).toBe(0);
    expect(verify(r.certPem, "sslserver").code).not.toBe(0);
    expect(r.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(new X509Certificate(r.certPem).checkPrivateKey((await import("node:crypto")).createPrivateKey(r.privateKeyPem!))).toBe(true);
    // Shown once: asking for the certificate again gives no key.
    const again = await h.query<Record<string, unknown>>("certificate", { serial: r.serial });
    expect(again.certPem).toBe(r.certPem);
    expect(JSON.stringify(again)).not.toContain("PRIVATE KEY");
  });

  it("service profile carries both serverAuth and clientAuth; code-signing carries codeSigning", async () => {
    const svc = await h.command<Issued>("certificate.issue", { profile: "service", commonName: "billing.example.test", keySpec: "ecdsa-p384" });
    expect(verify(svc.certPem, "sslserver").code).toBe(0);
    expect(verify(svc.certPem, "sslclient").code).toBe(0);
    expect(text(svc.certPem)).toContain("DNS:billing.example.test");
    const cs = await h.command<Issued>("certificate.issue", { profile: "code-signing", commonName: "Example Release Signing", keySpec: "rsa-2048" });
    expect(text(cs.certPem)).toMatch(/Extended Key Usage:\s+Code Signing/);
    expect(verify(cs.certPem, "any").code).toBe(0);
  });

  it("wildcards only where the profile allows them", async () => {
    const { csrPem } = opensslCsr("*.example.test", ["DNS:*.example.test"]);
    const err = await h.command("certificate.issue", { profile: "server", csr: csrPem }).catch((e: RealmError) => e);
    expect(err).toBeInstanceOf(RealmError);
    expect((err as RealmError).code).toBe("VALIDATION");
    expect((err as RealmError).message).toMatch(/wildcard/i);
    const ok = await h.command<Issued>("certificate.issue", { profile: "server-wildcard", csr: csrPem });
    expect(verify(ok.certPem, "sslserver").code).toBe(0);
  });

  it("names the realm does not own are refused, even with an allow-list beyond the intermediate's name constraints; nothing is recorded", async () => {
    const before = await h.pki.store.lastSequence();
    const { csrPem } = opensslCsr("www.elsewhere.test", ["DNS:www.elsewhere.test"]);
    const err = await h.command("certificate.issue", { profile: "server", csr: csrPem }).catch((e: RealmError) => e);
    expect((err as RealmError).code).toBe("VALIDATION");
    expect((err as RealmError).message).toContain("www.elsewhere.test");
    await h.command("issuer.policy", { issuer: "ops", allowDomains: ["elsewhere.test"], allowIps: ["127.0.0.0/8", "::1/128"] });
    const afterPolicy = await h.pki.store.lastSequence();
    const err2 = await h.command("certificate.issue", { profile: "server", csr: csrPem }).catch((e: RealmError) => e);
    expect((err2 as RealmError).code).toBe("VALIDATION");
    expect((err2 as RealmError).message).toMatch(/name constraint|permitted/i);
    expect(await codeOf(h.command("certificate.issue", { profile: "server", commonName: "x.example.test", ip: ["10.1.2.3"] }))).toBe("VALIDATION");
    expect(await h.pki.store.lastSequence()).toBe(afterPolicy);
    expect(afterPolicy).toBe(before + 1);
    await h.command("issuer.policy", { issuer: "ops", allowDomains: [], allowIps: ["127.0.0.0/8", "::1/128"] });
  });

  it("bad input gets a typed error and no event: garbage CSR, weak RSA, CSR plus keySpec, unknown profile, bad serial", async () => {
    const before = await h.pki.store.lastSequence();
    expect(await codeOf(h.command("certificate.issue", { profile: "server", csr: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n" }))).toBe("MALFORMED");
    expect(await codeOf(h.command("certificate.issue", { profile: "server", csr: "not a csr at all" }))).toBe("MALFORMED");
    const weak = opensslCsr("weak.example.test", ["DNS:weak.example.test"], "rsa1024");
    const e = await h.command("certificate.issue", { profile: "server", csr: weak.csrPem }).catch((x: RealmError) => x);
    expect((e as RealmError).code).toBe("VALIDATION");
    expect((e as RealmError).message).toMatch(/weak|2048/);
    const ok = opensslCsr("both.example.test", ["DNS:both.example.test"]);
    expect(await codeOf(h.command("certificate.issue", { profile: "server", csr: ok.csrPem, keySpec: "ecdsa-p256" }))).toBe("VALIDATION");
    expect(await codeOf(h.command("certificate.issue", { profile: "bogus", csr: ok.csrPem }))).toBe("VALIDATION");
    expect(await codeOf(h.command("certificate.revoke", { serial: "not-hex" }))).toBe("VALIDATION");
    expect(await codeOf(h.command("certificate.revoke", { serial: "1234abcd" }))).toBe("NOT_FOUND");
    expect(await codeOf(h.command("issuer.import", { issuer: "ops", certificate: "junk", root: "junk" }))).toBe("VALIDATION");
    expect(await codeOf(h.command("certificate.issue", { profile: "client", commonName: "u", email: ["jürgen@example.test"] }))).toBe("VALIDATION");
    expect(await codeOf(h.command("certificate.issue", { profile: "client", commonName: "u", uri: ["spiffe://example.test/ü"] }))).toBe("VALIDATION");
    expect(await h.pki.store.lastSequence()).toBe(before);
    // Over HTTP the same typed error, as JSON with a 4xx status.
    const res = await fetch(`${h.baseUrl}/api/pki/certificate/issue`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ profile: "server", csr: weak.csrPem }) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("VALIDATION");
  });

  it("a retried command (same command id) answers the same certificate and records it once", async () => {
    const id = newId();
    const before = await h.pki.store.lastSequence();
    const { csrPem } = opensslCsr("retry.example.test", ["DNS:retry.example.test"]);
    const a = await h.command<Issued>("certificate.issue", { profile: "server", csr: csrPem }, id);
    const b = await h.command<Issued>("certificate.issue", { profile: "server", csr: csrPem }, id);
    expect(b.serial).toBe(a.serial);
    expect(b.certPem).toBe(a.certPem);
    expect(b.replayed).toBe(true);
    expect(await h.pki.store.lastSequence()).toBe(before + 1);
  });

  it("the projection answers by serial, by name, by status and expiring-within; HTTP serves one by serial", async () => {
    const r = await h.command<Issued>("certificate.issue", { profile: "server", commonName: "find.example.test", days: 5 });
    const byName = await h.query<{ certificates: { serial: string }[] }>("certificates", { name: "find.example.test" });
    expect(byName.certificates.map((c) => c.serial)).toEqual([r.serial]);
    const soon = await h.query<{ certificates: { serial: string }[] }>("certificates", { expiringWithinDays: 10 });
    expect(soon.certificates.map((c) => c.serial)).toContain(r.serial);
    const all = await h.query<{ certificates: { serial: string; notAfter: string }[] }>("certificates", { expiringWithinDays: 10 });
    expect(all.certificates.every((c) => new Date(c.notAfter).getTime() < Date.now() + 10 * 86_400_000)).toBe(true);
    const res = await fetch(`${h.baseUrl}/api/pki/certificates/${r.serial}`);
    expect(res.status).toBe(200);
    const one = (await res.json()) as { certPem: string; status: string; sans: { dns: string[] } };
    expect(one.certPem).toBe(r.certPem);
    expect(one.status).toBe("valid");
    expect(one.sans.dns).toEqual(["find.example.test"]);
    expect((await fetch(`${h.baseUrl}/api/pki/certificates/abcdef0123`)).status).toBe(404);
    // Expiry is the clock's business: openssl sees a 5-day certificate as expired a week from now.
    const later = Math.floor(Date.now() / 1000) + 7 * 86_400;
    const v = openssl(["verify", "-attime", String(later), "-CAfile", h.files.root, "-untrusted", h.files.intermediate, h.file("find.pem", r.certPem)]);
    expect(v.code).not.toBe(0);
    expect(v.out).toMatch(/certificate has expired/);
  });

  it("revocation: OCSP (POST and GET) says good then revoked with the reason, the CRL lists the serial, openssl -crl_check refuses it", async () => {
    const r = await h.command<Issued>("certificate.issue", { profile: "server", commonName: "revoke-me.example.test" });
    const leaf = h.file("revoke-me.pem", r.certPem);
    const ocspArgs = ["ocsp", "-issuer", h.files.intermediate, "-cert", leaf, "-url", `${h.baseUrl}/pki/ocsp`, "-CAfile", h.files.root];
    const good = await opensslAsync(ocspArgs);
    expect(good.out).toContain("Response verify OK");
    expect(good.out).toContain(`${leaf}: good`);

    const rev = await h.command<{ revoked: { reason: string } }>("certificate.revoke", { serial: r.serial, reason: "keyCompromise" });
    expect(rev.revoked.reason).toBe("keyCompromise");
    const bad = await opensslAsync(ocspArgs);
    expect(bad.out).toContain("Response verify OK");
    expect(bad.out).toContain(`${leaf}: revoked`);
    expect(bad.out).toContain("Reason: keyCompromise");

    // GET form (RFC 6960 A.1), read with our own parser against the intermediate.
    const req = buildOcspRequest(fromPem(r.certPem, ["CERTIFICATE"], "leaf"), fromPem(h.intermediatePem, ["CERTIFICATE"], "intermediate"));
    const got = await fetch(`${h.baseUrl}/pki/ocsp/${encodeURIComponent(req.toString("base64"))}`);
    expect(got.headers.get("content-type")).toBe("application/ocsp-response");
    const parsed = readOcspResponse(Buffer.from(await got.arrayBuffer()), fromPem(h.intermediatePem, ["CERTIFICATE"], "intermediate"));
    expect(parsed.responses[0]).toMatchObject({ serial: r.serial, status: "revoked", reason: "keyCompromise" });

    // Unknown serial → unknown; garbage → malformedRequest, and the responder keeps answering.
    // A certificate the realm never recorded, signed by openssl with the intermediate's own key: "unknown".
    const keyFile = h.file("intermediate.key.pem", (await h.intermediateKeys())[0]!);
    const stray = opensslCsr("stray.example.test");
    const strayPem = h.file("stray.pem", "");
    const signed = openssl(["x509", "-req", "-in", h.file("stray.csr", stray.csrPem), "-CA", h.files.intermediate, "-CAkey", keyFile, "-set_serial", "0x7e57ab1e", "-days", "1", "-out", strayPem]);
    expect(signed.code).toBe(0);
    const unknown = await opensslAsync(["ocsp", "-issuer", h.files.intermediate, "-cert", strayPem, "-url", `${h.baseUrl}/pki/ocsp`, "-CAfile", h.files.root]);
    expect(unknown.out).toContain(`${strayPem}: unknown`);
    const garbage = await fetch(`${h.baseUrl}/pki/ocsp`, { method: "POST", headers: { "content-type": "application/ocsp-request" }, body: Buffer.from("hello") });
    expect(Buffer.from(await garbage.arrayBuffer())).toEqual(Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x01]));

    const crlRes = await fetch(`${h.baseUrl}/pki/crl/ops.crl`);
    expect(crlRes.headers.get("content-type")).toBe("application/pkix-crl");
    const crlFile = h.file("ops.crl", Buffer.from(await crlRes.arrayBuffer()));
    const crlText = openssl(["crl", "-inform", "DER", "-in", crlFile, "-noout", "-text", "-CAfile", h.files.chain]);
    expect(crlText.out).toContain("verify OK");
    expect(crlText.out.toUpperCase()).toContain(r.serial.toUpperCase());
    expect(crlText.out).toMatch(/Next Update: /);
    expect(crlText.out).toContain("Key Compromise");
    const crlPem = h.file("ops-crl.pem", openssl(["crl", "-inform", "DER", "-in", crlFile]).out);
    const checked = openssl(["verify", "-crl_check", "-CRLfile", crlPem, "-CAfile", h.files.root, "-untrusted", h.files.intermediate, leaf]);
    expect(checked.code).not.toBe(0);
    expect(checked.out).toContain("certificate revoked");
    // Revoking twice is refused (already revoked), not a second event.
    expect(await codeOf(h.command("certificate.revoke", { serial: r.serial }))).toBe("ALREADY_EXISTS");
    const status = await h.query<{ status: string }>("certificate", { serial: r.serial });
    expect(status.status).toBe("revoked");
  });

  it("the same over HTTP: issue (Idempotency-Key retries safely), list with query parameters, revoke", async () => {
    const { csrPem } = opensslCsr("http.example.test", ["DNS:http.example.test"]);
    const post = (path: string, body: object, key: string) =>
      fetch(`${h.baseUrl}/api/pki/${path}`, { method: "POST", headers: { "content-type": "application/json", "idempotency-key": key }, body: JSON.stringify(body) });
    const key = newId();
    const a = (await (await post("certificate/issue", { profile: "server", csr: csrPem }, key)).json()) as Issued & { ok: boolean };
    const b = (await (await post("certificate/issue", { profile: "server", csr: csrPem }, key)).json()) as Issued & { ok: boolean };
    expect(a.ok).toBe(true);
    expect(b.serial).toBe(a.serial);
    expect(b.replayed).toBe(true);
    const listed = (await (await fetch(`${h.baseUrl}/api/pki/certificates?name=http.example.test&status=valid`)).json()) as { certificates: { serial: string }[] };
    expect(listed.certificates.map((c) => c.serial)).toEqual([a.serial]);
    const rev = await post("certificate/revoke", { serial: a.serial, reason: "cessationOfOperation" }, newId());
    expect(rev.status).toBe(200);
    const after = (await (await fetch(`${h.baseUrl}/api/pki/certificates?name=http.example.test`)).json()) as { certificates: { status: string }[] };
    expect(after.certificates.map((c) => c.status)).toEqual(["revoked"]);
    const badQuery = await fetch(`${h.baseUrl}/api/pki/certificates?status=sideways`);
    expect(badQuery.status).toBe(400);
  });

  it("rotating the intermediate: new leaves come from the new one, the old one's leaves stay answerable by OCSP and by the CRL they name", async () => {
    const before = await h.command<Issued>("certificate.issue", { profile: "server", commonName: "old.example.test" });
    const oldIntermediate = h.file("old-intermediate.pem", h.intermediatePem);
    const { csrPem } = await h.command<{ csrPem: string }>("issuer.prepare", { issuer: "ops", commonName: "Example Realm Ops CA 2" });
    const signed = signIntermediate({ dir: h.ceremonyDir, passphrase: CEREMONY_PASSPHRASE, csrPem, permittedDns: ["example.test"] });
    await h.command("issuer.import", { issuer: "ops", certificate: signed.certPem, root: signed.rootPem });
    const newIntermediate = h.file("new-intermediate.pem", signed.certPem);
    const after = await h.command<Issued>("certificate.issue", { profile: "server", commonName: "new.example.test" });
    expect(openssl(["verify", "-CAfile", h.files.root, "-untrusted", newIntermediate, h.file("new.pem", after.certPem)]).code).toBe(0);
    expect(after.chainPem).toBe(signed.certPem + signed.rootPem);
    // The old leaf: still its old chain, revocable, and both OCSP and its own CRL say so with the old key.
    expect(((await h.query("certificate", { serial: before.serial })) as { chainPem: string }).chainPem).toBe(h.intermediatePem + h.rootPem);
    await h.command("certificate.revoke", { serial: before.serial, reason: "superseded" });
    const oldLeaf = h.file("old.pem", before.certPem);
    const ocsp = await opensslAsync(["ocsp", "-issuer", oldIntermediate, "-cert", oldLeaf, "-url", `${h.baseUrl}/pki/ocsp`, "-CAfile", h.files.root]);
    expect(ocsp.out).toContain("Response verify OK");
    expect(ocsp.out).toContain(`${oldLeaf}: revoked`);
    const crlUrl = /URI:(http:\/\/\S+\.crl)/.exec(openssl(["x509", "-noout", "-ext", "crlDistributionPoints", "-in", oldLeaf]).out)![1]!;
    const crl = h.file("old.crl", Buffer.from(await (await fetch(crlUrl)).arrayBuffer()));
    const checked = openssl(["verify", "-crl_check", "-CRLfile", h.file("old-crl.pem", openssl(["crl", "-inform", "DER", "-in", crl]).out), "-CAfile", h.files.root, "-untrusted", oldIntermediate, oldLeaf]);
    expect(checked.out).toContain("certificate revoked");
    // The issuer's plain CRL URL now serves the new intermediate's CRL (signed by it, not listing the old leaf).
    const current = openssl(["crl", "-inform", "DER", "-noout", "-text", "-CAfile", h.file("chain-new.pem", signed.certPem + signed.rootPem)], Buffer.from(await (await fetch(`${h.baseUrl}/pki/crl/ops.crl`)).arrayBuffer()));
    expect(current.out).toContain("verify OK");
    expect(current.out).toContain("Example Realm Ops CA 2");
    expect(current.out.toLowerCase().replace(/:/g, "")).not.toContain(before.serial);
    h.intermediatePem = signed.certPem;
    h.files.intermediate = newIntermediate;
    h.files.chain = h.file("chain2.pem", signed.certPem + signed.rootPem);
  });

  it("OCSP without a nonce (RFC 5019) is answered from a pre-signed response until something is revoked", async () => {
    const r = await h.command<Issued>("certificate.issue", { profile: "server", commonName: "cached.example.test" });
    const interDer = fromPem(h.intermediatePem, ["CERTIFICATE"], "intermediate");
    const req = buildOcspRequest(fromPem(r.certPem, ["CERTIFICATE"], "leaf"), interDer, null);
    const ask = async (body: Buffer) => Buffer.from(await (await fetch(`${h.baseUrl}/pki/ocsp`, { method: "POST", headers: { "content-type": "application/ocsp-request" }, body })).arrayBuffer());
    const a = await ask(req);
    await new Promise((res) => setTimeout(res, 1100));
    const b = await ask(req);
    expect(b.equals(a)).toBe(true);
    expect(readOcspResponse(b, interDer).responses[0]!.status).toBe("good");
    // With a nonce: signed afresh every time (the nonce is echoed).
    const n1 = buildOcspRequest(fromPem(r.certPem, ["CERTIFICATE"], "leaf"), interDer);
    expect((await ask(n1)).equals(a)).toBe(false);
    await h.command("certificate.revoke", { serial: r.serial, reason: "keyCompromise" });
    expect(readOcspResponse(await ask(req), interDer).responses[0]).toMatchObject({ status: "revoked", reason: "keyCompromise" });
  });

  it("serves the CA chain and 404s unknown issuers and CRLs", async () => {
    const ca = await fetch(`${h.baseUrl}/pki/ca/ops.pem`);
    expect(await ca.text()).toBe(h.intermediatePem + h.rootPem);
    expect((await fetch(`${h.baseUrl}/pki/ca/nope.pem`)).status).toBe(404);
    expect((await fetch(`${h.baseUrl}/pki/crl/nope.crl`)).status).toBe(404);
    expect((await fetch(`${h.baseUrl}/pki/crl/..%2Fetc.crl`)).status).toBe(404);
    expect((await fetch(`${h.baseUrl}/pki/crl/ops/abcdef.crl`)).status).toBe(404);
    expect((await fetch(`${h.baseUrl}/pki/crl/ops/..%2F..%2Fx.crl`)).status).toBe(404);
  });
});
