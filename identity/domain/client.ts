import type { Decider, NewEvent } from "../../services/kernel/index.js";
import { alreadyExists, invalid, notFound } from "../../services/kernel/index.js";
import { assertName, dataOf, ev, uniq } from "./common.js";

export type GrantType = "authorization_code" | "refresh_token" | "client_credentials" | "urn:ietf:params:oauth:grant-type:device_code";

/**
 * An OIDC client (relying party). A confidential client's secret (256 random bits) is returned once or
 * escrowed; events carry `sha256:<hex>` of it and, when escrowed, the SecretRef. Public clients have no
 * secret and must use PKCE.
 */
export interface ClientState {
  id: string;
  exists: boolean;
  disabled: boolean;
  displayName: string;
  public: boolean;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  grantTypes: GrantType[];
  /** Scopes the client may ask for. */
  scopes: string[];
  /** Skip the consent page (first-party apps). */
  trusted: boolean;
  /** Service principal a client-credentials token names (for relying services; the admin API refuses such tokens, auth.ts). */
  principal?: string | undefined;
  secretHash?: string | undefined;
  secretRef?: string | undefined;
}

export type ClientRegistration = Omit<ClientState, "id" | "exists" | "disabled" | "secretHash" | "secretRef">;
export type ClientCommand =
  | ({ type: "register"; secretHash?: string | undefined; secretRef?: string | undefined } & ClientRegistration)
  | { type: "rotateSecret"; secretHash: string; secretRef?: string | undefined }
  | { type: "disable" };

export const ClientEvents = { Registered: "ClientRegistered", SecretRotated: "ClientSecretRotated", Disabled: "ClientDisabled" } as const;

function checkUri(u: string): void {
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    throw invalid(`redirect URI ${JSON.stringify(u)} is not a URL`);
  }
  if (url.hash) throw invalid(`redirect URI ${u} must not have a fragment`);
  const loopback = url.hostname === "127.0.0.1" || url.hostname === "localhost" || url.hostname === "[::1]";
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) throw invalid(`redirect URI ${u} must be https (http only on loopback)`);
}

export const clientDecider: Decider<ClientState, ClientCommand> = {
  aggregateType: "client",
  initialState: (id) => ({ id, exists: false, disabled: false, displayName: id, public: false, redirectUris: [], postLogoutRedirectUris: [], grantTypes: [], scopes: [], trusted: false }),
  decide(s, c): NewEvent[] {
    if (c.type !== "register" && !s.exists) throw notFound(`no client ${s.id}`);
    switch (c.type) {
      case "register": {
        if (s.exists) throw alreadyExists(`client ${s.id} already exists`);
        assertName("client id", s.id);
        if (c.grantTypes.length === 0) throw invalid("a client needs at least one grant type");
        const interactive = c.grantTypes.includes("authorization_code");
        if (interactive && c.redirectUris.length === 0) throw invalid("an authorization_code client needs a redirect URI");
        for (const u of [...c.redirectUris, ...c.postLogoutRedirectUris]) checkUri(u);
        if (c.public && c.grantTypes.includes("client_credentials")) throw invalid("a public client cannot use client_credentials");
        if (c.public !== (c.secretHash === undefined)) throw invalid(c.public ? "a public client has no secret" : "a confidential client needs a secret hash");
        if (c.secretHash !== undefined && !/^sha256:[0-9a-f]{64}$/.test(c.secretHash)) throw invalid("secretHash must be sha256:<64 hex>");
        if (!c.scopes.includes("openid") && interactive) throw invalid("an authorization_code client must be allowed the openid scope");
        const { type: _t, ...rest } = c;
        return [ev(ClientEvents.Registered, { ...rest, grantTypes: uniq(c.grantTypes), scopes: uniq(c.scopes) })];
      }
      case "rotateSecret":
        if (s.public) throw invalid(`client ${s.id} is public and has no secret`);
        return [ev(ClientEvents.SecretRotated, { secretHash: c.secretHash, secretRef: c.secretRef })];
      case "disable":
        return s.disabled ? [] : [ev(ClientEvents.Disabled, {})];
    }
  },
  evolve(s, e) {
    switch (e.type) {
      case ClientEvents.Registered:
        return { ...s, exists: true, ...dataOf<Omit<ClientState, "id" | "exists" | "disabled">>(e) };
      case ClientEvents.SecretRotated:
        return { ...s, ...dataOf<{ secretHash: string; secretRef?: string }>(e) };
      case ClientEvents.Disabled:
        return { ...s, disabled: true };
      default:
        return s;
    }
  },
};
