import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startRealm, type RunningRealm } from "../../services/cli/runtime.js";
import { freePort } from "../../services/nats/supervisor.js";
import { createLogger } from "../../services/host/logger.js";
import { RealmError } from "../../services/kernel/errors.js";

const data = mkdtempSync(join(tmpdir(), "realm-giveup-"));
let realm: RunningRealm | undefined;
let squatter: Server | undefined;
afterAll(async () => {
  squatter?.close();
  await realm?.stop().catch(() => undefined);
  rmSync(data, { recursive: true, force: true });
});

describe("realm up when its nats-server cannot come back", () => {
  it("answers UNAVAILABLE (not INTERNAL) while NATS is down, and fails the realm once the supervisor gives up", async () => {
    const progress: string[] = [];
    const natsPort = await freePort();
    realm = await startRealm({ dataDir: data, natsPort, httpPort: 0, dnsPort: 0, noAuth: true, log: createLogger({ level: "silent" }), progress: (l) => progress.push(l) });
    const failed = realm.failed.then(
      () => undefined,
      (e: unknown) => e,
    );
    // nats-server dies, and something else takes its port: every restart fails
    const exited = new Promise<void>((resolve) => {
      const pid = realm!.nats!.pid!;
      process.kill(pid, "SIGKILL");
      const poll = () => {
        try {
          process.kill(pid, 0);
          setImmediate(poll);
        } catch {
          resolve();
        }
      };
      poll();
    });
    await exited;
    squatter = createServer();
    await new Promise<void>((resolve) => squatter!.listen(natsPort, "127.0.0.1", () => resolve()));
    // a caller meanwhile gets a typed UNAVAILABLE
    const r = await fetch(`${realm.httpUrl}/healthz`);
    expect(r.status).toBe(503);
    expect(await r.json()).toMatchObject({ ok: false, nats: "disconnected" });
    const cmd = await fetch(`${realm.httpUrl}/api/dns/zone/create`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ zone: "down.example", ns: ["ns1.down.example"] }) });
    expect(cmd.status).toBe(503);
    expect(((await cmd.json()) as { error: { code: string } }).error.code).toBe("UNAVAILABLE");
    const err = await failed;
    expect(err).toBeInstanceOf(RealmError);
    expect((err as RealmError).code).toBe("UNAVAILABLE");
    expect((err as RealmError).message).toContain("nats-server.log");
    expect(progress.some((l) => /nats-server exited/.test(l))).toBe(true);
    // and it stops with NATS gone (what `realm up` does before exiting non-zero): nothing waits for NATS
    await realm.stop();
    realm = undefined;
  }, 90_000);
});
