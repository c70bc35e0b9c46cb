import { createHash, timingSafeEqual } from "node:crypto";
import type { KV } from "@nats-io/kv";
import Provider, { errors, type AdapterPayload, type Configuration, type KoaContextWithOIDC } from "oidc-provider";
import type { Sealer } from "../../services/kernel/seal.js";
import type { IdentityCore } from "../core.js";
import { membership } from "../domain/directory.js";
import type { ClientState } from "../domain/client.js";
import { ADMIN_RESOURCE, REALM_CLIENT_IDS } from "../realm-clients.js";
import type { KeyMaterial } from "./keys.js";
import { kvAdapter } from "./kv-adapter.js";
import { providerPages } from "./pages.js";

export const SCOPES = ["openid", "offline_access", "profile", "email", "groups", "roles"];

/** oidc-provider client metadata of a registered client (the secret is its SHA-256; see compareClientSecret below). */
export function clientMetadata(c: ClientState): AdapterPayload | undefined {
  if (!c.exists || c.disabled) return undefined;
  const code = c.grantTypes.includes("authorization_code");
  return {
    client_id: c.id,
    client_name: c.displayName,
    ...(c.public ? { token_endpoint_auth_method: "none" } : { client_secret: c.secretHash, token_endpoint_auth_method: "client_secret_basic" }),
    redirect_uris: c.redirectUris,
    post_logout_redirect_uris: c.postLogoutRedirectUris,
    grant_types: c.grantTypes,
    response_types: code ? ["code"] : [],
    scope: c.scopes.join(" "),
  };
}

/** True for the realm's own clients (realm-cli, realm-console): the only ones that get tokens for the admin API. */
const isRealmClient = (client: { clientId: string } | undefined): boolean => client !== undefined && REALM_CLIENT_IDS.includes(client.clientId);

/**
 * RFC 8707 resource indicators. The realm's own clients get opaque access tokens whose audience is the admin
 * API (`ADMIN_RESOURCE`), whether they name it or not; they can name no other resource. Every other client
 * can name no resource at all and keeps getting the usual tokens for /userinfo (no audience), which the
 * admin API refuses (auth.ts).
 */
const resourceIndicators: NonNullable<NonNullable<Configuration["features"]>["resourceIndicators"]> = {
  enabled: true,
  async defaultResource(_ctx, client, oneOf) {
    if (oneOf) return oneOf.includes(ADMIN_RESOURCE) && isRealmClient(client) ? ADMIN_RESOURCE : oneOf;
    return isRealmClient(client) ? ADMIN_RESOURCE : undefined;
  },
  // A token request that names no resource (device code, refresh) still gets the granted admin audience,
  // even with the openid scope (which would otherwise make it a userinfo token).
  async useGrantedResource(ctx) {
    return isRealmClient(ctx.oidc.client);
  },
  async getResourceServerInfo(_ctx, indicator, client) {
    if (indicator === ADMIN_RESOURCE && isRealmClient(client)) return { scope: "", audience: ADMIN_RESOURCE, accessTokenFormat: "opaque" };
    throw new errors.InvalidTarget(indicator === ADMIN_RESOURCE ? "only the realm's own clients get tokens for the admin API" : "this realm serves no such resource");
  },
};

const ttl = {
  AccessToken: 3600,
  AuthorizationCode: 60,
  ClientCredentials: 600,
  DeviceCode: 600,
  Grant: 14 * 24 * 3600,
  IdToken: 3600,
  Interaction: 3600,
  RefreshToken: 14 * 24 * 3600,
  Session: 14 * 24 * 3600,
};

/** `sealer` seals what the adapter keeps in `kv` (tokens, codes, sessions: see kv-adapter.ts). */
export function buildProvider(issuer: string, core: IdentityCore, kv: KV, keys: KeyMaterial, sealer: Sealer): Provider {
  const html = (ctx: KoaContextWithOIDC, body: string) => {
    ctx.type = "html";
    ctx.body = body;
  };
  const config: Configuration = {
    adapter: kvAdapter(
      kv,
      (id) => {
        const c = core.dir.clients.get(id);
        return c && clientMetadata(c);
      },
      sealer,
      core.nc,
    ),
    jwks: keys.jwks as Configuration["jwks"],
    cookies: { keys: keys.cookieKeys },
    clientAuthMethods: ["client_secret_basic", "client_secret_post", "none"],
    // The stored client secret is a hash, so nothing may use it as an HMAC key: no HS* anywhere.
    enabledJWA: {
      clientAuthSigningAlgValues: ["RS256", "PS256", "ES256", "EdDSA"],
      requestObjectSigningAlgValues: ["RS256", "PS256", "ES256", "EdDSA"],
      idTokenSigningAlgValues: ["RS256"],
      userinfoSigningAlgValues: ["RS256"],
    },
    scopes: SCOPES,
    // amr (RFC 8176): how the person signed in (pwd, otp, hwk for a passkey, mfa), from the interaction result.
    claims: { openid: ["sub", "amr"], profile: ["name", "preferred_username"], email: ["email"], groups: ["groups"], roles: ["roles"] },
    // Scope claims (groups, roles) go into the ID token too, not only /userinfo.
    conformIdTokenClaims: false,
    async findAccount(_ctx, sub) {
      const p = core.dir.principals.get(sub);
      if (!p?.exists || p.disabled) return undefined;
      return {
        accountId: sub,
        async claims() {
          const m = membership(core.dir, sub, new Date());
          return { sub, name: p.displayName, preferred_username: p.id, ...(p.email ? { email: p.email } : {}), groups: m.groups, roles: m.roles };
        },
      };
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators,
      deviceFlow: {
        enabled: true,
        // `form` is the provider's <form id="op.deviceInputForm"> with its xsrf field; the page puts its one
        // labelled code input in it (pages.ts). `err` is set when the code typed was missing, unknown,
        // expired, already used, or the sign-in was aborted.
        async userCodeInputSource(ctx, form, _out, err) {
          const message = !err
            ? undefined
            : err.name === "NoCodeError"
              ? "Enter the code shown on your device."
              : err.name === "AbortedError"
                ? "The sign-in was cancelled. Start again on your device."
                : "That code is not valid or has expired. Check the code on your device and try again.";
          html(ctx, providerPages.userCodeInput(form, message));
        },
        async userCodeConfirmSource(ctx, form, client, _info, userCode) {
          html(ctx, providerPages.userCodeConfirm(form, client.clientName ?? client.clientId, userCode));
        },
        async successSource(ctx) {
          html(ctx, providerPages.deviceSuccess(ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId ?? "the application"));
        },
      },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          html(ctx, providerPages.logout(form, ctx.host));
        },
        async postLogoutSuccessSource(ctx) {
          html(ctx, providerPages.loggedOut());
        },
      },
    },
    async renderError(ctx, out) {
      html(ctx, providerPages.error({ error: out.error, error_description: out.error_description ?? "" }));
    },
    pkce: { required: (_ctx, client) => client.clientAuthMethod === "none" },
    rotateRefreshToken: true,
    ttl,
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // Trusted (first-party) clients skip the consent page; others go through it once per grant.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session?.grantIdFor(ctx.oidc.client!.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const client = core.dir.clients.get(ctx.oidc.client!.clientId);
      if (!client?.trusted || !ctx.oidc.session?.accountId) return undefined;
      const grant = new ctx.oidc.provider.Grant({ clientId: client.id, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope(client.scopes.join(" "));
      await grant.save();
      return grant;
    },
  };
  const provider = new Provider(issuer, config);
  // Client secrets are stored as `sha256:<hex>` of a 256-bit random secret: compare hashes, in constant time.
  provider.Client.prototype.compareClientSecret = function compare(this: { clientSecret?: string }, actual: string): boolean {
    const want = Buffer.from(this.clientSecret ?? "");
    const got = Buffer.from(`sha256:${createHash("sha256").update(actual).digest("hex")}`);
    return want.length === got.length && timingSafeEqual(want, got);
  } as never; // never: the typings declare compareClientSecret as returning a Promise; oidc-provider awaits either
  return provider;
}
