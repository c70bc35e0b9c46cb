import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type ConnectionOptions } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { NatsSupervisor, type SupervisorOptions } from "../../services/nats/supervisor.js";

export interface TestNats {
  supervisor: NatsSupervisor;
  url: string;
  dataDir: string;
  /** Opens a client connection that the harness closes on stop. */
  connect(opts?: ConnectionOptions): Promise<NatsConnection>;
  stop(): Promise<void>;
}

/**
 * Starts a real nats-server (JetStream on) on a free port in a temp dir. Call `stop()` in afterAll:
 * it closes the connections it opened, stops the server and removes the dir.
 */
export async function startNats(opts: Partial<SupervisorOptions> = {}): Promise<TestNats> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), "realm-nats-"));
  const supervisor = new NatsSupervisor({ ...opts, dataDir });
  await supervisor.start();
  const conns: NatsConnection[] = [];
  return {
    supervisor,
    get url() {
      return supervisor.url;
    },
    dataDir,
    async connect(copts = {}) {
      const nc = await connect({ servers: supervisor.url, ...copts });
      conns.push(nc);
      return nc;
    },
    async stop() {
      await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
      await supervisor.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
