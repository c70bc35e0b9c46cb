import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign as edSign, verify as edVerify, type KeyObject } from "node:crypto";
import { canonicalJson } from "./canonical.js";
import { RealmError } from "./errors.js";
import type { EnvelopeSigner, EventEnvelope } from "./envelope.js";
import { signedMessage } from "./seal-batch.js";
import { subjectMatches } from "./subjects.js";

/**
 * The realm's trust document: which key may sign the events of which subjects. Every context that writes
 * events ("writer") has an Ed25519 key; its public half is listed here with the event subjects it may
 * write, and the whole document is signed once, at bootstrap, by the realm's root key (in operator mode the
 * NATS operator identity key, which then goes back into its sealed bundle). Readers check each event's
 * signature against this list: an event signed by an unknown key, or by another context's key, does not
 * verify.
 */
export interface TrustDocument {
  format: "cim-realm-trust/1";
  /** A name for the realm (the operator name in operator mode). */
  realm: string;
  issuedAt: string;
  /** The root that signs this document: raw Ed25519 public key, base64url; `nkey` when it is a NATS operator key. */
  root: { publicKey: string; nkey?: string };
  writers: TrustedWriter[];
  /** Ed25519 by the root over the canonical JSON of the document without `signature`, base64url. */
  signature: string;
}

export interface TrustedWriter {
  /** Context name (`identity`, `dns`, ...). */
  name: string;
  /** Event subjects this writer may publish and sign (NATS wildcards). */
  subjects: string[];
  keys: { kid: string; publicKey: string; since: string }[];
}

/** Signs bytes with a root key (a NATS operator KeyPair's `sign`, or node's Ed25519). */
export interface RootSigner {
  publicKey: Uint8Array;
  sign(bytes: Uint8Array): Uint8Array;
  nkey?: string;
}

const SPKI_ED25519 = Buffer.from("302a300506032b6570032100", "hex");
const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");

export const publicKeyFromRaw = (raw: Uint8Array): KeyObject => createPublicKey({ key: Buffer.concat([SPKI_ED25519, raw]), format: "der", type: "spki" });
export const rawPublicKey = (k: KeyObject): Buffer => (k.export({ format: "der", type: "spki" }) as Buffer).subarray(SPKI_ED25519.length);
export const privateKeyFromRaw = (seed: Uint8Array): KeyObject => createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: "der", type: "pkcs8" });

/** Key id of a writer key: `<writer>:` and 16 base64url characters of the SHA-256 of the raw public key. */
export const keyIdOf = (writer: string, rawPublic: Uint8Array): string => `${writer}:${createHash("sha256").update(rawPublic).digest("base64url").slice(0, 16)}`;

/** A new Ed25519 root key held in memory (the trust root of a realm that has no NATS operator of its own). */
export function generateRootSigner(): RootSigner & { privateKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return { privateKey, publicKey: rawPublicKey(publicKey), sign: (b) => edSign(null, b, privateKey) };
}

/** A context's event-signing key: its id in the trust document and the private key. */
export class EventSigningKey implements EnvelopeSigner {
  private constructor(
    readonly writer: string,
    readonly kid: string,
    private readonly key: KeyObject,
  ) {}

  static generate(writer: string): EventSigningKey {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    return new EventSigningKey(writer, keyIdOf(writer, rawPublicKey(publicKey)), privateKey);
  }

  static fromPem(writer: string, pem: string): EventSigningKey {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== "ed25519") throw new RealmError("INTEGRITY", `event key of ${writer} is not an Ed25519 key`);
    return new EventSigningKey(writer, keyIdOf(writer, rawPublicKey(createPublicKey(key))), key);
  }

  get publicKey(): string {
    return rawPublicKey(createPublicKey(this.key)).toString("base64url");
  }

  toPem(): string {
    return this.key.export({ format: "pem", type: "pkcs8" }) as string;
  }

  sign(message: Uint8Array): string {
    return edSign(null, message, this.key).toString("base64url");
  }

  /** Never print the key. */
  toJSON(): object {
    return { writer: this.writer, kid: this.kid };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `EventSigningKey(${this.kid})`;
  }
}

const unsignedBody = (doc: Omit<TrustDocument, "signature"> & { signature?: string }) => {
  const { signature: _s, ...rest } = doc;
  return Buffer.from(canonicalJson(rest), "utf8");
};

/** Builds and signs a trust document for these writers' keys. */
export function signTrustDocument(realm: string, writers: { name: string; subjects: string[]; key: EventSigningKey }[], root: RootSigner, at = new Date()): TrustDocument {
  const body: Omit<TrustDocument, "signature"> = {
    format: "cim-realm-trust/1",
    realm,
    issuedAt: at.toISOString(),
    root: { publicKey: Buffer.from(root.publicKey).toString("base64url"), ...(root.nkey ? { nkey: root.nkey } : {}) },
    writers: writers.map((w) => ({ name: w.name, subjects: w.subjects, keys: [{ kid: w.key.kid, publicKey: w.key.publicKey, since: at.toISOString() }] })),
  };
  return { ...body, signature: Buffer.from(root.sign(unsignedBody(body))).toString("base64url") };
}

/** Why an event does not verify (see `TrustVerifier.check`). */
export type SealProblem = "unsigned" | "unknown-signer" | "foreign-signer" | "bad-signature";

/**
 * Checks event seals against a trust document whose own signature verified. Verified signatures are
 * remembered by CID (bounded), so reading an event a second time in this process (a command loading its
 * aggregate after the projection applied it) costs a hash, not an Ed25519 verification.
 */
export class TrustVerifier {
  private readonly keys = new Map<string, { writer: TrustedWriter; key: KeyObject }>();
  private readonly verified = new Map<string, string>();
  private readonly maxCached: number;
  /** Ed25519 verifications done (not answered from the cache): what a bench prints per event. */
  verifications = 0;

  constructor(
    readonly doc: TrustDocument,
    opts: { pinnedRoot?: string | undefined; maxCached?: number } = {},
  ) {
    if (doc.format !== "cim-realm-trust/1") throw new RealmError("INTEGRITY", `trust document: unknown format ${JSON.stringify(doc.format)}`);
    if (opts.pinnedRoot !== undefined && opts.pinnedRoot !== doc.root.publicKey && opts.pinnedRoot !== doc.root.nkey) {
      throw new RealmError("INTEGRITY", "trust document: signed by another root than the one this realm pins");
    }
    let ok = false;
    try {
      ok = edVerify(null, unsignedBody(doc), publicKeyFromRaw(Buffer.from(doc.root.publicKey, "base64url")), Buffer.from(doc.signature, "base64url"));
    } catch {
      ok = false;
    }
    if (!ok) throw new RealmError("INTEGRITY", "trust document: its signature does not verify against its root");
    for (const w of doc.writers) for (const k of w.keys) this.keys.set(k.kid, { writer: w, key: publicKeyFromRaw(Buffer.from(k.publicKey, "base64url")) });
    this.maxCached = opts.maxCached ?? 500_000;
  }

  /** The writer allowed to write `subject`, if any. */
  writerOf(subject: string): string | undefined {
    return this.doc.writers.find((w) => w.subjects.some((p) => subjectMatches(p, subject)))?.name;
  }

  writer(name: string): TrustedWriter | undefined {
    return this.doc.writers.find((w) => w.name === name);
  }

  /**
   * The seal problem of an event stored under `subject`, or null when its signature is by a key of a writer
   * that may write that subject. The caller has checked `cid` against the content.
   */
  check(subject: string, e: Pick<EventEnvelope, "cid" | "signer" | "sig" | "proof">): SealProblem | null {
    if (typeof e.signer !== "string" || typeof e.sig !== "string" || e.signer === "" || e.sig === "") return "unsigned";
    const entry = this.keys.get(e.signer);
    if (!entry) return "unknown-signer";
    if (!entry.writer.subjects.some((p) => subjectMatches(p, subject))) return "foreign-signer";
    if (this.verified.get(e.cid) === e.signer + e.sig) return null;
    const message = signedMessage(e.cid, e.proof);
    if (!message) return "bad-signature";
    // A batch signature verifies once per process: every event of the batch leads to the same root.
    const batchKey = e.proof ? `${e.signer}|${e.sig}|${message.toString("latin1")}` : undefined;
    if (!(batchKey && this.verified.get(batchKey) === "")) {
      let ok = false;
      this.verifications++;
      try {
        ok = edVerify(null, message, entry.key, Buffer.from(e.sig, "base64url"));
      } catch {
        ok = false;
      }
      if (!ok) return "bad-signature";
      if (batchKey) this.remember(batchKey, "");
    }
    this.remember(e.cid, e.signer + e.sig);
    return null;
  }

  /**
   * True when `sig` (base64url) over `message` is by the key `kid`, and that key is one of `writer`'s in the
   * trust document: what a writer signs besides events (snapshots of its projections, projection-snapshot.ts).
   * The caller domain-separates `message` so it can never be taken for an event's CID or batch root.
   */
  verifyBy(writer: string, kid: string, message: Uint8Array, sig: string): boolean {
    const entry = this.keys.get(kid);
    if (!entry || entry.writer.name !== writer) return false;
    try {
      return edVerify(null, message, entry.key, Buffer.from(sig, "base64url"));
    } catch {
      return false;
    }
  }

  /** True when this seal of this CID was verified (or made) by this process: it is in the cache. */
  knows(e: Pick<EventEnvelope, "cid" | "signer" | "sig">): boolean {
    return typeof e.signer === "string" && typeof e.sig === "string" && this.verified.get(e.cid) === e.signer + e.sig;
  }

  /** Records a seal verified elsewhere (a stream prefix covered by a verified checkpoint). */
  remember(cid: string, seal: string): void {
    if (this.verified.size >= this.maxCached) {
      // Drop the oldest quarter: Map iterates in insertion order.
      let n = this.maxCached >> 2;
      for (const k of this.verified.keys()) {
        this.verified.delete(k);
        if (--n <= 0) break;
      }
    }
    this.verified.set(cid, seal);
  }
}

/**
 * What a process holds of the realm's trust: the verifier of the document, and the event-signing keys it
 * may use (a DNS worker holds none; `realm up` holds its contexts' keys).
 */
export class RealmTrust {
  readonly verifier: TrustVerifier;

  constructor(
    doc: TrustDocument,
    private readonly keys: Map<string, EventSigningKey> = new Map(),
    opts: { pinnedRoot?: string | undefined } = {},
  ) {
    this.verifier = new TrustVerifier(doc, opts);
    for (const [writer, key] of keys) {
      const listed = this.verifier.writer(writer)?.keys.some((k) => k.kid === key.kid);
      if (!listed) throw new RealmError("INTEGRITY", `event key ${key.kid} of ${writer} is not in the trust document`);
    }
  }

  get doc(): TrustDocument {
    return this.verifier.doc;
  }

  /** The signing key of a writer; a process without it cannot append that writer's events. */
  signer(writer: string): EventSigningKey {
    const k = this.keys.get(writer);
    if (!k) throw new RealmError("INTERNAL", `this process holds no event-signing key for ${writer}`);
    return k;
  }

  hasSigner(writer: string): boolean {
    return this.keys.has(writer);
  }

  /** The same document without private keys (what a read-only worker gets). */
  readOnly(): RealmTrust {
    return new RealmTrust(this.doc);
  }

  /** Never print keys. */
  toJSON(): object {
    return { realm: this.doc.realm, writers: this.doc.writers.map((w) => w.name), signers: [...this.keys.keys()] };
  }
}

/**
 * A trust held only in memory, signed by a throw-away root: for tests and tools that run contexts in one
 * process. A realm's own trust lives in its data dir (trust-files.ts), signed by its root key.
 */
export function generateTrust(realm: string, writers: { name: string; subjects: string[] }[]): RealmTrust {
  const keyed = writers.map((w) => ({ ...w, key: EventSigningKey.generate(w.name) }));
  return new RealmTrust(signTrustDocument(realm, keyed, generateRootSigner()), new Map(keyed.map((w) => [w.name, w.key])));
}
