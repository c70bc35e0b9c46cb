import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { nameOctets } from "../server/names-wire.js";

/**
 * DNSSEC keys with node:crypto: ECDSA P-256 with SHA-256 (algorithm 13, RFC 6605) and Ed25519 (algorithm 15,
 * RFC 8080); their DNSKEY RDATA (RFC 4034 2.1), key tag (RFC 4034 Appendix B) and DS (RFC 4034 5.1, digest
 * type 2 = SHA-256, RFC 4509).
 */
export const DNSSEC_ALGORITHMS = [13, 15] as const;
export type DnssecAlgorithm = (typeof DNSSEC_ALGORITHMS)[number];

/** DNSKEY flags: ZONE (256) for a ZSK, ZONE|SEP (257) for a KSK. */
export const KSK_FLAGS = 257;
export const ZSK_FLAGS = 256;

export function generateKey(algorithm: DnssecAlgorithm): KeyObject {
  return algorithm === 13 ? generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey : generateKeyPairSync("ed25519").privateKey;
}

/** The public key field of a DNSKEY: P-256 is X || Y (64 octets, RFC 6605 4), Ed25519 the 32-octet key (RFC 8080 3). */
export function publicKeyField(key: KeyObject): Buffer {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  const jwk = pub.export({ format: "jwk" });
  if (jwk.kty === "EC" && jwk.crv === "P-256") return Buffer.concat([Buffer.from(jwk.x!, "base64url"), Buffer.from(jwk.y!, "base64url")]);
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519") return Buffer.from(jwk.x!, "base64url");
  throw new Error(`not a DNSSEC key of algorithm 13 or 15 (${jwk.kty} ${jwk.crv ?? ""})`);
}

export function algorithmOf(key: KeyObject): DnssecAlgorithm {
  const t = key.asymmetricKeyType;
  if (t === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") return 13;
  if (t === "ed25519") return 15;
  throw new Error(`not a DNSSEC key of algorithm 13 or 15 (${t ?? "?"})`);
}

/** DNSKEY RDATA: flags, protocol 3, algorithm, public key. */
export function dnskeyRdata(flags: number, algorithm: number, publicKey: Buffer): Buffer {
  const b = Buffer.alloc(4 + publicKey.length);
  b.writeUInt16BE(flags, 0);
  b[2] = 3;
  b[3] = algorithm;
  publicKey.copy(b, 4);
  return b;
}

/** RFC 4034 Appendix B (every algorithm but 1). */
export function keyTag(rdata: Buffer): number {
  let ac = 0;
  for (let i = 0; i < rdata.length; i++) ac += i & 1 ? rdata[i]! : rdata[i]! << 8;
  ac += (ac >> 16) & 0xffff;
  return ac & 0xffff;
}

/** A DS digest (SHA-256) of a DNSKEY at `owner`: over the owner's canonical wire form and the DNSKEY RDATA. */
export function dsDigest(owner: string, rdata: Buffer): Buffer {
  return createHash("sha256").update(nameOctets(owner.toLowerCase())).update(rdata).digest();
}

/** DS RDATA: key tag, algorithm, digest type 2, digest. */
export function dsRdata(owner: string, dnskey: Buffer): Buffer {
  const d = dsDigest(owner, dnskey);
  const b = Buffer.alloc(4 + d.length);
  b.writeUInt16BE(keyTag(dnskey), 0);
  b[2] = dnskey[3]!;
  b[3] = 2;
  d.copy(b, 4);
  return b;
}

/** The DS record in presentation form, as `dnssec-dsfromkey -2` prints it: `zone. IN DS <tag> <alg> 2 <HEX>`. */
export function dsText(owner: string, dnskey: Buffer): string {
  return `${owner} IN DS ${keyTag(dnskey)} ${dnskey[3]} 2 ${dsDigest(owner, dnskey).toString("hex").toUpperCase()}`;
}

/** A signature in the form RFC 6605 4 (r || s, 32 octets each) and RFC 8080 4 (64 octets) ask for. */
export function signData(key: KeyObject, data: Buffer): Buffer {
  return key.asymmetricKeyType === "ed25519" ? sign(null, data, key) : sign("sha256", data, { key, dsaEncoding: "ieee-p1363" });
}

/** A private key as PKCS#8 DER (what is sealed) and back. */
export const keyToDer = (key: KeyObject): Buffer => key.export({ format: "der", type: "pkcs8" });
export const keyFromDer = (der: Buffer): KeyObject => createPrivateKey({ key: der, format: "der", type: "pkcs8" });

/** A public key id independent of flags: the first 16 hex digits of SHA-256 of the public key field. */
export const keyId = (publicKey: Buffer): string => createHash("sha256").update(publicKey).digest("hex").slice(0, 16);
