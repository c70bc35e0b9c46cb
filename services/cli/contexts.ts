import type { ContextFactory } from "../host/context.js";
import { createDnsContext } from "../../dns/service.js";
import { createPkiContext } from "../../pki/service.js";
import { createIdentityContext, type IdentityContext } from "../../identity/service.js";
import { grantsOf } from "../../identity/authorize.js";
import { ldapFederation } from "../../identity/ldap/federation.js";
import { ldapDirectory, ldapDirectoryFromEnv } from "../../identity/directory-server/extension.js";
import { radiusServer } from "../../identity/radius/service.js";
import { RealmError } from "../kernel/errors.js";
import type { SecretEscrow } from "../../secrets-client/contract.js";
import type { Sealer } from "../kernel/seal.js";
import type { CloudflareConfig } from "../../dns/cloudflare/endpoints.js";

export interface ContextSettings {
  natsUrl: string;
  /** Creds the DNS worker processes connect with (the read-only DNS reader identity). */
  natsCreds?: string;
  dnsPort: number;
  /** Address the authoritative DNS listens on (default 127.0.0.1). */
  dnsHost?: string;
  /** Where generated private material goes (Vaultwarden); without it, it is returned once and kept nowhere. */
  escrow?: SecretEscrow | undefined;
  /** The realm's seal key (`data/operator/seal.key` or REALM_SEAL_KEY): what the identity context keeps in KV is sealed with it. */
  sealer: Sealer;
  /** The operator identity bundle: its passphrase lets `admin.bootstrap` run again (recovery). */
  operatorBundle?: string | undefined;
  /** Cloudflare mirror settings (default: the token and API base from the environment). */
  cloudflare?: CloudflareConfig | undefined;
}

/** The bounded contexts `realm up` hosts, in start order. */
export function contextFactories(s: ContextSettings): { name: string; factory: ContextFactory }[] {
  const dnsFactory = createDnsContext({
    dns: {
      port: s.dnsPort,
      host: s.dnsHost ?? "127.0.0.1",
      workers: Number(process.env.REALM_DNS_WORKERS ?? 0),
      natsUrl: s.natsUrl,
      ...(s.natsCreds ? { natsCreds: s.natsCreds } : {}),
    },
    ...(s.cloudflare ? { cloudflare: s.cloudflare } : {}),
    sealer: s.sealer,
    escrow: s.escrow,
  });
  // REALM_LDAP_PORT set: the identity context also serves its read-only LDAP directory (identity/directory-server).
  const ldapDir = ldapDirectoryFromEnv();
  const identityFactory = createIdentityContext({ escrow: s.escrow, sealer: s.sealer, operatorBundle: s.operatorBundle, extensions: [ldapFederation(), radiusServer(), ...(ldapDir ? [ldapDirectory(ldapDir)] : [])] });
  let identity: IdentityContext | undefined;
  // ACME accounts bound to a principal (EAB) order under its grants: read from the identity context hosted here.
  const principalGrants = async (principal: string) => {
    if (!identity) throw new RealmError("UNAVAILABLE", "the identity context is not hosted in this process");
    return grantsOf(identity.core.dir, principal);
  };
  return [
    { name: "identity", factory: async (deps) => (identity = await identityFactory(deps)) },
    { name: "dns", factory: dnsFactory },
    // The PKI certifies names the realm owns: it follows the name domain's zone events (pki/realm-zones.ts).
    { name: "pki", factory: createPkiContext({ escrow: s.escrow, sealer: s.sealer, principalGrants }) },
  ];
}
