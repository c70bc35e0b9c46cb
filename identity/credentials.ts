import { randomBytes } from "node:crypto";
import { openBucket } from "../services/kernel/buckets.js";
import type { NatsConnection } from "@nats-io/nats-core";
import { CAS_HISTORY, KvGuard } from "../services/kernel/kv-guard.js";
import { type KV } from "@nats-io/kv";
import { argon2id, argon2Verify } from "hash-wasm";
import * as OTPAuth from "otpauth";
import { invalid } from "../services/kernel/index.js";
import type { Sealer } from "../services/kernel/seal.js";

/**
 * Secret-derived material of principals, kept OUT of the event stream: a password hash is derived from a
 * low-entropy secret and would be brute-forceable offline by anyone who can read the stream, so it lives in
 * the JetStream KV bucket `realm_identity_credentials` (history 1: a new hash replaces the old one for
 * good). The events only say `PasswordSet {at}`. The same bucket holds TOTP seeds and directory bind
 * passwords. Access to the bucket is limited by NATS permissions to the identity service, and every value
 * is sealed (AES-256-GCM, services/kernel/seal.ts) with the context `realm_identity_credentials/<key>`:
 * whoever reads the JetStream store without the realm's seal key learns neither a hash nor a seed, and a
 * value copied under another principal's key does not open.
 *
 * Passwords: Argon2id (hash-wasm), m = 19 MiB, t = 2, p = 1, 16-byte salt, 32-byte tag: the OWASP
 * Password Storage Cheat Sheet minimum for Argon2id; about 65 ms per verification on one core.
 */
export const ARGON2_PARAMS = { memorySize: 19_456, iterations: 2, parallelism: 1, hashLength: 32 } as const;
export const PASSWORD_MIN = 10;
export const PASSWORD_MAX = 1024;

export const CREDENTIALS_BUCKET = "realm_identity_credentials";

/** KV keys allow [-/_=.A-Za-z0-9]; ids may hold anything, so they go in base64url. */
const keyOf = (kind: string, id: string) => `${kind}.${Buffer.from(id, "utf8").toString("base64url")}`;

export async function hashPassword(password: string): Promise<string> {
  return argon2id({ password, salt: randomBytes(16), ...ARGON2_PARAMS, outputType: "encoded" });
}

/** A hash to verify against when the principal has none, so a missing account costs the same time. */
let dummyHash: Promise<string> | undefined;

export function checkPasswordPolicy(password: string): void {
  if (password.length < PASSWORD_MIN) throw invalid(`a password needs at least ${PASSWORD_MIN} characters`);
  if (password.length > PASSWORD_MAX) throw invalid(`a password has at most ${PASSWORD_MAX} characters`);
}

/** A value read from the bucket, opened, with the revision it was read at (for compare-and-set). */
interface Opened {
  value: string;
  revision: number;
}

export class CredentialStore {
  private readonly guard: KvGuard;

  private constructor(
    nc: NatsConnection,
    private readonly kv: KV,
    private readonly sealer: Sealer,
  ) {
    this.guard = new KvGuard(nc, kv, CREDENTIALS_BUCKET);
  }

  static async open(nc: NatsConnection, replicas: number, sealer: Sealer): Promise<CredentialStore> {
    const kv = await openBucket(nc, CREDENTIALS_BUCKET, { history: CAS_HISTORY, replicas });
    return new CredentialStore(nc, kv, sealer);
  }

  /** The AAD of a value: its bucket and key, so a sealed value only opens where it was written. */
  private static context(key: string): string {
    return `${CREDENTIALS_BUCKET}/${key}`;
  }

  private sealed(key: string, value: string): string {
    return this.sealer.seal(value, CredentialStore.context(key));
  }

  private async put(key: string, value: string): Promise<void> {
    await this.kv.put(key, this.sealed(key, value));
  }

  /** The opened value under `key`, or undefined when there is none (never written, or purged). */
  private async read(key: string): Promise<Opened | undefined> {
    const e = await this.kv.get(key);
    if (!e || e.operation !== "PUT") return undefined;
    return { value: this.sealer.openString(e.string(), CredentialStore.context(key)), revision: e.revision };
  }

  async setPassword(principal: string, password: string): Promise<void> {
    checkPasswordPolicy(password);
    await this.put(keyOf("password", principal), await hashPassword(password));
  }

  /** True when the password matches; always spends one Argon2id verification. */
  async verifyPassword(principal: string, password: string): Promise<boolean> {
    const hash = (await this.read(keyOf("password", principal)))?.value;
    if (password.length > PASSWORD_MAX) return false;
    if (!hash) {
      dummyHash ??= hashPassword(randomBytes(16).toString("hex"));
      await argon2Verify({ password, hash: await dummyHash });
      return false;
    }
    return argon2Verify({ password, hash });
  }

  async removePassword(principal: string): Promise<void> {
    await this.kv.purge(keyOf("password", principal));
  }

  /** Starts a TOTP enrollment: a new 160-bit seed, returned once as an otpauth:// URI. */
  async startTotp(principal: string, issuer: string): Promise<{ uri: string; secret: string }> {
    const secret = new OTPAuth.Secret({ size: 20 });
    await this.put(keyOf("totp", principal), secret.base32);
    await this.kv.purge(keyOf("totp-step", principal));
    const totp = new OTPAuth.TOTP({ issuer, label: principal, secret, algorithm: "SHA1", digits: 6, period: 30 });
    return { uri: totp.toString(), secret: secret.base32 };
  }

  /**
   * Checks a 6-digit code against the principal's seed, allowing one period of clock drift. A code is
   * good once: the last accepted time step is kept, and a step not after it is refused (no replay).
   */
  async verifyTotp(principal: string, code: string): Promise<boolean> {
    const seed = await this.read(keyOf("totp", principal));
    if (!seed || !/^\d{6}$/.test(code)) return false;
    const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(seed.value), algorithm: "SHA1", digits: 6, period: 30 });
    const delta = totp.validate({ token: code, window: 1 });
    if (delta === null) return false;
    const step = totp.counter() + delta;
    const lastKey = keyOf("totp-step", principal);
    const entry = await this.kv.get(lastKey);
    const last = entry?.operation === "PUT" ? this.sealer.openString(entry.string(), CredentialStore.context(lastKey)) : undefined;
    if (last !== undefined && Number(last) >= step) return false;
    try {
      // Compare-and-set on the revision read (a purge marker's, or 0 when never written): two replicas
      // cannot both accept the same code, on any server (kv-guard.ts).
      await this.guard.putIfRevision(lastKey, this.sealed(lastKey, String(step)), entry?.revision ?? 0);
    } catch {
      return false;
    }
    return true;
  }

  async removeTotp(principal: string): Promise<void> {
    await this.kv.purge(keyOf("totp", principal));
    await this.kv.purge(keyOf("totp-step", principal));
  }

  async setSecret(name: string, value: string): Promise<void> {
    await this.put(keyOf("secret", name), value);
  }

  async getSecret(name: string): Promise<string | undefined> {
    return (await this.read(keyOf("secret", name)))?.value;
  }

  /** Purges a secret with its history (a removed RADIUS client's shared secret). */
  async removeSecret(name: string): Promise<void> {
    await this.kv.purge(keyOf("secret", name));
  }
}
