import type { NatsConnection } from "@nats-io/nats-core";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { CommandMeta, EventAuthz } from "../kernel/store.js";
import type { Principal, Resource } from "./authz.js";
import type { Projection } from "../kernel/projection.js";
import type { RealmTrust } from "../kernel/trust.js";

/** What a request carries besides its input: who asks, and the ids that tie its events together. */
export interface RequestContext {
  /** UUIDv7; a retried command with the same id produces no new events. */
  commandId: string;
  correlationId: string;
  causationId: string;
  /** Principal that asked ("anonymous" without authentication). */
  actor: string;
  /** The authenticated caller with its grants (absent without authentication). */
  principal?: Principal | undefined;
  /** Why this request was allowed (which permission, binding, role): recorded on the events it causes. */
  authz?: EventAuthz | undefined;
  /** The raw request body of an endpoint's `upload` route (HTTP only), read by the handler after every check. */
  body?: AsyncIterable<Uint8Array> | undefined;
  log: Logger;
}

/** The metadata a command's events carry, taken from the request that caused it. */
export const commandMetaOf = (ctx: Pick<RequestContext, "commandId" | "actor" | "correlationId" | "causationId"> & { authz?: EventAuthz | undefined }): CommandMeta => ({
  commandId: ctx.commandId,
  actor: ctx.actor,
  correlationId: ctx.correlationId,
  causationId: ctx.causationId,
  ...(ctx.authz ? { authz: ctx.authz } : {}),
});

export type HttpMethod = "GET" | "POST" | "PUT" | "DELETE";

/**
 * One command or query of a bounded context. The host serves it on NATS
 * (`realm.<context>.commands.<name>` or `realm.<context>.queries.<name>`) and over HTTP, validating the
 * input against `input` (JSON Schema) on both before `handle` sees it.
 */
export interface Endpoint<I = any, O extends object = object> { // any: handlers narrow their own input type; the schema has validated it
  kind: "command" | "query";
  /** Commands: `<aggregate>.<action>` (e.g. `zone.create`); queries: `<name>` (e.g. `zones`), tokens only. */
  name: string;
  description: string;
  /** JSON Schema (draft 2020-12 subset Ajv supports) of the input object. */
  input: object;
  /**
   * HTTP route, path relative to `/api/<context>`; `:params` are merged into the input, as is the query
   * string for GET. Default: POST `/<name with . as />` for commands, GET `/<name>` for queries.
   */
  http?: { method: HttpMethod; path: string };
  /**
   * `none`: served without authentication (the endpoint proves its caller itself, e.g. the first admin's
   * bootstrap, which only works while the realm has no admin). `authenticated`: any authenticated caller
   * (it answers about the caller only, e.g. whoami). Default: the permission `<context>:<name>`.
   */
  auth?: "none" | "authenticated";
  /**
   * What the request is about (a DNS name, an account, an issuer, a principal): a binding with a scope
   * counts only when every resource named lies in its scope. None: only unscoped bindings count.
   */
  resource?: (input: I) => Resource | Resource[] | undefined;
  /** Narrows a query's answer to what the caller may read (`can` decides per resource). */
  filter?: (result: O, can: (r: Resource) => boolean) => O;
  /**
   * Response fields that are secrets (an API key, a client secret, a private key, creds). A resent command
   * id gets them again only within 24 h and only for an authenticated caller; later its answer names them
   * in `withheld` (services/host/outcomes.ts). They are never kept with the rest of the outcome.
   */
  secret?: string[];
  /** `nats`: not served over HTTP (only holders of realm NATS creds reach it). Default both. */
  transport?: "nats";
  /**
   * A second HTTP route (POST, path relative to `/api/<context>`) that takes the request body as it is, not
   * as JSON: a file too big for a JSON body (the host's JSON limit is 1 MiB). Its `:params` and query string
   * are the input; the body reaches `handle` as `ctx.body`, streamed and cut at `limit` bytes, after the same
   * authentication, permission, validation and scope checks as the endpoint's other routes.
   */
  upload?: { path: string; types: string[]; limit: number; description?: string };
  handle(input: I, ctx: RequestContext): Promise<O>;
}

export interface RealmContext {
  /** Subject token of the context: pki, identity, dns, secrets, ... */
  name: string;
  endpoints: Endpoint[];
  /**
   * The NATS connection of this context's service identity: the host serves its endpoints on it (default:
   * the host's connection).
   */
  connection?: NatsConnection;
  /** The projections this context runs: /readyz reports them, degraded when one quarantined an event. */
  projections?(): Projection<unknown>[];
  /** Extra raw HTTP routes (OCSP, CRL, OIDC, login pages) registered on the realm's Fastify server. */
  routes?(app: FastifyInstance): void | Promise<void>;
  /** False while projections catch up; drives /readyz. */
  ready?(): boolean;
  /** Prometheus text lines this context adds to /metrics. */
  metrics?(): string[];
  stop?(): Promise<void>;
}

/** Everything a context needs from the process that hosts it. */
export interface ContextDeps {
  /** The connection of this context's own NATS identity (least privilege: its streams, buckets and subjects). */
  nc: NatsConnection;
  log: Logger;
  /** Data dir of this context (local files such as keys it is allowed to hold online). */
  dataDir: string;
  /** The realm's trust document and the event-signing keys this process holds (stores verify and seal with it). */
  trust: RealmTrust;
}

export type ContextFactory = (deps: ContextDeps) => Promise<RealmContext>;

export type { Principal } from "./authz.js";

/**
 * Authenticates a request from its `Authorization` header (HTTP or NATS header). Returns null when the
 * credential is absent; throws RealmError UNAUTHORIZED when it is present but invalid.
 */
export type Authenticator = (authorization: string | undefined) => Promise<Principal | null>;
