import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Logger } from "pino";
import { NatsSupervisor } from "../nats/supervisor.js";
import { startHost, type Host } from "../host/host.js";
import { systemContext } from "../host/system.js";
import type { RealmContext } from "../host/context.js";
import { createLogger } from "../host/logger.js";
import { connectRealm } from "./connection.js";
import { contextFactories } from "./contexts.js";
import { authenticatorOf } from "../../identity/auth.js";

export interface RealmOptions {
  dataDir: string;
  /** Use an existing NATS server or cluster instead of starting one. */
  natsUrl?: string;
  natsCreds?: string;
  natsPort?: number;
  httpPort?: number;
  httpHost?: string;
  /** DNS port (0 = a free one). Default $REALM_DNS_PORT or 5300. */
  dnsPort?: number;
  /** Serve the admin API without authentication (single-user development only). */
  noAuth?: boolean;
  log?: Logger;
  /** Progress lines for the operator (stderr in the CLI). */
  progress?: (line: string) => void;
}

export interface RunningRealm {
  natsUrl: string;
  httpUrl: string | undefined;
  nats: NatsSupervisor | undefined;
  nc: NatsConnection;
  host: Host;
  contexts: RealmContext[];
  stop(): Promise<void>;
}

/** Starts the whole realm: its own nats-server (unless natsUrl is given), every context, the host. */
export async function startRealm(opts: RealmOptions): Promise<RunningRealm> {
  const dataDir = resolve(opts.dataDir);
  const progress = opts.progress ?? (() => undefined);
  const log = opts.log ?? createLogger();
  mkdirSync(dataDir, { recursive: true });
  let nats: NatsSupervisor | undefined;
  let natsUrl = opts.natsUrl;
  if (!natsUrl) {
    nats = new NatsSupervisor({ dataDir: join(dataDir, "nats"), port: opts.natsPort ?? 4222 });
    progress(`starting nats-server (data ${nats.storeDir})`);
    await nats.start();
    natsUrl = nats.url;
  }
  let nc: NatsConnection | undefined;
  const contexts: RealmContext[] = [];
  try {
    nc = await connectRealm({ nats: natsUrl, name: "cim-realm", ...(opts.natsCreds ? { creds: opts.natsCreds } : {}) });
    const httpHost = opts.httpHost ?? "127.0.0.1";
    const httpPort = opts.httpPort ?? 8080;
    if (!process.env.REALM_OIDC_ISSUER && httpPort !== 0) process.env.REALM_OIDC_ISSUER = `http://${httpHost}:${httpPort}/oidc`;
    const dnsPort = opts.dnsPort ?? Number(process.env.REALM_DNS_PORT ?? 5300);
    for (const { name, factory } of contextFactories({ natsUrl, ...(opts.natsCreds ? { natsCreds: opts.natsCreds } : {}), dnsPort })) {
      progress(`starting context ${name}`);
      contexts.push(await factory({ nc, log: log.child({ context: name }), dataDir: join(dataDir, name) }));
    }
    const identity = contexts.find((c) => c.name === "identity");
    const conn = nc;
    const all = [...contexts];
    all.push(systemContext(conn, () => all.map((c) => ({ name: c.name, endpoints: c.endpoints.map((e) => ({ kind: e.kind, name: e.name, description: e.description })) }))));
    const host = await startHost({ nc, contexts: all, httpPort, httpHost, log, ...(identity && !opts.noAuth ? { authenticate: authenticatorOf(identity) } : {}) });
    let stopped = false;
    return {
      natsUrl,
      httpUrl: host.httpUrl,
      nats,
      nc,
      host,
      contexts: all,
      async stop() {
        if (stopped) return;
        stopped = true;
        await host.stop();
        await conn.drain().catch(() => undefined);
        await nats?.stop();
      },
    };
  } catch (err) {
    for (const c of contexts) await c.stop?.().catch(() => undefined);
    await nc?.close().catch(() => undefined);
    await nats?.stop();
    throw err;
  }
}
