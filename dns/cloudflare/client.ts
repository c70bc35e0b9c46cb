import { RealmError } from "../../services/kernel/errors.js";

/** A DNS record as Cloudflare API v4 returns it (the fields the mirror uses). */
export interface CfRecord {
  id: string;
  type: string;
  name: string;
  content?: string;
  data?: Record<string, unknown>;
  priority?: number;
  ttl: number;
  proxied?: boolean;
  comment?: string | null;
}

export type CfRecordBody = Omit<CfRecord, "id">;

interface Envelope<T> {
  success: boolean;
  errors: { code: number; message: string }[];
  messages?: unknown[];
  result: T;
  result_info?: { page: number; per_page: number; count: number; total_count: number; total_pages: number };
}

export interface CloudflareClientOptions {
  token: string;
  /** Default https://api.cloudflare.com/client/v4 */
  baseUrl?: string;
  /** Injected for tests (a fetch trusting the double's CA); default the global fetch. */
  fetch?: typeof fetch;
  /** Retries after 429 (waiting Retry-After) and 5xx. */
  maxRetries?: number;
  /** Cap on one Retry-After wait, ms. */
  maxWaitMs?: number;
}

/** Cloudflare API v4 over plain fetch: bearer token, `{success, errors, result}` envelopes, pagination, 429 retry. */
export class CloudflareClient {
  private readonly base: string;
  private readonly doFetch: typeof fetch;
  readonly stats = { requests: 0, rateLimited: 0 };

  constructor(private readonly opts: CloudflareClientOptions) {
    this.base = (opts.baseUrl ?? "https://api.cloudflare.com/client/v4").replace(/\/$/, "");
    this.doFetch = opts.fetch ?? fetch;
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<Envelope<T>> {
    const max = this.opts.maxRetries ?? 5;
    for (let attempt = 0; ; attempt++) {
      this.stats.requests++;
      let res: Response;
      try {
        res = await this.doFetch(`${this.base}${path}`, {
          method,
          headers: { authorization: `Bearer ${this.opts.token}`, "content-type": "application/json" },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
      } catch (err) {
        if (attempt < max) {
          await sleep(200 * 2 ** attempt);
          continue;
        }
        throw new RealmError("UNAVAILABLE", `Cloudflare API unreachable: ${err instanceof Error ? err.message : String(err)}`);
      }
      if ((res.status === 429 || res.status >= 500) && attempt < max) {
        if (res.status === 429) this.stats.rateLimited++;
        const after = Number(res.headers.get("retry-after"));
        await sleep(Math.min(this.opts.maxWaitMs ?? 60_000, Number.isFinite(after) && after > 0 ? after * 1000 : 500 * 2 ** attempt));
        await res.body?.cancel().catch(() => undefined);
        continue;
      }
      let env: Envelope<T>;
      try {
        env = (await res.json()) as Envelope<T>;
      } catch {
        throw new RealmError("UNAVAILABLE", `Cloudflare answered ${method} ${path} with HTTP ${res.status} and no JSON`);
      }
      if (!res.ok || !env.success) {
        const what = (env.errors ?? []).map((e) => `${e.code}: ${e.message}`).join("; ") || `HTTP ${res.status}`;
        const code = res.status === 401 || res.status === 403 ? "UNAUTHORIZED" : res.status === 404 ? "NOT_FOUND" : res.status === 429 || res.status >= 500 ? "UNAVAILABLE" : "VALIDATION";
        throw new RealmError(code, `Cloudflare refused ${method} ${path.split("?")[0]}: ${what}`, { status: res.status, errors: env.errors });
      }
      return env;
    }
  }

  async zoneId(name: string): Promise<string> {
    const env = await this.call<{ id: string; name: string }[]>("GET", `/zones?name=${encodeURIComponent(name)}`);
    const z = env.result.find((x) => x.name === name);
    if (!z) throw new RealmError("NOT_FOUND", `Cloudflare has no zone ${name} for this token`);
    return z.id;
  }

  /** Every DNS record of a zone, following result_info pages. */
  async listRecords(zoneId: string, onPage?: (page: number, pages: number) => void): Promise<CfRecord[]> {
    const out: CfRecord[] = [];
    for (let page = 1; ; page++) {
      const env = await this.call<CfRecord[]>("GET", `/zones/${zoneId}/dns_records?page=${page}&per_page=100`);
      out.push(...env.result);
      const pages = env.result_info?.total_pages ?? 1;
      onPage?.(page, pages);
      if (page >= pages || env.result.length === 0) return out;
    }
  }

  async create(zoneId: string, r: CfRecordBody): Promise<CfRecord> {
    return (await this.call<CfRecord>("POST", `/zones/${zoneId}/dns_records`, r)).result;
  }

  async update(zoneId: string, id: string, r: CfRecordBody): Promise<CfRecord> {
    return (await this.call<CfRecord>("PUT", `/zones/${zoneId}/dns_records/${id}`, r)).result;
  }

  async remove(zoneId: string, id: string): Promise<void> {
    await this.call<{ id: string }>("DELETE", `/zones/${zoneId}/dns_records/${id}`);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
