import { readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { opensslAsync } from "../openssl.js";
import { run, startAcme, type AcmeHarness } from "./support.js";

describe("certbot against the realm's ACME server (http-01, standalone, loopback)", () => {
  let h: AcmeHarness;
  beforeAll(async () => {
    h = await startAcme();
  }, 60_000);
  afterAll(async () => h?.stop());

  const dirs = () => ["--config-dir", join(h.work, "certbot", "config"), "--work-dir", join(h.work, "certbot", "work"), "--logs-dir", join(h.work, "certbot", "logs")];

  it("certonly obtains a certificate openssl verifies with the realm root; certbot revoke makes OCSP say revoked", async () => {
    const r = await run("certbot", [
      "certonly", "--standalone", "--non-interactive", "--agree-tos", "--register-unsafely-without-email",
      "--server", h.directory, "--http-01-port", String(h.http01Port), "--http-01-address", "127.0.0.1",
      "-d", "www.example.test", "-d", "api.example.test", "--key-type", "ecdsa", "--cert-name", "www", ...dirs(),
    ], { REQUESTS_CA_BUNDLE: h.files.root });
    expect(r.out, r.out).toMatch(/Successfully received certificate/);
    expect(r.code).toBe(0);
    const live = join(h.work, "certbot", "config", "live", "www");
    const cert = realpathSync(join(live, "cert.pem"));
    const chain = realpathSync(join(live, "chain.pem"));
    const v = await opensslAsync(["verify", "-CAfile", h.files.root, "-untrusted", chain, "-purpose", "sslserver", cert]);
    expect(v.out).toMatch(/: OK/);
    expect(v.code).toBe(0);
    const x = new X509Certificate(readFileSync(cert));
    expect(x.subjectAltName).toBe("DNS:www.example.test, DNS:api.example.test");
    // The realm recorded the ACME story and the issuance.
    const serial = x.serialNumber.toLowerCase().replace(/^(00)+/, "");
    const orders = await h.query<{ orders: { status: string; certificate?: string; identifiers: string[] }[] }>("acme-orders", { issuer: "ops" });
    expect(orders.orders.find((o) => o.certificate === serial)).toMatchObject({ status: "valid", identifiers: ["www.example.test", "api.example.test"] });
    const ocsp = () => opensslAsync(["ocsp", "-issuer", h.files.intermediate, "-cert", cert, "-url", `${h.baseUrl}/pki/ocsp`, "-CAfile", h.files.root]);
    expect((await ocsp()).out).toMatch(/: good/);

    const rv = await run("certbot", ["revoke", "--non-interactive", "--server", h.directory, "--cert-path", cert, "--reason", "keycompromise", "--no-delete-after-revoke", ...dirs()], { REQUESTS_CA_BUNDLE: h.files.root });
    expect(rv.code, rv.out).toBe(0);
    const o = await ocsp();
    expect(o.out).toMatch(/: revoked/);
    expect(o.out).toMatch(/Reason: keyCompromise/);
  }, 120_000);
});
