import { SshWriter } from "./wire.js";

/**
 * An OpenSSH key revocation list (PROTOCOL.krl), what sshd's `RevokedKeys` and `ssh-keygen -Q` read:
 * header, then one certificates section per CA with the revoked serials (KRL_SECTION_CERT_SERIAL_LIST) and
 * key ids (KRL_SECTION_CERT_KEY_ID). Unsigned: sshd reads it from a file its operator put in place.
 */
const KRL_MAGIC = Buffer.from("SSHKRL\n\0", "latin1");
const KRL_FORMAT_VERSION = 1;
const KRL_SECTION_CERTIFICATES = 1;
const KRL_SECTION_CERT_SERIAL_LIST = 0x20;
const KRL_SECTION_CERT_KEY_ID = 0x23;

export interface KrlCa {
  /** The CA's public key blob. */
  caKeyBlob: Buffer;
  serials: bigint[];
  keyIds: string[];
}

export interface KrlInput {
  /** Monotonic version (the realm uses the stream sequence of the last revocation it includes). */
  version: bigint;
  generatedAt: Date;
  comment: string;
  cas: KrlCa[];
}

export function encodeKrl(k: KrlInput): Buffer {
  const w = new SshWriter()
    .raw(KRL_MAGIC)
    .uint32(KRL_FORMAT_VERSION)
    .uint64(k.version)
    .uint64(BigInt(Math.floor(k.generatedAt.getTime() / 1000)))
    .uint64(0n)
    .string(Buffer.alloc(0))
    .string(k.comment);
  for (const ca of k.cas) {
    const serials = [...new Set(ca.serials)].filter((s) => s > 0n).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const keyIds = [...new Set(ca.keyIds)].sort();
    if (serials.length === 0 && keyIds.length === 0) continue;
    const section = new SshWriter().string(ca.caKeyBlob).string(Buffer.alloc(0));
    if (serials.length > 0) {
      const list = new SshWriter();
      for (const s of serials) list.uint64(s);
      section.byte(KRL_SECTION_CERT_SERIAL_LIST).string(list.bytes());
    }
    if (keyIds.length > 0) {
      const list = new SshWriter();
      for (const id of keyIds) list.string(id);
      section.byte(KRL_SECTION_CERT_KEY_ID).string(list.bytes());
    }
    w.byte(KRL_SECTION_CERTIFICATES).string(section.bytes());
  }
  return w.bytes();
}
