import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../services/nats/supervisor.js";
import { EXIT_CODES } from "../../services/cli/exit-codes.js";
import { runRealm, startRealmProcess } from "../support/cli.js";
import { startCluster, type TestCluster } from "../support/nats-cluster.js";

/**
 * The whole 3-node cluster stopped (SIGKILL, every node) for 60 s under one `realm up --nats --replicas 3`
 * with one DNS worker process, then started again. Design: the realm stays up through any outage and
 * recovers by itself (it exits non-zero only when a part cannot recover; see docs/ARCHITECTURE.md).
 */
const OUTAGE_MS = 60_000;
let cluster: TestCluster;
const dirs: string[] = [];
let realm: Awaited<ReturnType<typeof startRealmProcess>> | undefined;
beforeAll(async () => {
  cluster = await startCluster(3);
}, 60_000);
afterAll(async () => {
  if (realm && realm.child.exitCode === null) {
    realm.child.kill("SIGTERM");
    await realm.exited;
  }
  await cluster?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Readyz {
  ok: boolean;
  status: string;
  nats: string;
  jetstream: string;
  projections: { context: string; projection: string; applied: number; streamLast: number | null; lag: number | null }[];
}

/** GET with a deadline of its own: a hung API fails the test instead of stalling it. */
async function get(url: string): Promise<{ status: number; body: unknown; ms: number }> {
  const t0 = performance.now();
  const r = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  return { status: r.status, body: await r.json(), ms: Math.round(performance.now() - t0) };
}

/** Polls `check` every 250 ms until it returns a value, or fails naming `what` after `ms`. */
async function until<T>(what: string, ms: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what} not within ${ms} ms${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const dig = (port: number, name: string) => spawnSync("dig", ["@127.0.0.1", "-p", String(port), name, "A", "+short", "+tries=2", "+time=2"], { encoding: "utf8" }).stdout.trim();

describe("the whole NATS cluster down for 60 s", () => {
  it("the realm answers UNAVAILABLE during the outage, keeps serving DNS from memory, and recovers by itself", async () => {
    const data = mkdtempSync(join(tmpdir(), "realm-outage-"));
    dirs.push(data);
    const [httpPort, dnsPort] = [await freePort(), await freePort()];
    const http = `http://127.0.0.1:${httpPort}`;
    realm = await startRealmProcess(
      ["up", "--data", data, "--nats", cluster.servers.join(","), "--replicas", "3", "--http-port", String(httpPort), "--dns-port", String(dnsPort), "--insecure-no-auth"],
      "cim-realm is up",
      { REALM_DNS_WORKERS: "1", REALM_LOG_LEVEL: "info" },
      90_000,
    );
    const r = realm;
    const env = { REALM_NATS_URL: cluster.servers.join(",") };
    expect((await runRealm(["zone", "create", "out.example.", "--ns", "ns1.out.example."], env)).code).toBe(0);
    const before = await runRealm(["record", "add", "www.out.example.", "A", "192.0.2.1"], env);
    expect(before.code, before.stderr).toBe(0);
    const up = await until("/readyz 200 before the outage", 30_000, async () => {
      const g = await get(`${http}/readyz`);
      return g.status === 200 ? (g.body as Readyz) : undefined;
    });
    expect(up.nats).toBe("connected");
    expect(up.jetstream).toBe("ok");
    expect(up.projections.find((p) => p.context === "dns")?.lag).toBe(0);
    await until("the DNS worker to answer www", 15_000, async () => (dig(dnsPort, "www.out.example.") === "192.0.2.1" ? true : undefined));

    // Every node SIGKILLed: no clean shutdown anywhere.
    const downAt = Date.now();
    for (const n of cluster.nodes) await cluster.kill(n.name);

    const healthDown = await until("/healthz 503", 20_000, async () => {
      const g = await get(`${http}/healthz`);
      return g.status === 503 ? g : undefined;
    });
    expect.soft(healthDown.body).toMatchObject({ ok: false, nats: "disconnected" });
    const readyDown = await until("/readyz 503", 20_000, async () => {
      const g = await get(`${http}/readyz`);
      return g.status === 503 ? g : undefined;
    });
    const rd = readyDown.body as Readyz;
    expect.soft(rd.status).toBe("not-ready");
    expect.soft(rd.nats).toBe("disconnected");
    expect.soft(rd.jetstream).not.toBe("ok");
    process.stdout.write(`outage: /healthz 503 after ${healthDown.ms} ms request, /readyz 503 (${readyDown.ms} ms request) ${JSON.stringify({ nats: rd.nats, jetstream: rd.jetstream })}\n`);

    // The CLI answers UNAVAILABLE (its exit code) and does not hang.
    let t0 = performance.now();
    const cliWrite = await runRealm(["record", "add", "down.out.example.", "A", "192.0.2.9"], env);
    const cliMs = Math.round(performance.now() - t0);
    expect.soft(cliWrite.code, cliWrite.stderr).toBe(EXIT_CODES.UNAVAILABLE);
    expect.soft(cliWrite.stderr).toMatch(/UNAVAILABLE/);
    // The API (the realm itself, not only the CLI's own connection) answers a write with a typed UNAVAILABLE.
    t0 = performance.now();
    const apiWrite = await fetch(`${http}/api/dns/record/add`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ zone: "out.example.", name: "down.out.example.", type: "A", data: "192.0.2.9" }), signal: AbortSignal.timeout(40_000) });
    const apiMs = Math.round(performance.now() - t0);
    const apiBody = (await apiWrite.json()) as { ok: boolean; error?: { code: string; message: string } };
    expect.soft(apiWrite.status).toBe(503);
    expect.soft(apiBody.error?.code).toBe("UNAVAILABLE");
    // A query is answered from the read model in memory.
    const zones = await get(`${http}/api/dns/zones`);
    process.stdout.write(`outage: CLI record add exit ${cliWrite.code} in ${cliMs} ms; API record add ${apiWrite.status} ${apiBody.error?.code} in ${apiMs} ms (${apiBody.error?.message}); API zones ${zones.status} in ${zones.ms} ms\n`);
    // DNS answers the zone it holds in memory.
    expect.soft(dig(dnsPort, "www.out.example.")).toBe("192.0.2.1");

    // The rest of the 60 s: the process stays up and not ready the whole time.
    let probes = 0;
    while (Date.now() - downAt < OUTAGE_MS) {
      expect(r.child.exitCode, `realm exited during the outage: ${r.stderr().slice(-2000)}`).toBeNull();
      const g = await get(`${http}/readyz`);
      expect.soft(g.status).toBe(503);
      probes++;
      await new Promise((res) => setTimeout(res, 2_000));
    }
    expect.soft(dig(dnsPort, "www.out.example.")).toBe("192.0.2.1");
    process.stdout.write(`outage: ${Math.round((Date.now() - downAt) / 1000)} s down, ${probes} /readyz probes all answered\n`);

    const restartAt = Date.now();
    for (const n of cluster.nodes) await cluster.start(n.name);
    // The first write that succeeds after the restart (each attempt a new command, its own CLI process).
    let attempts = 0;
    await until("a record add after the restart", 120_000, async () => {
      attempts++;
      const w = await runRealm(["record", "add", "back.out.example.", "A", "192.0.2.2"], env);
      if (w.code === 0) return true;
      if (w.code !== EXIT_CODES.UNAVAILABLE && w.code !== EXIT_CODES.ALREADY_EXISTS) throw new Error(`record add exit ${w.code}: ${w.stderr}`);
      return undefined;
    });
    const writeMs = Date.now() - restartAt;
    const ready = await until("/readyz 200 after the restart", 120_000, async () => {
      const g = await get(`${http}/readyz`);
      return g.status === 200 ? (g.body as Readyz) : undefined;
    });
    const readyMs = Date.now() - restartAt;
    expect(ready.nats).toBe("connected");
    expect(ready.jetstream).toBe("ok");
    // Every projection (the context's, the auditor's, PKI's view of the DNS zones) reaches its stream's end.
    const caughtUp = await until("every projection at lag 0", 30_000, async () => {
      const b = (await get(`${http}/readyz`)).body as Readyz;
      return b.projections.every((p) => p.lag === 0) ? b : undefined;
    });
    expect(caughtUp.projections.length).toBeGreaterThan(3);
    expect((await get(`${http}/healthz`)).status).toBe(200);
    // The DNS worker's own projection followed too.
    await until("the DNS worker to answer back", 30_000, async () => (dig(dnsPort, "back.out.example.") === "192.0.2.2" ? true : undefined));
    const answeredMs = Date.now() - restartAt;
    const audit = await runRealm(["audit", "verify"], { ...env, REALM_DATA: data });
    expect(audit.code, audit.stdout + audit.stderr).toBe(0);
    expect(r.child.exitCode).toBeNull();
    const transitions = r.stdout().split("\n").filter((l) => /recover|lost|consumer/i.test(l)).length;
    process.stdout.write(`recovery: nodes restarted -> first successful write ${writeMs} ms (${attempts} attempts), /readyz 200 ${readyMs} ms, dig answers the new record ${answeredMs} ms; ${transitions} log lines about projection recovery\n`);
  }, 300_000);
});
