import dgram from "node:dgram";
import net from "node:net";
import type { Logger } from "pino";
import { Authority, Rcode, type AnswerPlan, type WireRecord } from "./authority.js";
import { headerOnly, readQuery, type ParsedQuery } from "./query.js";
import { encodeSections, MAX_MESSAGE, type EncodedBody, type Sections } from "./wire.js";
import { lowerCaseFrom, nameOctets } from "./names-wire.js";
import type { Forwarder } from "./forwarder.js";
import { addressList, ipAllowed } from "./acl.js";
import { ResponseRateLimiter, slipReply, type RateLimitOptions } from "./rrl.js";
import { TransferWriter } from "./transfer.js";
import { readMessage } from "./message.js";
import { findTsig, TsigResponder, unsignedTsig, verifyRequest } from "./tsig.js";
import type { BoundKey } from "./update.js";
import type { ZoneJournal } from "./journal.js";
import { answerIxfr } from "./ixfr.js";
import { Notifier, type NotifyRetry } from "./notify.js";
import { recordCount } from "../domain/zone.js";
import type { OnlineSigner } from "../dnssec/signer.js";

export interface DnsServerOptions {
  host?: string;
  /** 0 = a free port (UDP and TCP share it). */
  port?: number;
  /** Addresses or CIDRs that may AXFR (default: loopback only). */
  transferAllow?: string[];
  /** Secondaries told by NOTIFY when any zone changes (besides each zone's own, `zone.secondaries`). */
  notify?: { host: string; port: number }[];
  /** False: this server sends no NOTIFY (DNS workers but the first: one is enough). Default true. */
  sendsNotify?: boolean;
  /** NOTIFY retransmission (notify.ts). */
  notifyRetry?: NotifyRetry;
  /** Response rate limiting over UDP (rrl.ts); off without it. */
  rateLimit?: RateLimitOptions | false;
  /** Who may have names outside the realm's zones resolved through the forwarder (addresses or CIDRs; default loopback). */
  recursionAllow?: string[];
  /** Recent serial steps of the zones (journal.ts): IXFR answers differences from it; without it, the whole zone. */
  journal?: ZoneJournal;
  /** Answers names outside the realm's zones through upstream resolvers; without it they are REFUSED. */
  forwarder?: Forwarder;
  /** UDP payload size the server advertises with EDNS0. */
  ednsPayload?: number;
  log?: Logger;
  /** Answers RFC 2136 UPDATE messages (dns/server/update.ts); without it they get NOTIMP. */
  update?: (msg: Buffer) => Buffer | null | Promise<Buffer | null>;
  /** TSIG keys (for signed zone transfers): the key of a name, or null. */
  tsigKey?: (name: string) => Promise<BoundKey | null>;
  /** Signs answers to DO queries and transfers of the zones it has keys for (dns/dnssec/). */
  dnssec?: OnlineSigner;
  /** Encoded answers kept per (name, type); cleared on every change. */
  cacheEntries?: number;
}

interface CachedAnswer {
  /** Header flags of the answer: QR, AA, RA and the RCODE (RD, CD and TC are set per reply). */
  flags: number;
  plan: Sections;
  /** The sections compressed against the question as the key spells it (lower case): for queries written in lower case. */
  lower: EncodedBody;
  /**
   * For a question with upper-case letters: the sections pointing only into the labels after the last one with
   * an upper-case letter (the pointers must not change a name's case), per that label's index, or (-1) into
   * all of a question that spells its name as the zone does. Made on need.
   */
  mixed?: Map<number, EncodedBody>;
  /** The sections cut to a size (RFC 2181 9), per `<from>/<limit>`: made on first need. */
  cut?: Map<string, EncodedBody>;
  /** Extended DNS Error info code for the OPT (RFC 8914), or 0. */
  ede: number;
  /**
   * The zone's spelling of the question's name when it is not in lower case (an owner written `MixedCase`):
   * a query spelling it the same way gets pointers to its question, as a lower-case query does.
   */
  spelling?: { name: string; wire: Buffer };
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
  readonly stats = { queries: 0, formerr: 0, dropped: 0, refused: 0, forwarded: 0, notifies: 0, transfers: 0, changes: 0, updates: 0, ixfrDiffs: 0, ixfrWhole: 0 };
  /** Sends NOTIFY and retransmits it until answered (its own stats: sent, answered, gaveUp). */
  readonly notifier: Notifier;
  /** Response rate limiting over UDP, when configured (its own stats: answered, slipped, dropped). */
  readonly rrl: ResponseRateLimiter | undefined;
  private readonly recursionAllowed: (ip: string) => boolean;
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
  ) {
    this.notifier = new Notifier(opts.host ?? "127.0.0.1", opts.notifyRetry, opts.log);
    this.rrl = opts.rateLimit ? new ResponseRateLimiter(opts.rateLimit) : undefined;
    this.recursionAllowed = addressList(opts.recursionAllow ?? ["127.0.0.0/8", "::1"]);
  }

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
    this.notifier.stop();
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
    this.scheduleNotify(zone);
  }

  /** The secondaries of a zone: its own (`zone.secondaries`) and the server's `notify` list. */
  private secondariesOf(zone: string): { host: string; port: number }[] {
    const own = this.authority.zoneState(zone)?.secondaries ?? [];
    const all = [...own, ...(this.opts.notify ?? [])];
    return all.filter((t, i) => all.findIndex((x) => x.host === t.host && x.port === t.port) === i);
  }

  /** NOTIFY 50 ms after a change (changes in a burst make one NOTIFY), retried by the notifier until answered. */
  private scheduleNotify(zone: string): void {
    if (this.opts.sendsNotify === false || !this.udp) return;
    clearTimeout(this.notifyTimers.get(zone));
    this.notifyTimers.set(
      zone,
      setTimeout(() => {
        this.notifyTimers.delete(zone);
        this.sendNotify(zone);
      }, 50),
    );
  }

  private sendNotify(zone: string): void {
    const targets = this.secondariesOf(zone);
    if (targets.length === 0 || !this.udp) return;
    const soa = this.authority.soaOf(zone);
    // A deleted zone is not notified: its secondaries find out at their next refresh (or from the catalog).
    if (!soa) return;
    this.stats.notifies += targets.length;
    this.notifier.notify(zone, soa, targets);
  }

  private onUdp(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.rrl && this.limited(msg, rinfo)) return;
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

  /**
   * Response rate limiting (rrl.ts), decided before any work: true when the datagram is not to be answered
   * in full (dropped, or answered truncated here). Only queries count: responses and runts are dropped anyway.
   */
  private limited(msg: Buffer, rinfo: dgram.RemoteInfo): boolean {
    const v = readQuery(msg);
    if (v.kind !== "query") return false;
    const verdict = this.rrl!.decide(rinfo.address);
    if (verdict === "answer") return false;
    if (verdict === "slip") this.udp?.send(slipReply(msg, v.q.questionEnd), rinfo.port, rinfo.address);
    return true;
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
      return v.q ? this.bare(v.q, msg, Rcode.FORMERR) : headerOnly(v.id, v.opcode, v.rd, Rcode.FORMERR);
    }
    const q = v.q;
    if (q.opcode === 5 && this.opts.update) {
      this.stats.updates++;
      const r = this.opts.update(msg);
      return r instanceof Promise
        ? r.catch((err: unknown) => {
            this.opts.log?.error({ err: err instanceof Error ? err.message : String(err) }, "dns update failed");
            return this.bare(q, msg, Rcode.SERVFAIL);
          })
        : r;
    }
    if (q.opcode !== 0) return this.bare(q, msg, Rcode.NOTIMP);
    // RFC 6891 6.1.3: an EDNS version above 0 gets BADVERS (extended RCODE 16) with our OPT of version 0.
    if (q.ednsPayload !== null && q.ednsVersion > 0) return this.bare(q, msg, 16);
    if (q.qclass !== 1 && q.qclass !== 255) return this.reply(q, msg, transport, refused(0));
    // Zone transfers only over TCP (handled before this: RFC 5936 4.2, AXFR over UDP is not implemented, as
    // knot says); IXFR over UDP is FORMERR without the client's SOA (RFC 1995 3, as knot), else refused;
    // type 0 is no type (NOTIMP, as knot).
    if (q.qtype === 252 || q.qtype === 0) return this.bare(q, msg, Rcode.NOTIMP);
    if (q.qtype === 251) return this.bare(q, msg, q.nscount === 0 ? Rcode.FORMERR : Rcode.REFUSED);
    const key = q.dnssecOk ? `${q.qname}/${q.qtype}/do` : `${q.qname}/${q.qtype}`;
    const hit = this.cache.get(key);
    if (hit) return this.emit(q, msg, transport, hit);
    const fwd = this.opts.forwarder;
    const plan = fwd && fwd.handles(q.qname) && !this.authority.isAuthoritative(q.qname) ? null : this.authority.answer(q.qname, q.qtype);
    if (!plan) {
      if (!q.rd) return this.reply(q, msg, transport, refused(20));
      // Recursion only for the clients the ACL names (an open resolver is a reflector); EDE 18 Prohibited.
      if (!this.recursionAllowed(from)) return this.reply(q, msg, transport, refused(18));
      this.stats.forwarded++;
      return this.opts.forwarder!.resolve(q.qname, q.qtype).then(
        (res) => this.reply(q, msg, transport, res),
        () => this.bare(q, msg, Rcode.SERVFAIL),
      );
    }
    if (plan.rcode === Rcode.REFUSED) this.stats.refused++;
    const entry = this.encodePlan(q.dnssecOk && this.opts.dnssec ? this.opts.dnssec.sign(plan, q.qname, q.qtype) : plan, q);
    if (this.cache.size >= (this.opts.cacheEntries ?? 100_000)) this.cache.clear();
    this.cache.set(key, entry);
    return this.emit(q, msg, transport, entry);
  }

  private reply(q: ParsedQuery, msg: Buffer, transport: "udp" | "tcp", plan: AnswerPlan & { ra?: boolean }): Buffer {
    return this.emit(q, msg, transport, this.encodePlan(plan, q));
  }

  private encodePlan(plan: AnswerPlan & { ra?: boolean }, q: ParsedQuery): CachedAnswer {
    const flags = 0x8000 | (plan.aa ? 0x0400 : 0) | (plan.ra ? 0x0080 : 0) | (plan.rcode & 0xf);
    const sections: Sections = { answers: plan.answers, authorities: plan.authorities, additionals: plan.additionals, glueRequired: plan.glueRequired };
    const entry: CachedAnswer = { flags, plan: sections, lower: encodeSections(sections, q.questionEnd - 12, q.qname, MAX_MESSAGE), ede: plan.ede ?? 0 };
    const owner = plan.answers[0]?.name;
    if (owner !== undefined) {
      const abs = owner.endsWith(".") ? owner : `${owner}.`;
      if (abs !== q.qname && abs.toLowerCase() === q.qname) entry.spelling = { name: abs, wire: nameOctets(abs) };
    }
    return entry;
  }

  /** The UDP payload this server advertises in its OPT (and the most it sends over UDP, as knot does). */
  private get payload(): number {
    return this.opts.ednsPayload ?? 1232;
  }

  private emit(q: ParsedQuery, msg: Buffer, transport: "udp" | "tcp", a: CachedAnswer): Buffer {
    const qlen = q.questionEnd - 12;
    const edns = q.ednsPayload !== null;
    const optLen = edns ? (a.ede ? 17 : 11) : 0;
    const limit = transport === "tcp" ? MAX_MESSAGE : edns ? Math.min(q.ednsPayload!, Math.max(512, this.payload)) : 512;
    // Pointers into the question are right only where the query spells its name as the key does (lower case).
    let from = lowerCaseFrom(msg, 12);
    let qname = q.qname;
    const sp = a.spelling;
    if (from !== 0 && sp && sp.wire.length === qlen - 4 && msg.compare(sp.wire, 0, sp.wire.length, 12, q.questionEnd - 4) === 0) {
      from = -1; // the query spells its name as the zone does: point at all of it
      qname = sp.name;
    }
    let enc = from === 0 ? a.lower : this.variant((a.mixed ??= new Map()), from, () => encodeSections(a.plan, qlen, qname, MAX_MESSAGE, Math.max(from, 0)));
    if (enc.tc || 12 + qlen + enc.body.length + optLen > limit) {
      enc = this.variant((a.cut ??= new Map()), `${from}/${limit - optLen}`, () => encodeSections(a.plan, qlen, qname, limit - optLen, Math.max(from, 0)));
    }
    const out = Buffer.allocUnsafe(12 + qlen + enc.body.length + optLen);
    out.writeUInt16BE(q.id, 0);
    out.writeUInt16BE(a.flags | (msg.readUInt16BE(2) & 0x0110) | (enc.tc ? 0x0200 : 0), 2);
    out.writeUInt16BE(1, 4);
    out.writeUInt16BE(enc.an, 6);
    out.writeUInt16BE(enc.ns, 8);
    out.writeUInt16BE(enc.ar + (edns ? 1 : 0), 10);
    msg.copy(out, 12, 12, q.questionEnd);
    enc.body.copy(out, 12 + qlen);
    if (edns) writeOpt(out, 12 + qlen + enc.body.length, this.payload, 0, q.dnssecOk, a.ede);
    return out;
  }

  /** A cached encoding of an answer (a few per answer at most: kept while under 64). */
  private variant<K>(m: Map<K, EncodedBody>, key: K, make: () => EncodedBody): EncodedBody {
    let v = m.get(key);
    if (!v) {
      v = make();
      if (m.size < 64) m.set(key, v);
    }
    return v;
  }

  /**
   * A reply with the question and no records (errors: FORMERR, NOTIMP, SERVFAIL, BADVERS), with our OPT when
   * the query had one (RFC 6891 7: an OPT in every reply to an EDNS query). `rcode` may be extended (> 15).
   */
  private bare(q: ParsedQuery, msg: Buffer, rcode: number): Buffer {
    const edns = q.ednsPayload !== null;
    const out = Buffer.allocUnsafe(q.questionEnd + (edns ? 11 : 0));
    msg.copy(out, 0, 0, q.questionEnd);
    if (edns) writeOpt(out, q.questionEnd, this.payload, rcode >> 4, q.dnssecOk);
    out.writeUInt16BE(0x8000 | (q.opcode << 11) | (msg.readUInt16BE(2) & 0x0110) | (rcode & 0xf), 2);
    out.writeUInt16BE(1, 4);
    out.writeUInt32BE(0, 6);
    out.writeUInt16BE(edns ? 1 : 0, 10);
    return out;
  }

  /**
   * AXFR (RFC 5936) and IXFR (RFC 1995: differences when the journal has them, see `incremental`): SOA, every record, SOA, in messages of
   * up to 64 KiB built and written as the records come, at the pace the client reads (transfer.ts);
   * REFUSED unless the address is allowed.
   */
  private async transfer(socket: net.Socket, q: ParsedQuery, msg: Buffer): Promise<void> {
    const signed = await this.transferKey(socket, q, msg);
    if (signed === "answered") return;
    const allowed = signed !== null || ipAllowed(socket.remoteAddress ?? "", this.opts.transferAllow ?? ["127.0.0.1", "::1"]);
    const zoneRecords = allowed ? this.authority.transfer(q.qname) : null;
    const signs = this.opts.dnssec?.signs(q.qname) ?? false;
    let records = zoneRecords && this.opts.dnssec ? this.opts.dnssec.transfer(q.qname, zoneRecords) : zoneRecords;
    const out = new TransferWriter(socket, q.id, msg.subarray(12, q.questionEnd), q.qname, signed ?? undefined);
    if (!records) return out.flush(true, Rcode.REFUSED);
    this.stats.transfers++;
    // A signed zone's journal holds record changes, not the signatures and NSEC3 chain they move: its IXFR
    // is the whole signed zone, AXFR-style (RFC 1995 4 lets a server answer so).
    if (q.qtype === 251 && !signs) records = this.incremental(q.qname, msg) ?? records;
    for (const r of records) {
      if (!out.open) return;
      await out.add(r);
    }
    await out.flush();
  }

  /**
   * An IXFR's answer when it is not the whole zone (RFC 1995 4): the current SOA alone for a client as new as
   * the zone, the differences from the journal when it reaches back to the client's serial; null: the whole
   * zone, AXFR-style (no journal for that serial, or the differences would be bigger than the zone).
   */
  private incremental(zone: string, msg: Buffer): Iterable<WireRecord> | null {
    const soa = this.authority.soaOf(zone) as (WireRecord & { data: { serial: number } }) | null;
    const st = this.authority.zoneState(zone);
    if (!soa || !st) return null;
    const a = answerIxfr(this.opts.journal, zone, soa, recordCount(st), msg);
    if (a.kind === "whole") {
      this.stats.ixfrWhole++;
      return null;
    }
    if (a.kind === "diff") {
      this.stats.ixfrDiffs++;
      this.opts.log?.info({ zone, from: a.from, to: soa.data.serial, steps: a.steps }, "dns ixfr: differences");
    }
    return a.records;
  }

  /**
   * The TSIG of a transfer request: null when it has none; when it has one, the signer of the transfer if it
   * verifies and its key may transfer the zone, else "answered" (NOTAUTH with BADKEY/BADSIG unsigned,
   * BADTIME signed; a key not bound to the zone: NOTAUTH, signed, as knot answers).
   */
  private async transferKey(socket: net.Socket, q: ParsedQuery, msg: Buffer): Promise<{ responder: TsigResponder; key: BoundKey["key"] } | null | "answered"> {
    const m = readMessage(msg);
    const found = m ? findTsig(msg, m) : { kind: "none" as const };
    if (found.kind === "none") return null;
    const answer = (b: Buffer) => {
      if (!socket.destroyed) writeFrame(socket, b);
      return "answered" as const;
    };
    if (found.kind === "formerr") return answer(this.bare(q, msg, Rcode.FORMERR));
    const t = found.tsig;
    const bound = this.opts.tsigKey ? await this.opts.tsigKey(t.keyName).catch(() => null) : null;
    const v = verifyRequest(msg, t, bound?.key ?? null);
    if (!v.ok) {
      if ("formerr" in v) return answer(this.bare(q, msg, Rcode.FORMERR));
      const r = notAuth(q, msg, t.originalId);
      return answer(v.key ? new TsigResponder(v.key, t).sign(r, v.error) : unsignedTsig(r, t, v.error));
    }
    const responder = new TsigResponder(v.key, t);
    if (!bound!.zones.includes(q.qname)) return answer(responder.sign(notAuth(q, msg, t.originalId)));
    return { responder, key: v.key };
  }
}

/** The NOTAUTH (9) answer to a transfer whose TSIG does not verify: header and question, then the TSIG. */
function notAuth(q: ParsedQuery, msg: Buffer, id: number): Buffer {
  const out = Buffer.from(msg.subarray(0, q.questionEnd));
  out.writeUInt16BE(id, 0);
  out.writeUInt16BE(0x8000 | 9, 2);
  out.writeUInt16BE(1, 4);
  out.writeUInt32BE(0, 6);
  out.writeUInt16BE(0, 10);
  return out;
}

/**
 * An OPT record (RFC 6891 6.1.2) at `at`: our payload size, the extended RCODE's upper bits, version 0, DO
 * copied (RFC 3225 3), and an Extended DNS Error option (RFC 8914) when `ede` is not 0 (17 octets, else 11).
 */
function writeOpt(b: Buffer, at: number, payload: number, extRcode: number, dnssecOk: boolean, ede = 0): void {
  b[at] = 0;
  b.writeUInt16BE(OPT_TYPE, at + 1);
  b.writeUInt16BE(payload, at + 3);
  b[at + 5] = extRcode;
  b[at + 6] = 0;
  b.writeUInt16BE(dnssecOk ? 0x8000 : 0, at + 7);
  b.writeUInt16BE(ede ? 6 : 0, at + 9);
  if (ede) {
    b.writeUInt16BE(15, at + 11);
    b.writeUInt16BE(2, at + 13);
    b.writeUInt16BE(ede, at + 15);
  }
}

/** REFUSED, with an Extended DNS Error (RFC 8914; 20 "Not Authoritative" for a name outside the realm's zones, as knot). */
function refused(ede: number): AnswerPlan {
  return { rcode: Rcode.REFUSED, aa: false, answers: [], authorities: [], additionals: [], zone: null, ede };
}

function writeFrame(socket: net.Socket, msg: Buffer): void {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length);
  socket.write(Buffer.concat([len, msg]));
}
