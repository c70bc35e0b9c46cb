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

/**
 * A 3-node nats-server cluster with JetStream on loopback (the Debian nats-server), in a temp dir; each node
 * on its own free client and route port. Ready when a client reaches JetStream with a meta leader elected.
 */
export async function startCluster(size = 3): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), "realm-cluster-"));
  const ports = await Promise.all(Array.from({ length: size * 2 }, freePort));
  const nodes: ClusterNode[] = Array.from({ length: size }, (_, i) => ({ name: `n${i + 1}`, clientPort: ports[i * 2]!, url: `nats://127.0.0.1:${ports[i * 2]!}`, process: undefined }));
  const routePort = (i: number) => ports[i * 2 + 1]!;
  const conns: NatsConnection[] = [];
  nodes.forEach((n, i) => {
    mkdirSync(join(dir, n.name), { recursive: true });
    writeFileSync(
      join(dir, n.name, "nats.conf"),
      [
        `server_name: ${n.name}`,
        `listen: 127.0.0.1:${n.clientPort}`,
        `jetstream { store_dir: "${join(dir, n.name, "js")}" }`,
        `cluster { name: realm-test, listen: 127.0.0.1:${routePort(i)}, routes: [${nodes.map((_, j) => `nats-route://127.0.0.1:${routePort(j)}`).join(", ")}] }`,
      ].join("\n"),
    );
  });
  const launch = (n: ClusterNode) => {
    n.process = spawn("nats-server", ["-c", join(dir, n.name, "nats.conf")], { stdio: "ignore" });
  };
  nodes.forEach(launch);
  const servers = nodes.map((n) => n.url);
  const ready = async () => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const nc = await connect({ servers, reconnect: false, timeout: 1_000 });
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
  await ready();
  const byName = (name: string) => nodes.find((n) => n.name === name)!;
  const exited = (p: ChildProcess) => new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once("exit", () => r())));
  return {
    nodes,
    servers,
    async connect(opts = {}) {
      const nc = await connect({ servers, ...opts });
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
