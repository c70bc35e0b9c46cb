import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RealmError } from "../../services/kernel/errors.js";
import { Files, initCeremony, issueRootCrl, readCeremony, revokeIntermediate, signIntermediate } from "../../pki/ceremony/ceremony.js";
import { checkManifest } from "../../pki/ceremony/manifest.js";
import { openssl, opensslCsr } from "./openssl.js";

const PASS = "correct horse battery staple";
const scrypt = { N: 2 ** 14, r: 8, p: 1 };

describe("offline root ceremony", () => {
  let dir: string;
  let work: string;
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "realm-ceremony-"));
    dir = join(work, "root");
    await initCeremony({ dir, passphrase: PASS, subject: { CN: "Example Root CA", O: "Example" }, scrypt });
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("makes an ECDSA P-384 root: CA pathlen 1, keyCertSign+cRLSign, 20 years, key sealed, manifest verifies", () => {
    const text = openssl(["x509", "-in", join(dir, Files.rootCert), "-noout", "-text"]).out;
    expect(text).toContain("NIST CURVE: P-384");
    expect(text).toMatch(/CA:TRUE, pathlen:1/);
    expect(text).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    const dates = openssl(["x509", "-in", join(dir, Files.rootCert), "-noout", "-startdate", "-enddate"]).out;
    const [start, end] = [...dates.matchAll(/=(.*)/g)].map((m) => new Date(m[1]!).getUTCFullYear());
    expect(end! - start!).toBe(20);
    // The root key is only in the sealed bundle, never as PEM anywhere in the directory.
    for (const f of readdirSync(dir, { recursive: true }) as string[]) {
      const p = join(dir, f);
      if (f.includes(".")) expect(readFileSync(p).toString("latin1")).not.toContain("PRIVATE KEY");
    }
    const sealed = JSON.parse(readFileSync(join(dir, Files.rootKey), "utf8"));
    expect(sealed.kdf.name).toBe("scrypt");
    expect(sealed.cipher).toBe("aes-256-gcm");
    expect(checkManifest(dir).ok).toBe(true);
    expect(readCeremony(dir).manifestCid).toMatch(/^bagaaiera/);
  });

  it("signs an intermediate CSR (pathlen 0, name constraints, 3 years) that openssl verifies against the root", () => {
    const { csrPem } = opensslCsr("Ops Intermediate CA");
    const s = signIntermediate({ dir, passphrase: PASS, csrPem, permittedDns: ["example.test"] });
    const file = join(work, "int.crt");
    writeFileSync(file, s.certPem);
    expect(openssl(["verify", "-CAfile", join(dir, Files.rootCert), file]).out).toContain(": OK");
    const text = openssl(["x509", "-in", file, "-noout", "-text"]).out;
    expect(text).toMatch(/CA:TRUE, pathlen:0/);
    expect(text).toMatch(/Name Constraints: critical\s+Permitted:\s+DNS:example.test/);
    expect(new Date(s.notAfter).getUTCFullYear() - new Date().getUTCFullYear()).toBe(3);
    expect(checkManifest(dir).ok).toBe(true);
  });

  it("revokes an intermediate: the root CRL lists its serial and openssl checks the CRL signature", () => {
    const { csrPem } = opensslCsr("Old Intermediate CA");
    const s = signIntermediate({ dir, passphrase: PASS, csrPem, permittedDns: ["old.example.test"] });
    const r = revokeIntermediate({ dir, passphrase: PASS, serial: s.serial, reason: "superseded" });
    expect(r.revoked).toEqual([s.serial]);
    const out = openssl(["crl", "-inform", "DER", "-in", join(dir, Files.rootCrl), "-noout", "-text", "-CAfile", join(dir, Files.rootCert)]).out;
    expect(out).toContain("verify OK");
    expect(out).toContain(`Serial Number: ${s.serial.toUpperCase()}`);
    expect(out).toContain("Superseded");
    const again = issueRootCrl({ dir, passphrase: PASS });
    expect(again.crlNumber).toBe(r.crlNumber + 1);
  });

  it("a wrong passphrase is a clear UNAUTHORIZED error and changes nothing", () => {
    const before = readFileSync(join(dir, "manifest.json"), "utf8");
    const { csrPem } = opensslCsr("Another Intermediate CA");
    let err: unknown;
    try {
      signIntermediate({ dir, passphrase: "not the passphrase", csrPem, permittedDns: ["example.test"] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RealmError);
    expect((err as RealmError).code).toBe("UNAUTHORIZED");
    expect((err as RealmError).message).toMatch(/wrong ceremony passphrase/);
    expect(readFileSync(join(dir, "manifest.json"), "utf8")).toBe(before);
  });

  it("a tampered file fails the manifest check before the key is opened", () => {
    const reg = join(dir, Files.register);
    const original = readFileSync(reg, "utf8");
    writeFileSync(reg, original.replace('"crlNumber": ', '"crlNumber": 1'));
    try {
      expect(() => issueRootCrl({ dir, passphrase: PASS })).toThrow(/does not match its manifest/);
    } finally {
      writeFileSync(reg, original);
    }
  });

  it("refuses a garbage CSR, a weak RSA key and a second init", async () => {
    expect(() => signIntermediate({ dir, passphrase: PASS, csrPem: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", permittedDns: ["example.test"] })).toThrow(
      /not a DER PKCS#10/,
    );
    const weak = opensslCsr("Weak CA", [], "rsa1024");
    expect(() => signIntermediate({ dir, passphrase: PASS, csrPem: weak.csrPem, permittedDns: ["example.test"] })).toThrow(/too weak/);
    await expect(initCeremony({ dir, passphrase: PASS, subject: { CN: "Again" }, scrypt })).rejects.toThrow(/already holds a root CA/);
  });

  it("makes an RSA-4096 root on request", async () => {
    const rsaDir = join(work, "rsa");
    const r = await initCeremony({ dir: rsaDir, passphrase: PASS, subject: { CN: "RSA Root" }, algorithm: "rsa-4096", scrypt });
    expect(r.rootPem).toContain("BEGIN CERTIFICATE");
    expect(openssl(["x509", "-in", join(rsaDir, Files.rootCert), "-noout", "-text"]).out).toContain("Public-Key: (4096 bit)");
  });
});
