import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import swagger from "@fastify/swagger";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/nats-core";
import { Svcm, type Service, type ServiceMsg } from "@nats-io/services";
import type { Logger } from "pino";
import { assertCommandId, newId } from "../kernel/envelope.js";
import { RealmError, toRealmError } from "../kernel/errors.js";
import { commandSubject, querySubject, isToken } from "../kernel/subjects.js";
import type { Authenticator, Endpoint, HttpMethod, RealmContext, RequestContext } from "./context.js";
import { canAccess, decide, mayHold, permissionOf, type Decision, type Principal, type Resource, type ScopeResolver } from "./authz.js";
import type { EventAuthz } from "../kernel/store.js";
import { RequestHeaders } from "./client.js";
import { createLogger } from "./logger.js";
import { Metrics } from "./metrics.js";
import { OutcomeJournal } from "./outcomes.js";
import type { Sealer } from "../kernel/seal.js";
import { compileInput, parseJsonObject, validateInput, type InputValidator } from "./validation.js";
import { registerUploadRoute } from "./upload-route.js";
import { contextStatsData, instanceIdentity, instanceMetadata, type InstanceIdentity } from "./instance.js";
import { Readiness } from "./readiness.js";

export interface HostOptions {
  nc: NatsConnection;
  contexts: RealmContext[];
  /** 0 = a free port; undefined = no HTTP server. */
  httpPort?: number;
  httpHost?: string;
  log?: Logger;
  /**
   * When set, every endpoint needs a principal whose grants allow it (services/host/authz.ts); without it
   * the API is open: single-user development only, see `insecureLocal`.
   */
  authenticate?: Authenticator;
  /** Decides `org` and `self` scopes (the identity context knows principals). */
  resolveScope?: ScopeResolver;
  /**
   * The API runs without authentication (`realm up --insecure-no-auth`): HTTP answers only requests whose
   * Host (and Origin, when sent) is this loopback address, and events record the mode.
   */
  insecureLocal?: boolean;
  version?: string;
  /**
   * Keep the first outcome of every command sent with a command id, sealed, so a resend is answered with it
   * (services/host/outcomes.ts). Without it a resend is answered by the domain from its events.
   */
  outcomes?: { sealer: Sealer; replicas?: number | undefined };
  /** Who this process is among the realm's instances (services/host/instance.ts); default a fresh id on this host. */
  instance?: InstanceIdentity;
}

/** Response header (HTTP) and NATS header of an answer that is a resent command's first outcome. */
export const REPLAYED_HEADER = "Idempotent-Replayed";
const replayedHeaders = () => {
  const h = natsHeaders();
  h.set(REPLAYED_HEADER, "true");
  return h;
};

export interface Host {
  app: FastifyInstance;
  httpUrl: string | undefined;
  services: Service[];
  /** This process as a realm instance: the `instance` metadata of each of its services. */
  instance: InstanceIdentity;
  /** Every endpoint's permission (the one table, from the endpoint declarations). */
  permissions(): PermissionEntry[];
  /** The latest refused requests (at most 1,000), oldest first. */
  denials(): { at: string; principal: string; permission: string; reason: string; transport: string }[];
  stop(): Promise<void>;
}

export interface PermissionEntry {
  permission: string;
  kind: "command" | "query";
  context: string;
  endpoint: string;
  description: string;
  /** `none`: no authentication; `authenticated`: any caller; `permission`: the permission below. */
  auth: "none" | "authenticated" | "permission";
  /** Whether a scoped binding can cover it: the endpoint names its resource, or filters its answer. */
  scoped: "resource" | "filtered" | "unscoped-only";
  subject: string;
  http?: string | undefined;
}

interface Bound {
  /** The context object the endpoint belongs to: two contexts may share a name (one subject namespace). */
  owner: RealmContext;
  context: string;
  endpoint: Endpoint;
  /** `<context>:<name>`: what a role must grant to call it. */
  permission: string;
  subject: string;
  validator: InputValidator;
  method: HttpMethod;
  path: string;
}

/**
 * Serves bounded contexts: each endpoint as a NATS micro-service endpoint (so `$SRV.PING/INFO/STATS`
 * discovery works) and as a Fastify route, both going through one `invoke` that parses, validates,
 * authenticates and maps errors to `{ ok:false, error:{code,message} }`.
 */
export async function startHost(opts: HostOptions): Promise<Host> {
  const log = opts.log ?? createLogger();
  const metrics = new Metrics();
  const bound: Bound[] = [];
  /** The latest refusals (principal, permission, why), newest last: `realm audit denials`. */
  const denials: { at: string; principal: string; permission: string; reason: string; transport: string }[] = [];
  for (const ctx of opts.contexts) {
    if (!isToken(ctx.name)) throw new RealmError("INTERNAL", `context name ${ctx.name} is not a subject token`);
    for (const ep of ctx.endpoints) {
      const [a, b, ...more] = ep.name.split(".");
      const subject = ep.kind === "command" ? (b && more.length === 0 ? commandSubject(ctx.name, a!, b) : bad(ep)) : querySubject(ctx.name, ep.name);
      const def = ep.kind === "command" ? { method: "POST" as const, path: `/${ep.name.replace(/\./g, "/")}` } : { method: "GET" as const, path: `/${ep.name}` };
      const http = ep.http ?? def;
      bound.push({ owner: ctx, context: ctx.name, endpoint: ep, permission: permissionOf(ctx.name, ep), subject, validator: compileInput(ep.input), method: http.method, path: `/api/${ctx.name}${http.path}` });
    }
  }

  // The outcome journal of each context that serves commands (one per context name: two contexts that share
  // a name share its subjects and its journal), on that context's own connection.
  const journals = new Map<RealmContext, OutcomeJournal>();
  if (opts.outcomes) {
    const byName = new Map<string, OutcomeJournal>();
    for (const ctx of opts.contexts) {
      if (!ctx.endpoints.some((e) => e.kind === "command")) continue;
      let j = byName.get(ctx.name);
      if (!j) byName.set(ctx.name, (j = await OutcomeJournal.open(ctx.connection ?? opts.nc, ctx.name, opts.outcomes.sealer, opts.outcomes.replicas, log.child({ component: "outcomes" }))));
      journals.set(ctx, j);
    }
  }

  const forbidden = (d: Decision) => new RealmError("FORBIDDEN", d.reason ?? `lacks the permission ${d.permission}`, { permission: d.permission });
  const asResources = (r: Resource | Resource[] | undefined): Resource[] | undefined => (r === undefined ? undefined : Array.isArray(r) ? r : [r]);

  /**
   * The one request path of NATS and HTTP. Authentication comes first (no body is read for a caller who
   * is not known), then the permission (a caller who cannot hold it at all is refused before the body is
   * read), then parsing and validation, then the scope of the request's resources, then the handler; a
   * query's answer is filtered to what the caller may read. `read` yields the input object; it throws
   * MALFORMED for an unreadable request, counted like any error.
   */
  async function invoke(b: Bound, read: () => Record<string, unknown>, query: boolean, h: { commandId?: string | undefined; correlationId?: string | undefined; authorization?: string | undefined; transport: string; body?: AsyncIterable<Uint8Array> | undefined }) {
    const started = performance.now();
    const labels = { context: b.context, endpoint: b.endpoint.name };
    const kind = b.endpoint.kind;
    let principal: Principal | null = null;
    try {
      if (opts.authenticate && b.endpoint.auth !== "none") {
        principal = await opts.authenticate(h.authorization);
        if (!principal) throw new RealmError("UNAUTHORIZED", "authentication required: send an API key or access token as a Bearer credential", { permission: b.permission });
      }
      let decision: Decision | undefined;
      // An endpoint that names no resource and filters nothing can be allowed only by an unscoped grant:
      // decide before the body is read.
      const scopable = !!b.endpoint.resource || (kind === "query" && !!b.endpoint.filter);
      if (principal && b.endpoint.auth !== "authenticated") {
        if (!mayHold(principal, b.permission, kind)) throw forbidden({ allowed: false, permission: b.permission, reason: `principal ${principal.id} lacks the permission ${b.permission}` });
        if (!scopable) {
          decision = decide(principal, b.permission, kind, undefined, opts.resolveScope);
          if (!decision.allowed) throw forbidden(decision);
        }
      }
      const input = read();
      validateInput(query ? b.validator.query : b.validator.body, input);
      if (principal && b.endpoint.auth !== "authenticated" && scopable) {
        const resources = asResources(b.endpoint.resource?.(input));
        decision = decide(principal, b.permission, kind, resources, opts.resolveScope);
        // A query that names no resource but filters its answer runs for a scoped caller: it answers only
        // what the caller's scopes hold.
        const filtered = kind === "query" && resources === undefined && b.endpoint.filter !== undefined;
        if (!decision.allowed && !filtered) throw forbidden(decision);
      }
      const commandId = h.commandId ? assertCommandId(h.commandId) : newId();
      const authz: EventAuthz | undefined = !opts.authenticate
        ? { permission: b.permission, mode: "insecure-no-auth" }
        : principal
          ? { permission: b.permission, ...(decision?.binding ? { binding: decision.binding, role: decision.role } : {}), ...(principal.via ? { via: principal.via } : {}) }
          : undefined;
      const ctx: RequestContext = {
        commandId,
        correlationId: h.correlationId ?? commandId,
        causationId: commandId,
        actor: principal?.id ?? "anonymous",
        principal: principal ?? undefined,
        authz,
        ...(h.body ? { body: h.body } : {}),
        log: log.child({ context: b.context, endpoint: b.endpoint.name, commandId }),
      };
      // A command sent with its own id is answered once: a resend gets the first outcome (outcomes.ts).
      const journal = kind === "command" && h.commandId ? journals.get(b.owner) : undefined;
      const handle = () => b.endpoint.handle(input, ctx) as Promise<Record<string, unknown>>;
      let replayed = false;
      let result: object;
      if (journal) {
        // Secrets of an anonymous caller's answer (the first admin's key) are never kept for a replay: anyone
        // could send that id again.
        const o = await journal.once({ commandId, endpoint: b.permission, actor: ctx.actor, input }, { secret: b.endpoint.secret ?? [], keepSecrets: !!principal }, handle);
        result = o.response;
        replayed = o.replayed;
      } else result = await handle();
      if (principal && b.endpoint.filter && b.endpoint.auth !== "authenticated") {
        const p = principal;
        result = b.endpoint.filter(result, (r) => canAccess(p, b.permission, kind, r, opts.resolveScope));
      }
      metrics.inc("realm_requests_total", "Requests served, by context, endpoint and outcome.", { ...labels, outcome: replayed ? "replayed" : "ok" });
      return { ok: true as const, body: { ok: true as const, ...result }, replayed };
    } catch (err) {
      const e = toRealmError(err);
      if (e.code === "INTERNAL") log.error({ err, context: b.context, endpoint: b.endpoint.name }, "request failed");
      if (e.code === "FORBIDDEN" && principal) {
        denials.push({ at: new Date().toISOString(), principal: principal.id, permission: b.permission, reason: e.message, transport: h.transport });
        if (denials.length > 1000) denials.shift();
        log.warn({ principal: principal.id, permission: b.permission, transport: h.transport }, `denied: ${e.message}`);
      }
      metrics.inc("realm_requests_total", "Requests served, by context, endpoint and outcome.", { ...labels, outcome: e.code });
      return { ok: false as const, error: e.toBody(), status: e.httpStatus };
    } finally {
      metrics.inc("realm_request_seconds_total", "Time spent serving requests, seconds.", labels, (performance.now() - started) / 1000);
    }
  }

  // NATS: one micro-service per context, queue group "realm" so replicas share the load, each on the
  // connection of its context's own identity (which may subscribe only to that context's subjects).
  // @nats-io/services 3.0.0-25 pins its own nats-core build; the connection is the same protocol object.
  const managers = new Map<NatsConnection, Svcm>();
  const svcmOf = (nc: NatsConnection) => {
    let m = managers.get(nc);
    if (!m) managers.set(nc, (m = new Svcm(nc as unknown as ConstructorParameters<typeof Svcm>[0])));
    return m;
  };
  const connections = [...new Set([opts.nc, ...opts.contexts.map((c) => c.connection ?? opts.nc)])].map((nc) => ({ nc, watch: watchConnection(nc) }));
  const disconnected = () => connections.filter((c) => !c.watch.connected()).map((c) => c.nc.info?.client_id ?? 0);
  const services: Service[] = [];
  const instance = opts.instance ?? instanceIdentity();
  const endpointName = (b: Bound) => `${b.endpoint.kind}-${b.endpoint.name.replace(/\./g, "-")}`;
  for (const ctx of opts.contexts) {
    const nc = ctx.connection ?? opts.nc;
    const own = bound.filter((x) => x.owner === ctx);
    // $SRV.STATS: the context's projection positions ride on its first endpoint's `data` (once per service).
    const carrier = own[0]?.subject;
    const srv = await svcmOf(nc).add({
      name: `realm-${ctx.name}`,
      version: opts.version ?? "0.1.0",
      description: `cim-realm ${ctx.name} context`,
      queue: "realm",
      metadata: instanceMetadata(instance),
      statsHandler: (ep) => Promise.resolve(ep.subject === carrier ? contextStatsData(ctx, nc) : null),
    });
    services.push(srv);
    for (const b of own) {
      srv.addEndpoint(endpointName(b), {
        subject: b.subject,
        metadata: { description: b.endpoint.description, http: `${b.method} ${b.path}` },
        handler: (err: Error | null, msg: ServiceMsg) => {
          if (err) return void log.error({ err }, "service endpoint error");
          void (async () => {
            const r = await invoke(b, () => parseJsonObject(msg.data), false, {
              commandId: msg.headers?.get(RequestHeaders.CommandId) || undefined,
              correlationId: msg.headers?.get(RequestHeaders.CorrelationId) || undefined,
              authorization: msg.headers?.get(RequestHeaders.Authorization) || undefined,
              transport: "nats",
            });
            if (r.ok) msg.respond(JSON.stringify(r.body), r.replayed ? ({ headers: replayedHeaders() } as unknown as Parameters<ServiceMsg["respond"]>[1]) : undefined);
            else msg.respondError(r.status, r.error.message, JSON.stringify({ ok: false, error: r.error }));
          })();
        },
      });
    }
  }

  // HTTP
  // Typed as the default instance: contexts register routes without caring which pino build logs them.
  const app = Fastify({ loggerInstance: log.child({ component: "http" }), logController: new LogController({ disableRequestLogging: true }), bodyLimit: 1_048_576 }) as unknown as FastifyInstance;
  // Requests are parsed and validated by `invoke` (one parser and validator for NATS and HTTP, so a
  // malformed body is the same typed error on both); the route schemas feed OpenAPI only.
  app.setValidatorCompiler(() => () => true);
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (_req, body, done) => done(null, body));
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    const code = err.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE" || err.code === "FST_ERR_CTP_EMPTY_JSON_BODY" || err instanceof SyntaxError || err.code === "FST_ERR_CTP_INVALID_JSON_BODY" ? "MALFORMED" : undefined;
    if (code) return reply.code(400).send({ ok: false, error: { code, message: `request is not valid JSON: ${err.message}` } });
    const e = toRealmError(err);
    if (e.code === "INTERNAL") log.error({ err }, "http request failed");
    return reply.code(err.statusCode && err.statusCode < 500 ? err.statusCode : e.httpStatus).send({ ok: false, error: e.toBody() });
  });
  await app.register(swagger, {
    openapi: { info: { title: "cim-realm", version: opts.version ?? "0.1.0", description: "cim-realm admin API. Every route is also a NATS subject (x-nats-subject)." } },
  });
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  app.get("/healthz", { schema: { hide: true } }, async (_req, reply) => {
    const up = disconnected().length === 0;
    return reply.code(up ? 200 : 503).send({ ok: up, nats: up ? "connected" : "disconnected" });
  });
  // 200 "ready", 200 "degraded" (serving, but a projection quarantined stored events: named here), 503
  // "not-ready": NATS disconnected, JetStream not answering, a context not ready (a projection catching up,
  // recovering its consumer, stopped), or a projection behind its stream for longer than REALM_READY_LAG_MS.
  const readiness = new Readiness(opts.nc, () => opts.contexts);
  app.get("/readyz", { schema: { hide: true } }, async (_req, reply) => {
    const degraded = opts.contexts.flatMap((c) =>
      (c.projections?.() ?? [])
        .filter((p) => p.degraded)
        .map((p) => ({ context: c.name, projection: p.def.name, stream: p.store.stream, quarantined: p.quarantinedTotal, first: p.quarantined[0] && { seq: p.quarantined[0].seq, reason: p.quarantined[0].reason, message: p.quarantined[0].message } })),
    );
    const r = await readiness.report(disconnected().length === 0);
    const status = !r.ok ? "not-ready" : degraded.length ? "degraded" : "ready";
    return reply.code(r.ok ? 200 : 503).send({ ok: r.ok, status, nats: r.nats, jetstream: r.jetstream, notReady: r.notReady, lagging: r.lagging.map((p) => `${p.context}/${p.projection}`), degraded, projections: r.projections });
  });
  app.get("/metrics", { schema: { hide: true } }, async (_req, reply) => {
    const stats = opts.nc.stats();
    const connected = disconnected().length === 0;
    const [jetstream, lags] = await Promise.all([readiness.jetstream(connected), readiness.projections(connected)]);
    const extra = [
      "# HELP realm_nats_messages_total Messages seen by the host's NATS connection.",
      "# TYPE realm_nats_messages_total counter",
      `realm_nats_messages_total{direction="in"} ${stats.inMsgs}`,
      `realm_nats_messages_total{direction="out"} ${stats.outMsgs}`,
      "# HELP realm_projection_quarantined_total Stored messages a projection did not apply (did not verify or could not be applied).",
      "# TYPE realm_projection_quarantined_total counter",
      ...opts.contexts.flatMap((c) => (c.projections?.() ?? []).map((p) => `realm_projection_quarantined_total{context="${c.name}",projection="${p.def.name}"} ${p.quarantinedTotal}`)),
      "# HELP realm_projection_seq Last stream sequence a projection has seen.",
      "# TYPE realm_projection_seq gauge",
      ...opts.contexts.flatMap((c) => (c.projections?.() ?? []).map((p) => `realm_projection_seq{context="${c.name}",projection="${p.def.name}"} ${p.lastSeq}`)),
      "# HELP realm_projection_lag Events of its stream a projection has not applied (as of the stream's last sequence asked within about a second).",
      "# TYPE realm_projection_lag gauge",
      ...lags.filter((p) => p.lag !== null).map((p) => `realm_projection_lag{context="${p.context}",projection="${p.projection}"} ${p.lag}`),
      "# HELP realm_jetstream_up 1 when JetStream answered an account-info call within 1.5 s (cached 1 s), else 0.",
      "# TYPE realm_jetstream_up gauge",
      `realm_jetstream_up ${jetstream === "ok" ? 1 : 0}`,
      ...opts.contexts.flatMap((c) => c.metrics?.() ?? []),
    ];
    return reply.type("text/plain; version=0.0.4").send(metrics.render(extra));
  });
  const entryOf = (b: Bound): PermissionEntry => ({
    permission: b.permission,
    kind: b.endpoint.kind,
    context: b.context,
    endpoint: b.endpoint.name,
    description: b.endpoint.description,
    auth: b.endpoint.auth ?? "permission",
    scoped: b.endpoint.resource ? "resource" : b.endpoint.filter ? "filtered" : "unscoped-only",
    subject: b.subject,
    ...(b.endpoint.transport === "nats" ? {} : { http: [`${b.method} ${b.path}`, ...(b.endpoint.upload ? [`POST /api/${b.context}${b.endpoint.upload.path}`] : [])].join(", ") }),
  });
  // Without authentication (development), HTTP answers only what a browser on this machine sent to this
  // address: a foreign Host is DNS rebinding, a foreign Origin a cross-site request.
  const localOnly = (req: FastifyRequest): RealmError | undefined => {
    if (!opts.insecureLocal || !httpUrl) return undefined;
    const here = new URL(httpUrl);
    const hosts = new Set([here.host, `localhost:${here.port}`, `127.0.0.1:${here.port}`, `[::1]:${here.port}`]);
    const host = req.headers.host ?? "";
    if (!hosts.has(host)) return new RealmError("FORBIDDEN", `without authentication the realm answers only requests for ${here.host} (Host was ${JSON.stringify(host.slice(0, 100))})`);
    const origin = req.headers.origin;
    if (origin !== undefined && !(origin.startsWith("http://") && hosts.has(origin.slice(7)))) return new RealmError("FORBIDDEN", "without authentication the realm answers no cross-site request (Origin is not this realm)");
    return undefined;
  };
  /** What every route's OpenAPI entry says of the endpoint behind it. */
  const routeDoc = (b: Bound) => ({ tags: [b.context], "x-nats-subject": b.subject, "x-permission": b.permission, "x-permission-scope": entryOf(b).scoped });
  /** What `invoke` takes from an HTTP request's headers (command id, correlation id, credentials). */
  const httpRequestHeaders = (req: FastifyRequest) => {
    const header = (n: string) => {
      const v = req.headers[n.toLowerCase()];
      return typeof v === "string" ? v : undefined;
    };
    return {
      commandId: header(RequestHeaders.CommandId) ?? header("Idempotency-Key"),
      correlationId: header(RequestHeaders.CorrelationId),
      authorization: header(RequestHeaders.Authorization),
      transport: "http",
    };
  };
  /** An `invoke` answer as the HTTP reply: the body, the replay header, or the typed error with its status. */
  const sendAnswer = (reply: FastifyReply, r: Awaited<ReturnType<typeof invoke>>) => {
    if (r.ok) {
      if (r.replayed) reply.header(REPLAYED_HEADER, "true");
      return reply.code(200).send(r.body);
    }
    const { status, ...rest } = r;
    return reply.code(status).send(rest);
  };
  for (const b of bound.filter((x) => x.endpoint.transport !== "nats")) {
    const schema = {
      description: `${b.endpoint.description}\n\nPermission: \`${b.permission}\`${b.endpoint.auth === "none" ? " (no authentication)" : b.endpoint.auth === "authenticated" ? " (any authenticated caller)" : ""}.`,
      ...routeDoc(b),
      ...(b.method === "GET" ? { querystring: b.endpoint.input } : { body: b.endpoint.input }),
    };
    app.route({
      method: b.method,
      url: b.path,
      schema,
      handler: async (req: FastifyRequest, reply: FastifyReply) => {
        const params = (req.params ?? {}) as Record<string, unknown>;
        const fromQuery = b.method === "GET" || b.method === "DELETE";
        const refused = localOnly(req);
        if (refused) return reply.code(refused.httpStatus).send({ ok: false, error: refused.toBody() });
        // A body is JSON, said so: a text/plain or form body (what another site's page can send without
        // asking) is refused before anything reads it.
        const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
        if (!fromQuery && typeof req.body !== "undefined" && req.body !== "" && type !== "application/json") {
          return reply.code(415).send({ ok: false, error: { code: "MALFORMED", message: `send the request body as application/json (got ${JSON.stringify(type.slice(0, 60) || "none")})` } });
        }
        const read = () => ({ ...(fromQuery ? (req.query as Record<string, unknown>) : parseJsonObject(typeof req.body === "string" ? req.body : "")), ...params });
        return sendAnswer(reply, await invoke(b, read, fromQuery, httpRequestHeaders(req)));
      },
    });
  }
  // An endpoint's `upload` route: the same checks and handler, the body a stream (upload-route.ts).
  for (const b of bound.filter((x) => x.endpoint.upload && x.endpoint.transport !== "nats")) {
    const up = b.endpoint.upload!;
    const params = [...up.path.matchAll(/:(\w+)/g)].map((m) => m[1]!);
    const props = ((b.endpoint.input as { properties?: Record<string, object> }).properties ?? {}) as Record<string, object>;
    const schema = {
      description: `${b.endpoint.description}\n\nThe body: ${up.description ?? "the file"}, at most ${up.limit} bytes. Permission: \`${b.permission}\`.`,
      ...routeDoc(b),
      params: { type: "object", required: params, properties: Object.fromEntries(params.map((p) => [p, props[p] ?? { type: "string" }])) },
    };
    await registerUploadRoute(app, { url: `/api/${b.context}${up.path}`, upload: up, schema }, async (req, reply, body) => {
      const refused = localOnly(req);
      if (refused) return reply.code(refused.httpStatus).send({ ok: false, error: refused.toBody() });
      const input = () => ({ ...(req.query as Record<string, unknown>), ...((req.params ?? {}) as Record<string, unknown>) });
      return sendAnswer(reply, await invoke(b, input, true, { ...httpRequestHeaders(req), body }));
    });
  }
  for (const ctx of opts.contexts) await ctx.routes?.(app);
  let httpUrl: string | undefined;
  if (opts.httpPort !== undefined) httpUrl = await app.listen({ port: opts.httpPort, host: opts.httpHost ?? "127.0.0.1" });
  else await app.ready();

  return {
    app,
    httpUrl,
    services,
    instance,
    permissions: () => bound.map(entryOf),
    denials: () => [...denials],
    async stop() {
      const down = disconnected().length > 0;
      for (const c of connections) c.watch.stop();
      // With NATS gone, unsubscribing cannot be confirmed: do not wait for it.
      await Promise.all(services.map((s) => (down ? void s.stop().catch(() => undefined) : s.stop().catch(() => undefined))));
      await app.close();
      for (const c of opts.contexts) await c.stop?.();
    },
  };
}

/** Follows a connection's status events: connected until a disconnect, again after a reconnect. */
function watchConnection(nc: NatsConnection): { connected(): boolean; stop(): void } {
  let up = !nc.isClosed();
  let stopped = false;
  void (async () => {
    for await (const s of nc.status()) {
      if (stopped) break;
      if (s.type === "disconnect" || s.type === "close") up = false;
      else if (s.type === "reconnect") up = true;
    }
  })().catch(() => undefined);
  return { connected: () => up && !nc.isClosed(), stop: () => void (stopped = true) };
}

function bad(ep: Endpoint): never {
  throw new RealmError("INTERNAL", `command endpoint name must be <aggregate>.<action>: ${ep.name}`);
}
