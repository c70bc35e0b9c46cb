import type { ContextFactory } from "../host/context.js";
import { createDnsContext, type DnsContext } from "../../dns/service.js";
import { createPkiContext } from "../../pki/service.js";
import { createIdentityContext } from "../../identity/service.js";
import type { SecretEscrow } from "../../secrets-client/contract.js";

export interface ContextSettings {
  natsUrl: string;
  natsCreds?: string;
  dnsPort: number;
  /** Where generated private material goes (Vaultwarden); without it, it is returned once and kept nowhere. */
  escrow?: SecretEscrow | undefined;
}

/** The bounded contexts `realm up` hosts, in start order. */
export function contextFactories(s: ContextSettings): { name: string; factory: ContextFactory }[] {
  // The PKI certifies names the realm owns: the zones of the name domain (read live from its projection).
  let dns: DnsContext | undefined;
  const dnsFactory = createDnsContext({
    dns: {
      port: s.dnsPort,
      host: process.env.REALM_DNS_HOST ?? "127.0.0.1",
      workers: Number(process.env.REALM_DNS_WORKERS ?? 0),
      natsUrl: s.natsUrl,
      ...(s.natsCreds ? { natsCreds: s.natsCreds } : {}),
    },
  });
  return [
    { name: "identity", factory: createIdentityContext({ escrow: s.escrow }) },
    { name: "dns", factory: async (deps) => (dns = await dnsFactory(deps)) },
    { name: "pki", factory: createPkiContext({ ownedZones: () => (dns ? dns.model().zones.keys() : []), escrow: s.escrow }) },
  ];
}
