import https from "node:https";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";

/**
 * A local HTTPS double of the Cloudflare API v4 DNS endpoints, following the documented shapes:
 * `{success, errors:[{code,message}], messages, result, result_info:{page,per_page,count,total_count,total_pages}}`,
 * Bearer tokens (403 + code 10000 otherwise), 429 with Retry-After every `rateLimitEvery` requests, and
 * the validation Cloudflare applies (TTL 1 or 60..86400, proxied only for A/AAAA/CNAME).
 */
export interface CfStored {
  id: string;
  type: string;
  name: string;
  content?: string;
  data?: Record<string, unknown>;
  priority?: number;
  ttl: number;
  proxied?: boolean;
}

export interface CloudflareDouble {
  url: string;
  ca: string;
  token: string;
  zoneId: string;
  records: Map<string, CfStored>;
  stats: { requests: number; rateLimited: number; writes: number };
  rateLimitEvery: number;
  /** A fetch that trusts the double's self-signed certificate. */
  fetch: typeof fetch;
  stop(): Promise<void>;
}

export async function startCloudflareDouble(opts: { zone: string; rateLimitEvery?: number }): Promise<CloudflareDouble> {
  const dir = mkdtempSync(join(tmpdir(), "cf-double-"));
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" });
  const key = readFileSync(join(dir, "key.pem"));
  const cert = readFileSync(join(dir, "cert.pem"), "utf8");
  rmSync(dir, { recursive: true, force: true });
  const token = randomBytes(16).toString("hex");
  const zoneId = randomBytes(16).toString("hex");
  const records = new Map<string, CfStored>();
  const stats = { requests: 0, rateLimited: 0, writes: 0 };
  const state = { rateLimitEvery: opts.rateLimitEvery ?? 0 };

  const send = (res: import("node:http").ServerResponse, status: number, body: object, headers: Record<string, string> = {}) => {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  };
  const fail = (res: import("node:http").ServerResponse, status: number, code: number, message: string) => send(res, status, { success: false, errors: [{ code, message }], messages: [], result: null });
  const ok = (res: import("node:http").ServerResponse, result: unknown, info?: object) => send(res, 200, { success: true, errors: [], messages: [], result, ...(info ? { result_info: info } : {}) });

  function validate(b: Partial<CfStored>): string | null {
    if (!b.type || !b.name) return "type and name are required";
    if (typeof b.ttl !== "number" || !(b.ttl === 1 || (b.ttl >= 60 && b.ttl <= 86400))) return "TTL must be between 60 and 86400 seconds, or 1 for Automatic";
    if (b.proxied && !["A", "AAAA", "CNAME"].includes(b.type)) return `${b.type} records cannot be proxied`;
    if (b.content === undefined && b.data === undefined) return "content or data is required";
    if (!(b.name === opts.zone || b.name.endsWith(`.${opts.zone}`))) return "record name is outside the zone";
    return null;
  }

  const server = https.createServer({ key, cert }, (req, res) => {
    let raw = "";
    req.on("data", (d: Buffer) => (raw += d.toString()));
    req.on("end", () => {
      stats.requests++;
      if (state.rateLimitEvery > 0 && stats.requests % state.rateLimitEvery === 0) {
        stats.rateLimited++;
        return send(res, 429, { success: false, errors: [{ code: 10000, message: "Rate limited. Please wait and consider throttling your request speed" }], messages: [], result: null }, { "retry-after": "1" });
      }
      if (req.headers.authorization !== `Bearer ${token}`) return fail(res, 403, 10000, "Authentication error");
      const url = new URL(req.url ?? "/", "https://double");
      const parts = url.pathname.replace(/^\/client\/v4/, "").split("/").filter(Boolean);
      let body: Partial<CfStored> = {};
      try {
        if (raw) body = JSON.parse(raw) as Partial<CfStored>;
      } catch {
        return fail(res, 400, 6007, "Malformed JSON in request body");
      }
      if (parts.length === 1 && parts[0] === "zones" && req.method === "GET") {
        const name = url.searchParams.get("name");
        const zones = !name || name === opts.zone ? [{ id: zoneId, name: opts.zone, status: "active" }] : [];
        return ok(res, zones, { page: 1, per_page: 20, count: zones.length, total_count: zones.length, total_pages: 1 });
      }
      if (parts[0] !== "zones" || parts[1] !== zoneId || parts[2] !== "dns_records") return fail(res, 404, 7003, "Could not route to the requested path");
      const id = parts[3];
      if (!id && req.method === "GET") {
        const page = Math.max(1, Number(url.searchParams.get("page") ?? 1));
        const perPage = Math.min(5000, Math.max(5, Number(url.searchParams.get("per_page") ?? 100)));
        const all = [...records.values()];
        const slice = all.slice((page - 1) * perPage, page * perPage);
        return ok(res, slice, { page, per_page: perPage, count: slice.length, total_count: all.length, total_pages: Math.max(1, Math.ceil(all.length / perPage)) });
      }
      if (!id && req.method === "POST") {
        const why = validate(body);
        if (why) return fail(res, 400, 9000, why);
        const dup = [...records.values()].find((r) => r.type === body.type && r.name === body.name && r.content === body.content && JSON.stringify(r.data) === JSON.stringify(body.data) && r.priority === body.priority);
        if (dup) return fail(res, 400, 81058, "An identical record already exists.");
        const rec = { ...(body as CfStored), id: randomBytes(16).toString("hex") };
        records.set(rec.id, rec);
        stats.writes++;
        return ok(res, rec);
      }
      const cur = id ? records.get(id) : undefined;
      if (!cur) return fail(res, 404, 81044, "Record does not exist.");
      if (req.method === "PUT" || req.method === "PATCH") {
        const next = req.method === "PUT" ? { ...(body as CfStored), id: cur.id } : { ...cur, ...body, id: cur.id };
        const why = validate(next);
        if (why) return fail(res, 400, 9000, why);
        records.set(cur.id, next);
        stats.writes++;
        return ok(res, next);
      }
      if (req.method === "DELETE") {
        records.delete(cur.id);
        stats.writes++;
        return ok(res, { id: cur.id });
      }
      return fail(res, 405, 10000, "method not allowed");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/client/v4`;

  const trustingFetch: typeof fetch = (input, init) =>
    new Promise((resolve, reject) => {
      const u = new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input.url);
      const req = https.request(u, { method: init?.method ?? "GET", headers: init?.headers as Record<string, string>, ca: cert }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === "string") headers.set(k, v);
          resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 500, headers }));
        });
      });
      req.on("error", reject);
      if (init?.body) req.write(init.body as string);
      req.end();
    });

  return {
    url,
    ca: cert,
    token,
    zoneId,
    records,
    stats,
    get rateLimitEvery() {
      return state.rateLimitEvery;
    },
    set rateLimitEvery(n: number) {
      state.rateLimitEvery = n;
    },
    fetch: trustingFetch,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}
