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
import { bootstrapOperator, type Bootstrap } from "../../identity/nats/bootstrap.js";
import { createNatsAccountsContext } from "../../identity/nats/service.js";
import { serviceCredsFile } from "./connection.js";
import { vaultwardenEscrowFromEnv, type VaultwardenEscrow } from "../../secrets-client/escrow.js";
import { createSecretsContext } from "../../secrets-client/records.js";
import type { SecretEscrow } from "../../secrets-client/contract.js";

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
  /** Called once, on first init, with the generated passphrase of the operator identity bundle. */
  onGeneratedPassphrase?: (passphrase: string, bundleFile: string) => void;
  /** Progress lines for the operator (stderr in the CLI). */
  progress?: (line: string) => void;
}

export interface RunningRealm {
  natsUrl: string;
  /** Creds the realm's services (and a local CLI) connect with, in operator mode. */
  natsCreds: string | undefined;
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
  let natsCreds = opts.natsCreds;
  let operator: Bootstrap | undefined;
  const operatorDir = join(dataDir, "operator");
  if (!natsUrl) {
    // Operator mode: the operator identity key lives only in the sealed bundle; online the realm holds
    // the operator signing key, and its services connect with realm-issued creds.
    operator = await bootstrapOperator(operatorDir, process.env.REALM_CEREMONY_PASSPHRASE);
    if (operator.generatedPassphrase) opts.onGeneratedPassphrase?.(operator.generatedPassphrase, operator.bundleFile);
    nats = new NatsSupervisor({ dataDir: join(dataDir, "nats"), port: opts.natsPort ?? 4222, operator: operator.operator });
    progress(`starting nats-server in operator mode (data ${nats.storeDir})`);
    await nats.start();
    natsUrl = nats.url;
    natsCreds = serviceCredsFile(dataDir);
  }
  let nc: NatsConnection | undefined;
  let escrow: VaultwardenEscrow | undefined;
  const contexts: RealmContext[] = [];
  try {
    nc = await connectRealm({ nats: natsUrl, name: "cim-realm", ...(natsCreds ? { creds: natsCreds } : {}) });
    const httpHost = opts.httpHost ?? "127.0.0.1";
    const httpPort = opts.httpPort ?? 8080;
    if (!process.env.REALM_OIDC_ISSUER && httpPort !== 0) process.env.REALM_OIDC_ISSUER = `http://${httpHost}:${httpPort}/oidc`;
    // Leaves name their CRL and OCSP URLs under this base; set it to the address relying parties reach.
    if (!process.env.REALM_PKI_URL && httpPort !== 0) process.env.REALM_PKI_URL = `http://${httpHost}:${httpPort}`;
    const dnsPort = opts.dnsPort ?? Number(process.env.REALM_DNS_PORT ?? 5300);
    escrow = vaultwardenEscrowFromEnv();
    let recorded: SecretEscrow | undefined;
    if (escrow) {
      progress(`checking the Vaultwarden escrow at ${process.env.REALM_VAULTWARDEN_URL}`);
      await escrow.check();
      // The secrets context records every escrow (REALM_SECRETS); the others get its recording escrow.
      progress("starting context secrets");
      const secrets = await createSecretsContext({ escrow })({ nc, log: log.child({ context: "secrets" }), dataDir: join(dataDir, "secrets") });
      contexts.push(secrets);
      recorded = secrets.escrow;
    } else progress("no escrow configured (REALM_VAULTWARDEN_URL unset): generated keys and creds are returned once and kept nowhere");
    const factories = contextFactories({ natsUrl, ...(natsCreds ? { natsCreds } : {}), dnsPort, escrow: recorded });
    if (operator) factories.push({ name: "nats accounts", factory: createNatsAccountsContext({ dir: operatorDir, servers: natsUrl, ...(recorded ? { escrow: recorded } : {}) }) });
    for (const { name, factory } of factories) {
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
      natsCreds,
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
        escrow?.close();
      },
    };
  } catch (err) {
    for (const c of contexts) await c.stop?.().catch(() => undefined);
    escrow?.close();
    await nc?.close().catch(() => undefined);
    await nats?.stop();
    throw err;
  }
}
