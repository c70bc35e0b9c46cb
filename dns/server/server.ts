import dgram from "node:dgram";
import net from "node:net";
import * as dnsPacket from "dns-packet";
import type { Logger } from "pino";
import { Authority, Rcode, type AnswerPlan, type WireRecord } from "./authority.js";
import { headerOnly, readQuery, type ParsedQuery } from "./query.js";
import type { Forwarder } from "./forwarder.js";
import { ipAllowed } from "./acl.js";
import { TransferWriter } from "./transfer.js";

export interface DnsServerOptions {
  host?: string;
  /** 0 = a free port (UDP and TCP share it). */
  port?: number;
  /** Addresses or CIDRs that may AXFR (default: loopback only). */
  transferAllow?: string[];
  /** Secondaries told by NOTIFY when a zone changes. */
  notify?: { host: string; port: number }[];
  /** Answers names outside the realm's zones through upstream resolvers; without it they are REFUSED. */
  forwarder?: Forwarder;
  /** UDP payload size the server advertises with EDNS0. */
  ednsPayload?: number;
  log?: Logger;
  /** Encoded answers kept per (name, type); cleared on every change. */
  cacheEntries?: number;
}

interface CachedAnswer {
  /** Header bytes 2..11 (flags and counts) of the full answer. */
  flags: number;
  counts: [number, number, number];
  /** Everything after the question. */
  body: Buffer;
  /** The truncated reply's body (OPT only, or nothing) and counts, used when the full answer does not fit. */
  truncBody: Buffer;
  truncAr: number;
}

const OPT_TYPE = 41;

/**
 * The realm's authoritative DNS server over UDP and TCP (RFC 1035 length-prefixed), answering from the
 * in-memory zones. Encoded answers are cached per (qname, qtype, EDNS) until the next change.
 */
export class DnsServer {
  private udp: dgram.Socket | undefined;
  private tcp: net.Server | undefined;
  private readonly cache = new Map<string, CachedAnswer>();
  private readonly sockets = new Set<net.Socket>();
  private readonly notifyTimers = new Map<string, NodeJS.Timeout>();
  /** Counters for /metrics; `changes` counts zone changes applied (re-index and cache drop: one per import). */
  readonly stats = { queries: 0, formerr: 0, dropped: 0, refused: 0, forwarded: 0, notifies: 0, transfers: 0, changes: 0 };
  port = 0;

  /** The address it listens on. */
  get host(): string {
    return this.opts.host ?? "127.0.0.1";
  }

  get forwarder(): Forwarder | undefined {
    return this.opts.forwarder;
  }

  constructor(
    readonly authority: Authority,
    private readonly opts: DnsServerOptions = {},
  ) {}

  async start(): Promise<{ port: number }> {
    const host = this.opts.host ?? "127.0.0.1";
    // Bind TCP first on the asked port (or a free one), then UDP on the same number; retry on a clash.
    for (let attempt = 0; attempt < 20; attempt++) {
      const tcp = net.createServer((s) => this.onTcp(s));
      tcp.maxConnections = 1024;
      const port = await new Promise<number>((res, rej) => {
        tcp.once("error", rej);
        tcp.listen(this.opts.port ?? 0, host, () => res((tcp.address() as net.AddressInfo).port));
      });
      const udp = dgram.createSocket({ type: host.includes(":") ? "udp6" : "udp4", recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
      const ok = await new Promise<boolean>((res) => {
        udp.once("error", () => res(false));
        udp.bind(port, host, () => res(true));
      });
      if (!ok) {
        tcp.close();
        udp.close();
        if (this.opts.port) throw new Error(`UDP port ${port} is taken`);
        continue;
      }
      udp.on("error", (err) => this.opts.log?.warn({ err: err.message }, "dns udp error"));
      udp.on("message", (msg, rinfo) => this.onUdp(msg, rinfo));
      this.udp = udp;
      this.tcp = tcp;
      this.port = port;
      return { port };
    }
    throw new Error("no free port for DNS");
  }

  async stop(): Promise<void> {
    for (const t of this.notifyTimers.values()) clearTimeout(t);
    for (const s of this.sockets) s.destroy();
    const udp = this.udp;
    const tcp = this.tcp;
    this.udp = undefined;
    this.tcp = undefined;
    await new Promise<void>((r) => (udp ? udp.close(() => r()) : r()));
    await new Promise<void>((r) => (tcp ? tcp.close(() => r()) : r()));
  }

  /** Called when a zone changed: forget encoded answers, re-index the zone, NOTIFY secondaries. */
  changed(zone: string): void {
    this.stats.changes++;
    this.cache.clear();
    this.authority.invalidate(zone);
    if (this.opts.notify?.length && this.udp) {
      clearTimeout(this.notifyTimers.get(zone));
      this.notifyTimers.set(
        zone,
        setTimeout(() => {
          this.notifyTimers.delete(zone);
          this.sendNotify(zone);
        }, 50),
      );
    }
  }

  private sendNotify(zone: string): void {
    const soa = this.authority.soaOf(zone);
    const msg = dnsPacket.encode({
      type: "query",
      id: Math.floor(Math.random() * 65536),
      flags: dnsPacket.AUTHORITATIVE_ANSWER | (4 << 11),
      questions: [{ name: zone.slice(0, -1) || ".", type: "SOA", class: "IN" }],
      answers: soa ? [soa as dnsPacket.Answer] : [],
    });
    for (const t of this.opts.notify ?? []) {
      this.stats.notifies++;
      this.udp?.send(msg, t.port, t.host);
    }
  }

  private onUdp(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    let reply: Buffer | null | Promise<Buffer | null>;
    try {
      reply = this.handle(msg, "udp", rinfo.address);
    } catch (err) {
      this.opts.log?.error({ err: String(err) }, "dns query failed");
      return;
    }
    const send = (r: Buffer | null) => {
      if (r) this.udp?.send(r, rinfo.port, rinfo.address);
    };
    if (reply instanceof Promise) reply.then(send, () => undefined);
    else send(reply);
  }

  private onTcp(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.setTimeout(10_000, () => socket.destroy());
    socket.on("error", () => socket.destroy());
    socket.on("close", () => this.sockets.delete(socket));
    let pending: Buffer = Buffer.alloc(0);
    let chain = Promise.resolve();
    socket.on("data", (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      if (pending.length > 70_000) return socket.destroy();
      while (pending.length >= 2) {
        const len = pending.readUInt16BE(0);
        if (pending.length < len + 2) break;
        const msg = pending.subarray(2, len + 2);
        pending = pending.subarray(len + 2);
        chain = chain.then(() => this.tcpMessage(socket, Buffer.from(msg))).catch(() => void socket.destroy());
      }
    });
  }

  private async tcpMessage(socket: net.Socket, msg: Buffer): Promise<void> {
    const verdict = readQuery(msg);
    if (verdict.kind === "query" && (verdict.q.qtype === 252 || verdict.q.qtype === 251) && verdict.q.opcode === 0) {
      await this.transfer(socket, verdict.q, msg);
      return;
    }
    const reply = await this.handle(msg, "tcp", socket.remoteAddress ?? "");
    if (reply && !socket.destroyed) writeFrame(socket, reply);
  }

  /**
   * One query in, one reply out (or null: drop). Never throws for any input: unreadable queries get
   * FORMERR, responses and runts are dropped.
   */
  handle(msg: Buffer, transport: "udp" | "tcp", from: string): Buffer | null | Promise<Buffer | null> {
    this.stats.queries++;
    const v = readQuery(msg);
    if (v.kind === "drop") {
      this.stats.dropped++;
      return null;
    }
    if (v.kind === "formerr") {
      this.stats.formerr++;
      return headerOnly(v.id, v.opcode, v.rd, Rcode.FORMERR);
    }
    const q = v.q;
    if (q.opcode !== 0) return headerOnly(q.id, q.opcode, q.rd, Rcode.NOTIMP);
    if (q.ednsPayload !== null && q.ednsVersion > 0) return badVersion(q, msg);
    if (q.qclass !== 1 && q.qclass !== 255) return this.reply(q, msg, transport, refused());
    if (q.qtype === 252 || q.qtype === 251 || q.qtype === OPT_TYPE) {
      // Zone transfers only over TCP (handled before this); OPT is not a question.
      return headerOnly(q.id, q.opcode, q.rd, q.qtype === OPT_TYPE ? Rcode.FORMERR : Rcode.REFUSED);
    }
    const key = `${q.qname}/${q.qtype}/${q.ednsPayload === null ? 0 : 1}`;
    const hit = this.cache.get(key);
    if (hit) return this.emit(q, msg, transport, hit);
    const fwd = this.opts.forwarder;
    const plan = fwd && fwd.handles(q.qname) && !this.authority.isAuthoritative(q.qname) ? null : this.authority.answer(q.qname, q.qtype);
    if (!plan) {
      if (!q.rd) return this.reply(q, msg, transport, refused());
      this.stats.forwarded++;
      return this.opts.forwarder!.resolve(q.qname, q.qtype).then(
        (res) => this.reply(q, msg, transport, res),
        () => headerOnly(q.id, q.opcode, q.rd, Rcode.SERVFAIL),
      );
    }
    if (plan.rcode === Rcode.REFUSED) this.stats.refused++;
    const entry = this.encodePlan(plan, q.ednsPayload !== null);
    if (this.cache.size >= (this.opts.cacheEntries ?? 100_000)) this.cache.clear();
    this.cache.set(key, entry);
    return this.emit(q, msg, transport, entry);
  }

  private reply(q: ParsedQuery, msg: Buffer, transport: "udp" | "tcp", plan: AnswerPlan & { ra?: boolean }): Buffer {
    return this.emit(q, msg, transport, this.encodePlan(plan, q.ednsPayload !== null));
  }

  private encodePlan(plan: AnswerPlan & { ra?: boolean }, edns: boolean): CachedAnswer {
    const opt: WireRecord[] = edns ? [{ name: ".", type: "OPT", class: "IN", ttl: 0, data: [], udpPayloadSize: this.opts.ednsPayload ?? 1232 } as unknown as WireRecord] : [];
    const additionals = [...plan.additionals, ...opt];
    const enc = dnsPacket.encode({
      type: "response",
      id: 0,
      flags: 0,
      questions: [],
      answers: plan.answers as dnsPacket.Answer[],
      authorities: plan.authorities as dnsPacket.Answer[],
      additionals: additionals as dnsPacket.Answer[],
    });
    const flags = 0x8000 | (plan.aa ? 0x0400 : 0) | (plan.ra ? 0x0080 : 0) | (plan.rcode & 0xf);
    const truncBody = edns ? dnsPacket.encode({ type: "response", id: 0, flags: 0, questions: [], additionals: opt as dnsPacket.Answer[] }).subarray(12) : Buffer.alloc(0);
    return { flags, counts: [plan.answers.length, plan.authorities.length, additionals.length], body: enc.subarray(12), truncBody, truncAr: opt.length };
  }

  private emit(q: ParsedQuery, msg: Buffer, transport: "udp" | "tcp", a: CachedAnswer): Buffer {
    const qlen = q.questionEnd - 12;
    const limit = transport === "tcp" ? 65535 : q.ednsPayload === null ? 512 : Math.min(q.ednsPayload, 4096);
    const full = 12 + qlen + a.body.length <= limit;
    const body = full ? a.body : a.truncBody;
    const out = Buffer.allocUnsafe(12 + qlen + body.length);
    out.writeUInt16BE(q.id, 0);
    out.writeUInt16BE(a.flags | (q.rd ? 0x0100 : 0) | (full ? 0 : 0x0200), 2);
    out.writeUInt16BE(1, 4);
    out.writeUInt16BE(full ? a.counts[0] : 0, 6);
    out.writeUInt16BE(full ? a.counts[1] : 0, 8);
    out.writeUInt16BE(full ? a.counts[2] : a.truncAr, 10);
    msg.copy(out, 12, 12, q.questionEnd);
    body.copy(out, 12 + qlen);
    return out;
  }

  /**
   * AXFR (RFC 5936; IXFR is answered the same, with the whole zone): SOA, every record, SOA, in messages of
   * up to 64 KiB built and written as the records come, at the pace the client reads (transfer.ts);
   * REFUSED unless the address is allowed.
   */
  private async transfer(socket: net.Socket, q: ParsedQuery, msg: Buffer): Promise<void> {
    const allowed = ipAllowed(socket.remoteAddress ?? "", this.opts.transferAllow ?? ["127.0.0.1", "::1"]);
    const records = allowed ? this.authority.transfer(q.qname) : null;
    const out = new TransferWriter(socket, q.id, msg.subarray(12, q.questionEnd));
    if (!records) return out.flush(true, Rcode.REFUSED);
    this.stats.transfers++;
    for (const r of records) {
      if (!out.open) return;
      await out.add(r);
    }
    await out.flush();
  }
}

/** RFC 6891 6.1.3: an EDNS version above 0 gets BADVERS (extended rcode 16) and our OPT with version 0. */
function badVersion(q: ParsedQuery, msg: Buffer): Buffer {
  const question = msg.subarray(12, q.questionEnd);
  const out = Buffer.alloc(12 + question.length + 11);
  out.writeUInt16BE(q.id, 0);
  out.writeUInt16BE(0x8000 | (q.rd ? 0x0100 : 0), 2);
  out.writeUInt16BE(1, 4);
  out.writeUInt16BE(1, 10);
  question.copy(out, 12);
  const o = 12 + question.length;
  out[o] = 0;
  out.writeUInt16BE(41, o + 1);
  out.writeUInt16BE(1232, o + 3);
  out[o + 5] = 16 >> 4; // upper 8 bits of the 12-bit rcode
  return out;
}

function refused(): AnswerPlan {
  return { rcode: Rcode.REFUSED, aa: false, answers: [], authorities: [], additionals: [], zone: null };
}

function writeFrame(socket: net.Socket, msg: Buffer): void {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length);
  socket.write(Buffer.concat([len, msg]));
}
