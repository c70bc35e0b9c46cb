import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign as edSign, verify as edVerify, type KeyObject } from "node:crypto";
import { encodeAccount, encodeActivation, encodeOperator, encodeUser, fmtCreds, type ClaimsData } from "@nats-io/jwt";
import { fromPublic, fromSeed, type KeyPair } from "@nats-io/nkeys";
import { RealmError, invalid } from "../../services/kernel/errors.js";
import type { AccountState } from "./domain/account.js";
import type { UserSpec } from "./domain/user.js";
import type { AccountLimitsSpec, UserPermissions } from "./domain/validation.js";

/**
 * Signing (with @nats-io/jwt) and validating NATS JWTs. Every JWT the realm hands out or pushes goes through
 * `validateJwt` first: signature, issuer chain up to the operator (identity or signing key), expiry,
 * limits sanity, scoped users with empty permissions. Failures are RealmError INTEGRITY/VALIDATION.
 */

const enc = new TextEncoder();
export const seedOf = (kp: KeyPair) => new TextDecoder().decode(kp.getSeed());

/**
 * nkeys.js signs with tweetnacl in pure JS and re-derives the public key on every call (~27 ms per JWT);
 * this wrapper signs with node's Ed25519 and caches the public key. Same signatures (Ed25519 is deterministic).
 */
export function fastKey(kp: KeyPair): KeyPair {
  const raw = (kp as unknown as { getRawSeed(): Uint8Array }).getRawSeed(); // KP class method, not on the KeyPair interface
  const priv = createPrivateKey({ key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), Buffer.from(raw)]), format: "der", type: "pkcs8" });
  const pub = kp.getPublicKey();
  return {
    getPublicKey: () => pub,
    getSeed: () => kp.getSeed(),
    getPrivateKey: () => kp.getPrivateKey(),
    sign: (input: Uint8Array) => new Uint8Array(edSign(null, input, priv)),
    verify: (input: Uint8Array, sig: Uint8Array) => edVerify(null, input, publicKeyObject(pub), sig),
    clear: () => kp.clear(),
    seal: (...a: Parameters<KeyPair["seal"]>) => kp.seal(...a),
    open: (...a: Parameters<KeyPair["open"]>) => kp.open(...a),
  } as KeyPair;
}
export const kpFromSeed = (seed: string) => fastKey(fromSeed(enc.encode(seed)));

const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function crc16(data: Buffer): number {
  let crc = 0;
  for (const b of data) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}
function toBase32(buf: Buffer): string {
  let bits = 0, value = 0, out = "";
  for (const b of buf) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  return out;
}
const withCrc = (b: Buffer) => {
  const c = Buffer.alloc(2);
  c.writeUInt16LE(crc16(b));
  return Buffer.concat([b, c]);
};

/**
 * A new user nkey made with node's Ed25519 (nkeys.js derives the public key in pure JS, ~5 ms): same
 * encoding as nkeys (prefix byte, CRC16-XMODEM little endian, base32 without padding).
 */
export function newUserKey(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const rawSeed = (privateKey.export({ format: "der", type: "pkcs8" }) as Buffer).subarray(16);
  const rawPub = (publicKey.export({ format: "der", type: "spki" }) as Buffer).subarray(12);
  const prefix = 20 << 3; // 'U'
  const pub = toBase32(withCrc(Buffer.concat([Buffer.from([prefix]), rawPub])));
  const seed = toBase32(withCrc(Buffer.concat([Buffer.from([(18 << 3) | (prefix >> 5), (prefix & 31) << 3]), rawSeed])));
  const seedBytes = new TextEncoder().encode(seed);
  return {
    getPublicKey: () => pub,
    getSeed: () => seedBytes,
    getPrivateKey: () => {
      throw new RealmError("INTERNAL", "not needed");
    },
    sign: (input: Uint8Array) => new Uint8Array(edSign(null, input, privateKey)),
    verify: (input: Uint8Array, sig: Uint8Array) => edVerify(null, input, publicKey, sig),
    clear: () => seedBytes.fill(0),
    seal: () => {
      throw new RealmError("INTERNAL", "not a curve key");
    },
    open: () => null,
  } as KeyPair;
}
function base32(s: string): Buffer {
  let bits = 0, value = 0;
  const out: number[] = [];
  for (const ch of s) {
    const i = B32.indexOf(ch);
    if (i < 0) throw new RealmError("INTEGRITY", "nkey: not base32");
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}
const pubCache = new Map<string, KeyObject>();
/** Ed25519 public key of an nkey public string (prefix byte + 32 bytes + CRC16). */
export function publicKeyObject(nkey: string): KeyObject {
  let k = pubCache.get(nkey);
  if (!k) {
    const raw = base32(nkey);
    if (raw.length !== 35) throw new RealmError("INTEGRITY", "nkey: bad length");
    k = createPublicKey({ key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), raw.subarray(1, 33)]), format: "der", type: "spki" });
    if (pubCache.size > 10_000) pubCache.clear();
    pubCache.set(nkey, k);
  }
  return k;
}

/** Decodes a JWT and verifies its ed25519-nkey signature against `iss` (node crypto; jwt.js decode is ~8 ms). */
export function decodeVerified<T>(jwt: string): ClaimsData<T> {
  const parts = jwt.split(".");
  if (parts.length !== 3) throw new Error("not a JWT");
  const header = JSON.parse(Buffer.from(parts[0]!, "base64url").toString("utf8")) as { typ?: string; alg?: string };
  if (header.typ?.toUpperCase() !== "JWT" || header.alg !== "ed25519-nkey") throw new Error("unsupported JWT header");
  const claims = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8")) as ClaimsData<T>;
  if (!edVerify(null, Buffer.from(`${parts[0]}.${parts[1]}`), publicKeyObject(claims.iss), Buffer.from(parts[2]!, "base64url"))) throw new Error("bad signature");
  return claims;
}

/** The JSON limits object nats-server 2.9.10 reads; every field set (jwt.js has no defaults). */
export function limitsClaim(l: AccountLimitsSpec): Record<string, number | boolean> {
  return {
    subs: l.subs, data: l.data, payload: l.payload, imports: l.imports, exports: l.exports, wildcards: l.wildcards, conn: l.conn, leaf: l.leaf,
    mem_storage: l.memStorage, disk_storage: l.diskStorage, streams: l.streams, consumer: l.consumer,
  };
}

export function permsClaim(p: UserPermissions | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (p?.pub) out.pub = { allow: p.pub.allow ?? [], deny: p.pub.deny ?? [] };
  if (p?.sub) out.sub = { allow: p.sub.allow ?? [], deny: p.sub.deny ?? [] };
  if (p?.resp) out.resp = { max: p.resp.max, ttl: p.resp.ttlMs * 1_000_000 };
  return out;
}

export interface OperatorSigner {
  operatorPublicKey: string;
  signingKey: KeyPair;
}

/** Account JWT from the account's state; `accountKeys` resolves import account names to public keys. */
export async function signAccount(
  state: AccountState,
  signer: OperatorSigner,
  resolve: { accountKey(name: string): string; activation?(importer: AccountState, exporter: string, subject: string, type: "service" | "stream"): Promise<string | undefined> },
): Promise<string> {
  const imports = [];
  for (const im of state.imports) {
    const token = resolve.activation ? await resolve.activation(state, im.account, im.subject, im.type) : undefined;
    imports.push({ name: im.name, subject: im.subject, account: resolve.accountKey(im.account), type: im.type, ...(im.localSubject ? { local_subject: im.localSubject } : {}), ...(token ? { token } : {}) });
  }
  const claim: Record<string, unknown> = {
    limits: limitsClaim(state.limits),
    signing_keys: state.signingKeys.map((k) => (k.scope ? { kind: "user_scope", key: k.key, role: k.scope.role, template: permsClaim(k.scope.template) } : k.key)),
    exports: state.exports.map((e) => ({ name: e.name, subject: e.subject, type: e.type, ...(e.tokenRequired ? { token_req: true } : {}) })),
    imports,
    revocations: state.revocations,
    ...(state.defaultPermissions ? { default_permissions: permsClaim(state.defaultPermissions) } : {}),
    ...(Object.keys(state.mappings).length ? { mappings: state.mappings } : {}),
    ...(state.description ? { description: state.description } : {}),
  };
  // cast: jwt.js 0.0.11 types lack `mappings`; the claim is passed through verbatim (reference §2 gap 3)
  return encodeAccount(state.name, fromPublic(state.publicKey), claim as never, { signer: signer.signingKey });
}

export async function signActivation(importerKey: string, exporter: KeyPair, subject: string, type: "service" | "stream"): Promise<string> {
  return encodeActivation(subject, fromPublic(importerKey), exporter, type, { subject } as never);
}

/** A user JWT. Scoped users get no permission/limit fields at all (the server rejects any, even empty). */
export async function signUser(spec: UserSpec, userPublicKey: string, accountPublicKey: string, signer: KeyPair, iat: number, exp: number): Promise<string> {
  const scoped = !!spec.scopedSigningKey;
  const user: Record<string, unknown> = scoped
    ? {}
    : {
        ...permsClaim(spec.permissions),
        subs: -1, data: -1, payload: -1,
        ...(spec.src?.length ? { src: spec.src } : {}),
        ...(spec.connectionTypes?.length ? { allowed_connection_types: spec.connectionTypes } : {}),
        ...(spec.bearer ? { bearer_token: true } : {}),
      };
  if (spec.tags?.length) user.tags = spec.tags;
  const jwt = await encodeUser(spec.name, fromPublic(userPublicKey), fromPublic(accountPublicKey), user as never, { signer, exp, scopedUser: scoped } as never);
  // encodeUser stamps iat itself; iat is only used for the revocation comparison, which the server reads from the JWT.
  void iat;
  return jwt;
}

export function credsFile(jwt: string, seed: string): string {
  return new TextDecoder().decode(fmtCreds(jwt, kpFromSeed(seed)));
}

export const fingerprint = (jwt: string) => createHash("sha256").update(jwt).digest("hex");

// ---------- validation ----------

type Nats = Record<string, unknown> & { type?: string };

function decodeChecked(jwt: string, what: string): ClaimsData<Nats> {
  try {
    return decodeVerified<Nats>(jwt);
  } catch {
    throw new RealmError("INTEGRITY", `${what}: JWT does not decode or its signature does not verify`);
  }
}

function checkDates(c: ClaimsData<unknown>, what: string, now: number) {
  if (c.exp && c.exp <= now) throw new RealmError("VALIDATION", `${what}: JWT expired at ${new Date(c.exp * 1000).toISOString()}`);
  if (c.nbf && c.nbf > now + 60) throw new RealmError("VALIDATION", `${what}: JWT not valid before ${new Date(c.nbf * 1000).toISOString()}`);
}

export interface TrustAnchor {
  operatorJwt: string;
}

export function operatorKeys(t: TrustAnchor): { identity: string; signing: string[] } {
  const op = decodeChecked(t.operatorJwt, "operator");
  if (op.nats.type !== "operator" || op.iss !== op.sub) throw new RealmError("INTEGRITY", "operator JWT must be self-signed");
  return { identity: op.sub, signing: ((op.nats.signing_keys as string[] | undefined) ?? []).slice() };
}

/** Validates an account JWT: signature, issued by the operator (identity or signing key), dates, limits sane. */
export function validateAccountJwt(jwt: string, trust: TrustAnchor, now = Math.floor(Date.now() / 1000)): ClaimsData<Nats> {
  const c = decodeChecked(jwt, "account");
  if (c.nats.type !== "account") throw invalid("not an account JWT");
  const ok = operatorKeys(trust);
  if (c.iss !== ok.identity && !ok.signing.includes(c.iss)) throw new RealmError("INTEGRITY", `account ${c.name}: issuer ${c.iss} is not the operator or one of its signing keys`);
  checkDates(c, `account ${c.name}`, now);
  const l = (c.nats.limits ?? {}) as Record<string, unknown>;
  for (const k of ["subs", "data", "payload", "imports", "exports", "conn", "leaf"]) {
    if (typeof l[k] !== "number" || (l[k] as number) < -1) throw invalid(`account ${c.name}: limits.${k} missing or < -1`);
  }
  const exps = (c.nats.exports as unknown[] | undefined) ?? [];
  const imps = (c.nats.imports as unknown[] | undefined) ?? [];
  if ((l.exports as number) >= 0 && exps.length > (l.exports as number)) throw invalid(`account ${c.name}: more exports than allowed`);
  if ((l.imports as number) >= 0 && imps.length > (l.imports as number)) throw invalid(`account ${c.name}: more imports than allowed`);
  return c;
}

/** Validates a user JWT against its account JWT (and through it the operator). */
export function validateUserJwt(jwt: string, accountJwt: string, trust: TrustAnchor, now = Math.floor(Date.now() / 1000)): ClaimsData<Nats> {
  const acct = validateAccountJwt(accountJwt, trust, now);
  const c = decodeChecked(jwt, "user");
  if (c.nats.type !== "user") throw invalid("not a user JWT");
  checkDates(c, `user ${c.name}`, now);
  const keys = (acct.nats.signing_keys as (string | { key: string; kind: string })[] | undefined) ?? [];
  const entry = keys.find((k) => (typeof k === "string" ? k : k.key) === c.iss);
  if (c.iss !== acct.sub) {
    if (!entry) throw new RealmError("INTEGRITY", `user ${c.name}: issuer ${c.iss} is not account ${acct.name} or one of its signing keys`);
    if (c.nats.issuer_account !== acct.sub) throw new RealmError("INTEGRITY", `user ${c.name}: issuer_account must be ${acct.sub}`);
  }
  if (entry && typeof entry !== "string") {
    const own = ["pub", "sub", "resp", "subs", "data", "payload", "src", "times", "times_location", "bearer_token", "allowed_connection_types"].filter((k) => k in c.nats);
    if (own.length) throw invalid(`user ${c.name}: a scoped user must carry no permissions or limits (has ${own.join(", ")})`);
  }
  const rev = (acct.nats.revocations ?? {}) as Record<string, number>;
  if ((rev[c.sub] ?? -1) >= c.iat || (rev["*"] ?? -1) >= c.iat) throw new RealmError("VALIDATION", `user ${c.name} is revoked`);
  return c;
}

export { encodeOperator };
