import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { RealmError } from "../../services/kernel/errors.js";
import { encodeSshCertificate, readSshCertificate, sshCertificateLine } from "../../pki/ssh/cert.js";
import { parseSshPublicKey, readSshPublicKeyBlob, sshPublicKeyBlob, sshPublicKeyLine } from "../../pki/ssh/keys.js";
import { encodeKrl } from "../../pki/ssh/krl.js";
import { sshKeygen, sshTool } from "./ssh-tools.js";

const dir = mkdtempSync(join(tmpdir(), "realm-ssh-wire-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The error `f` throws: must be a RealmError VALIDATION (never a RangeError or a crash). */
const refusal = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return e instanceof RealmError ? e.code : `not a RealmError: ${String(e)}`;
  }
  return "accepted";
};

describe("OpenSSH wire formats against ssh-keygen", () => {
  it("reads public keys ssh-keygen makes (Ed25519, ECDSA P-256/384/521, RSA) and writes them back byte for byte", () => {
    for (const [type, bits] of [["ed25519"], ["ecdsa", "256"], ["ecdsa", "384"], ["ecdsa", "521"], ["rsa", "3072"]] as const) {
      const f = join(dir, `k-${type}-${bits ?? ""}`);
      expect(sshTool("ssh-keygen", ["-q", "-t", type, ...(bits ? ["-b", bits] : []), "-N", "", "-f", f]).code).toBe(0);
      const line = readFileSync(`${f}.pub`, "utf8");
      const k = parseSshPublicKey(line);
      expect(sshPublicKeyBlob(k.key).equals(k.blob)).toBe(true);
      expect(sshTool("ssh-keygen", ["-l", "-f", `${f}.pub`]).out).toContain(k.fingerprint);
    }
  });

  it("reads a certificate ssh-keygen -s signed (Ed25519 and ECDSA CAs): fields and signature", () => {
    for (const t of ["ed25519", "ecdsa"] as const) {
      const ca = join(dir, `ca-${t}`);
      sshTool("ssh-keygen", ["-q", "-t", t, "-N", "", "-f", ca]);
      const user = sshKeygen(dir, `u-${t}`);
      expect(sshTool("ssh-keygen", ["-q", "-s", ca, "-I", "kid", "-n", "a,b", "-z", "42", "-V", "+1h", "-O", "force-command=/bin/true", "-O", "source-address=127.0.0.1/32", `${user.path}.pub`]).code).toBe(0);
      const c = readSshCertificate(readFileSync(`${user.path}-cert.pub`, "utf8"));
      expect(c).toMatchObject({ kind: "user", keyId: "kid", principals: ["a", "b"], serial: 42n, criticalOptions: { "force-command": "/bin/true", "source-address": "127.0.0.1/32" }, signatureValid: true });
      expect(c.caKeyBlob.equals(parseSshPublicKey(readFileSync(`${ca}.pub`, "utf8")).blob)).toBe(true);
    }
  });

  it("a certificate changed in any byte no longer verifies or is refused; truncated keys and certificates are VALIDATION", () => {
    const ca = generateKeyPairSync("ed25519").privateKey;
    const subject = parseSshPublicKey(sshKeygen(dir, "flip").pub);
    const t = Math.floor(Date.now() / 1000);
    const blob = encodeSshCertificate({ kind: "host", subject, serial: 7n, keyId: "h", principals: ["h.example.test"], validAfter: t, validBefore: t + 60, criticalOptions: {}, extensions: [], nonce: randomBytes(32) }, ca, sshPublicKeyBlob(ca));
    expect(readSshCertificate(blob).signatureValid).toBe(true);
    for (let i = 0; i < blob.length; i++) {
      const bad = Buffer.from(blob);
      bad[i] = bad[i]! ^ 0x01;
      let ok = false;
      try {
        ok = readSshCertificate(bad).signatureValid;
      } catch (e) {
        expect(e, `byte ${i}`).toBeInstanceOf(RealmError);
      }
      expect(ok, `byte ${i} flipped still verifies`).toBe(false);
    }
    for (let n = 0; n < blob.length; n++) expect(refusal(() => readSshCertificate(blob.subarray(0, n))), `cut at ${n}`).toBe("VALIDATION");
    for (let n = 0; n < subject.blob.length; n++) expect(refusal(() => readSshPublicKeyBlob(subject.blob.subarray(0, n))), `key cut at ${n}`).toBe("VALIDATION");
    expect(refusal(() => parseSshPublicKey(sshCertificateLine(blob)))).toBe("VALIDATION");
    expect(refusal(() => parseSshPublicKey("not a key"))).toBe("VALIDATION");
  });

  it("a KRL with serials and key ids for two CAs: ssh-keygen -Q tells which certificate is revoked", () => {
    const cas = [generateKeyPairSync("ed25519").privateKey, generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey];
    const subject = parseSshPublicKey(sshKeygen(dir, "krl-user").pub);
    const t = Math.floor(Date.now() / 1000);
    const cert = (i: number, serial: bigint, keyId: string) => {
      const f = join(dir, `krl-${i}-${serial}-${keyId}-cert.pub`);
      writeFileSync(f, sshCertificateLine(encodeSshCertificate({ kind: "user", subject, serial, keyId, principals: ["x"], validAfter: t, validBefore: t + 60, criticalOptions: {}, extensions: [], nonce: randomBytes(16) }, cas[i]!, sshPublicKeyBlob(cas[i]!))));
      return f;
    };
    const krl = join(dir, "two.krl");
    writeFileSync(krl, encodeKrl({ version: 3n, generatedAt: new Date(), comment: "test", cas: [{ caKeyBlob: sshPublicKeyBlob(cas[0]!), serials: [5n, 2n], keyIds: [] }, { caKeyBlob: sshPublicKeyBlob(cas[1]!), serials: [], keyIds: ["gone"] }] }));
    const q = (f: string) => sshTool("ssh-keygen", ["-Q", "-f", krl, f]).out;
    expect(q(cert(0, 5n, "a"))).toContain("REVOKED");
    expect(q(cert(0, 6n, "a"))).toMatch(/: ok/);
    // A serial revoked for one CA does not revoke another CA's certificate with the same serial.
    expect(q(cert(1, 5n, "a"))).toMatch(/: ok/);
    expect(q(cert(1, 9n, "gone"))).toContain("REVOKED");
    expect(sshTool("ssh-keygen", ["-Q", "-l", "-f", krl]).out).toContain("# KRL version 3");
    expect(sshPublicKeyLine(cas[0]!)).toMatch(/^ssh-ed25519 /);
  });
});
