import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type ConnectionOptions } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { jetstreamManager } from "@nats-io/jetstream";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

export interface ClusterNode {
  name: string;
  clientPort: number;
  url: string;
  process: ChildProcess | undefined;
}

export interface TestCluster {
  nodes: ClusterNode[];
  /** Every node's client URL (a client given all of them fails over). */
  servers: string[];
  connect(opts?: ConnectionOptions): Promise<NatsConnection>;
  /** SIGKILLs one node (no clean shutdown), as a crashed machine. */
  kill(name: string): Promise<void>;
  /** Starts a stopped node again on its ports and data. */
  start(name: string): Promise<void>;
  stop(): Promise<void>;
}

/** What a node's config is made from (`ClusterOptions.config`). */
export interface NodeSpec {
  name: string;
  clientPort: number;
  routePort: number;
  /** The node's own directory (its config goes in `<dir>/nats.conf`). */
  dir: string;
  /** `nats-route://127.0.0.1:<port>` of every node, this one among them. */
  routes: string[];
}

export interface ClusterOptions {
  /** The text of each node's config (default: no auth, JetStream in `<dir>/js`, cluster `realm-test`). */
  config?: (node: NodeSpec) => string | Promise<string>;
  /** How the readiness probe and `connect()` authenticate (e.g. an operator-mode cluster's creds). */
  connect?: ConnectionOptions;
}

const defaultConfig = (n: NodeSpec) =>
  [
    `server_name: ${n.name}`,
    `listen: 127.0.0.1:${n.clientPort}`,
    `jetstream { store_dir: "${join(n.dir, "js")}" }`,
    `cluster { name: realm-test, listen: 127.0.0.1:${n.routePort}, routes: [${n.routes.join(", ")}] }`,
  ].join("\n");

/**
 * A 3-node nats-server cluster with JetStream on loopback (the Debian nats-server), in a temp dir; each node
 * on its own free client and route port. Ready when a client reaches JetStream with a meta leader elected.
 */
export async function startCluster(size = 3, opts: ClusterOptions = {}): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), "realm-cluster-"));
  const ports = await Promise.all(Array.from({ length: size * 2 }, freePort));
  const nodes: ClusterNode[] = Array.from({ length: size }, (_, i) => ({ name: `n${i + 1}`, clientPort: ports[i * 2]!, url: `nats://127.0.0.1:${ports[i * 2]!}`, process: undefined }));
  const routePort = (i: number) => ports[i * 2 + 1]!;
  const routes = nodes.map((_, j) => `nats-route://127.0.0.1:${routePort(j)}`);
  const conns: NatsConnection[] = [];
  for (const [i, n] of nodes.entries()) {
    const spec: NodeSpec = { name: n.name, clientPort: n.clientPort, routePort: routePort(i), dir: join(dir, n.name), routes };
    mkdirSync(spec.dir, { recursive: true });
    writeFileSync(join(spec.dir, "nats.conf"), await (opts.config ?? defaultConfig)(spec));
  }
  const launch = (n: ClusterNode) => {
    n.process = spawn("nats-server", ["-c", join(dir, n.name, "nats.conf")], { stdio: "ignore" });
  };
  nodes.forEach(launch);
  const servers = nodes.map((n) => n.url);
  const ready = async () => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const nc = await connect({ ...opts.connect, servers, reconnect: false, timeout: 1_000 });
        try {
          await (await jetstreamManager(nc, { timeout: 2_000 })).getAccountInfo();
          return;
        } finally {
          await nc.close();
        }
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`cluster not ready in 30 s: ${String(err)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };
  const exited = (p: ChildProcess) => new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once("exit", () => r())));
  try {
    await ready();
  } catch (err) {
    // No node outlives a cluster that never became ready.
    await Promise.all(nodes.map(async (n) => {
      const p = n.process;
      n.process = undefined;
      if (p) {
        p.kill("SIGKILL");
        await exited(p);
      }
    }));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const byName = (name: string) => nodes.find((n) => n.name === name)!;
  return {
    nodes,
    servers,
    async connect(o = {}) {
      const nc = await connect({ ...opts.connect, servers, ...o });
      conns.push(nc);
      return nc;
    },
    async kill(name) {
      const n = byName(name);
      if (!n.process) return;
      const p = n.process;
      n.process = undefined;
      p.kill("SIGKILL");
      await exited(p);
    },
    async start(name) {
      const n = byName(name);
      if (!n.process) launch(n);
    },
    async stop() {
      await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
      await Promise.all(nodes.map(async (n) => {
        const p = n.process;
        n.process = undefined;
        if (!p) return;
        p.kill("SIGTERM");
        await exited(p);
      }));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
