import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Authenticator, Principal } from "../../services/host/context.js";
import { decide, type ScopeResolver } from "../../services/host/authz.js";
import { newId, RealmError, type CommandMeta } from "../../services/kernel/index.js";
import type { IdentityCore } from "../core.js";
import { ScimError, toScimError } from "./errors.js";
import { ScimResources, type ListQuery } from "./resources.js";
import { resourceTypes, schemas, serviceProviderConfig } from "./schemas.js";
import { runBulk } from "./bulk.js";

/** The permission a caller's role must grant: reads count as a query (`identity:read` covers them), writes as a command. */
export const SCIM_PERMISSION = "identity:scim";
export const SCIM_TYPE = "application/scim+json";

declare module "fastify" {
  interface FastifyRequest {
    scimCaller?: { principal: Principal; binding?: string | undefined; role?: string | undefined };
  }
}

/**
 * Mounts SCIM 2.0 (RFC 7643/7644) at /scim/v2 in an encapsulated plugin: its own body parsers
 * (application/scim+json and application/json), its own error handler (SCIM error bodies), and bearer
 * authentication with a realm API key or admin token whose roles grant `identity:scim`.
 */
export async function mountScim(app: FastifyInstance, core: IdentityCore, authenticate: Authenticator, resolveScope: ScopeResolver): Promise<void> {
  await app.register(
    async (scope) => {
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser([SCIM_TYPE, "application/json"], { parseAs: "string" }, (_req, body, done) => {
        try {
          done(null, body === "" ? undefined : JSON.parse(body as string));
        } catch {
          done(new ScimError(400, "the body is not valid JSON", "invalidSyntax"), undefined);
        }
      });
      scope.setErrorHandler((err: unknown, _req, reply) => {
        const fst = err as { code?: string; statusCode?: number; message?: string };
        const e = err instanceof ScimError || err instanceof RealmError ? toScimError(err) : fst.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE" ? new ScimError(415, `send ${SCIM_TYPE}`) : fst.statusCode && fst.statusCode < 500 ? new ScimError(fst.statusCode, fst.message ?? "bad request") : toScimError(err);
        if (e.status >= 500) core.log.error({ err }, "SCIM request failed");
        return send(reply, e.status, e.body());
      });
      scope.setNotFoundHandler((req, reply) => send(reply, 404, new ScimError(404, `no SCIM endpoint ${req.method} ${req.url.split("?")[0]}`).body()));

      scope.addHook("onRequest", async (req) => {
        let principal: Principal | null;
        try {
          principal = await authenticate(req.headers.authorization);
        } catch (err) {
          throw new ScimError(401, err instanceof RealmError ? err.message : "the credential does not authenticate");
        }
        if (!principal) throw new ScimError(401, "send Authorization: Bearer <realm API key>");
        const d = decide(principal, SCIM_PERMISSION, req.method === "GET" ? "query" : "command", undefined, resolveScope);
        if (!d.allowed) throw new ScimError(403, d.reason ?? `the caller lacks ${SCIM_PERMISSION}`);
        req.scimCaller = { principal, binding: d.binding, role: d.role };
      });

      const base = (req: FastifyRequest) => `${req.protocol}://${req.headers.host ?? "localhost"}/scim/v2`;
      const resources = (req: FastifyRequest) => new ScimResources(core, base(req));
      /** One correlation id per request; each command its own id, caused by the request. */
      const metaOf = (req: FastifyRequest) => {
        const correlationId = newId();
        const c = req.scimCaller!;
        return (): CommandMeta => ({
          commandId: newId(),
          actor: c.principal.id,
          correlationId,
          causationId: correlationId,
          authz: { permission: SCIM_PERMISSION, binding: c.binding, role: c.role, ...(c.principal.via ? { via: c.principal.via } : {}) },
        });
      };
      const ifMatch = (req: FastifyRequest) => req.headers["if-match"];
      type IdReq = FastifyRequest<{ Params: { id: string } }>;
      const resource = (reply: FastifyReply, r: { meta: { version: string; location: string } }, status = 200) => {
        void reply.header("etag", r.meta.version);
        if (status === 201) void reply.header("location", r.meta.location);
        return send(reply, status, r);
      };
      const getOne = (req: IdReq, reply: FastifyReply, r: { meta: { version: string; location: string } }) => {
        const inm = req.headers["if-none-match"];
        if (inm && inm.split(",").map((t) => t.trim()).includes(r.meta.version)) return reply.code(304).header("etag", r.meta.version).send();
        return resource(reply, r);
      };
      const searchBody = (b: unknown): ListQuery => {
        const o = (b ?? {}) as Record<string, unknown>;
        const s = (k: string) => (typeof o[k] === "string" ? (o[k] as string) : undefined);
        const n = (k: string) => (typeof o[k] === "number" || typeof o[k] === "string" ? (o[k] as number | string) : undefined);
        return { filter: s("filter"), sortBy: s("sortBy"), sortOrder: s("sortOrder"), startIndex: n("startIndex"), count: n("count") };
      };

      scope.get("/ServiceProviderConfig", doc("SCIM service provider configuration (RFC 7643 §5)"), async (req, reply) => send(reply, 200, serviceProviderConfig(base(req))));
      scope.get("/Schemas", doc("SCIM schemas (RFC 7643 §7)"), async (req, reply) => send(reply, 200, list(schemas(base(req)))));
      scope.get("/Schemas/:id", doc("One SCIM schema by URN"), async (req: IdReq, reply) => send(reply, 200, one(schemas(base(req)), req.params.id, "schema")));
      scope.get("/ResourceTypes", doc("SCIM resource types (RFC 7643 §6)"), async (req, reply) => send(reply, 200, list(resourceTypes(base(req)))));
      scope.get("/ResourceTypes/:id", doc("One SCIM resource type"), async (req: IdReq, reply) => send(reply, 200, one(resourceTypes(base(req)), req.params.id, "resource type")));

      scope.post("/Bulk", doc("SCIM bulk operations (RFC 7644 §3.7)"), async (req, reply) => send(reply, 200, await runBulk(req.body, resources(req), metaOf(req), base(req))));

      scope.get("/Users", doc("List person principals as SCIM Users: filter, startIndex, count, sortBy, sortOrder"), async (req: FastifyRequest<{ Querystring: ListQuery }>, reply) => send(reply, 200, resources(req).listUsers(req.query)));
      scope.post("/Users/.search", doc("Search SCIM Users with a SearchRequest body"), async (req, reply) => send(reply, 200, resources(req).listUsers(searchBody(req.body))));
      scope.post("/Users", doc("Create a person principal from a SCIM User"), async (req, reply) => resource(reply, await resources(req).createUser(req.body, metaOf(req)), 201));
      scope.get("/Users/:id", doc("One SCIM User"), async (req: IdReq, reply) => getOne(req, reply, resources(req).getUser(req.params.id)));
      scope.put("/Users/:id", doc("Replace a SCIM User (If-Match honoured)"), async (req: IdReq, reply) => resource(reply, await resources(req).replaceUser(req.params.id, req.body, ifMatch(req), metaOf(req))));
      scope.patch("/Users/:id", doc("Patch a SCIM User: add, replace, remove (If-Match honoured)"), async (req: IdReq, reply) => resource(reply, await resources(req).patchUser(req.params.id, req.body, ifMatch(req), metaOf(req))));
      scope.delete("/Users/:id", doc("Delete a SCIM User: the principal is disabled and leaves its groups"), async (req: IdReq, reply) => {
        await resources(req).deleteUser(req.params.id, ifMatch(req), metaOf(req));
        return reply.code(204).send();
      });

      scope.get("/Groups", doc("List groups as SCIM Groups: filter, startIndex, count, sortBy, sortOrder"), async (req: FastifyRequest<{ Querystring: ListQuery }>, reply) => send(reply, 200, resources(req).listGroups(req.query)));
      scope.post("/Groups/.search", doc("Search SCIM Groups with a SearchRequest body"), async (req, reply) => send(reply, 200, resources(req).listGroups(searchBody(req.body))));
      scope.post("/Groups", doc("Create a group from a SCIM Group"), async (req, reply) => resource(reply, await resources(req).createGroup(req.body, metaOf(req)), 201));
      scope.get("/Groups/:id", doc("One SCIM Group"), async (req: IdReq, reply) => getOne(req, reply, resources(req).getGroup(req.params.id)));
      scope.put("/Groups/:id", doc("Replace a SCIM Group's members (If-Match honoured)"), async (req: IdReq, reply) => resource(reply, await resources(req).replaceGroup(req.params.id, req.body, ifMatch(req), metaOf(req))));
      scope.patch("/Groups/:id", doc("Patch a SCIM Group's members (If-Match honoured)"), async (req: IdReq, reply) => resource(reply, await resources(req).patchGroup(req.params.id, req.body, ifMatch(req), metaOf(req))));
      scope.delete("/Groups/:id", doc("Delete a group (GroupDeleted)"), async (req: IdReq, reply) => {
        await resources(req).deleteGroup(req.params.id, ifMatch(req), metaOf(req));
        return reply.code(204).send();
      });
    },
    { prefix: "/scim/v2" },
  );
}

/** OpenAPI text of a SCIM route (no schema: the handlers validate SCIM bodies themselves, with SCIM errors). */
const doc = (summary: string) => ({ schema: { tags: ["scim"], summary, description: `${summary}. Bearer realm API key with identity:scim; application/scim+json (identity/README.md, "SCIM 2.0").` } });

function send(reply: FastifyReply, status: number, body: object) {
  return reply.code(status).header("content-type", `${SCIM_TYPE}; charset=utf-8`).send(JSON.stringify(body));
}

const list = (items: object[]) => ({ schemas: ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], totalResults: items.length, startIndex: 1, itemsPerPage: items.length, Resources: items });

function one<T extends { id: string }>(items: T[], id: string, what: string): T {
  const hit = items.find((x) => x.id === id);
  if (!hit) throw new ScimError(404, `no ${what} ${id}`);
  return hit;
}
