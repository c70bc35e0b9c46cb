import { createCipheriv, createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { md4 } from "hash-wasm";

/**
 * MS-CHAP (RFC 2433) and MS-CHAPv2 (RFC 2759) for RADIUS (RFC 2548), and the MPPE keys (RFC 3079). The
 * server side needs the NT hash, MD4(UTF-16LE(password)): a password equivalent for these protocols, kept
 * sealed in the credential store and only for persons who opted in (see identity/README.md).
 *
 * Node's OpenSSL 3 has neither MD4 nor single DES in its default provider: MD4 comes from hash-wasm (already
 * used for Argon2id), and DES-ECB is 2-key 3DES-EDE with both keys equal (E_K(D_K(E_K(x))) = E_K(x)).
 */
export const MICROSOFT = 311;

/** The credential store's name of a person's NT hash (`setSecret`/`getSecret`, sealed like every value there). */
export const ntHashSecret = (principal: string) => `nt-hash:${principal}`;
export const MsAttr = {
  ChapResponse: 1,
  ChapError: 2,
  MppeEncryptionPolicy: 7,
  MppeEncryptionTypes: 8,
  ChapChallenge: 11,
  MppeSendKey: 16,
  MppeRecvKey: 17,
  Chap2Response: 25,
  Chap2Success: 26,
} as const;

const sha1 = (...parts: Buffer[]) => {
  const h = createHash("sha1");
  for (const p of parts) h.update(p);
  return h.digest();
};
const md5 = (...parts: Buffer[]) => {
  const h = createHash("md5");
  for (const p of parts) h.update(p);
  return h.digest();
};

/** NtPasswordHash (RFC 2759 8.3), hex. */
export async function ntHash(password: string): Promise<string> {
  return md4(Buffer.from(password, "utf16le"));
}

/** 7 key octets -> the 8-octet DES key (parity bits left 0: DES ignores them). */
function desKey(k7: Buffer): Buffer {
  const out = Buffer.alloc(8);
  for (let i = 0; i < 8; i++) {
    const bit = i * 7;
    const hi = k7[bit >> 3]!;
    const lo = (bit >> 3) + 1 < 7 ? k7[(bit >> 3) + 1]! : 0;
    out[i] = (((hi << (bit & 7)) | (lo >> (8 - (bit & 7)))) & 0xfe);
  }
  return out;
}

function des(key7: Buffer, block: Buffer): Buffer {
  const k = desKey(key7);
  const c = createCipheriv("des-ede-ecb", Buffer.concat([k, k]), null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(block), c.final()]);
}

/** ChallengeResponse (RFC 2759 8.5): the 8-octet challenge DES-encrypted under the three 7-octet thirds of the zero-padded hash. */
export function challengeResponse(challenge: Buffer, hash: Buffer): Buffer {
  const z = Buffer.concat([hash, Buffer.alloc(5)]);
  return Buffer.concat([des(z.subarray(0, 7), challenge), des(z.subarray(7, 14), challenge), des(z.subarray(14, 21), challenge)]);
}

/** ChallengeHash (RFC 2759 8.2). */
export function challengeHash(peerChallenge: Buffer, authenticatorChallenge: Buffer, user: string): Buffer {
  return sha1(peerChallenge, authenticatorChallenge, Buffer.from(user, "utf8")).subarray(0, 8);
}

const MAGIC1 = Buffer.from("Magic server to client signing constant");
const MAGIC2 = Buffer.from("Pad to make it do more than one iteration");

/** GenerateAuthenticatorResponse (RFC 2759 8.7): `S=` and 40 upper-case hex digits. */
export async function authenticatorResponse(hash: Buffer, ntResponse: Buffer, peerChallenge: Buffer, authenticatorChallenge: Buffer, user: string): Promise<string> {
  const hashHash = Buffer.from(await md4(hash), "hex");
  const digest = sha1(hashHash, ntResponse, MAGIC1);
  return `S=${sha1(digest, challengeHash(peerChallenge, authenticatorChallenge, user), MAGIC2).toString("hex").toUpperCase()}`;
}

/** The MPPE send and receive keys of the server (RFC 3079 3.3, 128-bit). */
export async function mppeKeys(hash: Buffer, ntResponse: Buffer): Promise<{ send: Buffer; recv: Buffer }> {
  const hashHash = Buffer.from(await md4(hash), "hex");
  const master = sha1(hashHash, ntResponse, Buffer.from("This is the MPPE Master Key")).subarray(0, 16);
  const pad1 = Buffer.alloc(40);
  const pad2 = Buffer.alloc(40, 0xf2);
  const clientSend = Buffer.from("On the client side, this is the send key; on the server side, it is the receive key.");
  const clientRecv = Buffer.from("On the client side, this is the receive key; on the server side, it is the send key.");
  return { send: sha1(master, pad1, clientRecv, pad2).subarray(0, 16), recv: sha1(master, pad1, clientSend, pad2).subarray(0, 16) };
}

/** MS-MPPE-Send/Recv-Key value (RFC 2548 2.4.2): a salt with the high bit set, then the length-prefixed key hidden like a User-Password. */
export function hideMppeKey(key: Buffer, secret: Buffer, requestAuthenticator: Buffer): Buffer {
  const salt = randomBytes(2);
  salt[0]! |= 0x80;
  const plain = Buffer.concat([Buffer.from([key.length]), key]);
  const padded = Buffer.alloc(Math.ceil(plain.length / 16) * 16);
  plain.copy(padded);
  const out = Buffer.alloc(padded.length);
  let prev = Buffer.concat([requestAuthenticator, salt]);
  for (let i = 0; i < padded.length; i += 16) {
    const b = md5(secret, prev);
    for (let j = 0; j < 16; j++) out[i + j] = padded[i + j]! ^ b[j]!;
    prev = out.subarray(i, i + 16);
  }
  return Buffer.concat([salt, out]);
}

/** A Vendor-Specific attribute value (RFC 2865 5.26) of the Microsoft vendor. */
export function vsa(vendorType: number, data: Buffer): Buffer {
  const b = Buffer.alloc(6);
  b.writeUInt32BE(MICROSOFT, 0);
  b[4] = vendorType;
  b[5] = data.length + 2;
  return Buffer.concat([b, data]);
}

/** The Microsoft sub-attributes inside Vendor-Specific attributes; malformed ones are skipped. */
export function microsoftAttributes(vsas: Buffer[]): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (const v of vsas) {
    if (v.length < 6 || v.readUInt32BE(0) !== MICROSOFT) continue;
    for (let at = 4; at + 2 <= v.length; ) {
      const len = v[at + 1]!;
      if (len < 2 || at + len > v.length) break;
      if (!out.has(v[at]!)) out.set(v[at]!, v.subarray(at + 2, at + len));
      at += len;
    }
  }
  return out;
}

export const sameBytes = (a: Buffer, b: Buffer): boolean => a.length === b.length && timingSafeEqual(a, b);
