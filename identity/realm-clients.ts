import type { ClientRegistration } from "./domain/client.js";

/**
 * The realm's own OIDC side of its admin API. Access tokens are accepted by the admin API only when they
 * were issued for this resource (RFC 8707 resource indicator, the token's audience) to one of the realm's
 * own clients; a token any other application got for a person is refused (401), whoever the person is.
 */
export const ADMIN_RESOURCE = "urn:cim-realm:admin";

/** The clients the identity context registers itself (events by `realm-init`), public, PKCE / device flow. */
export const REALM_CLI_CLIENT = "realm-cli";
export const REALM_CONSOLE_CLIENT = "realm-console";
export const REALM_CLIENT_IDS: readonly string[] = [REALM_CLI_CLIENT, REALM_CONSOLE_CLIENT];

/** Registrations of the realm's own clients; `base` is the realm's public HTTP URL (the console's redirect). */
export function realmClientRegistrations(base: string): { id: string; registration: ClientRegistration }[] {
  const b = base.replace(/\/$/, "");
  return [
    {
      id: REALM_CLI_CLIENT,
      registration: {
        displayName: "realm command line",
        public: true,
        redirectUris: [],
        postLogoutRedirectUris: [],
        grantTypes: ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
        scopes: ["openid", "profile", "offline_access"],
        trusted: true,
        principal: undefined,
      },
    },
    {
      id: REALM_CONSOLE_CLIENT,
      registration: {
        displayName: "realm console",
        public: true,
        redirectUris: [`${b}/console/callback`],
        postLogoutRedirectUris: [`${b}/console/`],
        grantTypes: ["authorization_code", "refresh_token"],
        scopes: ["openid", "profile", "offline_access"],
        trusted: true,
        principal: undefined,
      },
    },
  ];
}
