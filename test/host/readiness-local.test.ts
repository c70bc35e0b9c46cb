import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startRealm, type RunningRealm } from "../../services/cli/runtime.js";
import { freePort } from "../../services/nats/supervisor.js";
import { createLogger } from "../../services/host/logger.js";

const data = mkdtempSync(join(tmpdir(), "realm-ready-local-"));
let realm: RunningRealm | undefined;
afterAll(async () => {
  await realm?.stop().catch(() => undefined);
  rmSync(data, { recursive: true, force: true });
});

/** Polls `url` every 100 ms until it answers `status`; the body then. */
async function until(url: string, status: number, ms: number): Promise<Record<string, unknown>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await fetch(url, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
    if (r?.status === status) return (await r.json()) as Record<string, unknown>;
    if (Date.now() > deadline) throw new Error(`${url} did not answer ${status} within ${ms} ms (last ${r?.status})`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

describe("readiness in local mode: the supervisor restarts a killed nats-server", () => {
  it("/readyz goes 503 (nats, jetstream named) and back to 200 by itself; a write then succeeds", async () => {
    realm = await startRealm({ dataDir: data, natsPort: await freePort(), httpPort: 0, dnsPort: 0, noAuth: true, log: createLogger({ level: "silent" }) });
    const url = `${realm.httpUrl}/readyz`;
    const before = await until(url, 200, 30_000);
    expect(before).toMatchObject({ nats: "connected", jetstream: "ok" });
    const metrics = await (await fetch(`${realm.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/^realm_jetstream_up 1$/m);
    expect(metrics).toMatch(/^realm_projection_lag\{context="dns",projection="dns-names"\} 0$/m);
    const killedAt = Date.now();
    process.kill(realm.nats!.pid!, "SIGKILL");
    const down = await until(url, 503, 15_000);
    expect(down).toMatchObject({ ok: false, status: "not-ready", nats: "disconnected", jetstream: "unavailable" });
    const up = await until(url, 200, 60_000);
    expect(up).toMatchObject({ ok: true, nats: "connected", jetstream: "ok" });
    const readyMs = Date.now() - killedAt;
    const w = await fetch(`${realm.httpUrl}/api/dns/zone/create`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ zone: "back.example", ns: ["ns1.back.example"] }) });
    expect(w.status, await w.clone().text()).toBe(200);
    process.stdout.write(`local: nats-server killed -> /readyz 200 again after ${readyMs} ms\n`);
  }, 120_000);
});
