import type { NatsConnection } from "@nats-io/nats-core";
import { verifyRealm, realmContexts } from "../kernel/audit-all.js";
import { readCheckpointRecord, type Auditor } from "../kernel/auditor.js";
import type { QuarantinedEvent } from "../kernel/projection.js";
import type { RealmTrust } from "../kernel/trust.js";
import type { RealmContext } from "./context.js";
import type { Host } from "./host.js";
import { streamPlacements } from "./stream-placement.js";

export interface SystemOptions {
  nc: NatsConnection;
  trust: RealmTrust;
  /** The contexts this realm serves, this one included (for `contexts` and `quarantine`). */
  contexts: () => RealmContext[];
  auditor?: Auditor | undefined;
  /** The auditor's local record of its latest checkpoints (compared by `audit`). */
  checkpointRecord?: string | undefined;
  /** The realm's own NATS identities and what each may do (public facts only). */
  identities?: () => object[];
  /** The host serving this context (its permission table and latest refusals), once it runs. */
  host?: () => Pick<Host, "permissions" | "denials"> | undefined;
  /** The realm's streams and bucket streams, for `cluster` (default every stream of the account). */
  streams?: readonly string[] | undefined;
  /** The id of the instance this context runs in (services/host/instance.ts), for `cluster`'s answer. */
  instance?: string | undefined;
}

const none = { type: "object", additionalProperties: false, properties: {} };

/** Every quarantined message the realm's projections hold, once per stream and sequence, with who saw it. */
export function quarantinedIn(contexts: RealmContext[]): (QuarantinedEvent & { seenBy: string[] })[] {
  const byKey = new Map<string, QuarantinedEvent & { seenBy: string[] }>();
  for (const p of contexts.flatMap((c) => c.projections?.() ?? [])) {
    for (const q of p.quarantined) {
      const key = `${q.stream}/${q.seq}/${q.reason}`;
      const hit = byKey.get(key);
      if (hit) hit.seenBy.push(q.projection);
      else byKey.set(key, { ...q, seenBy: [q.projection] });
    }
  }
  return [...byKey.values()].sort((a, b) => a.stream.localeCompare(b.stream) || a.seq - b.seq);
}

/** The `realm` context: what the realm runs, its trust document, quarantined events, and the audit of every chain. */
export function systemContext(opts: SystemOptions): RealmContext {
  const describe = () => opts.contexts().map((c) => ({ name: c.name, endpoints: c.endpoints.map((e) => ({ kind: e.kind, name: e.name, description: e.description })) }));
  return {
    name: "realm",
    connection: opts.nc,
    endpoints: [
      {
        kind: "query",
        name: "contexts",
        description: "The contexts this realm serves, with their commands and queries.",
        input: none,
        async handle() {
          return { contexts: describe(), streams: await realmContexts(opts.nc) };
        },
      },
      {
        kind: "query",
        name: "trust",
        description: "The realm's signed trust document: which key may sign the events of which subjects, signed by the realm's root.",
        input: none,
        async handle() {
          return { trust: opts.trust.doc };
        },
      },
      {
        kind: "query",
        name: "identities",
        description: "The realm's own NATS identities (service, reader, operator) and the subjects each may use.",
        input: none,
        async handle() {
          return { identities: opts.identities?.() ?? [] };
        },
      },
      {
        kind: "query",
        name: "audit",
        description:
          "Walk every event stream: each message's form, CID, signature (by a key the trust document gives its subject), prev chain and version, and the auditor's signed checkpoints (a deleted or cut-off tail). Reports every message that fails.",
        input: { type: "object", additionalProperties: false, properties: { context: { type: "string", pattern: "^[a-z0-9_-]+$" } } },
        async handle(input: { context?: string }) {
          const reports = await verifyRealm(opts.nc, opts.trust, { contexts: input.context ? [input.context] : undefined, recorded: readCheckpointRecord(opts.checkpointRecord) });
          return { verified: reports.every((r) => r.ok), reports };
        },
      },
      {
        kind: "query",
        name: "permissions",
        description: "Every command's and query's permission (`<context>:<aggregate>.<action>`, `<context>:<query>`), with whether a scoped binding can cover it",
        auth: "authenticated",
        input: none,
        async handle() {
          return { permissions: opts.host?.()?.permissions() ?? [] };
        },
      },
      {
        kind: "query",
        name: "denials",
        description: "The latest refused requests (principal, permission, why, transport), oldest first",
        input: none,
        async handle() {
          return { denials: opts.host?.()?.denials() ?? [] };
        },
      },
      {
        kind: "query",
        name: "cluster",
        description: "Where the realm's streams and buckets live: each one's replicas, leader and peers (current or behind), last sequence; and the NATS server the answering instance is on.",
        input: none,
        async handle() {
          const info = opts.nc.info;
          const answeredBy = { instance: opts.instance ?? null, server: info?.server_name ?? null, cluster: info?.cluster ?? null, version: info?.version ?? null, urls: info?.connect_urls ?? [] };
          return { answeredBy, streams: await streamPlacements(opts.nc, { ...(opts.streams ? { streams: opts.streams } : {}) }) };
        },
      },
      {
        kind: "query",
        name: "quarantine",
        description: "Stored messages the realm's projections did not apply (did not verify, or could not be applied), with stream, sequence and reason.",
        input: none,
        async handle() {
          return { quarantined: quarantinedIn(opts.contexts()) };
        },
      },
      {
        kind: "command",
        name: "checkpoint.create",
        description: "Have the auditor checkpoint every stream (or one) now: head sequence, head CID and digest, signed.",
        input: { type: "object", additionalProperties: false, properties: { context: { type: "string", pattern: "^[a-z0-9_-]+$" } } },
        async handle(input: { context?: string }) {
          if (!opts.auditor) return { checkpoints: [] };
          return { checkpoints: await opts.auditor.checkpoint(input.context) };
        },
      },
    ],
    projections: () => opts.auditor?.projections() ?? [],
    stop: async () => {
      await opts.auditor?.stop();
    },
  };
}
