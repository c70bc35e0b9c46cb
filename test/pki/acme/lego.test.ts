import { readFileSync } from "node:fs";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { opensslAsync } from "../openssl.js";
import { run, startAcme, type AcmeHarness } from "./support.js";

describe("lego against the realm's ACME server", () => {
  let h: AcmeHarness;
  beforeAll(async () => {
    h = await startAcme();
  }, 60_000);
  afterAll(async () => h?.stop());

  /** Runs `lego run` for one name with the given challenge flags; returns the certificate and issuer files. */
  async function legoRun(name: string, challenge: string[]) {
    const path = join(h.work, `lego-${name}`);
    const r = await run("lego", ["--server", h.directory, "--accept-tos", "--email", "ops@example.test", "--key-type", "ec256", "--path", path, "--domains", name, ...challenge, "run"], { LEGO_CA_CERTIFICATES: h.files.root });
    expect(r.code, r.out).toBe(0);
    const cert = join(path, "certificates", `${name}.crt`);
    const issuer = join(path, "certificates", `${name}.issuer.crt`);
    const v = await opensslAsync(["verify", "-CAfile", h.files.root, "-untrusted", issuer, "-purpose", "sslserver", cert]);
    expect(v.out).toMatch(/: OK/);
    return new X509Certificate(readFileSync(cert));
  }

  it("obtains a certificate with http-01", async () => {
    const x = await legoRun("lego-http.example.test", ["--http", "--http.port", `127.0.0.1:${h.http01Port}`]);
    expect(x.subjectAltName).toBe("DNS:lego-http.example.test");
  }, 60_000);

  it("obtains a certificate with tls-alpn-01 (RFC 8737: ALPN acme-tls/1, acmeIdentifier checked)", async () => {
    const x = await legoRun("lego-tls.example.test", ["--tls", "--tls.port", `127.0.0.1:${h.tlsAlpn01Port}`]);
    expect(x.subjectAltName).toBe("DNS:lego-tls.example.test");
    const orders = await h.query<{ orders: { identifiers: string[]; status: string }[] }>("acme-orders", { issuer: "ops" });
    expect(orders.orders.find((o) => o.identifiers[0] === "lego-tls.example.test")?.status).toBe("valid");
    const validated = h.pki.projection.state.acme.orders;
    const o = [...validated.values()].find((x) => x.identifiers?.[0]?.value === "lego-tls.example.test")!;
    expect(o.authorizations![0]!.challenges.find((c) => c.status === "valid")?.type).toBe("tls-alpn-01");
  }, 60_000);
});
