import dgram from "node:dgram";
import { isIPv6 } from "node:net";
import * as dnsPacket from "dns-packet";
import type { Logger } from "pino";
import type { WireRecord } from "./authority.js";

export interface NotifyRetry {
  /** Wait before the first retransmission, in ms (default 1,000); doubled after each, at most `maxDelayMs`. */
  firstDelayMs?: number;
  /** Longest wait between two sends (default 16,000 ms). */
  maxDelayMs?: number;
  /** Sends of one NOTIFY at most, the first included (default 6: about a minute of trying, as RFC 1996 3.6 suggests). */
  tries?: number;
}

interface Pending {
  id: number;
  msg: Buffer;
  sent: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * NOTIFY (RFC 1996) to a zone's secondaries: one message per (zone, secondary), sent over UDP from a socket
 * of its own on the server's address, retransmitted with backoff (1 s, 2 s, 4 s, ... at most `tries` sends)
 * until the secondary answers with a NOTIFY response of the same id, question and opcode (RFC 1996 4.7). A
 * new change of the zone replaces a NOTIFY still being retried (only the newest serial matters).
 */
export class Notifier {
  private readonly pending = new Map<string, Pending>();
  private socket: dgram.Socket | undefined;
  private socket6: dgram.Socket | undefined;
  readonly stats = { sent: 0, answered: 0, gaveUp: 0 };

  constructor(
    private readonly host: string,
    private readonly retry: NotifyRetry = {},
    private readonly log?: Logger,
  ) {}

  private async open(v6: boolean): Promise<dgram.Socket> {
    const cur = v6 ? this.socket6 : this.socket;
    if (cur) return cur;
    const s = dgram.createSocket(v6 ? "udp6" : "udp4");
    // From the server's own address when it is of the family (secondaries match the primary's address), else any.
    const bindTo = isIPv6(this.host) === v6 && this.host !== "0.0.0.0" && this.host !== "::" ? this.host : undefined;
    await new Promise<void>((res, rej) => {
      s.once("error", rej);
      s.bind(0, bindTo, () => res());
    });
    s.on("error", (err) => this.log?.warn({ err: err.message }, "dns notify socket error"));
    s.on("message", (m, r) => this.onAnswer(m, r));
    s.unref();
    if (v6) this.socket6 = s;
    else this.socket = s;
    return s;
  }

  /** Tells each target that `zone` changed (its SOA is sent along, RFC 1996 3.7). */
  notify(zone: string, soa: WireRecord | null, targets: { host: string; port: number }[]): void {
    for (const t of targets) {
      const key = `${zone}|${t.host}|${t.port}`;
      const old = this.pending.get(key);
      if (old) clearTimeout(old.timer);
      const id = Math.floor(Math.random() * 65536);
      const msg = dnsPacket.encode({
        type: "query",
        id,
        flags: dnsPacket.AUTHORITATIVE_ANSWER | (4 << 11),
        questions: [{ name: zone.slice(0, -1) || ".", type: "SOA", class: "IN" }],
        answers: soa ? [soa as dnsPacket.Answer] : [],
      });
      const p: Pending = { id, msg, sent: 0, timer: undefined };
      this.pending.set(key, p);
      this.send(key, t, p);
    }
  }

  private send(key: string, t: { host: string; port: number }, p: Pending): void {
    if (this.pending.get(key) !== p) return;
    const tries = this.retry.tries ?? 6;
    if (p.sent >= tries) {
      this.pending.delete(key);
      this.stats.gaveUp++;
      this.log?.warn({ notify: key.split("|")[0], secondary: `${t.host}:${t.port}`, tries }, "dns notify not answered; the secondary will refresh on its own");
      return;
    }
    p.sent++;
    this.stats.sent++;
    this.open(isIPv6(t.host))
      .then((s) => s.send(p.msg, t.port, t.host))
      .catch((err: unknown) => this.log?.warn({ err: err instanceof Error ? err.message : String(err) }, "dns notify not sent"));
    const delay = Math.min(this.retry.maxDelayMs ?? 16_000, (this.retry.firstDelayMs ?? 1_000) * 2 ** (p.sent - 1));
    p.timer = setTimeout(() => this.send(key, t, p), delay);
    p.timer.unref();
  }

  private onAnswer(m: Buffer, r: dgram.RemoteInfo): void {
    if (m.length < 12) return;
    const flags = m.readUInt16BE(2);
    if (!(flags & 0x8000) || ((flags >> 11) & 0xf) !== 4) return;
    const id = m.readUInt16BE(0);
    let decoded: dnsPacket.Packet;
    try {
      decoded = dnsPacket.decode(m);
    } catch {
      return;
    }
    const q = decoded.questions?.[0];
    if (!q) return;
    const zone = q.name === "" || q.name === "." ? "." : `${q.name.toLowerCase().replace(/\.$/, "")}.`;
    const key = `${zone}|${r.address}|${r.port}`;
    const p = this.pending.get(key);
    if (!p || p.id !== id) return;
    clearTimeout(p.timer);
    this.pending.delete(key);
    this.stats.answered++;
  }

  /** NOTIFYs still being retried. */
  get waiting(): number {
    return this.pending.size;
  }

  stop(): void {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    this.socket?.close();
    this.socket6?.close();
    this.socket = undefined;
    this.socket6 = undefined;
  }
}
