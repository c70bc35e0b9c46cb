import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkAlpnCertificate } from "../../../pki/acme/validator.js";
import { fromPem } from "../../../pki/x509/der.js";
import { openssl } from "../openssl.js";

/** A self-signed tls-alpn-01 certificate made by openssl with the given SAN and acmeIdentifier extension. */
function challengeCert(san: string, acmeId?: string): Buffer {
  const dir = mkdtempSync(join(tmpdir(), "realm-alpn-"));
  try {
    const args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(dir, "k.pem"), "-out", join(dir, "c.pem"), "-subj", "/CN=acme", "-days", "1", "-addext", `subjectAltName=${san}`];
    if (acmeId) args.push("-addext", `1.3.6.1.5.5.7.1.31=${acmeId}`);
    const r = openssl(args);
    if (r.code !== 0) throw new Error(r.out);
    return fromPem(readFileSync(join(dir, "c.pem"), "utf8"), ["CERTIFICATE"], "cert");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("tls-alpn-01 certificate check (RFC 8737 §3)", () => {
  const ka = "token.thumbprint";
  const digest = createHash("sha256").update(ka).digest();
  const der = (d: Buffer) => `DER:04:20:${[...d].map((b) => b.toString(16).padStart(2, "0")).join(":")}`;

  it("accepts exactly one SAN equal to the name and a critical acmeIdentifier of SHA-256(key authorization)", () => {
    expect(checkAlpnCertificate(challengeCert("DNS:a.example.test", `critical,${der(digest)}`), "a.example.test", digest)).toBeUndefined();
  });

  it("refuses a wrong digest, a non-critical extension, a missing one, and another name", () => {
    const other = createHash("sha256").update("other").digest();
    expect(checkAlpnCertificate(challengeCert("DNS:a.example.test", `critical,${der(other)}`), "a.example.test", digest)).toMatch(/not the SHA-256/);
    expect(checkAlpnCertificate(challengeCert("DNS:a.example.test", der(digest)), "a.example.test", digest)).toMatch(/not critical/);
    expect(checkAlpnCertificate(challengeCert("DNS:a.example.test"), "a.example.test", digest)).toMatch(/no acmeIdentifier/);
    expect(checkAlpnCertificate(challengeCert("DNS:b.example.test", `critical,${der(digest)}`), "a.example.test", digest)).toMatch(/exactly a\.example\.test/);
    expect(checkAlpnCertificate(challengeCert("DNS:a.example.test,DNS:c.example.test", `critical,${der(digest)}`), "a.example.test", digest)).toMatch(/exactly/);
  });
});
