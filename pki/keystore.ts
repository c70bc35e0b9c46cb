import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RealmError } from "../services/kernel/errors.js";
import { privateKeyFromPem, privateKeyPem, spkiDer } from "./x509/keys.js";

/**
 * Online intermediate keys, one PEM file (mode 0600) per key in the PKI data dir, named by the SHA-256 of
 * the public key. Only intermediate keys live here: the root key never reaches an online service.
 */
export class IssuerKeyStore {
  private cache = new Map<string, KeyObject>();
  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  save(key: KeyObject): string {
    const sha = publicKeySha256(createPublicKey(key));
    const file = join(this.dir, `${sha}.key.pem`);
    if (!existsSync(file)) writeFileSync(file, privateKeyPem(key), { mode: 0o600 });
    this.cache.set(sha, key);
    return sha;
  }

  load(publicKeySha256: string): KeyObject {
    const hit = this.cache.get(publicKeySha256);
    if (hit) return hit;
    const file = join(this.dir, `${publicKeySha256}.key.pem`);
    if (!existsSync(file)) throw new RealmError("UNAVAILABLE", `the intermediate key ${publicKeySha256.slice(0, 16)} is not in this PKI service's data dir`);
    const key = privateKeyFromPem(readFileSync(file, "utf8"));
    this.cache.set(publicKeySha256, key);
    return key;
  }
}

export const publicKeySha256 = (pub: KeyObject): string => createHash("sha256").update(spkiDer(pub)).digest("hex");
