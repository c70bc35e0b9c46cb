import type { IncomingMessage } from "node:http";
import type { KV } from "@nats-io/kv";
import type Provider from "oidc-provider";
import type { Authenticator, ContextDeps, Endpoint, RealmContext } from "../services/host/context.js";
import type { SecretEscrow } from "../secrets-client/contract.js";
import type { Sealer } from "../services/kernel/seal.js";
import { createAuthenticator } from "./auth.js";
import { bootstrapEndpoint } from "./bootstrap.js";
import { scopeResolver } from "./authorize.js";
import { seedIdentity } from "./seed.js";
import type { ScopeResolver } from "../services/host/authz.js";
import type { Projection } from "../services/kernel/projection.js";
import { IdentityCore } from "./core.js";
import type { LockoutPolicy } from "./domain/principal.js";
import { directoryEndpoints } from "./endpoints.js";
import { ldapFederation } from "./ldap/federation.js";
import { OidcKeys } from "./oidc/keys.js";
import { openOidcBucket } from "./oidc/kv-adapter.js";
import { buildProvider } from "./oidc/provider.js";
import { mountOidc } from "./oidc/routes.js";
import { mountScim } from "./scim/routes.js";
import { radiusServer } from "./radius/service.js";
import { PasskeyService, relyingPartyOf } from "./passkeys/service.js";
import { passkeyInteraction } from "./passkeys/interaction.js";
import { mountPasskeyAccount } from "./passkeys/routes.js";
import { passkeyEndpoints } from "./passkeys/endpoints.js";

export interface IdentityOptions {
  /**
   * Seals everything secret the context keeps in NATS KV (credentials, OIDC keys, tokens). Every replica
   * of a realm needs the same key (`Sealer.open`), and a restart must reuse it, or the KV cannot be read.
   */
  sealer: Sealer;
  /**
   * The OIDC issuer URL, ending in /oidc (e.g. https://realm.example.org/oidc). Default:
   * `REALM_OIDC_ISSUER`, else taken from the Host header of the first OIDC request (development only).
   */
  issuer?: string | undefined;
  escrow?: SecretEscrow | undefined;
  lockout?: LockoutPolicy | undefined;
  /** The operator identity bundle: with its passphrase, `admin.bootstrap` runs again (recovery). */
  operatorBundle?: string | undefined;
  /** Stream and bucket replicas (1 local, 3 in a cluster). */
  replicas?: number | undefined;
  /** Rotate the OIDC signing key when it is older than this many days (checked hourly). Default 30; 0 = only on command. */
  keyRotationDays?: number | undefined;
  /** Extra endpoints built on the core. Default: LDAP federation (`ldapFederation()`) and RADIUS (`radiusServer()`, UDP only with REALM_RADIUS_PORT). */
  extensions?: ((core: IdentityCore) => Promise<{ endpoints: Endpoint[]; stop?: () => Promise<void> }>)[];
}

export interface IdentityContext extends RealmContext {
  core: IdentityCore;
  authenticate: Authenticator;
  /** Decides org and self scopes for the host. */
  resolveScope: ScopeResolver;
  /** The running provider (undefined until the issuer is known). */
  provider(): Provider | undefined;
  issuer(): string | undefined;
}

/** The OIDC keys, or INTEGRITY when they were sealed with another key; the core is stopped then. */
async function openKeys(core: IdentityCore, opts: IdentityOptions): Promise<OidcKeys> {
  try {
    return await OidcKeys.open(core.nc, opts.replicas ?? 1, opts.sealer);
  } catch (err) {
    await core.stop();
    throw err;
  }
}

export function createIdentityContext(opts: IdentityOptions): (deps: ContextDeps) => Promise<IdentityContext> {
  return async ({ nc, log, trust }) => {
    const { sealer } = opts;
    const core = await IdentityCore.open(nc, log, { trust, sealer, lockout: opts.lockout, replicas: opts.replicas });
    const kv: KV = await openOidcBucket(nc, opts.replicas ?? 1);
    const keys = await openKeys(core, opts);
    let issuer = opts.issuer ?? process.env.REALM_OIDC_ISSUER;
    await seedIdentity(core, issuer?.replace(/\/oidc\/?$/, ""));
    let provider: Provider | undefined;
    const rebuild = () => {
      if (issuer) provider = buildProvider(issuer, core, kv, keys.material, sealer);
    };
    rebuild();
    const unwatch = await keys.watch(rebuild, (err: unknown) => log.error({ err: err instanceof Error ? err.message : String(err) }, "OIDC keys written by another replica do not open with this replica's seal key; keeping the current keys"), log);
    const rotationDays = opts.keyRotationDays ?? 30;
    const rotation =
      rotationDays > 0
        ? setInterval(() => {
            if (Date.now() - Date.parse(keys.material.rotatedAt) < rotationDays * 86_400_000) return;
            // Replicas race here; the compare-and-set lets one win, the others follow through the watch.
            keys.rotate().then(rebuild, (err: unknown) => log.debug({ err: err instanceof Error ? err.message : String(err) }, "scheduled key rotation skipped"));
          }, 3_600_000).unref()
        : undefined;
    const getProvider = (req: IncomingMessage): Provider => {
      if (!provider) {
        issuer = `http://${req.headers.host ?? "localhost"}/oidc`;
        log.warn({ issuer }, "OIDC issuer taken from the first request's Host header; set REALM_OIDC_ISSUER");
        rebuild();
      }
      return provider!;
    };
    // Passkeys: the relying party is the realm's public URL (the issuer without /oidc).
    const relyingParty = () => (issuer ? relyingPartyOf(issuer.replace(/\/oidc\/?$/, "")) : undefined);
    const passkeys = await PasskeyService.open(nc, core.store, log, relyingParty, opts.replicas ?? 1);
    const extensions = await Promise.all((opts.extensions ?? [ldapFederation(), radiusServer()]).map((x) => x(core)));
    const endpoints: Endpoint[] = [
      ...directoryEndpoints(core, { escrow: opts.escrow, issuer: () => issuer ?? "cim-realm" }),
      bootstrapEndpoint(core, { operatorBundle: opts.operatorBundle }),
      {
        kind: "command",
        name: "oidc.rotateKeys",
        description: "Rotate the OIDC signing key: a new RS256 key signs from now on, the previous two stay in the JWKS",
        input: { type: "object", additionalProperties: false, properties: {} },
        async handle() {
          const m = await keys.rotate();
          rebuild();
          return { kids: m.jwks.keys.map((k) => k.kid), rotatedAt: m.rotatedAt };
        },
      },
      {
        kind: "query",
        name: "jwks",
        description: "The public signing keys of the OIDC issuer, newest (signing) first",
        input: { type: "object", additionalProperties: false, properties: {} },
        async handle() {
          return { keys: keys.publicKeys };
        },
      },
      ...passkeyEndpoints(passkeys),
      ...extensions.flatMap((x) => x.endpoints),
    ];
    const authenticate = createAuthenticator(core, () => provider);
    const resolveScope = scopeResolver(() => core.dir);
    return {
      name: "identity",
      endpoints,
      core,
      provider: () => provider,
      issuer: () => issuer,
      authenticate,
      resolveScope,
      async routes(app) {
        await mountOidc(app, core, getProvider, () => keys.material.cookieKeys[0]!, passkeyInteraction(passkeys));
        await mountPasskeyAccount(app, core, passkeys, getProvider, relyingParty);
        await mountScim(app, core, authenticate, resolveScope);
      },
      projections: () => [core.projection as Projection<unknown>],
      ready: () => core.projection.status === "live",
      metrics: () => [
        "# HELP realm_identity_principals Principals in the directory.",
        "# TYPE realm_identity_principals gauge",
        `realm_identity_principals ${[...core.dir.principals.values()].filter((p) => p.exists).length}`,
        "# HELP realm_identity_logins_total Password sign-ins since start, by outcome.",
        "# TYPE realm_identity_logins_total counter",
        ...[...core.logins].map(([outcome, n]) => `realm_identity_logins_total{outcome="${outcome}"} ${n}`),
      ],
      async stop() {
        if (rotation) clearInterval(rotation);
        unwatch();
        for (const x of extensions) await x.stop?.();
        await core.stop();
      },
    };
  };
}
