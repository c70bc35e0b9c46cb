import { createHash } from "node:crypto";
import { malformed } from "../../services/kernel/errors.js";

/** PEM armour of DER bytes. */
export function toPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** Every PEM block with one of `labels`, in order, as DER. */
export function pemBlocks(text: string, labels: string[]): Buffer[] {
  const out: Buffer[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (!labels.includes(m[1]!)) continue;
    const body = m[2]!.replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) throw malformed(`${m[1]} block is not base64`);
    out.push(Buffer.from(body, "base64"));
  }
  return out;
}

/** DER from PEM (first block with one of `labels`) or from base64/hex-free binary already DER. */
export function fromPem(text: string, labels: string[], what: string): Buffer {
  const blocks = pemBlocks(text, labels);
  if (blocks.length === 0) throw malformed(`${what} is not PEM (expected -----BEGIN ${labels[0]}-----)`);
  return blocks[0]!;
}

export const sha256Hex = (data: Uint8Array): string => createHash("sha256").update(data).digest("hex");

/** Colon-free lowercase hex of a certificate serial from its DER INTEGER content (leading zero bytes dropped). */
export function serialHex(bytes: ArrayBuffer | Uint8Array): string {
  const b = Buffer.from(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i).toString("hex");
}

/** DER INTEGER content bytes of a positive serial given as hex (a 0x00 prefix when the top bit is set). */
export function serialBytes(hex: string): Buffer {
  const clean = hex.toLowerCase().replace(/^0+(?=.)/, "");
  if (!/^[0-9a-f]+$/.test(clean)) throw malformed(`serial ${JSON.stringify(hex)} is not hex`);
  const b = Buffer.from(clean.length % 2 ? `0${clean}` : clean, "hex");
  return b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b;
}

/** Normal form of a serial as the realm writes it: lowercase hex, no leading zeros, no colons. */
export const normalSerial = (s: string): string => serialHex(serialBytes(s.replace(/:/g, "")));
