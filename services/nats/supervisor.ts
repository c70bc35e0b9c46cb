import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";
import { RealmError } from "../kernel/errors.js";
import { renderConfig, type LeafPart, type NatsServerConfig, type OperatorPart, type TlsPart } from "./config.js";

export interface SupervisorOptions {
  dataDir: string;
  host?: string;
  /** Client port; 0 picks a free one. */
  port?: number;
  httpPort?: number;
  serverName?: string;
  jetstream?: boolean;
  /** JetStream domain (a hub that sites reach, or a site). */
  jetstreamDomain?: string;
  /** Leaf-node links: listen for sites (a hub) or dial the hub (a site). */
  leaf?: LeafPart;
  operator?: OperatorPart;
  tls?: TlsPart;
  /** Path to the nats-server binary; default: $NATS_SERVER_BIN, PATH, /usr/sbin/nats-server. */
  binary?: string;
  readyTimeoutMs?: number;
  /** Restarts allowed within `restartWindowMs` before the supervisor gives up (default 5; 0: never restart). */
  maxRestarts?: number;
  /** Window over which restarts are counted (default 60 s). */
  restartWindowMs?: number;
  /** Called whenever nats-server exits without `stop()`/`kill()` (before a restart is scheduled). */
  onExit?: (exitCode: number | null, signal: NodeJS.Signals | null) => void;
  /**
   * Called when a restart made nats-server ready again: `attempt` counts the restarts within the window
   * (1 = first), `exitCode` is that of the exit that led to this attempt (null when killed by a signal).
   */
  onRestart?: (attempt: number, exitCode: number | null, signal: NodeJS.Signals | null) => void;
  /** Called once when the supervisor stops restarting; it stays stopped. Default: `warn` the message. */
  onGiveUp?: (error: RealmError) => void;
  /** Operator notes (no setpriv, give-up without onGiveUp). Default: a line on stderr. */
  warn?: (line: string) => void;
}

export type SupervisorState = "stopped" | "starting" | "running" | "restarting" | "failed";

export function findNatsServer(explicit?: string): string {
  const candidates = [explicit, process.env.NATS_SERVER_BIN, ...(process.env.PATH ?? "").split(delimiter).map((d) => d && join(d, "nats-server")), "/usr/sbin/nats-server", "/usr/local/bin/nats-server"];
  for (const c of candidates) if (c && existsSync(c)) return c;
  throw new RealmError("UNAVAILABLE", "nats-server not found: install it (apt install nats-server) or set NATS_SERVER_BIN");
}

/** util-linux `setpriv` (PATH, then /usr/bin/setpriv), if installed. */
export function findSetpriv(): string | undefined {
  const candidates = [...(process.env.PATH ?? "").split(delimiter).map((d) => d && join(d, "setpriv")), "/usr/bin/setpriv"];
  for (const c of candidates) if (c && existsSync(c)) return c;
  return undefined;
}

export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

/** Creates `dir` (and missing parents) 0700 and tightens an existing one to 0700. */
function privateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

// One probe per (setpriv, nats-server) pair and process: does `setpriv --pdeathsig` work here (a kernel
// or sandbox may refuse the prctl)? It runs `nats-server --version` through it, a few milliseconds.
const pdeathsigProbes = new Map<string, boolean>();
function pdeathsigWorks(setpriv: string, binary: string): boolean {
  const key = `${setpriv}\0${binary}`;
  let ok = pdeathsigProbes.get(key);
  if (ok === undefined) {
    ok = spawnSync(setpriv, ["--pdeathsig", "SIGTERM", "--", binary, "--version"], { stdio: "ignore", timeout: 10_000 }).status === 0;
    pdeathsigProbes.set(key, ok);
  }
  return ok;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const describeExit = (e: Exit | undefined) => (!e ? "unknown exit" : e.signal ? `killed by ${e.signal}` : `exit code ${e.code}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs one nats-server: writes its config into the data dir, starts it, waits until its ports file says it
 * listens, restarts it when it dies on its own, and stops it with SIGTERM (then SIGKILL after a grace
 * period).
 *
 * - Dies with its parent: the server is started through `setpriv --pdeathsig SIGTERM` (which execs
 *   nats-server, so `pid` is the server's), so a SIGKILLed parent does not leave it running on the
 *   JetStream store. The kernel sends the signal when the parent *thread* that spawned it exits: create
 *   the supervisor on the main thread (or a thread that lives as long as the server should).
 * - Restarts: an exit that `stop()`/`kill()` did not ask for restarts it with the same config file and
 *   port after 200 ms, doubling to at most 5 s, at most `maxRestarts` times within `restartWindowMs`;
 *   then `onGiveUp` gets an UNAVAILABLE error and the supervisor stays stopped (`state` "failed").
 * - The data dir and the JetStream store dir are 0700, the config file 0600, the log 0600.
 */
export class NatsSupervisor {
  private child: ChildProcess | undefined;
  private exited: Promise<Exit> | undefined;
  /** Set by stop()/kill(): the exit that follows is not a crash. Cleared by start(). */
  private halting = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private restarting: Promise<void> | undefined;
  /** Start times of the restarts within the window. */
  private attempts: number[] = [];
  private lastExit: Exit | undefined;
  private command: { file: string; args: string[] } | undefined;
  private warnedNoSetpriv = false;
  private readonly warn: (line: string) => void;
  port = 0;
  /** Restarts that brought nats-server back (over the supervisor's life). */
  restarts = 0;
  state: SupervisorState = "stopped";
  /** The error the supervisor gave up with, if it did. */
  failure: RealmError | undefined;
  readonly host: string;
  readonly configFile: string;
  readonly logFile: string;
  readonly storeDir: string;
  readonly maxRestarts: number;
  readonly restartWindowMs: number;

  constructor(private readonly opts: SupervisorOptions) {
    this.host = opts.host ?? "127.0.0.1";
    this.configFile = join(opts.dataDir, "nats-server.conf");
    this.logFile = join(opts.dataDir, "nats-server.log");
    this.storeDir = join(opts.dataDir, "jetstream");
    this.maxRestarts = opts.maxRestarts ?? 5;
    this.restartWindowMs = opts.restartWindowMs ?? 60_000;
    this.warn = opts.warn ?? ((line) => void process.stderr.write(`${line}\n`));
  }

  get url(): string {
    return `nats://${this.host === "0.0.0.0" ? "127.0.0.1" : this.host}:${this.port}`;
  }

  /** The nats-server's pid (setpriv execs it, so this is the server itself), while one runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Whether the running server was started through `setpriv --pdeathsig` (dies when this process dies). */
  get diesWithParent(): boolean {
    return this.command !== undefined && this.command.args[0] === "--pdeathsig";
  }

  private get portsDir(): string {
    return join(this.opts.dataDir, "ports");
  }

  /** Resolves once nats-server listens; rejects with UNAVAILABLE (and leaves nothing running) otherwise. */
  async start(): Promise<void> {
    if (this.child || this.state === "starting" || this.state === "running" || this.state === "restarting") throw new RealmError("INTERNAL", "nats-server already started");
    const binary = findNatsServer(this.opts.binary);
    this.command = this.commandFor(binary);
    privateDir(this.opts.dataDir);
    if (this.opts.jetstream !== false) privateDir(this.storeDir);
    // Keep the port across restarts so that clients reconnect to the same address.
    if (!this.port) this.port = this.opts.port || (await freePort(this.host));
    const config: NatsServerConfig = {
      serverName: this.opts.serverName ?? "cim-realm",
      host: this.host,
      port: this.port,
      portsFileDir: this.portsDir,
      ...(this.opts.httpPort ? { httpPort: this.opts.httpPort } : {}),
      ...(this.opts.jetstream === false ? {} : { jetstream: { storeDir: this.storeDir, ...(this.opts.jetstreamDomain ? { domain: this.opts.jetstreamDomain } : {}) } }),
      ...(this.opts.operator ? { operator: this.opts.operator } : {}),
      ...(this.opts.leaf ? { leaf: this.opts.leaf } : {}),
      ...(this.opts.tls ? { tls: this.opts.tls } : {}),
    };
    writeFileSync(this.configFile, renderConfig(config), { mode: 0o600 });
    chmodSync(this.configFile, 0o600); // the mode above applies only when the file is created
    this.halting = false;
    this.attempts = [];
    this.failure = undefined;
    this.state = "starting";
    try {
      await this.launch();
    } catch (err) {
      this.state = "stopped";
      throw err;
    }
    this.state = "running";
  }

  /** Graceful stop: SIGTERM, then SIGKILL after `graceMs`. Cancels a pending restart. */
  async stop(graceMs = 5_000): Promise<void> {
    await this.halt("SIGTERM", graceMs);
  }

  /** Hard kill (SIGKILL), as a crash would, but not restarted. */
  async kill(): Promise<void> {
    await this.halt("SIGKILL");
  }

  private async halt(signal: NodeJS.Signals, graceMs = 0): Promise<void> {
    this.halting = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    // A restart under way sees `halting`, kills what it spawned and returns.
    await this.restarting;
    const child = this.child;
    const exited = this.exited;
    if (child && exited) {
      child.kill(signal);
      const timer = signal === "SIGKILL" ? undefined : setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    }
    this.child = undefined;
    this.state = "stopped";
  }

  private commandFor(binary: string): { file: string; args: string[] } {
    const args = ["-c", this.configFile];
    const setpriv = findSetpriv();
    if (setpriv && pdeathsigWorks(setpriv, binary)) return { file: setpriv, args: ["--pdeathsig", "SIGTERM", "--", binary, ...args] };
    if (!this.warnedNoSetpriv) {
      this.warnedNoSetpriv = true;
      this.warn(
        setpriv
          ? `${setpriv} --pdeathsig does not work here: nats-server (${binary}) will outlive this process if it is killed with SIGKILL`
          : `setpriv (util-linux) not found: nats-server (${binary}) will outlive this process if it is killed with SIGKILL`,
      );
    }
    return { file: binary, args };
  }

  /** Spawns nats-server with the written config and waits for its ports file. */
  private async launch(): Promise<void> {
    const command = this.command!;
    rmSync(this.portsDir, { recursive: true, force: true });
    mkdirSync(this.portsDir, { recursive: true, mode: 0o700 });
    const log = openSync(this.logFile, "a", 0o600);
    let child: ChildProcess;
    try {
      // Own process group: a Ctrl-C at the terminal reaches the realm, which then stops the server in order.
      child = spawn(command.file, command.args, { stdio: ["ignore", log, log], detached: true });
    } finally {
      closeSync(log);
    }
    this.child = child;
    let ready = false;
    let exit: Exit | undefined;
    let spawnError: Error | undefined;
    this.exited = new Promise<Exit>((resolve) => {
      child.once("exit", (code, signal) => {
        exit = { code, signal };
        this.lastExit = exit;
        if (this.child === child) this.child = undefined;
        resolve(exit);
        if (ready && !this.halting) this.crashed(exit);
      });
      // Only a failed spawn (no pid) ends here without an "exit"; a failed kill() of a live child is ignored.
      child.on("error", (err) => {
        if (child.pid !== undefined) return;
        spawnError = err;
        exit = { code: null, signal: null };
        if (this.child === child) this.child = undefined;
        resolve(exit);
      });
    });
    const deadline = Date.now() + (this.opts.readyTimeoutMs ?? 15_000);
    while (Date.now() < deadline && !exit && !this.halting) {
      if (readdirSync(this.portsDir).some((f) => f.endsWith(".ports"))) {
        ready = true;
        return;
      }
      await sleep(25);
    }
    const why = spawnError ? `spawn failed: ${spawnError.message}` : exit ? describeExit(exit) : this.halting ? "stopped while starting" : "timeout";
    if (!exit) {
      child.kill("SIGKILL");
      await this.exited;
    }
    throw new RealmError("UNAVAILABLE", `nats-server did not become ready (${why}); see ${this.logFile}\n${this.logTail()}`);
  }

  /** A running server exited on its own. */
  private crashed(exit: Exit): void {
    this.notify(() => this.opts.onExit?.(exit.code, exit.signal));
    this.scheduleRestart(exit);
  }

  private scheduleRestart(exit: Exit): void {
    const now = Date.now();
    this.attempts = this.attempts.filter((t) => now - t < this.restartWindowMs);
    if (this.attempts.length >= this.maxRestarts) return this.giveUp(exit);
    this.attempts.push(now);
    const attempt = this.attempts.length;
    this.state = "restarting";
    const delay = Math.min(200 * 2 ** (attempt - 1), 5_000);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.restarting = this.restart(attempt, exit).finally(() => (this.restarting = undefined));
    }, delay);
  }

  private async restart(attempt: number, cause: Exit): Promise<void> {
    if (this.halting) return;
    try {
      await this.launch();
    } catch {
      // The failed attempt's exit (e.g. its port is taken) counts against the window like a crash.
      if (!this.halting) this.scheduleRestart(this.lastExit ?? cause);
      return;
    }
    if (this.halting) return; // stop()/kill() waits for us and stops the new server
    this.restarts++;
    this.state = "running";
    this.notify(() => this.opts.onRestart?.(attempt, cause.code, cause.signal));
  }

  private giveUp(exit: Exit): void {
    this.state = "failed";
    const window = `${Math.round(this.restartWindowMs / 1000)} s`;
    const why = this.maxRestarts === 0 ? "restarts are off (maxRestarts 0)" : `gave up after ${this.maxRestarts} restarts within ${window}`;
    this.failure = new RealmError("UNAVAILABLE", `nats-server exited (${describeExit(exit)}) and ${why}; see ${this.logFile}\n${this.logTail()}`);
    const failure = this.failure;
    this.notify(() => (this.opts.onGiveUp ? this.opts.onGiveUp(failure) : this.warn(failure.message)));
  }

  /** A callback that throws must not break supervision. */
  private notify(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.warn(`nats supervisor callback failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** The last lines of the server log (read from its last 16 KiB). */
  private logTail(lines = 8): string {
    if (!existsSync(this.logFile)) return "";
    const fd = openSync(this.logFile, "r");
    try {
      const size = fstatSync(fd).size;
      const length = Math.min(size, 16_384);
      const buf = Buffer.alloc(length);
      readSync(fd, buf, 0, length, size - length);
      return buf.toString("utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } finally {
      closeSync(fd);
    }
  }
}
