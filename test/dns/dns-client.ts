import dgram from "node:dgram";
import net from "node:net";

interface Pending {
  resolve(msg: Buffer): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * A small raw DNS client for tests: messages go out as given (over UDP the id is replaced by one of its own
 * so many can be in flight), replies come back as bytes. UDP retries on a timeout; TCP opens a connection per query.
 */
export class DnsClient {
  private sock: dgram.Socket | undefined;
  private readonly udpPending = new Map<number, Pending>();
  private nextId = 1;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly opts: { timeoutMs?: number; tries?: number } = {},
  ) {}

  private id(pending: Map<number, Pending>): number {
    for (let k = 0; k < 65536; k++) {
      const id = this.nextId;
      this.nextId = (this.nextId + 1) & 0xffff;
      if (!pending.has(id)) return id;
    }
    throw new Error("65,536 queries in flight");
  }

  private udpSocket(): dgram.Socket {
    if (this.sock) return this.sock;
    const s = dgram.createSocket("udp4");
    s.on("message", (msg) => {
      if (msg.length < 2) return;
      const p = this.udpPending.get(msg.readUInt16BE(0));
      if (!p) return;
      this.udpPending.delete(msg.readUInt16BE(0));
      clearTimeout(p.timer);
      p.resolve(msg);
    });
    this.sock = s;
    return s;
  }

  /** Sends over UDP; resolves with the reply whose id matches. */
  async udp(msg: Buffer): Promise<Buffer> {
    const tries = this.opts.tries ?? 3;
    let last: Error = new Error("no try");
    for (let t = 0; t < tries; t++) {
      try {
        return await this.udpOnce(msg);
      } catch (err) {
        last = err as Error;
      }
    }
    throw last;
  }

  private udpOnce(msg: Buffer): Promise<Buffer> {
    const s = this.udpSocket();
    const id = this.id(this.udpPending);
    const out = Buffer.from(msg);
    out.writeUInt16BE(id, 0);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.udpPending.delete(id);
        reject(new Error(`no UDP answer from ${this.host}:${this.port} within ${this.opts.timeoutMs ?? 2000} ms`));
      }, this.opts.timeoutMs ?? 2000);
      this.udpPending.set(id, { resolve: (m) => resolve(restoreId(m, msg)), reject, timer });
      s.send(out, this.port, this.host);
    });
  }

  /** Sends over TCP (RFC 1035 4.2.2 length prefix), one connection per query: a server may close one after an error. */
  tcpQuery(msg: Buffer): Promise<Buffer> {
    const out = Buffer.alloc(msg.length + 2);
    out.writeUInt16BE(msg.length, 0);
    msg.copy(out, 2);
    return new Promise((resolve, reject) => {
      const s = net.connect(this.port, this.host, () => s.write(out));
      let buf = Buffer.alloc(0);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`no TCP answer from ${this.host}:${this.port} within ${this.opts.timeoutMs ?? 2000} ms`));
      }, this.opts.timeoutMs ?? 2000);
      s.on("data", (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length < 2 || buf.length < buf.readUInt16BE(0) + 2) return;
        clearTimeout(timer);
        s.destroy();
        resolve(Buffer.from(buf.subarray(2, buf.readUInt16BE(0) + 2)));
      });
      s.on("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      s.on("close", () => {
        clearTimeout(timer);
        reject(new Error(`${this.host}:${this.port} closed the TCP connection without an answer`));
      });
    });
  }

  close(): void {
    this.sock?.close();
    this.sock = undefined;
  }
}

/**
 * A zone transfer over TCP (RFC 5936): sends `msg` (an AXFR question) and collects the messages until the
 * second SOA record (or a message that is an error).
 */
export function transferMessages(host: string, port: number, msg: Buffer, timeoutMs = 10_000): Promise<Buffer[]> {
  const out = Buffer.alloc(msg.length + 2);
  out.writeUInt16BE(msg.length, 0);
  msg.copy(out, 2);
  return new Promise((resolve, reject) => {
    const messages: Buffer[] = [];
    let soas = 0;
    let buf = Buffer.alloc(0);
    const s = net.connect(port, host, () => s.write(out));
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`AXFR from ${host}:${port} did not end within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(messages);
    };
    s.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= buf.readUInt16BE(0) + 2) {
        const m = Buffer.from(buf.subarray(2, buf.readUInt16BE(0) + 2));
        buf = buf.subarray(m.length + 2);
        messages.push(m);
        if ((m.readUInt16BE(2) & 0xf) !== 0) return done();
        soas += countSoa(m);
        if (soas >= 2) return done();
      }
    });
    s.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** SOA records in a message's answer section (read with dns-packet by the caller's own decoder is slower: this only counts). */
function countSoa(m: Buffer): number {
  let off = 12;
  const skipName = () => {
    for (;;) {
      const len = m[off]!;
      if (len === 0) return void off++;
      if ((len & 0xc0) === 0xc0) return void (off += 2);
      off += len + 1;
    }
  };
  for (let q = m.readUInt16BE(4); q > 0; q--) {
    skipName();
    off += 4;
  }
  let n = 0;
  for (let a = m.readUInt16BE(6); a > 0; a--) {
    skipName();
    if (m.readUInt16BE(off) === 6) n++;
    off += 10 + m.readUInt16BE(off + 8);
  }
  return n;
}

/** The reply with the id of the message the caller sent. */
function restoreId(reply: Buffer, sent: Buffer): Buffer {
  const b = Buffer.from(reply);
  b.writeUInt16BE(sent.readUInt16BE(0), 0);
  return b;
}

/** Runs `work` over `items` with at most `width` in flight, results in order. */
export async function pool<T, R>(items: readonly T[], width: number, work: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]!, i);
    }
  });
  await Promise.all(lanes);
  return out;
}
