import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect } from "vitest";
import { freePort } from "../../services/nats/supervisor.js";
import { runRealm, startRealmProcess } from "./cli.js";

export type RunningRealmProcess = Awaited<ReturnType<typeof startRealmProcess>> & { ports: { nats: number; http: number; dns: number }; env: Record<string, string> };

/**
 * `realm up` processes and temp dirs for one test file: each started on free ports, every one still running
 * stopped (SIGTERM, awaited) and every dir removed after the file's tests.
 */
export function realmProcesses() {
  const dirs: string[] = [];
  const running: RunningRealmProcess[] = [];
  afterAll(async () => {
    for (const r of running) {
      r.child.kill("SIGTERM");
      await r.exited;
    }
    dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
  });
  return {
    tmp(prefix: string): string {
      const d = mkdtempSync(join(tmpdir(), prefix));
      dirs.push(d);
      return d;
    },
    /** `realm up --data <data> ...extra` on free NATS, HTTP and DNS ports; the env a CLI call needs to reach it. */
    async up(data: string, extra: string[] = [], env: Record<string, string> = {}): Promise<RunningRealmProcess> {
      const ports = { nats: await freePort(), http: await freePort(), dns: await freePort() };
      const realm = await startRealmProcess(["up", "--data", data, "--nats-port", String(ports.nats), "--http-port", String(ports.http), "--dns-port", String(ports.dns), ...extra], "cim-realm is up", env, 90_000);
      const started = { ...realm, ports, env: { REALM_DATA: data, REALM_NATS_URL: `nats://127.0.0.1:${ports.nats}` } };
      running.push(started);
      return started;
    },
    /** SIGTERM, and the process must exit 0. */
    async stop(realm: RunningRealmProcess): Promise<void> {
      realm.child.kill("SIGTERM");
      expect(await realm.exited).toBe(0);
      const i = running.indexOf(realm);
      if (i >= 0) running.splice(i, 1);
    },
  };
}

/** `realm <args>` that must succeed; its output. */
export async function ok(args: string[], env: Record<string, string>, cwd?: string) {
  const r = await runRealm(args, env, undefined, cwd);
  if (r.code !== 0) throw new Error(`realm ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r;
}

/** dig +short for an A record at 127.0.0.1:port. */
export const digA = (port: number, name: string) => spawnSync("dig", ["+short", "+time=2", "+tries=2", "-p", String(port), "@127.0.0.1", name, "A"], { encoding: "utf8" }).stdout.trim();
