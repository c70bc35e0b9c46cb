import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import { NatsSupervisor } from "../../services/nats/supervisor.js";
import { establishOperator, provisionLocal, realmPaths } from "../../services/cli/runtime.js";
import { connectAs } from "../../services/cli/connection.js";
import { identityCredsFile } from "../../identity/nats/realm-identities.js";
import type { Bootstrap } from "../../identity/nats/bootstrap.js";
import type { RealmTrust } from "../../services/kernel/trust.js";

export const TEST_OPERATOR_PASSPHRASE = "test operator passphrase";

export interface OperatorNats {
  dir: string;
  paths: ReturnType<typeof realmPaths>;
  operator: Bootstrap;
  trust: RealmTrust;
  server: NatsSupervisor;
  url: string;
  /** The creds file of a realm identity (`realm-identity`, `realm-dns`, ..., `admin`). */
  credsFile(name: string): string;
  /** A connection as that identity, closed on stop. */
  connectAs(name: string): Promise<NatsConnection>;
  stop(): Promise<void>;
}

/**
 * A nats-server in operator mode prepared exactly as `realm up` prepares its own: operator, trust
 * document, least-privilege identities, provisioned streams and buckets. Tests connect as the identity
 * that the code under test would use.
 */
export async function startOperatorNats(dir = mkdtempSync(join(tmpdir(), "realm-opnats-"))): Promise<OperatorNats> {
  const paths = realmPaths(dir);
  const { operator, trust } = await establishOperator(paths, TEST_OPERATOR_PASSPHRASE);
  const server = new NatsSupervisor({ dataDir: paths.nats, operator: operator.operator, maxRestarts: 0 });
  await server.start();
  await provisionLocal(server.url, paths, operator);
  const conns: NatsConnection[] = [];
  return {
    dir,
    paths,
    operator,
    trust,
    server,
    get url() {
      return server.url;
    },
    credsFile: (name) => identityCredsFile(paths.operator, name),
    async connectAs(name) {
      const nc = await connectAs(server.url, identityCredsFile(paths.operator, name), `test-${name}`);
      conns.push(nc);
      return nc;
    },
    async stop() {
      for (const c of conns) await c.close().catch(() => undefined);
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
