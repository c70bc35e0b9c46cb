import { createHash, timingSafeEqual } from "node:crypto";
import type Provider from "oidc-provider";
import type { Authenticator, Principal, RealmContext } from "../services/host/context.js";
import type { ScopeResolver } from "../services/host/authz.js";
import { RealmError } from "../services/kernel/index.js";
import type { IdentityCore } from "./core.js";
import { apiKeyUsable } from "./domain/apikey.js";
import { GrantCache, rolesOf } from "./authorize.js";
import { ADMIN_RESOURCE, REALM_CLIENT_IDS } from "./realm-clients.js";

/**
 * Authenticates the realm's admin API. `Authorization: Bearer <credential>` where the credential is
 *  - an API key `rk_<id>_<secret>`: its roles, if the key is unexpired, unrevoked and its owner enabled;
 *  - an access token of the realm's own OIDC issuer (opaque, looked up in the shared KV store) issued to one of
 *    the realm's own clients (REALM_CLIENT_IDS) for the admin API (audience ADMIN_RESOURCE): the roles of the
 *    signed-in principal. Any other access token (another client's, one without that audience, a
 *    client-credentials token) is refused with UNAUTHORIZED.
 * No header -> null (the host answers 401 UNAUTHORIZED). A header that does not authenticate -> RealmError
 * UNAUTHORIZED (401). An authenticated principal whose roles do not grant the permission -> the host answers FORBIDDEN (403).
 * The messages never repeat the credential.
 */
export function createAuthenticator(core: IdentityCore, provider: () => Provider | undefined): Authenticator {
  const unauthorized = (why: string) => new RealmError("UNAUTHORIZED", why);
  const cache = new GrantCache(() => core.dir, () => core.projection.lastSeq);
  /** The principal with every grant its bindings give it now (a token acts with all of them). */
  const principalOf = (id: string, via?: string): Principal => {
    const p = core.dir.principals.get(id);
    if (!p?.exists || p.disabled) throw unauthorized("the credential's principal is disabled or unknown");
    const grants = cache.grants(id);
    return { id, roles: rolesOf(grants), grants, ...(via ? { via } : {}) };
  };
  return async (authorization) => {
    if (authorization === undefined || authorization === "") return null;
    const m = /^Bearer\s+(\S+)$/i.exec(authorization);
    if (!m) throw unauthorized("the Authorization header must be 'Bearer <API key or access token>'");
    const credential = m[1]!;
    if (credential.startsWith("rk_")) {
      const rest = credential.slice(3);
      const sep = rest.indexOf("_");
      const key = sep > 0 ? core.dir.apiKeys.get(rest.slice(0, sep)) : undefined;
      const given = Buffer.from(`sha256:${createHash("sha256").update(rest.slice(sep + 1)).digest("hex")}`);
      const want = Buffer.from(key?.secretHash ?? "");
      if (!key || want.length !== given.length || !timingSafeEqual(want, given)) throw unauthorized("unknown API key");
      if (!apiKeyUsable(key, new Date())) throw unauthorized("the API key is expired or revoked");
      if (key.insecure) throw unauthorized("the API key was issued while the realm ran without authentication; issue a new one");
      // A key acts with the grants of its owner's bindings *now* whose role the key names: revoking the
      // binding, or disabling the owner, stops the key at once; naming a role the owner lacks gives nothing.
      const owner = principalOf(key.owner, `apikey:${key.id}`);
      const grants = owner.grants.filter((g) => key.roles.includes(g.role));
      return { ...owner, roles: rolesOf(grants), grants };
    }
    const p = provider();
    if (!p) throw unauthorized("the OIDC issuer is not running here");
    // Only a token issued to one of the realm's own clients (realm-cli, realm-console) for the admin API
    // (audience ADMIN_RESOURCE, RFC 8707) acts for its principal: a token that another application got for
    // a person, a userinfo token without audience or a client-credentials token does not.
    const notForAdmin = () => unauthorized("this access token was not issued for the realm's admin API (sign in with `realm login`, or use an API key)");
    const at = await p.AccessToken.find(credential);
    if (at && !at.isExpired && at.accountId) {
      if (at.aud !== ADMIN_RESOURCE || !at.clientId || !REALM_CLIENT_IDS.includes(at.clientId)) throw notForAdmin();
      const client = core.dir.clients.get(at.clientId);
      if (!client?.exists || client.disabled) throw unauthorized("the token's client is disabled");
      return principalOf(at.accountId, `token:${at.clientId}`);
    }
    const cc = await p.ClientCredentials.find(credential);
    if (cc && !cc.isExpired) throw notForAdmin();
    throw unauthorized("unknown or expired access token");
  };
}

/** The authenticator of an identity context made by `createIdentityContext` (for `startHost({ authenticate })`). */
export function authenticatorOf(ctx: RealmContext): Authenticator {
  return identityAuthOf(ctx).authenticate;
}

/** The authenticator and scope resolver of an identity context (for `startHost({ authenticate, resolveScope })`). */
export function identityAuthOf(ctx: RealmContext): { authenticate: Authenticator; resolveScope: ScopeResolver } {
  const c = ctx as RealmContext & { authenticate?: Authenticator; resolveScope?: ScopeResolver };
  if (!c.authenticate || !c.resolveScope) throw new RealmError("INTERNAL", `context ${ctx.name} is not the identity context`);
  return { authenticate: c.authenticate, resolveScope: c.resolveScope };
}
