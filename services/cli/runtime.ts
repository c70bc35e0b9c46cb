import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Logger } from "pino";
import { NatsSupervisor } from "../nats/supervisor.js";
import { startHost, type Host } from "../host/host.js";
import { systemContext } from "../host/system.js";
import type { RealmContext } from "../host/context.js";
import { createLogger } from "../host/logger.js";
import { RealmError } from "../kernel/errors.js";
import { Auditor } from "../kernel/auditor.js";
import { createTrust, loadTrust, trustExists } from "../kernel/trust-files.js";
import { generateRootSigner, type RealmTrust, type RootSigner } from "../kernel/trust.js";
import { Sealer } from "../kernel/seal.js";
import type { CloudflareConfig } from "../../dns/cloudflare/endpoints.js";
import { contextFactories } from "./contexts.js";
import { connectAs, reconnectOptions } from "./connection.js";
import { acquireDataDirLock, type DataDirLock } from "./lock.js";
import { provisionRealm } from "./provision.js";
import { REALM_IDENTITIES, REALM_WRITERS, inboxOf, operatorPermissions, permissionsOf, provisionerPermissions, type RealmIdentity } from "./identities.js";
import { identityAuthOf } from "../../identity/auth.js";
import { adminExists } from "../../identity/bootstrap.js";
import type { IdentityContext } from "../../identity/service.js";
import { bootstrapOperator, type Bootstrap } from "../../identity/nats/bootstrap.js";
import { sealBundle } from "../../identity/nats/keystore.js";
import { identityCredsFile, issueIdentity, mintCreds, type IssuedIdentity } from "../../identity/nats/realm-identities.js";
import { createNatsAccountsContext } from "../../identity/nats/service.js";
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
  /** Address the authoritative DNS listens on (default REALM_DNS_HOST, else 127.0.0.1). */
  dnsHost?: string;
  /** Serve the admin API without authentication (single-user development only). */
  noAuth?: boolean;
  log?: Logger;
  /** Progress lines for the operator (stderr in the CLI). */
  progress?: (line: string) => void;
  /** Cloudflare mirror settings for the dns context (embedding and tests; `realm up` reads the environment). */
  cloudflare?: CloudflareConfig;
  /**
   * Replicas of every stream and bucket (`--replicas`, REALM_REPLICAS), applied to existing ones at start.
   * Only with `natsUrl` (a cluster): the local nats-server is one node. Unset: 1 for new ones, others kept.
   */
  replicas?: number;
}

export interface RunningRealm {
  natsUrl: string;
  /** Creds of the local operator (commands and queries only): what the CLI uses by default. */
  operatorCreds: string | undefined;
  /** File holding a passphrase generated on first start (mode 0600), to be moved offline. */
  generatedPassphraseFile: string | undefined;
  httpUrl: string | undefined;
  nats: NatsSupervisor | undefined;
  /** The connection of the realm context (auditor); each context has its own (`RealmContext.connection`). */
  nc: NatsConnection;
  trust: RealmTrust;
  host: Host;
  contexts: RealmContext[];
  /** True while the realm has no admin yet (`realm identity bootstrap` would make the first one); false without an identity context. */
  needsAdmin(): boolean;
  /** Rejects when the realm cannot go on (its nats-server could not be restarted, a part cannot recover): stop and exit non-zero. */
  failed: Promise<never>;
  stop(): Promise<void>;
}

/** The data dir layout `realm up` keeps (README "Files"). */
export const realmPaths = (dataDir: string) => {
  const d = resolve(dataDir);
  return {
    data: d,
    operator: join(d, "operator"),
    trust: join(d, "trust"),
    nats: join(d, "nats"),
    sealKey: join(d, "operator", "seal.key"),
    /** The local operator's creds: what the CLI connects with. */
    operatorCreds: join(d, "operator", "admin.creds"),
    checkpoints: join(d, "trust", "checkpoints.json"),
  };
};

/** The name of the local operator's NATS user (inbox `_INBOX_admin`). */
export const LOCAL_OPERATOR = "admin";

const isLoopback = (host: string) => host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);

/**
 * Every option and setting `realm up` takes, checked before anything is made or started (no operator keys,
 * no nats-server, no lock): a bad port or a bad REALM_DNS_WORKERS is a VALIDATION error naming it.
 */
export function checkRealmOptions(opts: RealmOptions, env: NodeJS.ProcessEnv = process.env): void {
  const ports: [string, number | undefined][] = [["--nats-port", opts.natsPort], ["--http-port", opts.httpPort], ["--dns-port", opts.dnsPort]];
  for (const [flag, v] of ports) if (v !== undefined && !(Number.isInteger(v) && v >= 0 && v <= 65535)) throw new RealmError("VALIDATION", `${flag} must be a port from 0 to 65535, not ${String(v)}`);
  if (opts.dnsPort === undefined && env.REALM_DNS_PORT !== undefined && !/^\d{1,5}$/.test(env.REALM_DNS_PORT)) throw new RealmError("VALIDATION", `REALM_DNS_PORT must be a port from 0 to 65535, not ${JSON.stringify(env.REALM_DNS_PORT)}`);
  if (env.REALM_DNS_WORKERS !== undefined && !/^\d{1,3}$/.test(env.REALM_DNS_WORKERS)) throw new RealmError("VALIDATION", `REALM_DNS_WORKERS must be a number of worker processes (0 = none), not ${JSON.stringify(env.REALM_DNS_WORKERS)}`);
  if (opts.replicas !== undefined && !(Number.isInteger(opts.replicas) && opts.replicas >= 1 && opts.replicas <= 5)) throw new RealmError("VALIDATION", `--replicas must be 1 to 5 (JetStream's limit), not ${String(opts.replicas)}`);
  if ((opts.replicas ?? 1) > 1 && !opts.natsUrl) throw new RealmError("VALIDATION", `--replicas ${opts.replicas} needs a NATS cluster (--nats <urls>): the local nats-server is one node`);
  if (opts.noAuth && !isLoopback(opts.httpHost ?? "127.0.0.1")) throw new RealmError("VALIDATION", `--insecure-no-auth serves only on a loopback address, not ${opts.httpHost}`);
}

/** Refuses a data dir made before the realm protected itself (all-powerful service creds, unsigned events). */
function refuseLegacy(paths: ReturnType<typeof realmPaths>): void {
  const legacyCreds = join(paths.operator, "realm-service.creds");
  if (existsSync(legacyCreds) || (existsSync(join(paths.operator, "operator.json")) && !trustExists(paths.trust))) {
    throw new RealmError(
      "VALIDATION",
      `data dir ${paths.data} was made by an earlier cim-realm: its service creds (${legacyCreds}) have every right over the realm account and its events are unsigned. Start the realm on a new data dir (--data), or move this one away.`,
    );
  }
}

/**
 * The trust root of a realm without a local operator (`--nats`): an Ed25519 key made here once, sealed in
 * `<trust>/root.bundle.json` with the ceremony passphrase (or a generated one, written 0600 beside it).
 */
function externalRoot(trustDir: string, passphrase: string | undefined): { root: RootSigner; passphraseFile?: string } {
  mkdirSync(trustDir, { recursive: true, mode: 0o700 });
  const root = generateRootSigner();
  const secret = root.privateKey.export({ format: "der", type: "pkcs8" }).toString("base64");
  const generated = passphrase ? undefined : randomBytes(18).toString("base64url");
  writeFileSync(join(trustDir, "root.bundle.json"), JSON.stringify(sealBundle(Buffer.from(root.publicKey).toString("base64url"), secret, passphrase ?? generated!), null, 2), { mode: 0o600 });
  if (!generated) return { root };
  const passphraseFile = join(trustDir, "root-passphrase");
  writeFileSync(passphraseFile, generated + "\n", { mode: 0o600 });
  return { root, passphraseFile };
}

/**
 * Operator mode, before nats-server starts: the operator (made on first start; its identity key then also
 * signs the realm's trust document and leaves memory), the trust with its event keys, and the creds of
 * every realm identity (each context, the DNS workers, the claims pusher, the local operator).
 */
export async function establishOperator(paths: ReturnType<typeof realmPaths>, passphrase: string | undefined): Promise<{ operator: Bootstrap; trust: RealmTrust; issued: IssuedIdentity[] }> {
  const operator = await bootstrapOperator(paths.operator, passphrase, {
    onRootKey: (root) => {
      createTrust(paths.trust, "cim-realm", REALM_WRITERS, root);
    },
  });
  const trust = loadTrust(paths.trust, { pinnedRoot: operator.state.operatorPublicKey });
  const issued: IssuedIdentity[] = [];
  for (const id of REALM_IDENTITIES) issued.push(await issueIdentity(paths.operator, operator.state, { name: id.name, account: id.account, permissions: permissionsOf(id) }));
  issued.push(await issueIdentity(paths.operator, operator.state, { name: LOCAL_OPERATOR, account: "realm", permissions: operatorPermissions(LOCAL_OPERATOR), days: 90, kind: "person" }));
  writeFileSync(paths.operatorCreds, readFileSync(identityCredsFile(paths.operator, LOCAL_OPERATOR)), { mode: 0o600 });
  return { operator, trust, issued };
}

/** Streams and buckets made by a provisioning identity that lives two minutes, in memory only. */
export async function provisionLocal(natsUrl: string, paths: ReturnType<typeof realmPaths>, operator: Bootstrap, opts: { replicas?: number } = {}): Promise<void> {
  const prov = await mintCreds(paths.operator, operator.state, { name: "realm-provisioner", account: "realm", permissions: provisionerPermissions("realm-provisioner") }, 120);
  const pnc = await connect({ servers: natsUrl, name: "realm-provisioner", authenticator: credsAuthenticator(new TextEncoder().encode(prov.creds)), inboxPrefix: inboxOf("realm-provisioner") });
  try {
    await provisionRealm(pnc, opts);
  } finally {
    await pnc.close();
  }
}

/** Starts the whole realm: its own nats-server (unless natsUrl is given), every context, the host. */
export async function startRealm(opts: RealmOptions): Promise<RunningRealm> {
  const paths = realmPaths(opts.dataDir);
  const progress = opts.progress ?? (() => undefined);
  const log = opts.log ?? createLogger();
  checkRealmOptions(opts);
  const lock: DataDirLock = acquireDataDirLock(paths.data);
  const passphrase = process.env.REALM_CEREMONY_PASSPHRASE;
  let nats: NatsSupervisor | undefined;
  const conns: NatsConnection[] = [];
  let escrow: VaultwardenEscrow | undefined;
  const contexts: RealmContext[] = [];
  let fail!: (err: RealmError) => void;
  let realmFailed = false;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => (realmFailed = true));
  try {
    refuseLegacy(paths);
    // The seal key of everything secret in KV (created on first start); opened first, so a bad or too-open
    // key file stops `realm up` before nats-server starts.
    const sealer = Sealer.open(paths.sealKey);
    let natsUrl = opts.natsUrl;
    let operator: Bootstrap | undefined;
    let trust: RealmTrust;
    let generatedPassphraseFile: string | undefined;
    const issued: IssuedIdentity[] = [];
    if (!natsUrl) {
      const est = await establishOperator(paths, passphrase);
      operator = est.operator;
      trust = est.trust;
      issued.push(...est.issued);
      generatedPassphraseFile = operator.generatedPassphraseFile;
      nats = new NatsSupervisor({
        dataDir: paths.nats,
        port: opts.natsPort ?? 4222,
        operator: operator.operator,
        warn: progress,
        onExit: (code, signal) => progress(`nats-server exited (${signal ?? `code ${code}`}); restarting it`),
        onRestart: (attempt) => progress(`nats-server restarted (attempt ${attempt}); clients reconnect`),
        onGiveUp: (err) => fail(err),
      });
      progress(`starting nats-server in operator mode (data ${nats.storeDir})`);
      await nats.start();
      natsUrl = nats.url;
      progress("provisioning streams (deny delete and purge) and buckets");
      await provisionLocal(natsUrl, paths, operator);
    } else {
      // An external NATS: the given creds serve every context (issue them with least privilege there).
      if (!trustExists(paths.trust)) {
        const r = externalRoot(paths.trust, passphrase);
        createTrust(paths.trust, "cim-realm", REALM_WRITERS, r.root);
        generatedPassphraseFile = r.passphraseFile;
      }
      trust = loadTrust(paths.trust);
    }
    const byName = (n: string) => issued.find((i) => i.name === n);
    const credsOf = (n: string) => byName(n)?.file ?? opts.natsCreds;
    const shared = opts.natsUrl ? await connectShared(natsUrl, opts.natsCreds) : undefined;
    if (shared) {
      conns.push(shared);
      progress("provisioning streams and buckets with the given creds");
      await provisionRealm(shared, { replicas: opts.replicas }).catch((err: unknown) => progress(`provisioning skipped (${err instanceof Error ? err.message : String(err)}); the streams must exist`));
    }
    const connFor = async (id: RealmIdentity["name"]): Promise<NatsConnection> => {
      if (shared) return shared;
      const nc = await connectAs(natsUrl!, credsOf(id)!, id);
      conns.push(nc);
      return nc;
    };
    const httpHost = opts.httpHost ?? "127.0.0.1";
    const httpPort = opts.httpPort ?? 8080;
    if (!process.env.REALM_OIDC_ISSUER && httpPort !== 0) process.env.REALM_OIDC_ISSUER = `http://${httpHost}:${httpPort}/oidc`;
    // Leaves name their CRL and OCSP URLs under this base; set it to the address relying parties reach.
    if (!process.env.REALM_PKI_URL && httpPort !== 0) process.env.REALM_PKI_URL = `http://${httpHost}:${httpPort}`;
    const dnsPort = opts.dnsPort ?? Number(process.env.REALM_DNS_PORT ?? 5300);
    escrow = vaultwardenEscrowFromEnv();
    let recorded: SecretEscrow | undefined;
    const start = async (name: string, identity: string, factory: (deps: { nc: NatsConnection; log: Logger; dataDir: string; trust: RealmTrust }) => Promise<RealmContext>) => {
      progress(`starting context ${name}`);
      const nc = await connFor(identity);
      const ctx = await factory({ nc, log: log.child({ context: name }), dataDir: join(paths.data, name), trust });
      ctx.connection = nc;
      contexts.push(ctx);
      return ctx;
    };
    if (escrow) {
      progress(`checking the Vaultwarden escrow at ${process.env.REALM_VAULTWARDEN_URL}`);
      await escrow.check();
      // The secrets context records every escrow (REALM_SECRETS); the others get its recording escrow.
      const secrets = (await start("secrets", "realm-secrets", createSecretsContext({ escrow }))) as RealmContext & { escrow: SecretEscrow };
      recorded = secrets.escrow;
    } else progress("no escrow configured (REALM_VAULTWARDEN_URL unset): generated keys and creds are returned once and kept nowhere");
    const identityOf: Record<string, string> = { identity: "realm-identity", dns: "realm-dns", pki: "realm-pki" };
    const readerCreds = credsOf("realm-dns-reader");
    const factories = contextFactories({ natsUrl, ...(readerCreds ? { natsCreds: readerCreds } : {}), dnsPort, dnsHost: opts.dnsHost ?? process.env.REALM_DNS_HOST ?? "127.0.0.1", escrow: recorded, sealer, operatorBundle: operator?.bundleFile, cloudflare: opts.cloudflare });
    for (const { name, factory } of factories) await start(name, identityOf[name]!, factory);
    if (operator) {
      const sysCreds = credsOf("realm-sys");
      await start("nats accounts", "realm-identity", createNatsAccountsContext({ dir: paths.operator, servers: natsUrl, ...(sysCreds ? { sysCredsFile: sysCreds } : {}), ...(recorded ? { escrow: recorded } : {}) }));
    }
    const systemNc = await connFor("realm-system");
    progress("starting the auditor (verifies every stream, writes signed checkpoints)");
    const auditor = await Auditor.start(systemNc, trust, { log: log.child({ component: "auditor" }), recordFile: paths.checkpoints });
    const all: RealmContext[] = [...contexts];
    let hostRef: Host | undefined;
    all.push(
      systemContext({
        host: () => hostRef,
        nc: systemNc,
        trust,
        auditor,
        checkpointRecord: paths.checkpoints,
        contexts: () => all,
        identities: () => [...REALM_IDENTITIES.map((id) => ({ name: id.name, account: id.account, role: id.role, permissions: permissionsOf(id), publicKey: byName(id.name)?.publicKey, expiresAt: byName(id.name)?.expiresAt })), { name: LOCAL_OPERATOR, account: "realm", role: "local operator (CLI)", permissions: operatorPermissions(LOCAL_OPERATOR), publicKey: byName(LOCAL_OPERATOR)?.publicKey, expiresAt: byName(LOCAL_OPERATOR)?.expiresAt }],
      }),
    );
    const identity = contexts.find((c) => c.name === "identity");
    const host = await startHost({ nc: systemNc, contexts: all, httpPort, httpHost, log, outcomes: { sealer }, ...(identity && !opts.noAuth ? identityAuthOf(identity) : { insecureLocal: true }) });
    hostRef = host;
    // Service creds live 30 days: reissue them well before (the connections read the file at reconnect).
    const renew = operator
      ? setInterval(() => {
          for (const id of REALM_IDENTITIES) void issueIdentity(paths.operator, operator.state, { name: id.name, account: id.account, permissions: permissionsOf(id) }).catch((err: unknown) => log.error({ err: err instanceof Error ? err.message : String(err), identity: id.name }, "renewing realm identity failed"));
        }, 12 * 3_600_000).unref()
      : undefined;
    let stopped = false;
    // A part that cannot recover by itself (a projection failed: its connection closed for good; a realm
    // connection closed) stops the realm with a non-zero exit instead of leaving it alive but dead.
    const liveness = setInterval(() => {
      if (stopped || realmFailed) return;
      const dead = all.flatMap((c) => (c.projections?.() ?? []).filter((p) => p.status === "failed").map((p) => `projection ${p.def.name} of ${c.name}: ${p.failure?.message ?? "failed"}`));
      if (conns.some((c) => c.isClosed())) dead.push("a NATS connection of the realm closed and does not reconnect");
      if (dead.length) fail(new RealmError("UNAVAILABLE", `the realm cannot recover by itself (${dead.join("; ")}); exiting so a supervisor restarts it`));
    }, 2_000).unref();
    return {
      natsUrl,
      operatorCreds: operator ? paths.operatorCreds : undefined,
      generatedPassphraseFile,
      httpUrl: host.httpUrl,
      nats,
      nc: systemNc,
      trust,
      host,
      contexts: all,
      needsAdmin: () => (identity ? !adminExists((identity as IdentityContext).core.dir) : false),
      failed,
      async stop() {
        if (stopped) return;
        stopped = true;
        if (renew) clearInterval(renew);
        clearInterval(liveness);
        await host.stop();
        // drain() waits for the server to confirm; a connection that is down is closed instead.
        for (const c of conns) await (realmFailed ? c.close() : c.drain()).catch(() => undefined);
        await nats?.stop();
        escrow?.close();
        lock.release();
      },
    };
  } catch (err) {
    for (const c of contexts) await c.stop?.().catch(() => undefined);
    escrow?.close();
    for (const c of conns) await c.close().catch(() => undefined);
    await nats?.stop();
    lock.release();
    throw err;
  }
}

async function connectShared(servers: string, credsFile: string | undefined): Promise<NatsConnection> {
  try {
    if (!credsFile) return await connect({ servers, name: "cim-realm", noAsyncTraces: true, ...reconnectOptions });
    return await connectAs(servers, credsFile, "cim-realm");
  } catch (err) {
    throw new RealmError("UNAVAILABLE", `cannot reach NATS at ${servers}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
