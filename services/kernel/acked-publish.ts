import { createInbox, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/nats-core";
import { RealmError } from "./errors.js";

/** JetStream's acknowledgement of a stored message (`$JS.API` PubAck). */
export interface PubAck {
  stream: string;
  seq: number;
  duplicate: boolean;
}

/** JetStream refused the message: its API error code (`err_code`, e.g. 10071 wrong last sequence) and text. */
export class JetStreamRefusal extends Error {
  constructor(
    readonly code: number,
    readonly errCode: number,
    description: string,
  ) {
    super(description);
    this.name = "JetStreamRefusal";
  }
}

interface Pending {
  resolve: (ack: PubAck) => void;
  reject: (err: Error) => void;
  deadline: number;
  subject: string;
  /** A message with a Nats-Msg-Id is sent again while unacknowledged (the stream dedupes it): when, and what. */
  resendAt?: number;
  message?: { data: Uint8Array | string; headers: MsgHdrs; token: string };
}

const decoder = new TextDecoder();

/**
 * Publishes to JetStream and waits for the stream's acknowledgement, for the event store's appends.
 *
 * It is the JetStream publish protocol (a publish with a reply subject; the stream answers a PubAck or an
 * API error; nats-server answers status 503 when no stream listens), on the connection's own publish and one
 * subscription to a private inbox for every acknowledgement. `@nats-io/jetstream`'s `publish` does the same
 * through a request per message, which costs a timer, a copy of the options and headers, and two Error
 * objects (with their stack traces) per message: about 9 us of the ~20 us a guarded publish costs this
 * client (bench/kernel.bench.ts). Here timeouts are one sweep over the pending acknowledgements.
 */
export class AckedPublisher {
  private readonly inbox: string;
  private readonly pending = new Map<string, Pending>();
  private sub: Subscription | undefined;
  private sweeper: ReturnType<typeof setInterval> | undefined;
  private next = 0;
  /** When the last acknowledgement (or refusal) came: resends wait for silence, not for slowness. */
  private lastAnswerAt = 0;
  /** Publishes of this turn of the event loop, sent together (one socket write for many appends). */
  private outbox: { subject: string; data: Uint8Array | string; headers: MsgHdrs | undefined; token: string }[] = [];

  /**
   * `timeoutMs`: how long an acknowledgement is waited for. `resendMs`: a message carrying a Nats-Msg-Id is
   * published again after this long without an acknowledgement, until the timeout. A stream that is
   * electing a leader (a node lost) drops what it gets meanwhile without answering; sending again finds the
   * new leader within a second of its election instead of after the whole timeout, and the stream's
   * dedupe window makes a copy that was stored after all come back as a duplicate, never a second event.
   * Only while no acknowledgement at all has come for `resendMs`: a stream that answers slowly under load
   * is not sent more to do.
   */
  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs = 5_000,
    private readonly resendMs = 1_000,
  ) {
    // The connection's inbox prefix is the one its permissions let it subscribe to (`_INBOX_<identity>`).
    const prefix = (nc as NatsConnection & { options?: { inboxPrefix?: string } }).options?.inboxPrefix;
    this.inbox = `${createInbox(prefix)}.`;
  }

  publish(subject: string, data: Uint8Array | string, headers?: MsgHdrs): Promise<PubAck> {
    this.sub ??= this.subscribe();
    const token = (this.next++).toString(36);
    return new Promise<PubAck>((resolve, reject) => {
      const now = Date.now();
      const resend = headers?.get("Nats-Msg-Id") ? { resendAt: now + this.resendMs, message: { data, headers: headers, token } } : {};
      this.pending.set(token, { resolve, reject, deadline: now + this.timeoutMs, subject, ...resend });
      this.sweeper ??= this.startSweeper();
      if (this.outbox.length === 0) setImmediate(() => this.send());
      this.outbox.push({ subject, data, headers, token });
    });
  }

  /**
   * Hands this turn's publishes to the connection in one go. The connection writes what it has buffered
   * once its own microtask runs, so appends made concurrently (each after its own await) share one write
   * instead of one system call each: that write was a quarter of an append's cost on this client.
   */
  private send(): void {
    const batch = this.outbox;
    this.outbox = [];
    for (const m of batch) {
      try {
        this.nc.publish(m.subject, m.data, m.headers ? { reply: this.inbox + m.token, headers: m.headers } : { reply: this.inbox + m.token });
      } catch (err) {
        const p = this.pending.get(m.token);
        this.pending.delete(m.token);
        p?.reject(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  /** Fails what is pending and stops listening (the connection stays open: it is not this publisher's). */
  close(): void {
    this.failAll(new RealmError("UNAVAILABLE", "the event store was closed before JetStream acknowledged the event; it may or may not be stored"));
    this.sub?.unsubscribe();
    this.sub = undefined;
  }

  private subscribe(): Subscription {
    const sub = this.nc.subscribe(`${this.inbox}*`, {
      callback: (err, m) => {
        if (err) return this.failAll(new RealmError("UNAVAILABLE", `JetStream acknowledgements stopped: ${err.message}`));
        const token = m.subject.slice(this.inbox.length);
        const p = this.pending.get(token);
        if (!p) return; // late: its publish has timed out already
        this.lastAnswerAt = Date.now();
        this.pending.delete(token);
        this.settle(p, m.data, m.headers?.code ?? 0);
      },
    });
    void this.nc.closed().then(() => this.failAll(new RealmError("UNAVAILABLE", "the NATS connection closed before JetStream acknowledged the event; it may or may not be stored")));
    return sub;
  }

  private settle(p: Pending, data: Uint8Array, status: number): void {
    if (status === 503) return p.reject(new RealmError("UNAVAILABLE", `no JetStream stream takes ${p.subject} (no responders)`));
    let ack: { stream?: unknown; seq?: unknown; duplicate?: unknown; error?: { code?: number; err_code?: number; description?: string } };
    try {
      ack = JSON.parse(decoder.decode(data)) as typeof ack;
    } catch {
      return p.reject(new RealmError("UNAVAILABLE", `JetStream answered ${p.subject} with something that is not an acknowledgement (status ${status})`));
    }
    if (ack.error) return p.reject(new JetStreamRefusal(ack.error.code ?? 0, ack.error.err_code ?? 0, ack.error.description ?? "refused"));
    if (typeof ack.stream !== "string" || ack.stream === "" || typeof ack.seq !== "number") return p.reject(new RealmError("UNAVAILABLE", `JetStream's acknowledgement of ${p.subject} has no stream or sequence`));
    p.resolve({ stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate === true });
  }

  private startSweeper(): ReturnType<typeof setInterval> {
    const t = setInterval(() => {
      const now = Date.now();
      for (const [token, p] of this.pending) {
        if (p.deadline > now) {
          if (p.message && p.resendAt !== undefined && p.resendAt <= now && now - this.lastAnswerAt >= this.resendMs) {
            p.resendAt = now + this.resendMs;
            if (this.outbox.length === 0) setImmediate(() => this.send());
            this.outbox.push({ subject: p.subject, ...p.message });
          }
          continue;
        }
        this.pending.delete(token);
        p.reject(new RealmError("UNAVAILABLE", `JetStream did not acknowledge ${p.subject} within ${this.timeoutMs} ms; the event may or may not be stored`));
      }
      if (this.pending.size === 0) {
        clearInterval(t);
        this.sweeper = undefined;
      }
    }, Math.min(250, this.timeoutMs));
    t.unref();
    return t;
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
