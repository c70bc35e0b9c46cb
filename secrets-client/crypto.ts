/**
 * Bitwarden client-side crypto on node:crypto (Argon2id through hash-wasm, Node 20 has none).
 * Sources: sdk-internal crates/bitwarden-crypto (kdf.rs, master_key.rs, utils.rs, enc_string/*) and
 * bitwarden/clients libs/common key-management; see /work/shared/reference/vaultwarden.md section 2.
 *
 * What this module emits: EncString type 2 (AES-256-CBC + HMAC-SHA256) for symmetric data and type 4
 * (RSA-OAEP-SHA1) for keys shared with an organization member. What it refuses: type 0 (CBC without MAC:
 * malleable, never decrypted here), types 1/5/6 (legacy), 7 (COSE, V2 accounts, which Vaultwarden does not
 * serve) and anything unknown - always with a typed SecretsError, never by guessing.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  constants,
  generateKeyPairSync,
  pbkdf2 as pbkdf2Cb,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  timingSafeEqual,
  createPrivateKey,
  createPublicKey,
} from "node:crypto";
import { promisify } from "node:util";
import { argon2id } from "hash-wasm";
import { SecretsError } from "./errors.js";

const pbkdf2 = promisify(pbkdf2Cb);

export const KdfType = { PBKDF2_SHA256: 0, ARGON2ID: 1 } as const;
export type KdfTypeValue = (typeof KdfType)[keyof typeof KdfType];

export interface KdfConfig {
  kdfType: KdfTypeValue;
  iterations: number;
  /** Argon2id memory in MiB. */
  memory?: number | null;
  /** Argon2id parallelism. */
  parallelism?: number | null;
}

/** Server-side minimum Vaultwarden enforces at registration and KDF change (accounts.rs `set_kdf_data`). */
export const VAULTWARDEN_MIN_PBKDF2_ITERATIONS = 100_000;
/** Client-side floor bw applies to prelogin answers (a lower value smells of a downgrade attack). */
export const CLIENT_MIN_PBKDF2_ITERATIONS = 5_000;

/** Checks a KDF config the way bw does before deriving (prelogin downgrade guard). */
export function checkKdf(kdf: KdfConfig): void {
  if (kdf.kdfType === KdfType.PBKDF2_SHA256) {
    if (!Number.isInteger(kdf.iterations) || kdf.iterations < CLIENT_MIN_PBKDF2_ITERATIONS) {
      throw new SecretsError("VALIDATION", `PBKDF2 iterations ${kdf.iterations} below ${CLIENT_MIN_PBKDF2_ITERATIONS} (possible pre-login downgrade)`);
    }
    return;
  }
  if (kdf.kdfType === KdfType.ARGON2ID) {
    const m = kdf.memory ?? 0;
    const p = kdf.parallelism ?? 0;
    if (kdf.iterations < 2 || m < 16 || p < 1) throw new SecretsError("VALIDATION", `Argon2id parameters too weak (iterations ${kdf.iterations}, memory ${m} MiB, parallelism ${p})`);
    return;
  }
  throw new SecretsError("UNSUPPORTED", `unknown KDF type ${String((kdf as { kdfType: unknown }).kdfType)}`);
}

/** Bitwarden's salt: the e-mail trimmed and lower-cased (master-password.service `emailToSalt`). */
export const emailToSalt = (email: string): string => email.trim().toLowerCase();

/** Master key (32 bytes) from the master password. `salt` is normalised like Bitwarden does. */
export async function deriveMasterKey(password: string, salt: string, kdf: KdfConfig): Promise<Buffer> {
  checkKdf(kdf);
  const s = emailToSalt(salt);
  if (kdf.kdfType === KdfType.PBKDF2_SHA256) return pbkdf2(Buffer.from(password, "utf8"), Buffer.from(s, "utf8"), kdf.iterations, 32, "sha256");
  const out = await argon2id({
    password: Buffer.from(password, "utf8"),
    // Bitwarden feeds Argon2 with SHA-256(salt), not the salt itself (kdf.rs).
    salt: createHash("sha256").update(s, "utf8").digest(),
    iterations: kdf.iterations,
    memorySize: (kdf.memory ?? 0) * 1024,
    parallelism: kdf.parallelism ?? 1,
    hashLength: 32,
    outputType: "binary",
  });
  return Buffer.from(out);
}

/** HashPurpose: 1 = what the server sees at login, 2 = local unlock check. */
export type HashPurpose = 1 | 2;

/** Master password hash, base64: PBKDF2-SHA256(masterKey, password, purpose iterations). */
export async function masterPasswordHash(masterKey: Buffer, password: string, purpose: HashPurpose = 1): Promise<string> {
  return (await pbkdf2(masterKey, Buffer.from(password, "utf8"), purpose, 32, "sha256")).toString("base64");
}

/** RFC 5869 HKDF-Expand only (Bitwarden stretches without the Extract step). */
export function hkdfExpand(prk: Buffer, info: string, length: number): Buffer {
  const blocks: Buffer[] = [];
  let prev = Buffer.alloc(0);
  for (let i = 1; Buffer.concat(blocks).length < length; i++) {
    prev = createHmac("sha256", prk).update(Buffer.concat([prev, Buffer.from(info, "utf8"), Buffer.from([i])])).digest();
    blocks.push(prev);
  }
  return Buffer.concat(blocks).subarray(0, length);
}

/** An AES-256-CBC + HMAC-SHA256 key pair, as Bitwarden's 64-byte symmetric keys (enc ‖ mac). */
export class SymmetricKey {
  readonly encKey: Buffer;
  readonly macKey: Buffer;

  constructor(encKey: Buffer, macKey: Buffer) {
    if (encKey.length !== 32 || macKey.length !== 32) throw new SecretsError("VALIDATION", "symmetric key parts must be 32 bytes each");
    this.encKey = encKey;
    this.macKey = macKey;
  }

  static fromBytes(bytes: Buffer): SymmetricKey {
    if (bytes.length !== 64) {
      // 32 bytes = legacy AES-only key (no MAC), >64 = COSE key of a V2 account: both refused.
      throw new SecretsError("UNSUPPORTED", `unsupported symmetric key length ${bytes.length} (want 64)`);
    }
    return new SymmetricKey(Buffer.from(bytes.subarray(0, 32)), Buffer.from(bytes.subarray(32, 64)));
  }

  static generate(): SymmetricKey {
    return SymmetricKey.fromBytes(randomBytes(64));
  }

  /** The stretched master key: HKDF-Expand(masterKey, "enc"|"mac", 32). */
  static stretch(masterKey: Buffer): SymmetricKey {
    if (masterKey.length !== 32) throw new SecretsError("VALIDATION", "master key must be 32 bytes");
    return new SymmetricKey(hkdfExpand(masterKey, "enc", 32), hkdfExpand(masterKey, "mac", 32));
  }

  toBytes(): Buffer {
    return Buffer.concat([this.encKey, this.macKey]);
  }

  /** Avoid leaking key bytes through util.inspect / JSON. */
  toJSON(): string {
    return "[SymmetricKey]";
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return "[SymmetricKey]";
  }
}

export const EncType = {
  AesCbc256_B64: 0,
  AesCbc128_HmacSha256_B64: 1,
  AesCbc256_HmacSha256_B64: 2,
  Rsa2048_OaepSha256_B64: 3,
  Rsa2048_OaepSha1_B64: 4,
  Rsa2048_OaepSha256_HmacSha256_B64: 5,
  Rsa2048_OaepSha1_HmacSha256_B64: 6,
  CoseEncrypt0: 7,
} as const;

export type ParsedEncString = { type: 2; iv: Buffer; ct: Buffer; mac: Buffer } | { type: 3 | 4; data: Buffer };

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;
function b64(part: string | undefined, what: string): Buffer {
  if (part === undefined || part.length === 0 || part.length % 4 !== 0 || !B64.test(part)) throw new SecretsError("INTEGRITY", `EncString ${what} is not valid base64`);
  return Buffer.from(part, "base64");
}

/** Parses "<type>.<b64>|<b64>|<b64>" strictly; refuses every type this client does not accept. */
export function parseEncString(s: string): ParsedEncString {
  if (typeof s !== "string") throw new SecretsError("INTEGRITY", "EncString is not a string");
  const dot = s.indexOf(".");
  // Headerless strings are legacy type 0.
  const typeText = dot < 0 ? "0" : s.slice(0, dot);
  if (!/^\d+$/.test(typeText)) throw new SecretsError("INTEGRITY", "EncString has no valid type header");
  const type = Number(typeText);
  const parts = s.slice(dot + 1).split("|");
  switch (type) {
    case EncType.AesCbc256_HmacSha256_B64: {
      if (parts.length !== 3) throw new SecretsError("INTEGRITY", "EncString type 2 must have iv|ct|mac");
      const iv = b64(parts[0], "iv");
      const ct = b64(parts[1], "ciphertext");
      const mac = b64(parts[2], "mac");
      if (iv.length !== 16) throw new SecretsError("INTEGRITY", "EncString iv must be 16 bytes");
      if (mac.length !== 32) throw new SecretsError("INTEGRITY", "EncString mac must be 32 bytes");
      if (ct.length === 0 || ct.length % 16 !== 0) throw new SecretsError("INTEGRITY", "EncString ciphertext length is not a multiple of the AES block");
      return { type: 2, iv, ct, mac };
    }
    case EncType.Rsa2048_OaepSha256_B64:
    case EncType.Rsa2048_OaepSha1_B64:
      if (parts.length !== 1) throw new SecretsError("INTEGRITY", `EncString type ${type} must have one part`);
      return { type, data: b64(parts[0], "data") };
    case EncType.AesCbc256_B64:
      throw new SecretsError("UNSUPPORTED", "EncString type 0 (AES-CBC without MAC) is refused: it cannot be authenticated");
    case EncType.CoseEncrypt0:
      throw new SecretsError("UNSUPPORTED", "EncString type 7 (COSE, V2 account) is not supported");
    case EncType.AesCbc128_HmacSha256_B64:
    case EncType.Rsa2048_OaepSha256_HmacSha256_B64:
    case EncType.Rsa2048_OaepSha1_HmacSha256_B64:
      throw new SecretsError("UNSUPPORTED", `EncString type ${type} is a deprecated format and is refused`);
    default:
      throw new SecretsError("UNSUPPORTED", `unknown EncString type ${type}`);
  }
}

/** Encrypts bytes to an EncString type 2 under `key` (fresh random IV). */
export function encryptBytes(data: Buffer, key: SymmetricKey): string {
  const iv = randomBytes(16);
  const c = createCipheriv("aes-256-cbc", key.encKey, iv);
  const ct = Buffer.concat([c.update(data), c.final()]);
  const mac = createHmac("sha256", key.macKey).update(iv).update(ct).digest();
  return `2.${iv.toString("base64")}|${ct.toString("base64")}|${mac.toString("base64")}`;
}

export const encryptString = (text: string, key: SymmetricKey): string => encryptBytes(Buffer.from(text, "utf8"), key);

/** Decrypts an EncString type 2: the MAC is checked (constant time) before any decryption. */
export function decryptBytes(enc: string, key: SymmetricKey): Buffer {
  const p = parseEncString(enc);
  if (p.type !== 2) throw new SecretsError("UNSUPPORTED", `EncString type ${p.type} is asymmetric; a symmetric key was given`);
  const expected = createHmac("sha256", key.macKey).update(p.iv).update(p.ct).digest();
  if (!timingSafeEqual(expected, p.mac)) throw new SecretsError("INTEGRITY", "EncString MAC does not verify (tampered data or wrong key)");
  try {
    const d = createDecipheriv("aes-256-cbc", key.encKey, p.iv);
    return Buffer.concat([d.update(p.ct), d.final()]);
  } catch {
    throw new SecretsError("INTEGRITY", "EncString does not decrypt (bad padding)");
  }
}

export const decryptString = (enc: string, key: SymmetricKey): string => decryptBytes(enc, key).toString("utf8");

/** A 2048-bit RSA key pair as Bitwarden stores it: SPKI DER public key, PKCS#8 DER private key. */
export function generateRsaKeyPair(): { publicKey: Buffer; privateKey: Buffer } {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048, publicExponent: 0x10001 });
  return { publicKey: publicKey.export({ type: "spki", format: "der" }), privateKey: privateKey.export({ type: "pkcs8", format: "der" }) };
}

/** EncString type 4: RSA-OAEP with SHA-1 and MGF1-SHA-1 (how Bitwarden shares org keys with members). */
export function rsaEncrypt(data: Buffer, publicKeySpkiDer: Buffer): string {
  let key;
  try {
    key = createPublicKey({ key: publicKeySpkiDer, format: "der", type: "spki" });
  } catch {
    throw new SecretsError("VALIDATION", "public key is not a valid SPKI RSA key");
  }
  return `4.${publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" }, data).toString("base64")}`;
}

/** Decrypts EncString type 4 (OAEP-SHA1) or 3 (OAEP-SHA256) with a PKCS#8 DER private key. */
export function rsaDecrypt(enc: string, privateKeyPkcs8Der: Buffer): Buffer {
  const p = parseEncString(enc);
  if (p.type === 2) throw new SecretsError("UNSUPPORTED", "EncString type 2 is symmetric; an RSA key was given");
  let key;
  try {
    key = createPrivateKey({ key: privateKeyPkcs8Der, format: "der", type: "pkcs8" });
  } catch {
    throw new SecretsError("INTEGRITY", "private key is not a valid PKCS#8 key");
  }
  try {
    return privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: p.type === 4 ? "sha1" : "sha256" }, p.data);
  } catch {
    throw new SecretsError("INTEGRITY", "RSA EncString does not decrypt (tampered data or wrong key)");
  }
}

/** Public SPKI DER key derived from a PKCS#8 private key (to check a decrypted private key). */
export function publicKeyOf(privateKeyPkcs8Der: Buffer): Buffer {
  return createPublicKey(createPrivateKey({ key: privateKeyPkcs8Der, format: "der", type: "pkcs8" })).export({ type: "spki", format: "der" });
}

/** `uriChecksum` of a login URI: base64 SHA-256 of the URI (then encrypted like any field). */
export const uriChecksum = (uri: string): string => createHash("sha256").update(uri, "utf8").digest("base64");
