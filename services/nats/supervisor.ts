import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, closeSync } from "node:fs";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";
import { RealmError } from "../kernel/errors.js";
import { renderConfig, type NatsServerConfig, type OperatorPart, type TlsPart } from "./config.js";

export interface SupervisorOptions {
  dataDir: string;
  host?: string;
  /** Client port; 0 picks a free one. */
  port?: number;
  httpPort?: number;
  serverName?: string;
  jetstream?: boolean;
  operator?: OperatorPart;
  tls?: TlsPart;
  /** Path to the nats-server binary; default: $NATS_SERVER_BIN, PATH, /usr/sbin/nats-server. */
  binary?: string;
  readyTimeoutMs?: number;
}

export function findNatsServer(explicit?: string): string {
  const candidates = [explicit, process.env.NATS_SERVER_BIN, ...(process.env.PATH ?? "").split(delimiter).map((d) => d && join(d, "nats-server")), "/usr/sbin/nats-server", "/usr/local/bin/nats-server"];
  for (const c of candidates) if (c && existsSync(c)) return c;
  throw new RealmError("UNAVAILABLE", "nats-server not found: install it (apt install nats-server) or set NATS_SERVER_BIN");
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

/**
 * Runs one nats-server: writes its config into the data dir, starts it, waits until its ports file says it
 * listens, and stops it with SIGTERM (then SIGKILL after a grace period).
 */
export class NatsSupervisor {
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;
  port = 0;
  readonly host: string;
  readonly configFile: string;
  readonly logFile: string;
  readonly storeDir: string;

  constructor(private readonly opts: SupervisorOptions) {
    this.host = opts.host ?? "127.0.0.1";
    this.configFile = join(opts.dataDir, "nats-server.conf");
    this.logFile = join(opts.dataDir, "nats-server.log");
    this.storeDir = join(opts.dataDir, "jetstream");
  }

  get url(): string {
    return `nats://${this.host === "0.0.0.0" ? "127.0.0.1" : this.host}:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    if (this.child) throw new RealmError("INTERNAL", "nats-server already started");
    const binary = findNatsServer(this.opts.binary);
    mkdirSync(this.opts.dataDir, { recursive: true });
    const portsDir = join(this.opts.dataDir, "ports");
    rmSync(portsDir, { recursive: true, force: true });
    mkdirSync(portsDir, { recursive: true });
    // Keep the port across restarts so that clients reconnect to the same address.
    if (!this.port) this.port = this.opts.port || (await freePort(this.host));
    const config: NatsServerConfig = {
      serverName: this.opts.serverName ?? "cim-realm",
      host: this.host,
      port: this.port,
      portsFileDir: portsDir,
      ...(this.opts.httpPort ? { httpPort: this.opts.httpPort } : {}),
      ...(this.opts.jetstream === false ? {} : { jetstream: { storeDir: this.storeDir } }),
      ...(this.opts.operator ? { operator: this.opts.operator } : {}),
      ...(this.opts.tls ? { tls: this.opts.tls } : {}),
    };
    writeFileSync(this.configFile, renderConfig(config), { mode: 0o600 });
    const log = openSync(this.logFile, "a");
    // Own process group: a Ctrl-C at the terminal reaches the realm, which then stops the server in order.
    const child = spawn(binary, ["-c", this.configFile], { stdio: ["ignore", log, log], detached: true });
    closeSync(log);
    this.child = child;
    this.exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
    let exitCode: number | null | undefined;
    void this.exited.then((c) => (exitCode = c));
    const deadline = Date.now() + (this.opts.readyTimeoutMs ?? 15_000);
    while (Date.now() < deadline) {
      if (exitCode !== undefined) break;
      const ports = readdirSync(portsDir).find((f) => f.endsWith(".ports"));
      if (ports) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    const tail = existsSync(this.logFile) ? readFileSync(this.logFile, "utf8").split("\n").slice(-8).join("\n") : "";
    await this.kill();
    throw new RealmError("UNAVAILABLE", `nats-server did not become ready (${exitCode !== undefined ? `exited ${exitCode}` : "timeout"}); see ${this.logFile}\n${tail}`);
  }

  /** Graceful stop: SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    const child = this.child;
    if (!child || !this.exited) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
    this.child = undefined;
  }

  /** Hard kill (SIGKILL), as a crash would. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.exited) return;
    child.kill("SIGKILL");
    await this.exited;
    this.child = undefined;
  }
}
