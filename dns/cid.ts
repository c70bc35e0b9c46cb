import { createHash } from "node:crypto";
import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import { invalid } from "../services/kernel/errors.js";
import { parseCidV1 } from "./domain/objects.js";

const SHA2_256 = 0x12;
/** multicodec `raw`: the CID of plain bytes. */
export const RAW = 0x55;

/** CIDv1 of bytes: codec `raw` (or the one given), multihash sha2-256. */
export function cidOfBytes(bytes: Uint8Array, codec = RAW): string {
  return CID.createV1(codec, Digest.create(SHA2_256, createHash("sha256").update(bytes).digest())).toString();
}

/**
 * True when `bytes` hash to the CID's digest (sha2-256 only; other hash functions are refused, not
 * guessed). The codec is taken from the CID: the bytes are its encoded block.
 */
export function verifyContent(cidText: string, bytes: Uint8Array): boolean {
  const cid = parseCidV1(cidText);
  if (cid.multihash.code !== SHA2_256) throw invalid(`CID ${cidText} uses multihash 0x${cid.multihash.code.toString(16)}; only sha2-256 is verified`);
  const digest = createHash("sha256").update(bytes).digest();
  return Buffer.compare(Buffer.from(cid.multihash.digest), digest) === 0;
}
