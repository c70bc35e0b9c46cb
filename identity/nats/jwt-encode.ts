import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign as edSign, verify as edVerify, type KeyObject } from "node:crypto";

/**
 * NATS nkeys and JWTs with node:crypto Ed25519, byte for byte as @nats-io/jwt 0.0.11 writes them.
 *
 * jwt.js signs with nkeys.js, which runs Ed25519 in pure JavaScript (tweetnacl) and derives the key pair from
 * the seed again on every `getPublicKey`, `getPrivateKey` and `sign` (one scalar multiplication each, ~5 ms
 * here). `encodeUser` with a signing key alone derives it three times. Here keys are node KeyObjects
 * (OpenSSL), derived once per seed, and imported and exported as JWK: node 20's DER import and export go
 * through OpenSSL 3's generic decoders and cost more than the signature (createPrivateKey from PKCS#8
 * ~0.7 ms, from JWK ~0.08 ms).
 *
 * The claims are assembled exactly as jwt.js does (test/nats-accounts/jwt-encode.test.ts compares the two):
 * claim order `exp?, nbf?, aud, name, sub, nats, iss, iat, jti`; `aud` defaults to "NATS"; `nats` gets
 * `issuer_account` (when a signing key signs), `type` (activations first `kind`) and `version: 2`, in that
 * order after the caller's fields; unscoped users start from `{data: -1, payload: -1, subs: -1}`; `jti` is the
 * standard base64 (with padding) of SHA-512 over the JSON of the claims without `jti`; header
 * `{"typ":"JWT","alg":"ed25519-nkey"}`; parts base64url without padding; the signature is the issuer's
 * Ed25519 signature over `header.payload`. Two differences, both on inputs the realm does not produce:
 * text is UTF-8 (jwt.js runs `btoa` over the JSON, which writes characters up to U+00FF as Latin-1 and
 * throws above), and `issuer_account` is written only when the signer is not the issuer itself (jwt.js
 * writes it whenever a `signer` option is given, even the issuer's own key).
 */

// ---------- nkeys: prefix byte, payload, CRC16-XMODEM little endian, base32 without padding ----------

export const NkeyPrefix = { seed: 18 << 3, private: 15 << 3, operator: 14 << 3, server: 13 << 3, cluster: 2 << 3, account: 0, user: 20 << 3, curve: 23 << 3 } as const;
const PUBLIC_PREFIXES: number[] = [NkeyPrefix.operator, NkeyPrefix.server, NkeyPrefix.cluster, NkeyPrefix.account, NkeyPrefix.user];
export type NkeyRole = "O" | "A" | "U";
const ROLE_PREFIX: Record<NkeyRole, number> = { O: NkeyPrefix.operator, A: NkeyPrefix.account, U: NkeyPrefix.user };

export class NkeyError extends Error {}

const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const B32_INDEX = new Int8Array(128).fill(-1);
for (let i = 0; i < B32.length; i++) B32_INDEX[B32.charCodeAt(i)] = i;

const CRC_TABLE = new Uint16Array(256);
for (let n = 0; n < 256; n++) {
  let c = n << 8;
  for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
  CRC_TABLE[n] = c;
}
export function crc16(data: Uint8Array): number {
  let crc = 0;
  for (const b of data) crc = ((crc << 8) & 0xffff) ^ CRC_TABLE[((crc >> 8) ^ b) & 0xff]!;
  return crc;
}

export function base32Encode(buf: Uint8Array): string {
  let bits = 0, value = 0, out = "";
  for (const b of buf) {
    value = ((value << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  return out;
}

export function base32Decode(s: string): Buffer {
  let bits = 0, value = 0, n = 0;
  const out = Buffer.allocUnsafe(Math.floor((s.length * 5) / 8));
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const v = c < 128 ? B32_INDEX[c]! : -1;
    if (v < 0) throw new NkeyError("nkey: not base32");
    value = ((value << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out[n++] = (value >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  return out.subarray(0, n);
}

function withCrc(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(body.length + 2);
  out.set(body);
  out.writeUInt16LE(crc16(body), body.length);
  return out;
}

/** Decodes and CRC-checks an nkey string; returns its bytes without the checksum. */
function unpack(nkey: string): Buffer {
  const raw = base32Decode(nkey);
  if (raw.length < 4) throw new NkeyError("nkey: too short");
  const body = raw.subarray(0, raw.length - 2);
  if (raw.readUInt16LE(raw.length - 2) !== crc16(body)) throw new NkeyError("nkey: bad checksum");
  return body;
}

export const encodePublicNkey = (prefix: number, raw: Uint8Array): string => base32Encode(withCrc(Buffer.concat([Buffer.from([prefix]), raw])));
export const encodeSeedNkey = (prefix: number, raw: Uint8Array): string =>
  base32Encode(withCrc(Buffer.concat([Buffer.from([NkeyPrefix.seed | (prefix >> 5), (prefix & 31) << 3]), raw])));

/** The raw 32-byte Ed25519 public key of a public nkey (`O…`, `A…`, `U…`, `N…`, `C…`). */
export function rawPublicKey(nkey: string): Buffer {
  const body = unpack(nkey);
  if (body.length !== 33 || !PUBLIC_PREFIXES.includes(body[0]!)) throw new NkeyError("nkey: not a public key");
  return body.subarray(1);
}

/** The role prefix and raw 32-byte Ed25519 seed of a seed nkey (`SO…`, `SA…`, `SU…`). */
export function rawSeed(seed: string): { prefix: number; raw: Buffer } {
  const body = unpack(seed);
  if (body.length !== 34 || (body[0]! & 0xf8) !== NkeyPrefix.seed) throw new NkeyError("nkey: not a seed");
  const prefix = ((body[0]! & 7) << 5) | ((body[1]! & 0xf8) >> 3);
  if (!PUBLIC_PREFIXES.includes(prefix)) throw new NkeyError("nkey: seed of an unknown role");
  return { prefix, raw: body.subarray(2) };
}

// ---------- Ed25519 keys as node KeyObjects ----------

/** What signs a JWT: its public nkey and Ed25519. `@nats-io/nkeys` KeyPairs fit too (slowly). */
export interface Signer {
  getPublicKey(): string;
  sign(input: Uint8Array): Uint8Array;
}

/** An nkey whose private half is a node KeyObject. */
export interface NodeNkey extends Signer {
  readonly publicKey: string;
  readonly seed: string;
  readonly privateKey: KeyObject;
  verify(input: Uint8Array, sig: Uint8Array): boolean;
}

function nodeNkey(publicKey: string, seed: string, privateKey: KeyObject): NodeNkey {
  return {
    publicKey,
    seed,
    privateKey,
    getPublicKey: () => publicKey,
    sign: (input) => edSign(null, input, privateKey),
    verify: (input, sig) => edVerify(null, input, publicKeyObject(publicKey), sig),
  };
}

/** A new key of a role (operator, account, user), made by OpenSSL; the seed and public key in nkey encoding. */
export function newNkey(role: NkeyRole): NodeNkey {
  const { privateKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  const prefix = ROLE_PREFIX[role];
  return nodeNkey(encodePublicNkey(prefix, Buffer.from(jwk.x!, "base64url")), encodeSeedNkey(prefix, Buffer.from(jwk.d!, "base64url")), privateKey);
}

const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");
const seedCache = new Map<string, NodeNkey>();
/**
 * The key of an nkey seed. Online keys are derived once: the cache is keyed by a SHA-256 of the seed and
 * bounded. `cache: false` for a key that must not outlive its use (the operator identity key).
 */
export function nkeyFromSeed(seed: string, opts: { cache?: boolean } = {}): NodeNkey {
  const id = opts.cache === false ? undefined : createHash("sha256").update(seed).digest("base64");
  let k = id === undefined ? undefined : seedCache.get(id);
  if (!k) {
    const { prefix, raw } = rawSeed(seed);
    // PKCS#8 is the import that derives the public half without our supplying it (~1 ms, once per seed).
    const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, raw]), format: "der", type: "pkcs8" });
    const x = createPublicKey(privateKey).export({ format: "jwk" }).x!;
    k = nodeNkey(encodePublicNkey(prefix, Buffer.from(x, "base64url")), seed, privateKey);
    if (id !== undefined) {
      if (seedCache.size >= 1_000) seedCache.clear();
      seedCache.set(id, k);
    }
  }
  return k;
}

const pubCache = new Map<string, KeyObject>();
/** The Ed25519 public KeyObject of a public nkey (cached, bounded). */
export function publicKeyObject(nkey: string): KeyObject {
  let k = pubCache.get(nkey);
  if (!k) {
    k = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: rawPublicKey(nkey).toString("base64url") }, format: "jwk" });
    if (pubCache.size >= 10_000) pubCache.clear();
    pubCache.set(nkey, k);
  }
  return k;
}

// ---------- JWTs ----------

export interface JwtOptions {
  exp?: number;
  nbf?: number;
  /** Default "NATS" (as jwt.js). */
  aud?: string;
  /** Unix seconds; default now. */
  iat?: number;
}

type Json = Record<string, unknown>;
const HEADER = Buffer.from(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" })).toString("base64url");

function checkRole(key: string, roles: string, what: string): void {
  if (!roles.includes(key.charAt(0))) throw new NkeyError(`${what}: unexpected key type ${key.charAt(0)} - wanted ${roles.split("").join(",")}`);
}

function initClaim(o: JwtOptions, name: string, sub: string, nats: Json): Json {
  const claim: Json = {};
  if (o.exp !== undefined) claim.exp = o.exp;
  if (o.nbf !== undefined) claim.nbf = o.nbf;
  claim.aud = o.aud || "NATS";
  claim.name = name;
  claim.sub = sub;
  claim.nats = nats;
  return claim;
}

/** The claims' JSON as signed (before `jti`): sets iss, iat and nats.version on claims assembled below. */
function claimJson(claim: Json, issuer: string, iat: number | undefined): string {
  claim.iss = issuer;
  claim.iat = iat ?? Math.floor(Date.now() / 1000);
  (claim.nats as Json).version = 2;
  return JSON.stringify(claim);
}

/** Adds `jti` (SHA-512 of the claims' JSON, as jwt.js) and signs header.payload. */
function signClaimJson(json: string, signer: Signer): string {
  const jti = createHash("sha512").update(json).digest("base64");
  // = JSON.stringify({...claim, jti}): jti comes last and base64 needs no escaping.
  const body = `${HEADER}.${Buffer.from(`${json.slice(0, -1)},"jti":"${jti}"}`).toString("base64url")}`;
  return `${body}.${Buffer.from(signer.sign(Buffer.from(body, "latin1"))).toString("base64url")}`;
}

function sign(claim: Json, signer: Signer, iat: number | undefined): string {
  return signClaimJson(claimJson(claim, signer.getPublicKey(), iat), signer);
}

const b64urlLength = (bytes: number) => Math.ceil((bytes * 4) / 3);
/**
 * The length of the JWT `signClaimJson` makes of these claims, without hashing or signing: the payload is the
 * JSON plus `,"jti":"<88 base64 characters>"`, and an Ed25519 signature is 86 base64url characters.
 */
function signedLength(json: string): number {
  return HEADER.length + 1 + b64urlLength(Buffer.byteLength(json) + 97) + 1 + 86;
}

/** As jwt.js `encodeOperator(name, okp, operator, {signer})`: self-signed unless a signing key signs. */
export function encodeOperatorJwt(name: string, operatorKey: string, operator: Json, signer: Signer, opts: JwtOptions = {}): string {
  checkRole(operatorKey, "O", "operator");
  checkRole(signer.getPublicKey(), "O", "operator signer");
  const nats: Json = { ...operator };
  nats.type = "operator";
  return sign(initClaim(opts, name, operatorKey, nats), signer, opts.iat);
}

/** As jwt.js `encodeAccount(name, akp, account, {signer})` (signer an operator key or the account itself). */
export function encodeAccountJwt(name: string, accountKey: string, account: Json, signer: Signer, opts: JwtOptions = {}): string {
  checkRole(accountKey, "A", "account");
  checkRole(signer.getPublicKey(), "OA", "account signer");
  const nats: Json = { ...account };
  nats.type = "account";
  return sign(initClaim(opts, name, accountKey, nats), signer, opts.iat);
}

/**
 * As jwt.js `encodeUser(name, ukp, account, user, {signer, scopedUser})`: an unscoped user starts from
 * `{data: -1, payload: -1, subs: -1}`, a scoped one carries only what `user` holds; `issuer_account` is the
 * account when a signing key of it signs.
 */
export function encodeUserJwt(name: string, userKey: string, accountKey: string, user: Json, signer: Signer, opts: JwtOptions & { scopedUser?: boolean } = {}): string {
  return signClaimJson(userClaimJson(name, userKey, accountKey, user, signer.getPublicKey(), opts), signer);
}

/** The length `encodeUserJwt` with these arguments gives, without making a key or a signature (any key of the role fits). */
export function userJwtLength(name: string, userKey: string, accountKey: string, user: Json, signerKey: string, opts: JwtOptions & { scopedUser?: boolean } = {}): number {
  return signedLength(userClaimJson(name, userKey, accountKey, user, signerKey, opts));
}

function userClaimJson(name: string, userKey: string, accountKey: string, user: Json, signerKey: string, opts: JwtOptions & { scopedUser?: boolean }): string {
  checkRole(accountKey, "A", "user issuer");
  checkRole(userKey, "U", "user");
  checkRole(signerKey, "A", "user signer");
  const nats: Json = opts.scopedUser ? { ...user } : { data: -1, payload: -1, subs: -1, ...user };
  if (signerKey !== accountKey) nats.issuer_account = accountKey;
  nats.type = "user";
  return claimJson(initClaim(opts, name, userKey, nats), signerKey, opts.iat);
}

/** As jwt.js `encodeActivation(name, importer, exporter, kind, data, {signer})`. */
export function encodeActivationJwt(name: string, importerKey: string, exporterKey: string, kind: "service" | "stream", data: Json, signer: Signer, opts: JwtOptions = {}): string {
  const nats: Json = { ...data };
  if (signer.getPublicKey() !== exporterKey) nats.issuer_account = exporterKey;
  nats.kind = kind;
  nats.type = "activation";
  return sign(initClaim(opts, name, importerKey, nats), signer, opts.iat);
}

/** The .creds file of a user JWT and seed, as jwt.js `fmtCreds` (and Go's `FormatUserConfig`) write it. */
export function formatCreds(jwt: string, seed: string): string {
  return `-----BEGIN NATS USER JWT-----
${jwt}
------END NATS USER JWT------

************************* IMPORTANT *************************
NKEY Seed printed below can be used sign and prove identity.
NKEYs are sensitive and should be treated as secrets.

-----BEGIN USER NKEY SEED-----
${seed}
------END USER NKEY SEED------
`;
}

/** Splits a JWT and checks its header and its Ed25519 signature against `iss`; returns the claims. */
const USER_SEED_LENGTH = 58; // base32 of 2 prefix bytes, a 32-byte seed and a CRC16
/** The length of `formatCreds(jwt, seed)` for a JWT of `jwtLength` characters and a user seed. */
export const credsLength = (jwtLength: number): number => formatCreds("", "").length + jwtLength + USER_SEED_LENGTH;

export function decodeJwt<T = Json>(jwt: string): T & { iss: string } {
  const parts = jwt.split(".");
  if (parts.length !== 3) throw new Error("not a JWT");
  const header = JSON.parse(Buffer.from(parts[0]!, "base64url").toString("utf8")) as { typ?: string; alg?: string };
  if (header.typ?.toUpperCase() !== "JWT" || header.alg !== "ed25519-nkey") throw new Error("unsupported JWT header");
  const claims = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8")) as T & { iss: string };
  if (typeof claims.iss !== "string" || !edVerify(null, Buffer.from(`${parts[0]}.${parts[1]}`, "latin1"), publicKeyObject(claims.iss), Buffer.from(parts[2]!, "base64url"))) {
    throw new Error("bad signature");
  }
  return claims;
}
