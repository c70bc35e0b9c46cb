import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Logger } from "pino";
import { LOCAL_OPERATOR, establishOperator, holdsOperator, realmPaths, refuseLegacy } from "./operator-setup.js";
import { NatsSupervisor } from "../nats/supervisor.js";
import { startHost, type Host } from "../host/host.js";
import { systemContext } from "../host/system.js";
import { instanceIdentity } from "../host/instance.js";
import type { RealmContext } from "../host/context.js";
import { createLogger } from "../host/logger.js";
import { RealmError } from "../kernel/errors.js";
import { Auditor } from "../kernel/auditor.js";
import { createTrust, loadTrust, trustExists } from "../kernel/trust-files.js";
import { generateRootSigner, type RealmTrust, type RootSigner } from "../kernel/trust.js";
import { Sealer } from "../kernel/seal.js";
import type { CloudflareConfig } from "../../dns/cloudflare/endpoints.js";
import { contextFactories } from "./contexts.js";
import { connectAs, reconnectOptions, serverList } from "./connection.js";
import { acquireDataDirLock, type DataDirLock } from "./lock.js";
import { provisionRealm } from "./provision.js";
import { REALM_IDENTITIES, REALM_STREAMS, REALM_WRITERS, inboxOf, operatorPermissions, permissionsOf, provisionerPermissions, type RealmIdentity } from "./identities.js";
import { identityAuthOf } from "../../identity/auth.js";
import { adminExists } from "../../identity/bootstrap.js";
import type { IdentityContext } from "../../identity/service.js";
import { bootstrapOperator, type Bootstrap } from "../../identity/nats/bootstrap.js";
import { sealBundle } from "../../identity/nats/keystore.js";
import { identityCredsFile, issueIdentity, mintCreds, type IssuedIdentity } from "../../identity/nats/realm-identities.js";
import { createNatsAccountsContext, type NatsAccountsContext } from "../../identity/nats/service.js";
import { hubKvMappings } from "../kernel/buckets.js";
import { newId } from "../kernel/envelope.js";
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
  /**
   * A hub (docs/ARCHITECTURE.md "Sites"): the local nats-server listens here for sites' leaf links, its
   * JetStream in domain `hubDomain` (default "hub"). Only with the local nats-server.
   */
  leafListen?: { host: string; port: number };
  hubDomain?: string;
  /**
   * A site: the local nats-server is a leaf of this hub (`url`, the link user's `creds` there, the hub's
   * JetStream `domain`), its JetStream in domain `site` (default "site"); the realm's streams and buckets
   * here are mirrors of the hub's. The data dir must hold the hub's operator, trust and seal key.
   */
  hub?: { url: string; creds: string; domain?: string; site?: string };
  /**
   * The one public base URL of the realm (`--public-url`, REALM_PUBLIC_URL): the OIDC issuer is `<url>/oidc`
   * and leaves name their CRL and OCSP under `<url>`, whichever instance served them. REALM_OIDC_ISSUER and
   * REALM_PKI_URL, when set, still win. Unset: this instance's own HTTP address.
   */
  publicUrl?: string;
}

/** The JetStream domain of a hub when none is given. */
export const DEFAULT_HUB_DOMAIN = "hub";
/** The JetStream domain of a site when none is given (`--site`). */
export const DEFAULT_SITE_DOMAIN = "site";
const DOMAIN = /^[A-Za-z0-9_-]{1,32}$/;

export interface RunningRealm {
  natsUrl: string;
  /** True when the realm signs its own NATS identities (a local nats-server, or `--nats` on a data dir that holds an operator). */
  operatorMode: boolean;
  /** The OIDC issuer and PKI base URL this instance names (REALM_OIDC_ISSUER, REALM_PKI_URL as set at start). */
  issuer: string | undefined;
  pkiUrl: string | undefined;
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
  if (opts.hub) {
    if (opts.natsUrl) throw new RealmError("VALIDATION", "--hub makes the local nats-server a leaf of the hub: it does not go with --nats");
    if (opts.leafListen) throw new RealmError("VALIDATION", "a site (--hub) is not itself a hub (--leaf-listen)");
    if (!/^(nats-leaf|nats|tls|ws|wss):\/\/[^\s/]+$/.test(opts.hub.url)) throw new RealmError("VALIDATION", `--hub must be the hub's leaf-node URL (nats-leaf://host:port), not ${JSON.stringify(opts.hub.url)}`);
    if (!opts.hub.creds) throw new RealmError("VALIDATION", "--hub needs --hub-creds <file>: the link user's creds, made on the hub with `realm site link-creds`");
    if (!existsSync(opts.hub.creds)) throw new RealmError("VALIDATION", `--hub-creds ${opts.hub.creds}: no such file`);
    for (const [flag, d] of [["--hub-domain", opts.hub.domain], ["--site", opts.hub.site]] as const) if (d !== undefined && !DOMAIN.test(d)) throw new RealmError("VALIDATION", `${flag} must be a JetStream domain name (letters, digits, - and _, at most 32), not ${JSON.stringify(d)}`);
    if ((opts.hub.site ?? DEFAULT_SITE_DOMAIN) === (opts.hub.domain ?? DEFAULT_HUB_DOMAIN)) throw new RealmError("VALIDATION", "the site's JetStream domain (--site) must differ from the hub's (--hub-domain)");
    if ((opts.replicas ?? 1) > 1) throw new RealmError("VALIDATION", "a site's streams are mirrors on its one nats-server: --replicas does not apply");
  }
  if (opts.leafListen && opts.natsUrl) throw new RealmError("VALIDATION", "--leaf-listen configures the local nats-server: with --nats, give the cluster its leafnodes block instead");
  if (opts.hubDomain !== undefined && !DOMAIN.test(opts.hubDomain)) throw new RealmError("VALIDATION", `--hub-domain must be a JetStream domain name (letters, digits, - and _, at most 32), not ${JSON.stringify(opts.hubDomain)}`);
  if (opts.publicUrl !== undefined) checkPublicUrl(opts.publicUrl);
  if (opts.noAuth && !isLoopback(opts.httpHost ?? "127.0.0.1")) throw new RealmError("VALIDATION", `--insecure-no-auth serves only on a loopback address, not ${opts.httpHost}`);
}

/** `--public-url`: an absolute http(s) URL without credentials, query or fragment (a trailing slash is dropped). */
export function checkPublicUrl(value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new RealmError("VALIDATION", `--public-url must be an absolute http or https URL, not ${JSON.stringify(value)}`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new RealmError("VALIDATION", `--public-url must be an http or https URL, not ${u.protocol.replace(/:$/, "")}`);
  if (u.username || u.password) throw new RealmError("VALIDATION", "--public-url must not carry a user name or password");
  if (u.search || value.includes("?") || u.hash || value.includes("#")) throw new RealmError("VALIDATION", `--public-url must have no query or fragment: ${JSON.stringify(value)}`);
  return `${u.origin}${u.pathname}`.replace(/\/+$/, "");
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

export { LOCAL_OPERATOR, establishOperator, holdsOperator, realmPaths, refuseLegacy } from "./operator-setup.js";

/** Streams and buckets made by a provisioning identity that lives two minutes, in memory only. */
export async function provisionLocal(natsUrl: string | string[], paths: ReturnType<typeof realmPaths>, operator: Bootstrap, opts: { replicas?: number; mirrorOf?: string } = {}): Promise<void> {
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
    // A site's identities write their buckets at the hub through its domain (services/kernel/buckets.ts).
    const siteRights = { hubDomain: opts.hub ? (opts.hub.domain ?? DEFAULT_HUB_DOMAIN) : undefined };
    // The seal key of everything secret in KV (created on first start); opened first, so a bad or too-open
    // key file stops `realm up` before nats-server starts.
    const sealer = Sealer.open(paths.sealKey);
    let natsUrl = opts.natsUrl;
    let generatedPassphraseFile: string | undefined;
    // Operator mode: the realm's own nats-server, or an external cluster that trusts this data dir's
    // operator (`realm nats server-config`): every identity is issued here with least privilege.
    const operatorMode = !natsUrl || holdsOperator(paths);
    if (operatorMode && natsUrl && opts.natsCreds) throw new RealmError("VALIDATION", `--creds is for a data dir without an operator: ${paths.operator} holds one, so the realm issues its own creds (leave --creds / REALM_NATS_CREDS unset)`);
    const est = operatorMode ? await establishOperator(paths, passphrase, siteRights) : undefined;
    const operator: Bootstrap | undefined = est?.operator;
    const issued: IssuedIdentity[] = est?.issued ?? [];
    generatedPassphraseFile = operator?.generatedPassphraseFile;
    if (!est && !trustExists(paths.trust)) {
      // An external NATS without an operator: the given creds serve every context (issue them with least
      // privilege there), and the trust root is the realm's own key.
      const r = externalRoot(paths.trust, passphrase);
      createTrust(paths.trust, "cim-realm", REALM_WRITERS, r.root);
      generatedPassphraseFile = r.passphraseFile;
    }
    const trust: RealmTrust = est ? est.trust : loadTrust(paths.trust);
    if (operator && natsUrl) {
      progress(`operator mode against the NATS cluster at ${natsUrl}`);
      progress(`provisioning streams (deny delete and purge) and buckets${opts.replicas ? ` with ${opts.replicas} replicas` : ""}`);
      await provisionLocal(serverList(natsUrl), paths, operator, { replicas: opts.replicas }).catch((err: unknown) => {
        throw new RealmError("UNAVAILABLE", `cannot provision the realm on the NATS cluster at ${natsUrl}: ${err instanceof Error ? err.message : String(err)} (does the cluster trust this operator? realm nats server-config)`);
      });
    } else if (operator) {
      const hub = opts.hub;
      nats = new NatsSupervisor({
        dataDir: paths.nats,
        port: opts.natsPort ?? 4222,
        operator: operator.operator,
        ...(hub
          ? { jetstreamDomain: hub.site ?? DEFAULT_SITE_DOMAIN, leaf: { remotes: [{ url: hub.url, credentials: resolve(hub.creds), account: operator.state.realm.publicKey }] } }
          : opts.leafListen
            ? { jetstreamDomain: opts.hubDomain ?? DEFAULT_HUB_DOMAIN, leaf: { listen: opts.leafListen } }
            : {}),
        warn: progress,
        onExit: (code, signal) => progress(`nats-server exited (${signal ?? `code ${code}`}); restarting it`),
        onRestart: (attempt) => progress(`nats-server restarted (attempt ${attempt}); clients reconnect`),
        onGiveUp: (err) => fail(err),
      });
      progress(`starting nats-server in operator mode (data ${nats.storeDir})`);
      await nats.start();
      natsUrl = nats.url;
      if (hub) {
        const mirrorOf = `$JS.${hub.domain ?? DEFAULT_HUB_DOMAIN}.API`;
        progress(`site of the hub at ${hub.url}: streams and buckets here mirror the hub's (${mirrorOf}); commands are written to the hub`);
        await provisionLocal(natsUrl, paths, operator, { mirrorOf });
      } else {
        progress("provisioning streams (deny delete and purge) and buckets");
        await provisionLocal(natsUrl, paths, operator);
      }
    }
    const servers: string = natsUrl!;
    const byName = (n: string) => issued.find((i) => i.name === n);
    const credsOf = (n: string) => byName(n)?.file ?? opts.natsCreds;
    const shared = operator ? undefined : await connectShared(servers, opts.natsCreds);
    if (shared) {
      conns.push(shared);
      progress("provisioning streams and buckets with the given creds");
      await provisionRetrying(() => provisionRealm(shared, { replicas: opts.replicas }), progress).catch((err: unknown) => progress(`provisioning skipped (${err instanceof Error ? err.message : String(err)}); the streams must exist`));
    }
    const connFor = async (id: RealmIdentity["name"]): Promise<NatsConnection> => {
      if (shared) return shared;
      const nc = await connectAs(serverList(servers), credsOf(id)!, id);
      conns.push(nc);
      return nc;
    };
    const httpHost = opts.httpHost ?? "127.0.0.1";
    const httpPort = opts.httpPort ?? 8080;
    // One public base URL (--public-url) for every instance: the issuer and the CRL and OCSP pointers; else
    // this instance's own address. Leaves name their CRL and OCSP URLs under REALM_PKI_URL.
    const base = opts.publicUrl !== undefined ? checkPublicUrl(opts.publicUrl) : httpPort !== 0 ? `http://${httpHost}:${httpPort}` : undefined;
    if (!process.env.REALM_OIDC_ISSUER && base) process.env.REALM_OIDC_ISSUER = `${base}/oidc`;
    if (!process.env.REALM_PKI_URL && base) process.env.REALM_PKI_URL = base;
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
    const factories = contextFactories({ natsUrl: servers, ...(readerCreds ? { natsCreds: readerCreds } : {}), dnsPort, dnsHost: opts.dnsHost ?? process.env.REALM_DNS_HOST ?? "127.0.0.1", escrow: recorded, sealer, operatorBundle: operator?.bundleFile, cloudflare: opts.cloudflare });
    for (const { name, factory } of factories) await start(name, identityOf[name]!, factory);
    if (operator) {
      const sysCreds = credsOf("realm-sys");
      const accounts = await start("nats accounts", "realm-identity", createNatsAccountsContext({ dir: paths.operator, servers: serverList(servers), ...(sysCreds ? { sysCredsFile: sysCreds } : {}), ...(recorded ? { escrow: recorded } : {}), ...(opts.hub ? { followToResolver: true } : {}), sealer, ...(opts.replicas ? { replicas: opts.replicas } : {}) }));
      if (opts.leafListen) {
        // A hub: its sites write their buckets through this domain's API prefix (services/kernel/buckets.ts).
        const domain = opts.hubDomain ?? DEFAULT_HUB_DOMAIN;
        if (await (accounts as NatsAccountsContext).nats.ensureRealmMappings(hubKvMappings(domain), { commandId: newId(), actor: "realm up" })) progress(`the realm account maps $JS.${domain}.API.$KV.* to $KV.* (sites' bucket writes)`);
      }
    }
    const systemNc = await connFor("realm-system");
    progress("starting the auditor (verifies every stream, writes signed checkpoints)");
    const auditor = await Auditor.start(systemNc, trust, { log: log.child({ component: "auditor" }), recordFile: paths.checkpoints });
    const all: RealmContext[] = [...contexts];
    const instance = instanceIdentity();
    let hostRef: Host | undefined;
    all.push(
      systemContext({
        host: () => hostRef,
        nc: systemNc,
        trust,
        auditor,
        checkpointRecord: paths.checkpoints,
        contexts: () => all,
        streams: REALM_STREAMS,
        instance: instance.id,
        identities: () => [...REALM_IDENTITIES.map((id) => ({ name: id.name, account: id.account, role: id.role, permissions: permissionsOf(id, siteRights), publicKey: byName(id.name)?.publicKey, expiresAt: byName(id.name)?.expiresAt })), { name: LOCAL_OPERATOR, account: "realm", role: "local operator (CLI)", permissions: operatorPermissions(LOCAL_OPERATOR), publicKey: byName(LOCAL_OPERATOR)?.publicKey, expiresAt: byName(LOCAL_OPERATOR)?.expiresAt }],
      }),
    );
    const identity = contexts.find((c) => c.name === "identity");
    const host = await startHost({ nc: systemNc, contexts: all, httpPort, httpHost, log, outcomes: { sealer }, instance, ...(identity && !opts.noAuth ? identityAuthOf(identity) : { insecureLocal: true }) });
    hostRef = host;
    // Service creds live 30 days: reissue them well before (the connections read the file at reconnect).
    const renew = operator
      ? setInterval(() => {
          for (const id of REALM_IDENTITIES) void issueIdentity(paths.operator, operator.state, { name: id.name, account: id.account, permissions: permissionsOf(id, siteRights) }).catch((err: unknown) => log.error({ err: err instanceof Error ? err.message : String(err), identity: id.name }, "renewing realm identity failed"));
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
      natsUrl: servers,
      operatorMode: operator !== undefined,
      issuer: process.env.REALM_OIDC_ISSUER,
      pkiUrl: process.env.REALM_PKI_URL,
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

/**
 * Provisioning against an external cluster, asked again for up to 20 s while it fails for a reason other
 * than the creds' rights: a cluster that has just started may not yet place replicated streams (no meta
 * leader, peers not known), and giving up at once left the contexts to make their streams with one replica.
 */
async function provisionRetrying(run: () => Promise<void>, progress: (line: string) => void, withinMs = 20_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      return await run();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (/permission/i.test(message) || Date.now() > deadline) throw err;
      progress(`provisioning: ${message}; asking again`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function connectShared(servers: string, credsFile: string | undefined): Promise<NatsConnection> {
  try {
    if (!credsFile) return await connect({ servers: serverList(servers), name: "cim-realm", noAsyncTraces: true, ...reconnectOptions });
    return await connectAs(serverList(servers), credsFile, "cim-realm");
  } catch (err) {
    throw new RealmError("UNAVAILABLE", `cannot reach NATS at ${servers}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
