import dgram from "node:dgram";
import net from "node:net";
import { randomInt } from "node:crypto";
import * as dnsPacket from "dns-packet";
import { isIPv6 } from "node:net";
import { Rcode, type AnswerPlan, type WireRecord } from "./authority.js";
import { inZone } from "../domain/names.js";
import { wireTypeName } from "./types.js";

export interface ForwarderOptions {
  upstreams: { host: string; port: number }[];
  /** Only names in these zones are forwarded; empty or absent = every name the realm is not authoritative for. */
  zones?: string[];
  timeoutMs?: number;
  cacheEntries?: number;
  /** Cap on cached TTLs (s). */
  maxTtl?: number;
}

interface CacheEntry {
  at: number;
  expires: number;
  plan: AnswerPlan;
}

/**
 * Forwards questions to upstream resolvers: UDP first, TCP when the answer comes back truncated, the next
 * upstream on a timeout. Answers are cached for their smallest TTL (negative answers for the SOA minimum)
 * and served with TTLs counted down.
 */
export class Forwarder {
  private readonly cache = new Map<string, CacheEntry>();
  readonly stats = { upstreamQueries: 0, cacheHits: 0, timeouts: 0, tcpFallbacks: 0 };

  constructor(private readonly opts: ForwarderOptions) {}

  handles(qname: string): boolean {
    const zones = this.opts.zones ?? [];
    return zones.length === 0 || zones.some((z) => inZone(qname, z));
  }

  async resolve(qname: string, qtype: number): Promise<AnswerPlan & { ra: boolean }> {
    const key = `${qname}/${qtype}`;
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit && hit.expires > now) {
      this.stats.cacheHits++;
      const age = Math.floor((now - hit.at) / 1000);
      const age_ = (rs: WireRecord[]) => rs.map((r) => ({ ...r, ttl: Math.max(0, r.ttl - age) }));
      return { ...hit.plan, answers: age_(hit.plan.answers), authorities: age_(hit.plan.authorities), additionals: age_(hit.plan.additionals), ra: true };
    }
    if (hit) this.cache.delete(key);
    const question = { name: qname === "." ? "." : qname.slice(0, -1), type: wireTypeName(qtype) as dnsPacket.RecordType, class: "IN" as const };
    let lastErr: unknown = new Error("no upstream");
    for (const up of this.opts.upstreams) {
      try {
        let res = await this.udpQuery(up, question);
        if ((res.flags ?? 0) & dnsPacket.TRUNCATED_RESPONSE) {
          this.stats.tcpFallbacks++;
          res = await this.tcpQuery(up, question);
        }
        const plan = toPlan(res);
        this.store(key, plan, now);
        return { ...plan, ra: true };
      } catch (err) {
        lastErr = err;
      }
    }
    throw lastErr;
  }

  private store(key: string, plan: AnswerPlan, now: number): void {
    if (plan.rcode !== Rcode.NOERROR && plan.rcode !== Rcode.NXDOMAIN) return;
    const soa = plan.authorities.find((r) => r.type === "SOA");
    const ttls = plan.answers.length > 0 ? plan.answers.map((r) => r.ttl) : soa ? [Math.min(soa.ttl, (soa.data as { minimum: number }).minimum)] : [0];
    const ttl = Math.min(this.opts.maxTtl ?? 86_400, ...ttls);
    if (ttl <= 0) return;
    if (this.cache.size >= (this.opts.cacheEntries ?? 10_000)) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, { at: now, expires: now + ttl * 1000, plan });
  }

  private udpQuery(up: { host: string; port: number }, question: dnsPacket.Question): Promise<dnsPacket.Packet> {
    this.stats.upstreamQueries++;
    const id = randomInt(65536);
    const msg = dnsPacket.encode({ type: "query", id, flags: dnsPacket.RECURSION_DESIRED, questions: [question], additionals: [{ type: "OPT", name: ".", udpPayloadSize: 1232 } as dnsPacket.Answer] });
    return new Promise((resolve, reject) => {
      const sock = dgram.createSocket(isIPv6(up.host) ? "udp6" : "udp4");
      const timer = setTimeout(() => {
        this.stats.timeouts++;
        sock.close();
        reject(new Error(`upstream ${up.host}:${up.port} timed out`));
      }, this.opts.timeoutMs ?? 2000);
      sock.on("error", (err) => {
        clearTimeout(timer);
        sock.close();
        reject(err);
      });
      sock.on("message", (buf) => {
        let res: dnsPacket.Packet;
        try {
          res = dnsPacket.decode(buf);
        } catch {
          return; // garbage from the network: keep waiting for the real answer
        }
        if (res.id !== id || res.questions?.[0]?.name.toLowerCase() !== question.name.toLowerCase()) return;
        clearTimeout(timer);
        sock.close();
        resolve(res);
      });
      sock.send(msg, up.port, up.host);
    });
  }

  private tcpQuery(up: { host: string; port: number }, question: dnsPacket.Question): Promise<dnsPacket.Packet> {
    const id = randomInt(65536);
    const msg = dnsPacket.encode({ type: "query", id, flags: dnsPacket.RECURSION_DESIRED, questions: [question] });
    return new Promise((resolve, reject) => {
      const sock = net.connect(up.port, up.host);
      let buf = Buffer.alloc(0);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`upstream ${up.host}:${up.port} timed out over TCP`));
      }, this.opts.timeoutMs ?? 2000);
      sock.on("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      sock.on("connect", () => {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(msg.length);
        sock.write(Buffer.concat([len, msg]));
      });
      sock.on("data", (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length < 2 || buf.length < buf.readUInt16BE(0) + 2) return;
        clearTimeout(timer);
        sock.destroy();
        try {
          const res = dnsPacket.decode(buf.subarray(2, buf.readUInt16BE(0) + 2));
          if (res.id !== id) throw new Error("upstream answered another id");
          resolve(res);
        } catch (err) {
          reject(err);
        }
      });
    });
  }
}


function toPlan(res: dnsPacket.Packet): AnswerPlan {
  const strip = (rs: dnsPacket.Answer[] | undefined) => (rs ?? []).filter((r) => r.type !== "OPT") as unknown as WireRecord[];
  return { rcode: rcodeOf(res), aa: false, answers: strip(res.answers), authorities: strip(res.authorities), additionals: strip(res.additionals), zone: null };
}

function rcodeOf(res: dnsPacket.Packet): number {
  return (res.flags ?? 0) & 0xf;
}
