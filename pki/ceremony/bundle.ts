import { createCipheriv, createDecipheriv, randomBytes, scryptSync, type KeyObject, createPrivateKey } from "node:crypto";
import { invalid, RealmError } from "../../services/kernel/errors.js";

/** scrypt cost: N=2^17, r=8, p=1 (128 MiB, about half a second), as OWASP lists for scrypt. */
export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}
export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 17, r: 8, p: 1 };

/** The root key at rest: PKCS#8 DER sealed with AES-256-GCM under a key scrypt derives from the passphrase. */
export interface SealedKey {
  format: "cim-realm/sealed-key/v1";
  kdf: { name: "scrypt"; salt: string } & ScryptParams;
  cipher: "aes-256-gcm";
  iv: string;
  tag: string;
  ciphertext: string;
  /** SHA-256 of the public key's SPKI DER, to match the bundle with its certificate without opening it. */
  publicKeySha256: string;
}

export const MIN_PASSPHRASE = 12;

function derive(passphrase: string, salt: Buffer, p: ScryptParams): Buffer {
  return scryptSync(passphrase.normalize("NFC"), salt, 32, { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.N * p.r + 16 * 1024 * 1024 });
}

/** Refuses a passphrase too short to seal a key with: checked before any key is made (`realm ceremony init`). */
export function checkNewPassphrase(passphrase: string): void {
  if (passphrase.length < MIN_PASSPHRASE) throw invalid(`the ceremony passphrase must be at least ${MIN_PASSPHRASE} characters`);
}

export function sealKey(key: KeyObject, passphrase: string, publicKeySha256: string, params: ScryptParams = DEFAULT_SCRYPT): SealedKey {
  checkNewPassphrase(passphrase);
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const k = derive(passphrase, salt, params);
  const cipher = createCipheriv("aes-256-gcm", k, iv);
  cipher.setAAD(Buffer.from(publicKeySha256));
  const ct = Buffer.concat([cipher.update(key.export({ format: "der", type: "pkcs8" })), cipher.final()]);
  k.fill(0);
  return {
    format: "cim-realm/sealed-key/v1",
    kdf: { name: "scrypt", salt: salt.toString("base64"), ...params },
    cipher: "aes-256-gcm",
    iv: iv.toString("base64"),
    tag: cipher.getAuthTag().toString("base64"),
    ciphertext: ct.toString("base64"),
    publicKeySha256,
  };
}

/** Opens a sealed key; a wrong passphrase (or an altered file) is UNAUTHORIZED and says nothing more. */
export function openKey(sealed: SealedKey, passphrase: string): KeyObject {
  if (sealed.format !== "cim-realm/sealed-key/v1" || sealed.kdf?.name !== "scrypt" || sealed.cipher !== "aes-256-gcm") throw invalid("the key bundle has an unknown format");
  const k = derive(passphrase, Buffer.from(sealed.kdf.salt, "base64"), sealed.kdf);
  try {
    const d = createDecipheriv("aes-256-gcm", k, Buffer.from(sealed.iv, "base64"));
    d.setAAD(Buffer.from(sealed.publicKeySha256));
    d.setAuthTag(Buffer.from(sealed.tag, "base64"));
    const der = Buffer.concat([d.update(Buffer.from(sealed.ciphertext, "base64")), d.final()]);
    const key = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
    der.fill(0);
    return key;
  } catch {
    throw new RealmError("UNAUTHORIZED", "wrong ceremony passphrase: the root key bundle does not open (or it was altered)");
  } finally {
    k.fill(0);
  }
}
