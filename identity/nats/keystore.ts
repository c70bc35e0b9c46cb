import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RealmError } from "../../services/kernel/errors.js";

/**
 * Online key files (operator signing key, account keys, account signing keys): one `<pub>.nk` per key,
 * mode 0600, under `<dir>/keys`. The operator identity key never lands here: it lives only in the
 * encrypted ceremony bundle (`sealBundle`).
 */
export class KeyStore {
  constructor(readonly dir: string) {
    mkdirSync(join(dir, "keys"), { recursive: true, mode: 0o700 });
  }
  put(publicKey: string, seed: string): void {
    writeFileSync(join(this.dir, "keys", `${publicKey}.nk`), seed + "\n", { mode: 0o600 });
  }
  has(publicKey: string): boolean {
    return existsSync(join(this.dir, "keys", `${publicKey}.nk`));
  }
  /** Waits for whatever `put` started beyond the file (nothing here; SharedKeyStore shares seeds). */
  async flush(): Promise<void> {}
  /** Stops whatever the store follows (nothing here). */
  close(): void {}
  seed(publicKey: string): string {
    const f = join(this.dir, "keys", `${publicKey}.nk`);
    if (!existsSync(f)) throw new RealmError("UNAVAILABLE", `signing key ${publicKey} is not held online`);
    return readFileSync(f, "utf8").trim();
  }
}

/** Ceremony-style bundle: scrypt(N=2^15,r=8,p=1) -> AES-256-GCM over the secret; public key in clear. */
export interface SealedBundle {
  format: "cim-realm-ceremony-bundle/1";
  publicKey: string;
  kdf: { name: "scrypt"; N: number; r: number; p: number; salt: string };
  cipher: { name: "aes-256-gcm"; iv: string; tag: string; data: string };
}

const N = 1 << 15;
export function sealBundle(publicKey: string, secret: string, passphrase: string): SealedBundle {
  const salt = randomBytes(16);
  const key = scryptSync(passphrase, salt, 32, { N, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
  const iv = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", key, iv);
  c.setAAD(Buffer.from(publicKey));
  const data = Buffer.concat([c.update(secret, "utf8"), c.final()]);
  return {
    format: "cim-realm-ceremony-bundle/1", publicKey,
    kdf: { name: "scrypt", N, r: 8, p: 1, salt: salt.toString("base64") },
    cipher: { name: "aes-256-gcm", iv: iv.toString("base64"), tag: c.getAuthTag().toString("base64"), data: data.toString("base64") },
  };
}

export function openBundle(b: SealedBundle, passphrase: string): string {
  const key = scryptSync(passphrase, Buffer.from(b.kdf.salt, "base64"), 32, { N: b.kdf.N, r: b.kdf.r, p: b.kdf.p, maxmem: 64 * 1024 * 1024 });
  const d = createDecipheriv("aes-256-gcm", key, Buffer.from(b.cipher.iv, "base64"));
  d.setAAD(Buffer.from(b.publicKey));
  d.setAuthTag(Buffer.from(b.cipher.tag, "base64"));
  try {
    return Buffer.concat([d.update(Buffer.from(b.cipher.data, "base64")), d.final()]).toString("utf8");
  } catch {
    throw new RealmError("UNAUTHORIZED", "ceremony bundle: wrong passphrase or damaged bundle");
  }
}
