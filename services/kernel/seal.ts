import { createCipheriv, createDecipheriv, createHash, createSecretKey, randomBytes, type KeyObject } from "node:crypto";
import { existsSync, linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { inspect } from "node:util";
import { RealmError, invalid } from "./errors.js";

/**
 * Sealing of secret values kept at rest in NATS KV (password hashes, TOTP seeds, OIDC keys and tokens):
 * AES-256-GCM with one realm key that lives outside NATS (a 0600 key file or `REALM_SEAL_KEY`), so reading
 * the JetStream store (a backup, a stray replica, a bucket permission too wide) yields nothing usable.
 *
 * Format: `s1.` + base64url(12-byte random IV || ciphertext || 16-byte tag). The caller's `context`
 * (`<bucket>/<key>`) is the additional authenticated data: a sealed value copied under another key does not
 * open, so entries cannot be swapped around. Random 96-bit IVs are fine for the volumes involved (well below
 * 2^32 seals per key).
 *
 * The key is held as a KeyObject in a private field and never printed: `toJSON` and `util.inspect` show
 * only a key id (a hash of the key, for telling two keys apart in a log).
 */
const PREFIX = "s1.";
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

export class Sealer {
  readonly #key: KeyObject;
  /** A non-secret fingerprint of the key (sha256 of a label and the key, 8 hex digits). */
  readonly keyId: string;

  private constructor(key: Uint8Array) {
    this.#key = createSecretKey(Buffer.from(key));
    this.keyId = createHash("sha256").update("cim-realm seal key id\0").update(key).digest("hex").slice(0, 8);
  }

  /** A random key (tests, and a fresh key file). */
  static generate(): Sealer {
    return new Sealer(randomBytes(KEY_BYTES));
  }

  static fromKey(key: Uint8Array): Sealer {
    if (key.length !== KEY_BYTES) throw invalid(`a seal key is ${KEY_BYTES} bytes, got ${key.length}`);
    return new Sealer(key);
  }

  /**
   * The realm's sealer: the key from `REALM_SEAL_KEY` (base64 or base64url of 32 bytes; for clusters,
   * where every replica needs the same key) else from `file`, which is created with a fresh key on first
   * use. A key file that group or other can read is refused: the key is worth as much as all it seals.
   */
  static open(file: string, env: NodeJS.ProcessEnv = process.env): Sealer {
    const fromEnv = env.REALM_SEAL_KEY;
    if (fromEnv !== undefined && fromEnv !== "") return Sealer.fromKey(decodeKey(fromEnv.trim(), "REALM_SEAL_KEY"));
    if (!existsSync(file)) createKeyFile(file);
    return Sealer.fromKey(readKeyFile(file));
  }

  /** A KV key part derived from a token: tokens are high-entropy, so a plain SHA-256 hides them. */
  static tokenKey(secret: string): string {
    return createHash("sha256").update(secret, "utf8").digest("base64url");
  }

  seal(plaintext: string | Uint8Array, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.#key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(context, "utf8"));
    const data = typeof plaintext === "string" ? Buffer.from(plaintext, "utf8") : plaintext;
    const body = Buffer.concat([iv, cipher.update(data), cipher.final(), cipher.getAuthTag()]);
    return PREFIX + body.toString("base64url");
  }

  /** Opens a sealed value; anything that does not authenticate under this key and context is INTEGRITY. */
  open(sealed: string, context: string): Buffer {
    const body = parse(sealed, context);
    const decipher = createDecipheriv("aes-256-gcm", this.#key, body.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(context, "utf8"));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(body.subarray(IV_BYTES, body.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new RealmError("INTEGRITY", `the sealed value of ${context} does not open: another seal key, altered bytes, or a value moved from another key`);
    }
  }

  openString(sealed: string, context: string): string {
    return this.open(sealed, context).toString("utf8");
  }

  toJSON(): string {
    return this.toString();
  }

  toString(): string {
    return `Sealer(aes-256-gcm, key id ${this.keyId})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

function parse(sealed: string, context: string): Buffer {
  const text = sealed.startsWith(PREFIX) ? sealed.slice(PREFIX.length) : "";
  const body = /^[A-Za-z0-9_-]+$/.test(text) ? Buffer.from(text, "base64url") : Buffer.alloc(0);
  if (body.length < IV_BYTES + TAG_BYTES) throw new RealmError("INTEGRITY", `the value of ${context} is not a sealed value`);
  return body;
}

/** base64 or base64url text of exactly 32 bytes; `what` names the source in the error, never the text. */
function decodeKey(text: string, what: string): Buffer {
  const key = BASE64.test(text) ? Buffer.from(text, "base64") : Buffer.alloc(0);
  if (key.length !== KEY_BYTES) throw invalid(`${what} must be the base64 or base64url text of ${KEY_BYTES} random bytes (got ${key.length} bytes)`);
  return key;
}

function readKeyFile(file: string): Buffer {
  const mode = statSync(file).mode;
  if ((mode & 0o077) !== 0) {
    throw invalid(`the seal key file ${file} is readable by group or other (mode ${(mode & 0o777).toString(8)}); run chmod 600 ${file}`);
  }
  return decodeKey(readFileSync(file, "utf8").trim(), `the seal key file ${file}`);
}

/**
 * Writes a fresh key to a private temp file and hard-links it into place: the link is atomic and fails if
 * the file exists, so two processes starting at once agree on one key and nobody reads a half-written file.
 */
function createKeyFile(file: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  writeFileSync(tmp, randomBytes(KEY_BYTES).toString("base64url"), { mode: 0o600, flag: "wx" });
  try {
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  } finally {
    unlinkSync(tmp);
  }
}
