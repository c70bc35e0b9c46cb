import { randomBytes } from "node:crypto";

/**
 * Replay-Nonce values (RFC 8555 §6.5). They are not events: a nonce is a per-connection anti-replay token
 * that lives seconds, is used once, and means nothing after a restart; putting each one on JetStream would
 * cost two writes per ACME request for no fact worth keeping. They live in the memory of the instance that
 * issued them, bounded in number and age. A client whose next request reaches another instance (or this one
 * after a restart) gets `badNonce` with a fresh nonce in that answer, and retries with it as RFC 8555
 * requires of clients.
 */
export class NoncePool {
  private readonly live = new Map<string, number>();

  constructor(
    private readonly opts: { maxAgeMs?: number; max?: number; now?: () => number } = {},
  ) {}

  issue(): string {
    const n = randomBytes(16).toString("base64url");
    const now = this.now();
    this.live.set(n, now);
    const max = this.opts.max ?? 100_000;
    // Oldest first (Map keeps insertion order): drop what is too old or beyond the bound.
    for (const [k, t] of this.live) {
      if (this.live.size <= max && now - t <= this.maxAge()) break;
      this.live.delete(k);
    }
    return n;
  }

  /** True once for a nonce this pool issued and that has not expired; false for anything else. */
  consume(n: string): boolean {
    const t = this.live.get(n);
    if (t === undefined) return false;
    this.live.delete(n);
    return this.now() - t <= this.maxAge();
  }

  get size(): number {
    return this.live.size;
  }

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }
  private maxAge(): number {
    return this.opts.maxAgeMs ?? 10 * 60_000;
  }
}
