import { describe, expect, it } from "vitest";
import {
  SymmetricKey,
  decryptString,
  deriveMasterKey,
  encryptString,
  generateRsaKeyPair,
  masterPasswordHash,
  parseEncString,
  rsaDecrypt,
  rsaEncrypt,
  KdfType,
} from "../../secrets-client/crypto.js";
import { SecretsError } from "../../secrets-client/errors.js";

const catchErr = (f: () => unknown): unknown => {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error("expected a throw");
};

describe("Bitwarden crypto vectors", () => {
  it("PBKDF2: master key and master password hash match sdk-internal master_key.rs test_password_hash_pbkdf2 (email trimmed and lower-cased)", async () => {
    for (const email of ["test@bitwarden.com", "TEST@bitwarden.com", " test@bitwarden.com"]) {
      const mk = await deriveMasterKey("asdfasdf", email, { kdfType: KdfType.PBKDF2_SHA256, iterations: 100_000 });
      // The published value is the *server authorization hash* (HashPurpose 1), not the master key itself.
      expect(await masterPasswordHash(mk, "asdfasdf", 1)).toBe("wmyadRMyBZOH7P/a/ucTCbSghKgdzDpPqUnu/DAVtSw=");
      // Master key itself: PBKDF2-SHA256("asdfasdf", "test@bitwarden.com", 100000) (recomputable with openssl kdf).
      expect(mk.toString("base64")).toBe("j6LIxCM7M4VKobykynJczRKr3ji3SCcg3vTuoBgEkmg=");
    }
  });

  it("Argon2id: master password hash matches test_password_hash_argon2id (salt hashed with SHA-256 first)", async () => {
    const mk = await deriveMasterKey("asdfasdf", "test_salt", { kdfType: KdfType.ARGON2ID, iterations: 4, memory: 32, parallelism: 2 });
    expect(await masterPasswordHash(mk, "asdfasdf")).toBe("PR6UjYmjmppTYcdyTiNbAhPJuQQOmynKbdEl1oyi/iQ=");
  });

  it("stretched master key matches utils.rs test_stretch_kdf_key (HKDF-Expand enc/mac)", () => {
    const mk = Buffer.from([31, 79, 104, 226, 150, 71, 177, 90, 194, 80, 172, 209, 17, 129, 132, 81, 138, 167, 69, 167, 254, 149, 2, 27, 39, 197, 64, 42, 22, 195, 86, 75]);
    const s = SymmetricKey.stretch(mk);
    expect([...s.encKey]).toEqual([111, 31, 178, 45, 238, 152, 37, 114, 143, 215, 124, 83, 135, 173, 195, 23, 142, 134, 120, 249, 61, 132, 163, 182, 113, 197, 189, 204, 188, 21, 237, 96]);
    expect([...s.macKey]).toEqual([221, 127, 206, 234, 101, 27, 202, 38, 86, 52, 34, 28, 78, 28, 185, 16, 48, 61, 127, 166, 209, 247, 194, 87, 232, 26, 48, 85, 193, 249, 179, 155]);
  });

  it("the PBKDF2 master key agrees with openssl's PBKDF2 (independent implementation)", async () => {
    const { execFileSync } = await import("node:child_process");
    const out = execFileSync("openssl", ["kdf", "-keylen", "32", "-kdfopt", "digest:SHA256", "-kdfopt", "pass:asdfasdf", "-kdfopt", "salt:test@bitwarden.com", "-kdfopt", "iter:100000", "PBKDF2"], { encoding: "utf8" });
    const mk = await deriveMasterKey("asdfasdf", "test@bitwarden.com", { kdfType: 0, iterations: 100_000 });
    expect(out.trim().replace(/:/g, "").toLowerCase()).toBe(mk.toString("hex"));
  });

  it("refuses a PBKDF2 downgrade below 5000 iterations", async () => {
    await expect(deriveMasterKey("x", "a@b.c", { kdfType: 0, iterations: 1000 })).rejects.toMatchObject({ kind: "VALIDATION" });
  });
});

describe("EncString type 2", () => {
  const key = SymmetricKey.generate();

  it("round-trips text, including unicode and empty strings, with a fresh IV each time", () => {
    for (const t of ["", "hello", "ключ 🔑", "x".repeat(10_000)]) expect(decryptString(encryptString(t, key), key)).toBe(t);
    const a = encryptString("same", key);
    const b = encryptString("same", key);
    expect(a).not.toBe(b);
    expect(a.startsWith("2.")).toBe(true);
  });

  it("interoperates with an independent AES-CBC/HMAC built from openssl's CLI", async () => {
    const { execFileSync } = await import("node:child_process");
    const iv = Buffer.alloc(16, 7);
    const ct = execFileSync("openssl", ["enc", "-aes-256-cbc", "-K", key.encKey.toString("hex"), "-iv", iv.toString("hex")], { input: "from openssl" });
    const mac = execFileSync("openssl", ["dgst", "-sha256", "-mac", "HMAC", "-macopt", `hexkey:${key.macKey.toString("hex")}`, "-binary"], { input: Buffer.concat([iv, ct]) });
    expect(decryptString(`2.${iv.toString("base64")}|${ct.toString("base64")}|${mac.toString("base64")}`, key)).toBe("from openssl");
  });

  it("a flipped byte in iv, ct or mac is an INTEGRITY error, every byte position", () => {
    const enc = encryptString("the secret", key);
    const [head, ivB, ctB, macB] = [enc.slice(0, 2), ...enc.slice(2).split("|")] as [string, string, string, string];
    const parts = { iv: Buffer.from(ivB, "base64"), ct: Buffer.from(ctB, "base64"), mac: Buffer.from(macB, "base64") };
    let checked = 0;
    for (const which of ["iv", "ct", "mac"] as const) {
      for (let i = 0; i < parts[which].length; i++) {
        const t = { ...parts, [which]: Buffer.from(parts[which]) };
        t[which][i] = t[which][i]! ^ 0x01;
        const tampered = `${head}${t.iv.toString("base64")}|${t.ct.toString("base64")}|${t.mac.toString("base64")}`;
        const e = catchErr(() => decryptString(tampered, key));
        expect(e).toBeInstanceOf(SecretsError);
        expect((e as SecretsError).kind).toBe("INTEGRITY");
        expect((e as SecretsError).code).toBe("INTEGRITY");
        checked++;
      }
    }
    expect(checked).toBe(16 + 16 + 32);
  });

  it("a wrong key is an INTEGRITY error (MAC), not garbage plaintext", () => {
    const e = catchErr(() => decryptString(encryptString("x", key), SymmetricKey.generate()));
    expect((e as SecretsError).kind).toBe("INTEGRITY");
  });

  it("refuses type 0 (even a well-formed one), 7, legacy and unknown types with UNSUPPORTED; malformed with INTEGRITY", () => {
    const iv = Buffer.alloc(16).toString("base64");
    const ct = Buffer.alloc(16).toString("base64");
    for (const s of [`0.${iv}|${ct}`, `${iv}|${ct}`, "7.AAAA", `1.${iv}|${ct}|${iv}`, "5.AAAA|AAAA", "6.AAAA|AAAA", "9.AAAA|AAAA|AAAA", "42.AAAA"]) {
      const e = catchErr(() => parseEncString(s));
      expect(e, s).toBeInstanceOf(SecretsError);
      expect((e as SecretsError).kind, s).toBe("UNSUPPORTED");
    }
    for (const s of ["2.", "2.a|b", "2.!!!!|AAAA|AAAA", `2.${iv}|${ct}|${iv}`, "x.AAAA"]) {
      expect((catchErr(() => parseEncString(s)) as SecretsError).kind, s).toBe("INTEGRITY");
    }
  });
});

describe("EncString type 4 (RSA-OAEP-SHA1)", () => {
  it("wraps a 64-byte org key to a public key and unwraps it with the private key; checks with openssl pkeyutl", async () => {
    const { publicKey, privateKey } = generateRsaKeyPair();
    const orgKey = SymmetricKey.generate().toBytes();
    const enc = rsaEncrypt(orgKey, publicKey);
    expect(enc.startsWith("4.")).toBe(true);
    expect(rsaDecrypt(enc, privateKey).equals(orgKey)).toBe(true);
    // Independent check: openssl decrypts it with OAEP SHA-1.
    const { execFileSync } = await import("node:child_process");
    const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const dir = mkdtempSync(join(tmpdir(), "rsa-"));
    try {
      writeFileSync(join(dir, "k.der"), privateKey);
      const out = execFileSync("openssl", ["pkeyutl", "-decrypt", "-inkey", join(dir, "k.der"), "-keyform", "DER", "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha1"], { input: Buffer.from(enc.slice(2), "base64") });
      expect(out.equals(orgKey)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a flipped byte is an INTEGRITY error", () => {
    const { publicKey, privateKey } = generateRsaKeyPair();
    const raw = Buffer.from(rsaEncrypt(Buffer.alloc(64, 1), publicKey).slice(2), "base64");
    raw[10] = raw[10]! ^ 1;
    expect((catchErr(() => rsaDecrypt(`4.${raw.toString("base64")}`, privateKey)) as SecretsError).kind).toBe("INTEGRITY");
  });
});
