import type { ContextFactory } from "../host/context.js";
import { createDnsContext } from "../../dns/service.js";
import { identityContext } from "../../identity/service.js";

export interface ContextSettings {
  natsUrl: string;
  natsCreds?: string;
  dnsPort: number;
}

/** The bounded contexts `realm up` hosts, in start order. */
export function contextFactories(s: ContextSettings): { name: string; factory: ContextFactory }[] {
  return [
    { name: "identity", factory: identityContext },
    {
      name: "dns",
      factory: createDnsContext({
        dns: {
          port: s.dnsPort,
          host: process.env.REALM_DNS_HOST ?? "127.0.0.1",
          workers: Number(process.env.REALM_DNS_WORKERS ?? 0),
          natsUrl: s.natsUrl,
          ...(s.natsCreds ? { natsCreds: s.natsCreds } : {}),
        },
      }),
    },
  ];
}
