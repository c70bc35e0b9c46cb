import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { createHash } from "node:crypto";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { NatsSupervisor } from "../../services/nats/supervisor.js";
import { acquireDataDirLock } from "../../services/cli/lock.js";
import { reconnectOptions } from "../../services/cli/connection.js";
import { RealmError, toRealmError } from "../../services/kernel/errors.js";
import { repoRoot } from "../support/cli.js";
import { startNats, type TestNats } from "../support/nats.js";

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "realm-sup-"));
  dirs.push(d);
  return d;
};
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A deferred: the callbacks of the supervisor resolve these, the tests await them. */
function signal<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Resolves on the next status event of `type` (the iterator is opened at the call, before what causes it). */
async function nextStatus(nc: NatsConnection, type: string): Promise<void> {
  for await (const s of nc.status()) if (s.type === type) return;
}

const mode = (path: string) => statSync(path).mode & 0o777;

/** The first stdout line of a child process, parsed as JSON. */
function firstJsonLine<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolveLine, reject) => {
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    createInterface({ input: child.stdout! }).once("line", (line) => resolveLine(JSON.parse(line) as T));
    child.once("exit", (code) => reject(new Error(`child exited ${code} before printing: ${stderr}`)));
  });
}

/** A process is gone once /proc has no entry for it or only a zombie (reaped later by whoever adopted it). */
function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state === "Z" || state === "X";
  } catch {
    return true;
  }
}

const tsx = (script: string, args: string[]) => spawn(process.execPath, ["--import", "tsx", resolve(repoRoot, script), ...args], { cwd: repoRoot, stdio: ["pipe", "pipe", "pipe"] });

describe("NatsSupervisor", () => {
  it("restarts a SIGKILLed nats-server on the same port; a reconnecting client keeps working and JetStream keeps its data", async () => {
    const restarted = signal<{ attempt: number; exitCode: number | null; signal: string | null }>();
    const supervisor = new NatsSupervisor({ dataDir: join(tempDir(), "nats"), onRestart: (attempt, exitCode, sig) => restarted.resolve({ attempt, exitCode, signal: sig }) });
    await supervisor.start();
    cleanups.push(() => supervisor.stop());
    const firstPid = supervisor.pid!;
    expect(supervisor.diesWithParent).toBe(true);
    // setpriv execs nats-server: the pid we report is the server's own.
    expect(readFileSync(`/proc/${firstPid}/comm`, "utf8").trim()).toBe("nats-server");

    const nc = await connect({ servers: supervisor.url, ...reconnectOptions });
    cleanups.push(() => nc.close());
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "SUPERVISED", subjects: ["supervised.>"], storage: StorageType.File });
    const js = jetstream(nc);
    await js.publish("supervised.before", "written before the kill");
    nc.subscribe("echo.supervised", { callback: (_err, m) => void m.respond(m.data) });
    const reconnected = nextStatus(nc, "reconnect");
    const port = supervisor.port;

    process.kill(firstPid, "SIGKILL");
    expect(await restarted.promise).toEqual({ attempt: 1, exitCode: null, signal: "SIGKILL" });
    expect(supervisor.state).toBe("running");
    expect(supervisor.restarts).toBe(1);
    expect(supervisor.port).toBe(port);
    expect(supervisor.pid).not.toBe(firstPid);
    expect(readFileSync(`/proc/${supervisor.pid}/comm`, "utf8").trim()).toBe("nats-server");

    await reconnected;
    expect((await nc.request("echo.supervised", "ping", { timeout: 10_000 })).string()).toBe("ping");
    const ack = await js.publish("supervised.after", "written after the restart");
    expect(ack.seq).toBe(2);
    const before = await jsm.streams.getMessage("SUPERVISED", { seq: 1 });
    expect(before?.string()).toBe("written before the kill");
    expect((await jsm.streams.info("SUPERVISED")).state.messages).toBe(2);
  });

  it("gives up with UNAVAILABLE when the restarts keep failing (its port is taken) and stays stopped", async () => {
    const gaveUp = signal<RealmError>();
    let blocker: Server | undefined;
    const blocking = signal<Error | undefined>();
    const supervisor: NatsSupervisor = new NatsSupervisor({
      dataDir: tempDir(),
      jetstream: false,
      maxRestarts: 2,
      // Runs in the exit event, before the first restart is due: the listener binds the port first.
      onExit: () => {
        blocker = createServer();
        blocker.once("error", (err) => blocking.resolve(err));
        blocker.listen(supervisor.port, supervisor.host, () => blocking.resolve(undefined));
      },
      onRestart: () => gaveUp.resolve(new RealmError("INTERNAL", "restarted although its port was taken")),
      onGiveUp: (err) => gaveUp.resolve(err),
    });
    await supervisor.start();
    cleanups.push(() => supervisor.stop());
    cleanups.push(() => new Promise((r) => (blocker ? blocker.close(r) : r(undefined))));

    process.kill(supervisor.pid!, "SIGKILL");
    expect(await blocking.promise).toBeUndefined();
    const err = await gaveUp.promise;
    expect(err).toBeInstanceOf(RealmError);
    expect(err.code).toBe("UNAVAILABLE");
    expect(err.message).toContain("gave up after 2 restarts");
    expect(err.message).toContain(supervisor.logFile);
    expect(err.message).toMatch(/address already in use/);
    expect(supervisor.failure).toBe(err);
    expect(supervisor.state).toBe("failed");
    expect(supervisor.pid).toBeUndefined();
    expect(supervisor.restarts).toBe(0);
  });

  it("takes nats-server down with it when its parent is SIGKILLed (setpriv --pdeathsig)", async () => {
    const child = tsx("test/nats/supervised-child.ts", [tempDir()]);
    const exited = new Promise((r) => child.once("exit", r));
    cleanups.push(() => child.kill("SIGKILL"));
    const info = await firstJsonLine<{ pid: number; port: number; diesWithParent: boolean }>(child);
    cleanups.push(() => {
      if (!processGone(info.pid)) process.kill(info.pid, "SIGKILL");
    });
    expect(info.diesWithParent).toBe(true);
    expect(processGone(info.pid)).toBe(false);
    const nc = await connect({ servers: `nats://127.0.0.1:${info.port}`, reconnect: false });
    const closed = nc.closed();

    child.kill("SIGKILL");
    await exited;
    // The event: the orphaned server shuts down on SIGTERM and drops our connection.
    await closed;
    // Then its process ends; a bounded wait for /proc to say so (there is no exit event for a non-child).
    for (let i = 0; i < 400 && !processGone(info.pid); i++) await new Promise((r) => setTimeout(r, 25));
    if (!processGone(info.pid)) throw new Error(`nats-server pid ${info.pid} still runs 10 s after its parent was SIGKILLed`);
  });

  it("keeps the data dir and the JetStream store dir 0700 and the config file 0600, tightening existing ones", async () => {
    const dataDir = join(tempDir(), "nats");
    mkdirSync(join(dataDir, "jetstream"), { recursive: true });
    chmodSync(dataDir, 0o755);
    chmodSync(join(dataDir, "jetstream"), 0o755);
    writeFileSync(join(dataDir, "nats-server.conf"), "# old\n", { mode: 0o644 });
    const supervisor = new NatsSupervisor({ dataDir });
    await supervisor.start();
    cleanups.push(() => supervisor.stop());
    expect(mode(dataDir)).toBe(0o700);
    expect(mode(supervisor.storeDir)).toBe(0o700);
    expect(mode(supervisor.configFile)).toBe(0o600);

    const base = tempDir();
    const fresh = new NatsSupervisor({ dataDir: join(base, "a", "b") });
    await fresh.start();
    cleanups.push(() => fresh.stop());
    expect(mode(join(base, "a"))).toBe(0o700);
    expect(mode(join(base, "a", "b"))).toBe(0o700);
    expect(mode(fresh.storeDir)).toBe(0o700);
    expect(mode(fresh.configFile)).toBe(0o600);
  });
});

describe("data dir lock", () => {
  const lockOf = (dir: string) => JSON.parse(readFileSync(join(dir, "realm.lock"), "utf8")) as { pid: number; startedAt: string; host: string };
  const deadPid = async () => {
    const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
    const pid = child.pid!;
    await new Promise((r) => child.once("exit", r));
    return pid;
  };

  it("refuses a second holder with CONFLICT naming the pid; release lets the next one in", () => {
    const dir = tempDir();
    const lock = acquireDataDirLock(dir);
    expect(lockOf(dir)).toEqual({ pid: process.pid, startedAt: lock.startedAt, host: hostname() });
    let refused: unknown;
    try {
      acquireDataDirLock(dir);
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(RealmError);
    expect((refused as RealmError).code).toBe("CONFLICT");
    expect((refused as RealmError).message).toContain(`data dir ${resolve(dir)} is in use by realm up pid ${process.pid} since ${lock.startedAt}`);
    expect((refused as RealmError).message).toContain(join(resolve(dir), "realm.lock"));
    lock.release();
    expect(existsSync(join(dir, "realm.lock"))).toBe(false);
    const again = acquireDataDirLock(dir);
    expect(lockOf(dir).startedAt).toBe(again.startedAt);
    again.release();
    again.release();
    expect(readdirSync(dir)).toEqual([]);
  });

  it("release leaves a lock alone that is no longer ours", () => {
    const dir = tempDir();
    const lock = acquireDataDirLock(dir);
    const other = JSON.stringify({ pid: 1, startedAt: "2020-01-01T00:00:00.000Z", host: hostname() });
    writeFileSync(join(dir, "realm.lock"), other);
    lock.release();
    expect(readFileSync(join(dir, "realm.lock"), "utf8")).toBe(other);
  });

  it("takes over a stale lock (its pid has exited), and one with our pid that this process did not write", async () => {
    const dir = tempDir();
    const pid = await deadPid();
    writeFileSync(join(dir, "realm.lock"), JSON.stringify({ pid, startedAt: "2020-01-01T00:00:00.000Z", host: hostname() }));
    const lock = acquireDataDirLock(dir);
    expect(lockOf(dir)).toEqual({ pid: process.pid, startedAt: lock.startedAt, host: hostname() });
    lock.release();
    // A previous process with the same pid (a container's realm up is pid 1 every time).
    writeFileSync(join(dir, "realm.lock"), JSON.stringify({ pid: process.pid, startedAt: "2020-01-01T00:00:00.000Z", host: "old-container" }));
    const second = acquireDataDirLock(dir);
    expect(lockOf(dir).startedAt).toBe(second.startedAt);
    second.release();
    expect(readdirSync(dir)).toEqual([]);
  });

  it("reports a takeover whose claimant died half-way instead of guessing", async () => {
    const dir = tempDir();
    const stale = JSON.stringify({ pid: await deadPid(), startedAt: "2020-01-01T00:00:00.000Z", host: hostname() });
    writeFileSync(join(dir, "realm.lock"), stale);
    const claim = join(resolve(dir), `realm.lock.takeover-${createHash("sha256").update(stale).digest("hex").slice(0, 16)}`);
    writeFileSync(claim, JSON.stringify({ pid: await deadPid(), startedAt: "2020-01-01T00:00:01.000Z", host: hostname() }));
    let refused: unknown;
    try {
      acquireDataDirLock(dir);
    } catch (err) {
      refused = err;
    }
    expect((refused as RealmError).code).toBe("CONFLICT");
    expect((refused as RealmError).message).toContain(`remove ${join(resolve(dir), "realm.lock")} and ${claim}`);
    rmSync(claim);
    acquireDataDirLock(dir).release();
  });

  it("lets exactly one of four concurrent starters take over a stale lock", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "realm.lock"), JSON.stringify({ pid: await deadPid(), startedAt: "2020-01-01T00:00:00.000Z", host: hostname() }));
    const children = Array.from({ length: 4 }, () => tsx("test/nats/lock-child.ts", [dir]));
    const exits = children.map((c) => new Promise((r) => c.once("exit", r)));
    cleanups.push(() => children.forEach((c) => c.kill("SIGKILL")));
    const lines = children.map((c) => {
      const rl = createInterface({ input: c.stdout! });
      const next = () => new Promise<string>((r, reject) => (rl.once("line", r), c.once("exit", (code) => reject(new Error(`lock child exited ${code}`)))));
      return next;
    });
    const readers = lines.map((next) => next());
    expect(await Promise.all(readers)).toEqual(["ready", "ready", "ready", "ready"]);
    const results = lines.map((next) => next());
    for (const c of children) c.stdin!.write("go\n");
    const outcomes = (await Promise.all(results)).map((l) => JSON.parse(l) as { won: boolean; pid: number; code?: string; message?: string });
    const winners = outcomes.filter((o) => o.won);
    expect(winners).toHaveLength(1);
    const winner = winners[0]!;
    expect(lockOf(dir).pid).toBe(winner.pid);
    for (const o of outcomes.filter((x) => !x.won)) {
      expect(o.code).toBe("CONFLICT");
      expect(o.message).toContain(`pid ${winner.pid}`);
    }
    // Ending stdin exits them; the winner's exit handler removes its lock, and no claim is left behind.
    for (const c of children) c.stdin!.end();
    await Promise.all(exits);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe("toRealmError on NATS failures", () => {
  let nats: TestNats;
  beforeAll(async () => {
    nats = await startNats();
  });
  afterAll(async () => nats?.stop());

  const thrown = async (p: Promise<unknown>): Promise<unknown> => {
    try {
      await p;
    } catch (err) {
      return err;
    }
    throw new Error("expected a rejection");
  };
  const unavailable = (err: unknown) => {
    const e = toRealmError(err);
    expect(e.code).toBe("UNAVAILABLE");
    expect(e.httpStatus).toBe(503);
    expect(e.message).toMatch(/: NATS unreachable or not answering$/);
    return e;
  };

  it("maps a request nobody serves to UNAVAILABLE without quoting the subject", async () => {
    const nc = await nats.connect();
    const e = unavailable(await thrown(nc.request("realm.nobody.serves.secret-subject", "payload", { timeout: 5_000 })));
    expect(e.message).toBe("no responders: NATS unreachable or not answering");
    expect(e.message).not.toContain("secret-subject");
  });

  it("maps a request that times out to UNAVAILABLE", async () => {
    const nc = await nats.connect();
    nc.subscribe("realm.silent", { callback: () => undefined });
    await nc.flush();
    expect(unavailable(await thrown(nc.request("realm.silent", "payload", { timeout: 100 }))).message).toBe("NATS request timed out: NATS unreachable or not answering");
  });

  it("maps a request on a closed connection to UNAVAILABLE", async () => {
    const nc = await nats.connect();
    await nc.close();
    expect(unavailable(await thrown(nc.request("realm.anything", "payload"))).message).toBe("NATS connection closed: NATS unreachable or not answering");
  });

  it("maps a JetStream publish to a subject no stream captures to UNAVAILABLE", async () => {
    const nc = await nats.connect();
    unavailable(await thrown(jetstream(nc).publish("realm.no.stream.here", "payload", { timeout: 500 })));
  });

  it("keeps other errors INTERNAL: a plain Error, a JetStream API error that is not an outage", async () => {
    expect(toRealmError(new Error("secret detail")).toBody()).toEqual({ code: "INTERNAL", message: "internal error" });
    const nc = await nats.connect();
    const jsm = await jetstreamManager(nc);
    expect(toRealmError(await thrown(jsm.streams.info("NO_SUCH_STREAM"))).code).toBe("INTERNAL");
    const kept = new RealmError("CONFLICT", "kept");
    expect(toRealmError(kept)).toBe(kept);
  });
});
