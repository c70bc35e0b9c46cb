import type { NatsConnection } from "@nats-io/nats-core";
import { startHost, type Host } from "../../services/host/host.js";
import { createLogger } from "../../services/host/logger.js";
import { callRealm } from "../../services/host/client.js";
import { startNats, type TestNats } from "../support/nats.js";
import { createIdentityContext, type IdentityContext, type IdentityOptions } from "../../identity/service.js";
import { identityAuthOf } from "../../identity/auth.js";
import type { RealmTrust } from "../../services/kernel/index.js";
import { testTrust } from "../support/trust.js";
import { Sealer } from "../../services/kernel/seal.js";
import { createServer } from "node:net";
import { Writable } from "node:stream";

export interface IdentityHarness {
  nats: TestNats;
  nc: NatsConnection;
  host: Host;
  ctx: IdentityContext;
  /** The context's seal key: a restart on the same KV must reuse it. */
  sealer: Sealer;
  /** The trust its events are signed and verified with: a second replica must share it. */
  trust: RealmTrust;
  url: string;
  issuer: string;
  /** Bearer credential of the bootstrap admin (an API key). */
  admin: string;
  call<T extends object = Record<string, unknown>>(name: string, input: object): Promise<T>;
  logs: string[];
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

/**
 * A realm with the identity context behind the real host, protected by its own authenticator, plus a
 * bootstrap admin (role `realm-admin` bound to principal `root`, which holds an API key). Log lines are captured.
 */
export async function startIdentity(opts: Partial<IdentityOptions> & { hostName?: string } = {}): Promise<IdentityHarness> {
  const nats = await startNats();
  const nc = await nats.connect();
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const log = createLogger({ level: "debug", destination: sink });
  const port = await freePort();
  // `hostName: "localhost"` for WebAuthn, whose RP ID must be a domain name, not an IP address.
  const issuer = `http://${opts.hostName ?? "127.0.0.1"}:${port}/oidc`;
  const sealer = opts.sealer ?? Sealer.generate();
  const trust = testTrust();
  const ctx = await createIdentityContext({ issuer, ...opts, sealer })({ nc, log, dataDir: nats.dataDir, trust });
  const host = await startHost({ nc, contexts: [ctx], httpPort: port, log, ...identityAuthOf(ctx) });
  // The first admin, as `realm identity bootstrap` makes it: principal `root`, role `realm-admin`, one API key.
  const r = await callRealm<{ key: string }>(nc, "realm.identity.commands.admin.bootstrap", { principal: "root" });
  const admin = `Bearer ${r.key}`;
  return {
    nats,
    nc,
    host,
    ctx,
    sealer,
    trust,
    url: opts.hostName ? host.httpUrl!.replace("127.0.0.1", opts.hostName) : host.httpUrl!,
    issuer,
    admin,
    logs,
    call: (name, input) => {
      const ep = ctx.endpoints.find((e) => e.name === name)!;
      const subject = ep.kind === "command" ? `realm.identity.commands.${name}` : `realm.identity.queries.${name}`;
      return callRealm(nc, subject, input, { authorization: admin });
    },
    async stop() {
      await host.stop();
      await nats.stop();
    },
  };
}
