/**
 * What `realm status` and `realm doctor` look at in a running realm: its NATS server (INFO: name, version,
 * JetStream), the realm's micro-services answering `$SRV.PING` (what the local operator's creds may send),
 * and the HTTP API's /healthz and /readyz (public), whose Date header gives the realm host's clock.
 * Loaded only by those two verbs.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { connectRealm } from "./connection.js";

export interface NatsProbe {
  url: string;
  connected: boolean;
  error?: string;
  /** The error's class (UNAVAILABLE, UNAUTHORIZED, VALIDATION) when the connection failed. */
  code?: string;
  server?: { name: string; id: string; version: string; jetstream: boolean; maxPayload: number; rttMs: number };
  /** The realm's micro-services: name, version and how many instances answered $SRV.PING. */
  services?: { name: string; version: string; instances: number }[];
}

export interface HttpProbe {
  url: string;
  healthz?: { status: number; body: unknown };
  readyz?: { status: number; body: unknown };
  /** The realm host's clock minus this machine's, in milliseconds (from the Date header; 1 s resolution). */
  skewMs?: number;
  error?: string;
}

/** The realm's services on `$SRV.PING` (each answers once per instance), within ~1 s. */
async function pingServices(nc: NatsConnection): Promise<{ name: string; version: string; instances: number }[]> {
  const seen = new Map<string, { name: string; version: string; instances: number }>();
  try {
    const replies = await nc.requestMany("$SRV.PING", "", { strategy: "stall", stall: 300, maxWait: 1500 });
    for await (const m of replies) {
      let r: { name?: string; version?: string } = {};
      try {
        r = m.json<{ name?: string; version?: string }>();
      } catch {
        continue;
      }
      if (!r.name) continue;
      const hit = seen.get(r.name);
      if (hit) hit.instances++;
      else seen.set(r.name, { name: r.name, version: r.version ?? "?", instances: 1 });
    }
  } catch {
    // no responders: no services
  }
  return [...seen.values()].sort((a, b) => a.name.localeCompare(b.name));
}

export async function probeNats(opts: { nats?: string | undefined; creds?: string | undefined }, url: string): Promise<NatsProbe> {
  let nc: NatsConnection;
  try {
    nc = await connectRealm({ ...(opts.nats ? { nats: opts.nats } : {}), ...(opts.creds ? { creds: opts.creds } : {}), name: "realm-cli status" });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return { url, connected: false, error: err instanceof Error ? err.message : String(err), ...(typeof code === "string" ? { code } : {}) };
  }
  try {
    const info = nc.info;
    const rttMs = await nc.rtt();
    const services = await pingServices(nc);
    return {
      url: nc.getServer() ? `nats://${nc.getServer()}` : url,
      connected: true,
      server: { name: info?.server_name ?? "?", id: info?.server_id ?? "?", version: info?.version ?? "?", jetstream: info?.jetstream === true, maxPayload: info?.max_payload ?? 0, rttMs: Math.round(rttMs * 10) / 10 },
      services,
    };
  } finally {
    await nc.close();
  }
}

async function get(url: string): Promise<{ status: number; body: unknown; date: string | null }> {
  const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
  const text = await r.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: r.status, body, date: r.headers.get("date") };
}

export async function probeHttp(url: string): Promise<HttpProbe> {
  try {
    const before = Date.now();
    const healthz = await get(`${url}/healthz`);
    const after = Date.now();
    const readyz = await get(`${url}/readyz`);
    const theirs = healthz.date ? Date.parse(healthz.date) : NaN;
    // The Date header is whole seconds: compare against the middle of the request, and call anything
    // within the header's second no skew.
    const mine = (before + after) / 2;
    const skew = Number.isNaN(theirs) ? undefined : theirs + 1000 < mine ? theirs + 1000 - mine : theirs > mine ? theirs - mine : 0;
    return { url, healthz: { status: healthz.status, body: healthz.body }, readyz: { status: readyz.status, body: readyz.body }, ...(skew !== undefined ? { skewMs: Math.round(skew) } : {}) };
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return { url, error: cause ?? (err instanceof Error ? err.message : String(err)) };
  }
}
