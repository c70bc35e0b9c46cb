/**
 * The `realm` command line as an OIDC client of its realm (client `realm-cli`, public), with plain fetch:
 * discovery, the device authorization grant (RFC 8628) with the admin API as resource (RFC 8707), refresh
 * (tokens rotate) and revocation. No token ever goes into an error message or onto stdout/stderr.
 */
import { setTimeout as delay } from "node:timers/promises";
import { RealmError } from "../kernel/errors.js";
import { ADMIN_RESOURCE, REALM_CLI_CLIENT } from "../../identity/realm-clients.js";
import { CredentialsStore, type StoredCredential } from "./credentials-store.js";

export const LOGIN_SCOPE = "openid profile offline_access";
const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
const HTTP_TIMEOUT_MS = 30_000;
/** A stored access token is refreshed when it expires within this long. */
export const REFRESH_MARGIN_MS = 60_000;

export interface IssuerMetadata {
  issuer: string;
  token_endpoint: string;
  device_authorization_endpoint: string;
  revocation_endpoint?: string;
  jwks_uri: string;
}

interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in?: number;
  refresh_token?: string;
  id_token?: string;
}

export interface DeviceAuthorization {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete?: string;
  expires_in: number;
  interval?: number;
}

/** The OAuth error of a token endpoint answer (`error` and its description), as a value. */
export class OAuthError extends Error {
  constructor(
    readonly error: string,
    readonly description: string | undefined,
  ) {
    super(description ? `${error}: ${description}` : error);
    this.name = "OAuthError";
  }
}

const unreachable = (what: string, err: unknown) =>
  new RealmError("UNAVAILABLE", `cannot reach ${what}: ${err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)} (is \`realm up\` running? --url or REALM_URL)`);

async function postForm(url: string, form: Record<string, string>): Promise<Response> {
  try {
    return await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: new URLSearchParams(form),
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
  } catch (err) {
    throw unreachable(url, err);
  }
}

/** JSON of an answer, or the OAuth error it carries; anything else is UNAVAILABLE naming the status. */
async function jsonOf<T>(res: Response, what: string): Promise<T> {
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    throw new RealmError("UNAVAILABLE", `${what} answered ${res.status} without JSON`);
  }
  const b = body as { error?: unknown; error_description?: unknown };
  if (!res.ok || typeof b.error === "string") {
    if (typeof b.error === "string") throw new OAuthError(b.error, typeof b.error_description === "string" ? b.error_description : undefined);
    throw new RealmError("UNAVAILABLE", `${what} answered ${res.status}`);
  }
  return body as T;
}

/** The issuer's metadata from `<realm url>/oidc/.well-known/openid-configuration`. */
export async function discover(realmUrl: string): Promise<IssuerMetadata> {
  const url = `${realmUrl}/oidc/.well-known/openid-configuration`;
  let res: Response;
  try {
    res = await fetch(url, { headers: { accept: "application/json" }, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  } catch (err) {
    throw unreachable(`the realm at ${realmUrl}`, err);
  }
  if (!res.ok) throw new RealmError("UNAVAILABLE", `${url} answered ${res.status}: is ${realmUrl} a cim-realm HTTP URL?`);
  const md = (await res.json().catch(() => ({}))) as Partial<IssuerMetadata>;
  if (typeof md.issuer !== "string" || typeof md.token_endpoint !== "string" || typeof md.jwks_uri !== "string") throw new RealmError("UNAVAILABLE", `${url} is not an OpenID provider configuration`);
  if (typeof md.device_authorization_endpoint !== "string") throw new RealmError("UNAVAILABLE", `the issuer ${md.issuer} offers no device authorization`);
  return md as IssuerMetadata;
}

/** Starts a device authorization for realm-cli with the admin API as resource. */
export async function startDeviceAuthorization(md: IssuerMetadata): Promise<DeviceAuthorization> {
  const res = await postForm(md.device_authorization_endpoint, { client_id: REALM_CLI_CLIENT, scope: LOGIN_SCOPE, resource: ADMIN_RESOURCE });
  try {
    const da = await jsonOf<DeviceAuthorization>(res, "the device authorization endpoint");
    if (typeof da.device_code !== "string" || typeof da.user_code !== "string" || typeof da.verification_uri !== "string") throw new RealmError("UNAVAILABLE", "the device authorization endpoint answered without a code");
    return da;
  } catch (err) {
    if (err instanceof OAuthError) throw new RealmError("UNAUTHORIZED", `the realm refused to start a sign-in for ${REALM_CLI_CLIENT} (${err.message})`);
    throw err;
  }
}

/**
 * Polls the token endpoint until the person approved (tokens), refused (access_denied) or the code expired
 * (expired_token, or its lifetime passed): `interval` seconds apart (5 when not given), 5 s more after each
 * slow_down. `progress` gets the seconds left before each wait.
 */
export async function pollDeviceToken(md: IssuerMetadata, da: DeviceAuthorization, progress: (secondsLeft: number) => void = () => {}): Promise<TokenResponse> {
  let intervalMs = Math.max(1, da.interval ?? 5) * 1000;
  const deadline = Date.now() + da.expires_in * 1000;
  const expired = () => new RealmError("UNAUTHORIZED", "the sign-in code expired before it was approved; run `realm login` again");
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw expired();
    progress(Math.ceil(left / 1000));
    await delay(Math.min(intervalMs, left));
    const res = await postForm(md.token_endpoint, { grant_type: DEVICE_GRANT, device_code: da.device_code, client_id: REALM_CLI_CLIENT, resource: ADMIN_RESOURCE });
    try {
      return checkTokens(await jsonOf<TokenResponse>(res, "the token endpoint"));
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err;
      if (err.error === "authorization_pending") continue;
      if (err.error === "slow_down") {
        intervalMs += 5000;
        continue;
      }
      if (err.error === "expired_token") throw expired();
      if (err.error === "access_denied") throw new RealmError("UNAUTHORIZED", "the sign-in was denied in the browser; nothing was stored");
      throw new RealmError("UNAUTHORIZED", `the sign-in failed (${err.message})`);
    }
  }
}

function checkTokens(t: TokenResponse): TokenResponse {
  if (typeof t.access_token !== "string" || !/^bearer$/i.test(t.token_type ?? "")) throw new RealmError("UNAVAILABLE", "the token endpoint answered without a bearer access token");
  return t;
}

/** The signed-in principal: the `sub` of the ID token, verified (signature, issuer, audience realm-cli). */
export async function principalOf(md: IssuerMetadata, idToken: string | undefined): Promise<string> {
  if (!idToken) throw new RealmError("UNAVAILABLE", "the token endpoint answered without an ID token");
  try {
    // jose loads only here (`realm login`): every other verb starts without it.
    const { createRemoteJWKSet, jwtVerify } = await import("jose");
    const { payload } = await jwtVerify(idToken, createRemoteJWKSet(new URL(md.jwks_uri)), { issuer: md.issuer, audience: REALM_CLI_CLIENT });
    if (typeof payload.sub !== "string") throw new Error("no sub");
    return payload.sub;
  } catch (err) {
    throw new RealmError("INTEGRITY", `the ID token from ${md.issuer} does not verify (${err instanceof Error ? err.name : "error"})`);
  }
}

/** What to store from a token response. */
export function credentialOf(md: IssuerMetadata, t: TokenResponse, principal: string): StoredCredential {
  return {
    issuer: md.issuer,
    accessToken: t.access_token,
    // Only the answer's refresh token: the one just used is spent (rotation), using it again ends the sign-in.
    refreshToken: t.refresh_token,
    expiresAt: new Date(Date.now() + (t.expires_in ?? 3600) * 1000).toISOString(),
    principal,
  };
}

/** A refresh token grant (the realm rotates the refresh token: the answer's one replaces it). */
export async function refresh(md: IssuerMetadata, refreshToken: string): Promise<TokenResponse> {
  const res = await postForm(md.token_endpoint, { grant_type: "refresh_token", refresh_token: refreshToken, client_id: REALM_CLI_CLIENT, resource: ADMIN_RESOURCE });
  return checkTokens(await jsonOf<TokenResponse>(res, "the token endpoint"));
}

/** Revokes a token at the issuer (RFC 7009: 200 also for an unknown one). */
export async function revoke(md: IssuerMetadata, token: string, hint: "refresh_token" | "access_token"): Promise<void> {
  if (!md.revocation_endpoint) throw new RealmError("UNAVAILABLE", `the issuer ${md.issuer} offers no revocation endpoint`);
  const res = await postForm(md.revocation_endpoint, { token, token_type_hint: hint, client_id: REALM_CLI_CLIENT });
  if (!res.ok) {
    const b = (await res.json().catch(() => ({}))) as { error?: string };
    throw new RealmError("UNAVAILABLE", `the revocation endpoint answered ${res.status}${b.error ? ` (${b.error})` : ""}`);
  }
}

/**
 * The access token `realm login` stored for `realmUrl`, refreshed first when it expires within 60 s
 * (under the store's lock; the rotated refresh token is stored). When there is none, or refreshing fails
 * and the stored one has expired, undefined: the caller goes on without a credential. A refresh token the
 * realm no longer takes (revoked, expired, reused) removes the entry. `say` gets a line for the person
 * when the sign-in could not be renewed (no token in it).
 */
export async function storedAccessToken(realmUrl: string, store = new CredentialsStore(), say: (line: string) => void = () => {}): Promise<string | undefined> {
  const entry = store.get(realmUrl);
  if (!entry) return undefined;
  const fresh = (c: StoredCredential, margin: number) => Date.parse(c.expiresAt) - Date.now() > margin;
  if (fresh(entry, REFRESH_MARGIN_MS)) return entry.accessToken;
  const stillValid = () => (fresh(entry, 0) ? entry.accessToken : undefined);
  if (!entry.refreshToken) return stillValid();
  try {
    return await store.withLock(async () => {
      // Another realm process may have refreshed while we waited for the lock.
      const now = store.get(realmUrl);
      if (!now?.refreshToken) return now && fresh(now, 0) ? now.accessToken : undefined;
      if (fresh(now, REFRESH_MARGIN_MS)) return now.accessToken;
      const md = await discover(realmUrl);
      let t: TokenResponse;
      try {
        t = await refresh(md, now.refreshToken);
      } catch (err) {
        if (err instanceof OAuthError && err.error === "invalid_grant") store.delete(realmUrl);
        throw err;
      }
      store.put(realmUrl, credentialOf(md, t, now.principal));
      return t.access_token;
    });
  } catch (err) {
    say(`realm: the sign-in to ${realmUrl} could not be renewed (${err instanceof OAuthError ? err.error : err instanceof Error ? err.message : String(err)}); run \`realm login --url ${realmUrl}\``);
    return stillValid();
  }
}
