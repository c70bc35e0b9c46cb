import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { RealmError } from "../../services/kernel/errors.js";
import { buildName, buildCertificate, parseCertificate, tbsCertificateDer } from "../../pki/x509/cert.js";
import { createCsr, parseCsr } from "../../pki/x509/csr.js";
import { fromPem } from "../../pki/x509/der.js";
import { generateKeyPair, keyInfo, signerFor, spkiDer } from "../../pki/x509/keys.js";
import { leafExtensions, leafIssuer, leafTbs, type LeafParams } from "../../pki/x509/leaf.js";
import { derTime, readTlv } from "../../pki/x509/tlv.js";
import { AsnConvert } from "@peculiar/asn1-schema";
import { SubjectPublicKeyInfo } from "@peculiar/asn1-x509";
import type { ProfileName } from "../../pki/domain/profiles.js";
import { opensslCsr } from "./openssl.js";

async function issuerFixture() {
  const ca = await generateKeyPair("ecdsa-p256");
  const signer = signerFor(ca.privateKey);
  const caDer = buildCertificate({
    serial: Buffer.from([0x42]),
    issuer: buildName({ CN: "Fixture CA", O: "Example" }),
    subject: buildName({ CN: "Fixture CA", O: "Example" }),
    spki: AsnConvert.parse(spkiDer(ca.publicKey), SubjectPublicKeyInfo),
    notBefore: new Date("2026-01-01T00:00:00Z"),
    notAfter: new Date("2060-01-01T00:00:00Z"),
    extensions: [],
    signer,
  });
  return leafIssuer(parseCertificate(caDer), signer, { crlUrl: "http://pki.example.test/pki/crl/ops.crl", ocspUrl: "http://pki.example.test/pki/ocsp" });
}

describe("x509 encoding", () => {
  it("the fast leaf TBS is byte-identical to the schema encoding of the same certificate", async () => {
    const issuer = await issuerFixture();
    const cases: { profile: ProfileName; spec: "ecdsa-p256" | "rsa-2048"; names: LeafParams["plan"]["names"]; notAfter: string; serial: Buffer }[] = [
      { profile: "server", spec: "ecdsa-p256", names: { dns: ["www.example.test", "api.example.test"], ip: ["127.0.0.1", "::1"], email: [], uri: [] }, notAfter: "2027-02-01T00:00:00Z", serial: randomBytes(16) },
      { profile: "server", spec: "rsa-2048", names: { dns: ["rsa.example.test"], ip: [], email: [], uri: [] }, notAfter: "2027-02-01T00:00:00Z", serial: Buffer.from([0x80, 1, 2]) },
      { profile: "client", spec: "ecdsa-p256", names: { dns: [], ip: [], email: ["a@example.test"], uri: ["spiffe://example.test/a"] }, notAfter: "2051-06-01T12:00:00Z", serial: Buffer.from([0, 0, 5]) },
      { profile: "code-signing", spec: "ecdsa-p256", names: { dns: [], ip: [], email: [], uri: [] }, notAfter: "2027-02-01T00:00:00Z", serial: Buffer.from([0x7f]) },
    ];
    for (const c of cases) {
      const pair = await generateKeyPair(c.spec);
      const spki = spkiDer(pair.publicKey);
      const p: LeafParams = {
        plan: { profile: c.profile, commonName: "leaf.example.test", names: c.names, notBefore: new Date("2026-11-25T10:00:00Z"), notAfter: new Date(c.notAfter) },
        serial: c.serial,
        spkiDer: spki,
        key: keyInfo(pair.publicKey),
        issuer,
      };
      const reference = tbsCertificateDer({
        serial: c.serial[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), c.serial]) : c.serial.subarray(c.serial.findIndex((b) => b !== 0)),
        issuer: issuer.cert.tbsCertificate.subject,
        subject: buildName({ CN: "leaf.example.test" }),
        spki: AsnConvert.parse(spki, SubjectPublicKeyInfo),
        notBefore: p.plan.notBefore,
        notAfter: p.plan.notAfter,
        extensions: leafExtensions(p),
        signer: issuer.signer,
      });
      expect(leafTbs(p).toString("hex"), `${c.profile} ${c.spec}`).toBe(reference.toString("hex"));
    }
  });

  it("times: UTCTime before 2050, GeneralizedTime from 2050", () => {
    expect(derTime(new Date("2049-12-31T23:59:59Z")).toString("latin1")).toBe("\x17\x0d491231235959Z");
    expect(derTime(new Date("2050-01-01T00:00:00Z")).toString("latin1")).toBe("\x18\x0f20500101000000Z");
  });

  it("the DER reader refuses indefinite, non-minimal and overrunning lengths", () => {
    for (const bad of ["3080", "30810100", "3005020101", "1f0100", "30"]) {
      expect(() => readTlv(Buffer.from(bad, "hex"), 0), bad).toThrow(RealmError);
    }
    expect(readTlv(Buffer.from("3003020101", "hex"), 0)).toEqual({ tag: 0x30, start: 0, contentStart: 2, end: 5 });
  });

  it("reads openssl CSRs (EC and RSA, with SANs) and our own; every truncation or byte flip is a typed error, never a crash", async () => {
    const ec = parseCsr(opensslCsr("a.example.test", ["DNS:a.example.test", "IP:10.0.0.1", "email:x@example.test", "URI:spiffe://example.test/x"]).csrPem);
    expect(ec.sans).toEqual({ dns: ["a.example.test"], ip: ["10.0.0.1"], email: ["x@example.test"], uri: ["spiffe://example.test/x"] });
    expect(ec.commonName).toBe("a.example.test");
    expect(ec.key.spec).toBe("ecdsa-p256");
    const rsa = opensslCsr("r.example.test", [], "rsa2048");
    expect(parseCsr(rsa.csrPem).key.spec).toBe("rsa-2048");
    expect(parseCsr(rsa.csrPem).spki.algorithm.algorithm).toBe("1.2.840.113549.1.1.1");
    const pair = await generateKeyPair("ecdsa-p384");
    const ours = createCsr(buildName({ CN: "ours" }), pair.publicKey, signerFor(pair.privateKey));
    expect(parseCsr(ours).sans).toEqual({ dns: [], ip: [], email: [], uri: [] });

    const der = fromPem(opensslCsr("f.example.test", ["DNS:f.example.test"]).csrPem, ["CERTIFICATE REQUEST"], "csr");
    const codes = new Set<string>();
    for (let n = 0; n < der.length; n++) {
      for (const mutate of [(b: Buffer) => b.subarray(0, n), (b: Buffer) => (b[n] = b[n]! ^ 0x01, b), (b: Buffer) => (b[n] = 0xff, b)]) {
        const m = mutate(Buffer.from(der));
        try {
          parseCsr(m);
          // A flip may land somewhere harmless only if the signature still verifies, which it must not.
          expect(m.equals(der)).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(RealmError);
          codes.add((err as RealmError).code);
        }
      }
    }
    expect([...codes].sort()).toEqual(["MALFORMED", "VALIDATION"]);
  });
});
