import type { NatsConnection } from "@nats-io/nats-core";
import { verifyRealm, realmContexts } from "../kernel/audit-all.js";
import type { RealmContext } from "./context.js";

/** The `realm` context: what the realm runs, and the audit of every event chain. */
export function systemContext(nc: NatsConnection, describe: () => { name: string; endpoints: { kind: string; name: string; description: string }[] }[]): RealmContext {
  return {
    name: "realm",
    endpoints: [
      {
        kind: "query",
        name: "contexts",
        description: "The contexts this realm serves, with their commands and queries.",
        input: { type: "object", additionalProperties: false, properties: {} },
        async handle() {
          return { contexts: describe(), streams: await realmContexts(nc) };
        },
      },
      {
        kind: "query",
        name: "audit",
        description: "Walk every event chain (CID of each event, prev links, versions) and report the first break per context.",
        input: { type: "object", additionalProperties: false, properties: { context: { type: "string", pattern: "^[a-z0-9_-]+$" } } },
        async handle(input: { context?: string }) {
          const reports = await verifyRealm(nc, input.context ? [input.context] : undefined);
          return { verified: reports.every((r) => r.ok), reports };
        },
      },
    ],
  };
}
