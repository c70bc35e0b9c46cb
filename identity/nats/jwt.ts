import { createHash } from "node:crypto";
import { type ClaimsData } from "@nats-io/jwt";
import { fromSeed, type KeyPair } from "@nats-io/nkeys";
import { RealmError, invalid } from "../../services/kernel/errors.js";
import type { AccountState } from "./domain/account.js";
import type { UserSpec } from "./domain/user.js";
import type { AccountLimitsSpec, UserPermissions } from "./domain/validation.js";
import { decodeJwt, encodeAccountJwt, encodeActivationJwt, encodeOperatorJwt, encodeUserJwt, formatCreds, userJwtLength, newNkey, nkeyFromSeed, publicKeyObject, type NodeNkey, type Signer } from "./jwt-encode.js";

/**
 * Signing and validating NATS JWTs. The encoding is jwt-encode.ts (node:crypto Ed25519, byte-compatible
 * with @nats-io/jwt 0.0.11); @nats-io/jwt is left for its types. Every JWT the realm hands out or pushes is
 * validated first: signature, issuer chain up to the operator (identity or signing key), expiry, limits
 * sanity, scoped users with empty permissions. Failures are RealmError INTEGRITY/VALIDATION.
 */

const enc = new TextEncoder();
export const seedOf = (kp: KeyPair | NodeNkey) => ("seed" in kp && typeof kp.seed === "string" ? kp.seed : new TextDecoder().decode((kp as KeyPair).getSeed()));

/**
 * An nkey seed as a KeyPair (the @nats-io/nkeys interface, for code that hands keys to jwt.js): signs with
 * node's Ed25519 and knows its public key without pure-JS derivation (nkeys.js derives the key pair again on
 * every call, ~5 ms). Only `getPrivateKey` (which jwt.js calls to check a signer) falls back to nkeys.js.
 */
export function kpFromSeed(seed: string): KeyPair {
  const k = nkeyFromSeed(seed);
  let slow: KeyPair | undefined;
  const nk = () => (slow ??= fromSeed(enc.encode(seed)));
  return {
    getPublicKey: () => k.publicKey,
    getSeed: () => enc.encode(seed),
    getPrivateKey: () => nk().getPrivateKey(),
    sign: (input: Uint8Array) => new Uint8Array(k.sign(input)),
    verify: (input: Uint8Array, sig: Uint8Array) => k.verify(input, sig),
    clear: () => slow?.clear(),
    seal: (...a: Parameters<KeyPair["seal"]>) => nk().seal(...a),
    open: (...a: Parameters<KeyPair["open"]>) => nk().open(...a),
  } as KeyPair;
}

/** A new user nkey made by node's Ed25519 (same encoding as nkeys: prefix byte, CRC16-XMODEM LE, base32). */
export function newUserKey(): KeyPair {
  const k = newNkey("U");
  const seedBytes = enc.encode(k.seed);
  return {
    getPublicKey: () => k.publicKey,
    getSeed: () => seedBytes,
    getPrivateKey: () => {
      throw new RealmError("INTERNAL", "not needed");
    },
    sign: (input: Uint8Array) => new Uint8Array(k.sign(input)),
    verify: (input: Uint8Array, sig: Uint8Array) => k.verify(input, sig),
    clear: () => seedBytes.fill(0),
    seal: () => {
      throw new RealmError("INTERNAL", "not a curve key");
    },
    open: () => null,
  } as KeyPair;
}

export { newNkey, nkeyFromSeed, publicKeyObject, type NodeNkey, type Signer };

/** Decodes a JWT and verifies its ed25519-nkey signature against `iss` (node crypto; jwt.js decode is ~8 ms). */
export function decodeVerified<T>(jwt: string): ClaimsData<T> {
  return decodeJwt<ClaimsData<T>>(jwt);
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
  signingKey: Signer;
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
  return encodeAccountJwt(state.name, state.publicKey, claim, signer.signingKey);
}

export async function signActivation(importerKey: string, exporter: Signer, subject: string, type: "service" | "stream"): Promise<string> {
  return encodeActivationJwt(subject, importerKey, exporter.getPublicKey(), type, { subject }, exporter);
}

/** The operator JWT (self-signed by the operator identity key). */
export function signOperator(name: string, identity: Signer, claim: { signing_keys: string[]; system_account: string }): string {
  return encodeOperatorJwt(name, identity.getPublicKey(), claim, identity);
}

/** The `nats` claim of a user. Scoped users get no permission/limit fields at all (the server rejects any, even empty). */
export function userClaim(spec: UserSpec): Record<string, unknown> {
  const user: Record<string, unknown> = spec.scopedSigningKey
    ? {}
    : {
        ...permsClaim(spec.permissions),
        subs: -1, data: -1, payload: -1,
        ...(spec.src?.length ? { src: spec.src } : {}),
        ...(spec.connectionTypes?.length ? { allowed_connection_types: spec.connectionTypes } : {}),
        ...(spec.bearer ? { bearer_token: true } : {}),
      };
  if (spec.tags?.length) user.tags = spec.tags;
  return user;
}

/** A user JWT issued at `iat` (the time its event records, which revocations compare with) until `exp`. */
export function userJwt(spec: UserSpec, userPublicKey: string, accountPublicKey: string, signer: Signer, iat: number, exp: number): string {
  return encodeUserJwt(spec.name, userPublicKey, accountPublicKey, userClaim(spec), signer, { exp, iat, scopedUser: !!spec.scopedSigningKey });
}

/** Any user key: a stand-in of the right length where only the JWT's length is wanted. */
const SOME_USER_KEY = `U${"A".repeat(55)}`;
/** The length of the user JWT `userJwt` makes for `spec` (the user's own key does not change it). */
export function userJwtSize(spec: UserSpec, accountPublicKey: string, signerKey: string, iat: number, exp: number): number {
  return userJwtLength(spec.name, SOME_USER_KEY, accountPublicKey, userClaim(spec), signerKey, { exp, iat, scopedUser: !!spec.scopedSigningKey });
}

export async function signUser(spec: UserSpec, userPublicKey: string, accountPublicKey: string, signer: Signer, iat: number, exp: number): Promise<string> {
  return userJwt(spec, userPublicKey, accountPublicKey, signer, iat, exp);
}

export const credsFile = (jwt: string, seed: string): string => formatCreds(jwt, seed);

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

/**
 * Decoded and verified JWTs the realm trusts as issuers (the operator JWT, account JWTs): the signature of
 * the same string is checked once; the claims (shared, never modified) are checked again on every use.
 */
const verified = new Map<string, ClaimsData<Nats>>();
function decodeCached(jwt: string, what: string): ClaimsData<Nats> {
  let c = verified.get(jwt);
  if (!c) {
    c = decodeChecked(jwt, what);
    if (verified.size >= 1_000) verified.clear();
    verified.set(jwt, c);
  }
  return c;
}

export function operatorKeys(t: TrustAnchor): { identity: string; signing: string[] } {
  const op = decodeCached(t.operatorJwt, "operator");
  if (op.nats.type !== "operator" || op.iss !== op.sub) throw new RealmError("INTEGRITY", "operator JWT must be self-signed");
  return { identity: op.sub, signing: ((op.nats.signing_keys as string[] | undefined) ?? []).slice() };
}

/** Validates an account JWT: signature, issued by the operator (identity or signing key), dates, limits sane. */
export function validateAccountJwt(jwt: string, trust: TrustAnchor, now = Math.floor(Date.now() / 1000)): ClaimsData<Nats> {
  const c = decodeCached(jwt, "account");
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
  return checkUserClaims(decodeChecked(jwt, "user"), acct, now);
}

/**
 * The check of a user JWT the realm has just signed, before it is handed out: the claims as validateUserJwt
 * checks them (issuer chain through the validated account JWT, dates, a scoped user without permissions, not
 * revoked), read back from the JWT's bytes, and `iss` is the key that signed. The signature itself is not
 * verified again: OpenSSL made it with the very key `iss` was derived from, and verifying costs more than
 * signing and making the user's key together (~170 us against ~70 + ~85 us); jwt-encode.test.ts verifies
 * what the encoder signs with nkeys.js, and nats-server verifies every JWT at connect.
 */
export function checkIssuedUserJwt(jwt: string, signerKey: string, accountJwt: string, trust: TrustAnchor, now = Math.floor(Date.now() / 1000)): ClaimsData<Nats> {
  return checkIssuedUserJwtOf(jwt, signerKey, validateAccountJwt(accountJwt, trust, now), now);
}

/** checkIssuedUserJwt against account claims validated once (a batch of users of one account). */
export function checkIssuedUserJwtOf(jwt: string, signerKey: string, acct: ClaimsData<Nats>, now: number): ClaimsData<Nats> {
  let c: ClaimsData<Nats>;
  try {
    c = JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString("utf8")) as ClaimsData<Nats>;
  } catch {
    throw new RealmError("INTEGRITY", "user: JWT does not decode");
  }
  if (c.iss !== signerKey) throw new RealmError("INTEGRITY", `user ${c.name}: signed by ${c.iss}, not ${signerKey}`);
  return checkUserClaims(c, acct, now);
}

function checkUserClaims(c: ClaimsData<Nats>, acct: ClaimsData<Nats>, now: number): ClaimsData<Nats> {
  if (c.nats?.type !== "user") throw invalid("not a user JWT");
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
