import { once } from "node:events";
import type net from "node:net";
import * as dnsPacket from "dns-packet";
import type { WireRecord } from "./authority.js";

/** dns-packet exports its per-record codec; its type definitions leave it out. */
interface AnswerCodec {
  answer: {
    encodingLength(a: dnsPacket.Answer): number;
    encode(a: dnsPacket.Answer, buf: Buffer, offset: number): Buffer;
  };
}
const codec = (dnsPacket as unknown as AnswerCodec).answer;

/** A DNS message over TCP is at most 65,535 octets (RFC 1035 4.2.2: a 16-bit length prefix). */
const MAX_MESSAGE = 65_535;

/**
 * Writes a zone transfer (RFC 5936) to a TCP connection as it goes: records are encoded straight into the
 * message being filled, a full message (at most 64 KiB, each repeating the question) is written with its
 * length prefix, and when the socket's buffer is full the writer waits for it to drain. A transfer of a
 * million records holds one message at a time, not the records or the encoded zone.
 */
export class TransferWriter {
  private buf: Buffer;
  private offset = 0;
  private count = 0;
  /** Where records start in a message: length prefix, header, question. */
  private readonly start: number;
  messages = 0;

  constructor(
    private readonly socket: net.Socket,
    private readonly id: number,
    private readonly question: Buffer,
  ) {
    this.start = 2 + 12 + question.length;
    this.buf = this.fresh();
  }

  private fresh(): Buffer {
    const b = Buffer.allocUnsafe(2 + MAX_MESSAGE);
    this.question.copy(b, 14);
    this.offset = this.start;
    this.count = 0;
    return b;
  }

  /** False once the connection is gone (the transfer stops). */
  get open(): boolean {
    return !this.socket.destroyed && this.socket.writable;
  }

  /** Adds a record, writing the message first when the record would not fit; waits while the socket is full. */
  async add(r: WireRecord): Promise<void> {
    const rr = r as dnsPacket.Answer;
    const len = codec.encodingLength(rr);
    if (this.start + len > 2 + MAX_MESSAGE) throw new Error(`record ${r.name} ${r.type} does not fit in a DNS message`);
    if (this.offset + len > 2 + MAX_MESSAGE) await this.flush();
    codec.encode(rr, this.buf, this.offset);
    this.offset += len;
    this.count++;
  }

  /** Writes the message filled so far (if it holds records, or `always`), then waits for the socket to drain if it must. */
  async flush(always = false, rcode = 0): Promise<void> {
    if (this.count === 0 && !always) return;
    const b = this.buf;
    b.writeUInt16BE(this.offset - 2, 0);
    b.writeUInt16BE(this.id, 2);
    b.writeUInt16BE(0x8000 | (rcode === 0 ? 0x0400 : 0) | rcode, 4);
    b.writeUInt16BE(1, 6);
    b.writeUInt16BE(this.count, 8);
    b.writeUInt32BE(0, 10);
    const out = b.subarray(0, this.offset);
    this.buf = this.fresh();
    this.messages++;
    if (!this.open) return;
    if (!this.socket.write(out)) await drained(this.socket);
  }
}

/** Resolves when the socket can take more, or is gone. */
async function drained(socket: net.Socket): Promise<void> {
  if (socket.destroyed) return;
  const ac = new AbortController();
  // Each wait is caught on its own: the one that loses the race rejects when it is aborted.
  const wait = (event: string) => once(socket, event, { signal: ac.signal }).catch(() => undefined);
  await Promise.race([wait("drain"), wait("close"), wait("error")]);
  ac.abort();
}
