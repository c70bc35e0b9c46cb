import { once } from "node:events";
import type net from "node:net";
import type { WireRecord } from "./authority.js";
import { lowerCaseFrom } from "./names-wire.js";
import { MAX_MESSAGE, MessageWriter } from "./wire.js";
import { tsigSize, type TsigResponder } from "./tsig.js";

/**
 * Writes a zone transfer (RFC 5936) to a TCP connection as it goes: records are encoded straight into the
 * message being filled, with names compressed within the message as knot does (RFC 1035 4.1.4; pointers
 * never cross messages), a full message (at most 64 KiB, each repeating the question) is written with its
 * length prefix, and when the socket's buffer is full the writer waits for it to drain. A transfer of a
 * million records holds one message at a time, not the records or the encoded zone.
 */
export class TransferWriter {
  private buf!: Buffer;
  private writer!: MessageWriter;
  private count = 0;
  /** Where records start in a message: header, question. */
  private readonly start: number;
  /** Names may point into the question from this label on (the labels the query wrote in lower case). */
  private readonly from: number;
  messages = 0;

  /**
   * @param question the query's question octets (name, type, class)
   * @param qname the question's name in lower case
   */
  constructor(
    private readonly socket: net.Socket,
    private readonly id: number,
    private readonly question: Buffer,
    private readonly qname: string,
    /** Signs every message (RFC 8945 5.3.1) when the request was signed; room for the TSIG is kept in each. */
    private readonly signer?: { responder: TsigResponder; key: Parameters<typeof tsigSize>[0] },
  ) {
    this.start = 12 + question.length;
    const probe = Buffer.alloc(12 + question.length);
    question.copy(probe, 12);
    this.from = lowerCaseFrom(probe, 12);
    this.fresh();
  }

  /** A new message: its own buffer (the last one went to the socket), length prefix and header first. */
  private fresh(): void {
    this.buf = Buffer.allocUnsafe(2 + MAX_MESSAGE);
    this.question.copy(this.buf, 2 + 12);
    this.writer = new MessageWriter(this.start, this.qname, MAX_MESSAGE - (this.signer ? tsigSize(this.signer.key) : 0), { from: this.from, buf: this.buf.subarray(2), keepNames: false });
    this.count = 0;
  }

  /** False once the connection is gone (the transfer stops). */
  get open(): boolean {
    return !this.socket.destroyed && this.socket.writable;
  }

  /** Adds a record, writing the message first when the record would not fit; waits while the socket is full. */
  async add(r: WireRecord): Promise<void> {
    if (this.writer.tryRecord(r)) {
      this.count++;
      return;
    }
    if (this.count === 0) throw new Error(`record ${r.name} ${r.type} does not fit in a DNS message`);
    await this.flush();
    if (!this.writer.tryRecord(r)) throw new Error(`record ${r.name} ${r.type} does not fit in a DNS message`);
    this.count++;
  }

  /** Writes the message filled so far (if it holds records, or `always`), then waits for the socket to drain if it must. */
  async flush(always = false, rcode = 0): Promise<void> {
    if (this.count === 0 && !always) return;
    const b = this.buf;
    const end = 2 + this.writer.off;
    b.writeUInt16BE(end - 2, 0);
    b.writeUInt16BE(this.id, 2);
    b.writeUInt16BE(0x8000 | (rcode === 0 ? 0x0400 : 0) | rcode, 4);
    b.writeUInt16BE(1, 6);
    b.writeUInt16BE(this.count, 8);
    b.writeUInt32BE(0, 10);
    let out = b.subarray(0, end);
    if (this.signer) {
      const signed = this.signer.responder.sign(b.subarray(2, end));
      out = Buffer.concat([Buffer.from([signed.length >> 8, signed.length & 0xff]), signed]);
    }
    this.fresh();
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
