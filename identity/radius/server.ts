import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { newId } from "../../services/kernel/index.js";
import type { RadiusClientState } from "./domain.js";
import { Attr, checkAccountingAuthenticator, checkMessageAuthenticator, Code, decode, encodeResponse, RadiusPacketError, type Attribute, type Packet } from "./packet.js";

/** What the server asks of the realm: the clients, their secrets, and the two decisions. */
export interface RadiusHandler {
  clientFor(source: string): RadiusClientState | undefined;
  /** The client's shared secret (sealed at rest); undefined when it is gone. */
  secretOf(client: RadiusClientState): Promise<Buffer | undefined>;
  access(client: RadiusClientState, request: Packet, secret: Buffer, correlationId: string): Promise<{ code: number; attributes: Attribute[] }>;
  /** Records the request; resolves once it is stored (RFC 2866 2: answer only then). */
  accounting(client: RadiusClientState, request: Packet, source: string): Promise<void>;
}

export type DropReason = "unknown-client" | "malformed" | "wrong-code" | "no-message-authenticator" | "bad-message-authenticator" | "bad-accounting-authenticator" | "in-progress" | "failed";

const DUPLICATE_MS = 30_000;

/**
 * The UDP side of RADIUS: one socket for authentication (RFC 2865, default 1812) and one for accounting
 * (RFC 2866, default 1813). Every datagram is parsed strictly; one from an address no client holds, one that
 * does not parse, an Access-Request without a valid Message-Authenticator (RFC 3579 3.2, RFC 9765) and an
 * Accounting-Request whose authenticator does not check are silently discarded (and counted in `drops`).
 * A retransmission (same client, Identifier and Request Authenticator, RFC 5080 2.2.2) within 30 s gets the
 * answer already sent, and is not decided twice; one arriving while the first is still being decided is dropped.
 */
export class RadiusServer {
  readonly drops = new Map<DropReason, number>();
  readonly answered = new Map<string, number>();
  private readonly recent = new Map<string, { at: number; response?: Buffer }>();
  private readonly sweep: NodeJS.Timeout;

  private constructor(
    private readonly auth: Socket,
    private readonly acct: Socket,
    private readonly handler: RadiusHandler,
    private readonly log: Logger,
  ) {
    auth.on("message", (m, r) => void this.receive(auth, "auth", m, r));
    acct.on("message", (m, r) => void this.receive(acct, "acct", m, r));
    for (const s of [auth, acct]) s.on("error", (err) => log.error({ err: err.message }, "RADIUS socket error"));
    this.sweep = setInterval(() => {
      const old = Date.now() - DUPLICATE_MS;
      for (const [k, v] of this.recent) if (v.at < old) this.recent.delete(k);
    }, 5_000).unref();
  }

  static async start(opts: { host: string; port: number; accountingPort: number }, handler: RadiusHandler, log: Logger): Promise<RadiusServer> {
    const type = opts.host.includes(":") ? "udp6" : "udp4";
    const bind = (port: number) =>
      new Promise<Socket>((resolve, reject) => {
        const s = createSocket(type);
        s.once("error", reject);
        s.bind(port, opts.host, () => {
          s.off("error", reject);
          resolve(s);
        });
      });
    const auth = await bind(opts.port);
    const acct = await bind(opts.accountingPort).catch((err: unknown) => {
      auth.close();
      throw err;
    });
    return new RadiusServer(auth, acct, handler, log);
  }

  get ports(): { auth: number; acct: number } {
    return { auth: this.auth.address().port, acct: this.acct.address().port };
  }

  private drop(reason: DropReason, source: string, extra: object = {}): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + 1);
    this.log.debug({ source, reason, ...extra }, "RADIUS packet dropped");
  }

  private async receive(socket: Socket, kind: "auth" | "acct", msg: Buffer, r: RemoteInfo): Promise<void> {
    const source = r.address.startsWith("::ffff:") ? r.address.slice(7) : r.address;
    let key: string | undefined;
    try {
      const client = this.handler.clientFor(source);
      if (!client) return this.drop("unknown-client", source);
      let p: Packet;
      try {
        p = decode(msg);
      } catch (err) {
        if (err instanceof RadiusPacketError) return this.drop("malformed", source, { client: client.id, detail: err.message });
        throw err;
      }
      const want = kind === "auth" ? Code.AccessRequest : Code.AccountingRequest;
      if (p.code !== want) return this.drop("wrong-code", source, { client: client.id, code: p.code });
      const secret = await this.handler.secretOf(client);
      if (!secret) return this.drop("unknown-client", source);
      key = `${kind}:${client.id}:${source}:${r.port}:${p.identifier}:${p.authenticator.toString("hex")}`;
      const seen = this.recent.get(key);
      if (seen) {
        if (seen.response) socket.send(seen.response, r.port, r.address);
        else this.drop("in-progress", source, { client: client.id });
        key = undefined;
        return;
      }
      let response: Buffer;
      if (kind === "auth") {
        const ma = checkMessageAuthenticator(p, secret);
        if (ma !== "ok") return this.drop(ma === "missing" ? "no-message-authenticator" : "bad-message-authenticator", source, { client: client.id });
        this.recent.set(key, { at: Date.now() });
        const answer = await this.handler.access(client, p, secret, newId());
        response = encodeResponse(answer.code, p, answer.attributes, secret);
        const name = answer.code === Code.AccessAccept ? "accept" : answer.code === Code.AccessChallenge ? "challenge" : "reject";
        this.answered.set(name, (this.answered.get(name) ?? 0) + 1);
      } else {
        if (!checkAccountingAuthenticator(p, secret)) return this.drop("bad-accounting-authenticator", source, { client: client.id });
        // A Message-Authenticator on an Accounting-Request is optional; when there, it must check (computed
        // over the packet with a zero Request Authenticator, as FreeRADIUS does).
        if (p.attributes.some((a) => a.type === Attr.MessageAuthenticator) && checkMessageAuthenticator(p, secret, Buffer.alloc(16)) !== "ok") {
          return this.drop("bad-message-authenticator", source, { client: client.id });
        }
        this.recent.set(key, { at: Date.now() });
        await this.handler.accounting(client, p, source);
        response = encodeResponse(Code.AccountingResponse, p, [], secret, { messageAuthenticator: false });
        this.answered.set("accounting", (this.answered.get("accounting") ?? 0) + 1);
      }
      this.recent.set(key, { at: Date.now(), response });
      key = undefined;
      socket.send(response, r.port, r.address);
    } catch (err) {
      // Never a crash: the NAS retransmits, and the retransmission is decided afresh.
      if (key) this.recent.delete(key);
      this.drop("failed", source, { err: err instanceof Error ? err.message : String(err) });
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.sweep);
    await Promise.all([this.auth, this.acct].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/** A random State for an Access-Challenge (RFC 2865 5.24): 16 bytes. */
export const newState = (): Buffer => randomBytes(16);
