import { readFileSync } from "node:fs";
import { join } from "node:path";
import { credsAuthenticator } from "@nats-io/transport-node";
import { inboxOf } from "../../services/cli/identities.js";
import { identityCredsFile } from "../../identity/nats/realm-identities.js";
import { runRealm } from "./cli.js";
import { startCluster, type NodeSpec, type TestCluster } from "./nats-cluster.js";

/** `realm nats server-config` for one node of a loopback cluster, trusting `dataDir`'s operator. */
export const serverConfigArgs = (dataDir: string, n: NodeSpec): string[] => ["nats", "server-config", "--data", dataDir, "--name", n.name, "--listen", `127.0.0.1:${n.clientPort}`, "--cluster-name", "realm-op", "--cluster-listen", `127.0.0.1:${n.routePort}`, "--routes", n.routes.join(","), "--store-dir", join(n.dir, "js")];

/**
 * A loopback operator-mode cluster whose every node's config `realm nats server-config` writes from
 * `dataDir` (making its operator if absent, with `env`'s REALM_CEREMONY_PASSPHRASE). The readiness probe and
 * `connect()` go as the realm-system identity (JetStream info and reads of the realm's streams).
 */
export async function startOperatorCluster(dataDir: string, env: Record<string, string>, size = 3): Promise<TestCluster> {
  return startCluster(size, {
    config: async (n) => {
      const out = join(n.dir, "server.conf");
      const r = await runRealm([...serverConfigArgs(dataDir, n), "--out", out], env);
      if (r.code !== 0) throw new Error(`realm nats server-config exited ${r.code}: ${r.stderr}`);
      return readFileSync(out, "utf8");
    },
    connect: { authenticator: credsAuthenticator(() => readFileSync(identityCredsFile(join(dataDir, "operator"), "realm-system"))), inboxPrefix: inboxOf("realm-system") },
  });
}
