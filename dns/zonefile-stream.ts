import { createHash } from "node:crypto";
import { invalid } from "../services/kernel/errors.js";
import { ZoneFileParser, type ParsedZone, type ZoneFileLimits } from "./domain/zonefile.js";

/** Bounds of a zone import: the file's size and its records. */
export interface ImportLimits extends ZoneFileLimits {
  /** Bytes of the master file. Default 512 MiB. */
  maxBytes?: number;
}

export const DEFAULT_IMPORT_MAX_BYTES = 512 * 1024 ** 2;

/** A master file read and parsed whole, with what identifies it. */
export interface ReadZoneFile {
  parsed: ParsedZone;
  /** SHA-256 (hex) of the file's bytes. */
  sha256: string;
  bytes: number;
}

/**
 * Parses a master file as its bytes arrive (an HTTP body, an Object Store upload): each piece is hashed,
 * read as latin1 (one char per octet, so TXT and CAA octets, UTF-8 or not, are kept exactly; names are
 * ASCII) and fed to the parser, so the text is never held whole and an error stops the read at the line
 * that has it. Bytes past `maxBytes` are refused. There is no directory here: `$INCLUDE` is refused.
 */
export async function parseZoneStream(source: AsyncIterable<Uint8Array>, zone: string, limits: ImportLimits = {}): Promise<ReadZoneFile> {
  const maxBytes = limits.maxBytes ?? DEFAULT_IMPORT_MAX_BYTES;
  const parser = new ZoneFileParser(zone, { ...limits, binary: true, readInclude: undefined });
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const piece of source) {
    bytes += piece.length;
    if (bytes > maxBytes) throw invalid(`the master file is larger than ${maxBytes} bytes`);
    hash.update(piece);
    parser.push(Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength).toString("latin1"));
  }
  return { parsed: parser.end(), sha256: hash.digest("hex"), bytes };
}

/** The same for a file given whole as text (`zone.import` with `text`). */
export function parseZoneText(text: string, zone: string, limits: ImportLimits = {}): ReadZoneFile {
  const bytes = Buffer.byteLength(text);
  const maxBytes = limits.maxBytes ?? DEFAULT_IMPORT_MAX_BYTES;
  if (bytes > maxBytes) throw invalid(`the master file is larger than ${maxBytes} bytes`);
  const parser = new ZoneFileParser(zone, { ...limits, binary: false, readInclude: undefined });
  parser.push(text);
  return { parsed: parser.end(), sha256: createHash("sha256").update(text).digest("hex"), bytes };
}
