import { createHash } from "node:crypto";

/**
 * The body of a snapshot: a sequence of JSON values, one per line (NDJSON), cut into chunks of at most
 * `chunkBytes` bytes for the snapshot store (a chunk may end inside a line: the reader carries the rest
 * over). Records are serialised one at a time and chunks leave as they fill, so a state of a million
 * records never becomes one string. Each chunk's sha256 goes into the signed manifest.
 */
export class RecordChunker {
  private parts: string[] = [];
  private pending = 0;
  private carry: Buffer = Buffer.alloc(0);
  records = 0;
  bytes = 0;

  constructor(
    private readonly chunkBytes: number,
    private readonly emit: (chunk: Buffer) => void,
  ) {}

  /** Serialises one record (JSON.stringify: `undefined` members are left out, as JSON has none). */
  push(record: unknown): void {
    const line = JSON.stringify(record) + "\n";
    this.parts.push(line);
    // UTF-16 length is a lower bound of the UTF-8 length: enough to decide when to cut.
    this.pending += line.length;
    this.records++;
    if (this.pending >= this.chunkBytes) this.cut(false);
  }

  private cut(final: boolean): void {
    const joined = Buffer.from(this.parts.join(""), "utf8");
    this.parts = [];
    this.pending = 0;
    let data = this.carry.length ? Buffer.concat([this.carry, joined]) : joined;
    while (data.length >= this.chunkBytes) {
      this.out(data.subarray(0, this.chunkBytes));
      data = data.subarray(this.chunkBytes);
    }
    if (final) {
      if (data.length) this.out(data);
      this.carry = Buffer.alloc(0);
    } else this.carry = Buffer.from(data);
  }

  private out(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.emit(Buffer.from(chunk));
  }

  /** Emits what is left. */
  end(): void {
    this.cut(true);
  }
}

export const chunkHash = (chunk: Uint8Array): string => createHash("sha256").update(chunk).digest("base64url");

const NEWLINE = 0x0a;

/** The records of a sequence of chunks, parsed line by line as they are consumed. */
export function* recordsOf(chunks: Iterable<Uint8Array>): Generator<unknown> {
  let carry: Buffer = Buffer.alloc(0);
  for (const c of chunks) {
    const data = carry.length ? Buffer.concat([carry, c]) : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    let start = 0;
    for (let nl = data.indexOf(NEWLINE, start); nl !== -1; nl = data.indexOf(NEWLINE, start)) {
      yield JSON.parse(data.toString("utf8", start, nl)) as unknown;
      start = nl + 1;
    }
    carry = Buffer.from(data.subarray(start));
  }
  if (carry.length) throw new SyntaxError("snapshot body ends inside a record");
}
