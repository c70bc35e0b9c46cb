/**
 * `realm up --insecure-no-auth` stays a local development mode: loopback only, no cross-site or rebound
 * request, every event marked, and nothing it minted works once authentication is on.
 */
import { request } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startRealm, type RunningRealm } from "../../services/cli/runtime.js";
import { createLogger } from "../../services/host/logger.js";
import { RealmError } from "../../services/kernel/errors.js";

const data = mkdtempSync(join(tmpdir(), "realm-insecure-"));
let realm: RunningRealm | undefined;
afterAll(async () => {
  await realm?.stop();
  rmSync(data, { recursive: true, force: true });
});
const log = createLogger({ level: "silent" });

/** A raw HTTP request (fetch may not set Host). */
function raw(url: string, opts: { method: string; headers: Record<string, string>; body?: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: opts.method, headers: opts.headers }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end(opts.body);
  });
}

describe("--insecure-no-auth", () => {
  it("serves only on loopback", async () => {
    const err = await startRealm({ dataDir: join(data, "wide"), natsPort: 0, httpPort: 0, dnsPort: 0, httpHost: "0.0.0.0", noAuth: true, log }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(RealmError);
    expect((err as RealmError).code).toBe("VALIDATION");
    expect((err as RealmError).message).toContain("loopback");
  });

  it("refuses cross-site and rebound requests and non-JSON bodies, marks its events, and its keys stop once authentication is on", async () => {
    const dir = join(data, "dev");
    realm = await startRealm({ dataDir: dir, natsPort: 0, httpPort: 0, dnsPort: 0, noAuth: true, log });
    const url = realm.httpUrl!;
    const host = new URL(url).host;
    const body = JSON.stringify({ id: "dev", kind: "service", displayName: "Dev" });
    // another site's page: a "simple" text/plain POST, and a JSON one, both refused
    const crossSite = await raw(`${url}/api/identity/principal/create`, { method: "POST", headers: { host, origin: "https://evil.example", "content-type": "text/plain" }, body });
    expect(crossSite.status).toBe(403);
    expect(JSON.parse(crossSite.body)).toMatchObject({ ok: false, error: { code: "FORBIDDEN" } });
    const crossJson = await raw(`${url}/api/identity/principal/create`, { method: "POST", headers: { host, origin: "https://evil.example", "content-type": "application/json" }, body });
    expect(crossJson.status).toBe(403);
    // DNS rebinding: a foreign name pointing at 127.0.0.1
    const rebound = await raw(`${url}/api/identity/principals`, { method: "GET", headers: { host: `evil.example:${new URL(url).port}` } });
    expect(rebound.status).toBe(403);
    // a same-origin text/plain body is still not JSON
    const plain = await raw(`${url}/api/identity/principal/create`, { method: "POST", headers: { host, "content-type": "text/plain" }, body });
    expect(plain.status).toBe(415);
    expect(JSON.parse(plain.body)).toMatchObject({ error: { code: "MALFORMED" } });
    // the developer's own requests work, and what they record says how
    const post = (path: string, b: object) => raw(`${url}${path}`, { method: "POST", headers: { host, origin: `http://${host}`, "content-type": "application/json" }, body: JSON.stringify(b) });
    expect((await post("/api/identity/principal/create", { id: "dev", kind: "service", displayName: "Dev" })).status).toBe(200);
    expect((await post("/api/identity/policy/bind", { id: "dev-admin", role: "realm-admin", subject: { kind: "principal", id: "dev" } })).status).toBe(200);
    const issued = await post("/api/identity/apikey/issue", { owner: "dev", label: "dev", roles: ["realm-admin"] });
    expect(issued.status).toBe(200);
    const key = (JSON.parse(issued.body) as { key: string }).key;
    const audit = JSON.parse((await raw(`${url}/api/identity/audit?aggregateType=principal&aggregateId=dev`, { method: "GET", headers: { host } })).body) as { entries: { authz?: { mode?: string } }[] };
    expect(audit.entries[0]!.authz).toMatchObject({ mode: "insecure-no-auth" });
    await realm.stop();
    realm = undefined;
    // the same realm with authentication: the key minted without it is refused
    realm = await startRealm({ dataDir: dir, natsPort: 0, httpPort: 0, dnsPort: 0, log });
    const res = await fetch(`${realm.httpUrl}/api/identity/principals`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain("without authentication");
  });
});
