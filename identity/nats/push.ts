import { connect, credsAuthenticator } from "@nats-io/transport-node";
import { createInbox, type NatsConnection } from "@nats-io/nats-core";
import { encodeGeneric } from "@nats-io/jwt";
import type { KeyPair } from "@nats-io/nkeys";
import { RealmError } from "../../services/kernel/errors.js";
import { inboxPrefixOf } from "../../services/host/creds.js";

/**
 * Pushes account JWTs to every full-resolver server of a cluster through `$SYS.REQ.CLAIMS.UPDATE` /
 * `DELETE`, as a system-account user, and collects each server's reply until `timeoutMs` (like nsc push).
 * 2.9.10: the request must carry no headers (the server would answer "expected 3 chunks").
 */
export interface ServerReply {
  server: string;
  ok: boolean;
  message: string;
}

export interface PushResult {
  replies: ServerReply[];
}

export class ClaimsPusher {
  private constructor(private readonly nc: NatsConnection, private readonly timeoutMs: number, private expected: number, private readonly inboxPrefix: string | undefined) {}

  /**
   * Connects as the system user; counts the servers once (`$SYS.REQ.SERVER.PING`) to stop waiting early.
   * Every server receives each request regardless; a server that joins later is counted after `recount()`.
   */
  static async open(servers: string | string[], sysCreds: string, opts: { timeoutMs?: number } = {}): Promise<ClaimsPusher> {
    const inboxPrefix = inboxPrefixOf(sysCreds);
    const nc = await connect({ servers, authenticator: credsAuthenticator(new TextEncoder().encode(sysCreds)), name: "realm-claims-pusher", maxReconnectAttempts: -1, ...(inboxPrefix ? { inboxPrefix } : {}) });
    const p = new ClaimsPusher(nc, opts.timeoutMs ?? 2_000, 0, inboxPrefix);
    p.expected = (await p.multi("$SYS.REQ.SERVER.PING", new Uint8Array(), 300, 0)).length || 1;
    return p;
  }

  async recount(): Promise<number> {
    this.expected = (await this.multi("$SYS.REQ.SERVER.PING", new Uint8Array(), 300, 0)).length || 1;
    return this.expected;
  }

  get servers(): number {
    return this.expected;
  }

  async close(): Promise<void> {
    await this.nc.close();
  }

  async update(accountJwt: string): Promise<PushResult> {
    const raw = await this.multi("$SYS.REQ.CLAIMS.UPDATE", new TextEncoder().encode(accountJwt), this.timeoutMs, this.expected);
    return this.judge(raw, "update");
  }

  /** Deletes accounts; the request is a generic JWT signed by the operator (signing) key. */
  async delete(accountKeys: string[], operatorSigner: KeyPair): Promise<PushResult> {
    const jwt = await encodeGeneric("delete", operatorSigner, "generic", { accounts: accountKeys } as never);
    const raw = await this.multi("$SYS.REQ.CLAIMS.DELETE", new TextEncoder().encode(jwt), this.timeoutMs, this.expected);
    return this.judge(raw, "delete");
  }

  private judge(raw: Uint8Array[], what: string): PushResult {
    const replies = raw.map((r): ServerReply => {
      const j = JSON.parse(new TextDecoder().decode(r)) as { data?: { message?: string }; error?: { description?: string }; server?: { name?: string; id?: string } };
      return { server: j.server?.name ?? j.server?.id ?? "?", ok: !j.error, message: j.error?.description ?? j.data?.message ?? "" };
    });
    if (replies.length === 0) throw new RealmError("UNAVAILABLE", `claims ${what}: no server answered (is the full resolver configured?)`);
    const bad = replies.filter((r) => !r.ok);
    if (bad.length) throw new RealmError("UNAVAILABLE", `claims ${what} refused by ${bad.length}/${replies.length} servers: ${bad.map((b) => `${b.server}: ${b.message}`).join("; ")}`, { replies });
    return { replies };
  }

  /** Publish (no headers) and collect replies until `timeoutMs`, or until `expect` replies if > 0. */
  private async multi(subject: string, data: Uint8Array, timeoutMs: number, expect: number): Promise<Uint8Array[]> {
    const inbox = createInbox(this.inboxPrefix);
    const out: Uint8Array[] = [];
    const sub = this.nc.subscribe(inbox);
    const timer = setTimeout(() => sub.unsubscribe(), timeoutMs);
    this.nc.publish(subject, data, { reply: inbox });
    for await (const m of sub) {
      out.push(m.data);
      if (expect > 0 && out.length >= expect) break;
    }
    clearTimeout(timer);
    sub.unsubscribe();
    return out;
  }
}
