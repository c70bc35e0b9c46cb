/**
 * HTTPS transport for secrets-client on node:https: optional extra CA, timeout, bounded retries with
 * exponential backoff (and jitter) on 429, 5xx and connection failures, honouring Retry-After.
 * Only HTTPS is accepted (as bw does): the master password hash and tokens must never travel in clear.
 * Error messages name the method, path and status only - never a body, header, token or password.
 */
import https from "node:https";
import { rootCertificates } from "node:tls";
import { SecretsError } from "./errors.js";

export interface RetryPolicy {
  /** Retries after the first attempt (default 4). */
  retries: number;
  /** First backoff delay (default 200 ms), doubled each retry, with full jitter. */
  baseDelayMs: number;
  /** Cap of one backoff delay (default 5 s). */
  maxDelayMs: number;
  /** A Retry-After longer than this is not waited for: the call fails at once (default 30 s). */
  maxRetryAfterMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { retries: 4, baseDelayMs: 200, maxDelayMs: 5_000, maxRetryAfterMs: 30_000 };

export interface HttpOptions {
  baseUrl: string;
  /** Extra trusted CA certificate(s), PEM (the system store and NODE_EXTRA_CA_CERTS stay trusted too). */
  ca?: string | Buffer;
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  headers?: Record<string, string>;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

export interface HttpRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /**
   * Return a 429 at once instead of retrying it. For the token endpoint: Vaultwarden's login limiter
   * (ratelimit.rs) answers 429 without Retry-After and refills one login a minute, so retrying within seconds
   * only spends more of the burst.
   */
  noRetryOn429?: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function retryAfterMs(h: string | string[] | undefined): number | undefined {
  const v = Array.isArray(h) ? h[0] : h;
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

export class HttpTransport {
  readonly baseUrl: URL;
  private readonly agent: https.Agent;
  private readonly timeoutMs: number;
  private readonly policy: RetryPolicy;
  private readonly headers: Record<string, string>;
  /** Number of retries done so far (for tests and metrics). */
  retriesDone = 0;

  constructor(opts: HttpOptions) {
    let u: URL;
    try {
      u = new URL(opts.baseUrl);
    } catch {
      throw new SecretsError("VALIDATION", "Vaultwarden URL is not a valid URL");
    }
    if (u.protocol !== "https:") throw new SecretsError("VALIDATION", "Vaultwarden URL must use https (the Bitwarden protocol sends password hashes and tokens)");
    this.baseUrl = new URL(u.href.endsWith("/") ? u.href : `${u.href}/`);
    // An explicit CA is added to Node's bundled roots (an explicit `ca` would otherwise replace them).
    this.agent = new https.Agent({ keepAlive: true, ...(opts.ca ? { ca: [...rootCertificates, opts.ca] } : {}) });
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    this.policy = { ...defaultRetryPolicy, ...(opts.retry ?? {}) };
    this.headers = opts.headers ?? {};
  }

  url(path: string): URL {
    return new URL(path.replace(/^\//, ""), this.baseUrl);
  }

  /** One request with retries. Throws UNREACHABLE / SERVER typed errors; other statuses are returned. */
  async request(r: HttpRequest): Promise<HttpResponse> {
    const what = `${r.method} ${r.path.split("?")[0]}`;
    for (let attempt = 0; ; attempt++) {
      let res: HttpResponse | undefined;
      let netErr: string | undefined;
      try {
        res = await this.once(r);
      } catch (e) {
        netErr = (e as NodeJS.ErrnoException).code ?? "network error";
      }
      const retryable = netErr !== undefined || (res!.status === 429 && !r.noRetryOn429) || res!.status >= 500;
      if (!retryable) return res!;
      let delay = Math.min(this.policy.maxDelayMs, this.policy.baseDelayMs * 2 ** attempt);
      delay = Math.round(delay / 2 + Math.random() * (delay / 2));
      const ra = res ? retryAfterMs(res.headers["retry-after"]) : undefined;
      if (ra !== undefined) {
        if (ra > this.policy.maxRetryAfterMs) attempt = this.policy.retries;
        delay = Math.max(delay, ra);
      }
      if (attempt >= this.policy.retries) {
        if (netErr !== undefined) {
          throw new SecretsError("UNREACHABLE", `Vaultwarden at ${this.baseUrl.origin} is unreachable (${netErr}) after ${attempt + 1} attempts: ${what}`);
        }
        throw new SecretsError("SERVER", `Vaultwarden answered ${res!.status} to ${what} after ${attempt + 1} attempts`, { status: res!.status });
      }
      this.retriesDone++;
      await sleep(delay);
    }
  }

  private once(r: HttpRequest): Promise<HttpResponse> {
    const u = this.url(r.path);
    return new Promise((resolve, reject) => {
      const req = https.request(
        u,
        {
          method: r.method,
          agent: this.agent,
          headers: { ...this.headers, ...(r.headers ?? {}), ...(r.body !== undefined ? { "content-length": Buffer.byteLength(r.body) } : {}) },
          timeout: this.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") }));
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })));
      req.on("error", reject);
      if (r.body !== undefined) req.write(r.body);
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
