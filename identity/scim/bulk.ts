import { badRequest, ScimError, toScimError } from "./errors.js";
import type { MetaOf, ScimResources } from "./resources.js";

export const BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
export const BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
export const BULK_MAX_OPERATIONS = 1000;

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * SCIM bulk (RFC 7644 §3.7): the operations run one after another, each as its own request would (its
 * own commands and events, not one transaction: the RFC does not make a bulk atomic). `bulkId:<id>` in an
 * operation's path or data names the resource an earlier POST of the same request created (a reference to a
 * later one is 409 `invalidValue`, not resolved: order the operations). After `failOnErrors` errors the
 * rest is not run.
 */
export async function runBulk(body: unknown, r: ScimResources, meta: MetaOf, base: string): Promise<object> {
  if (!isObj(body)) throw badRequest("invalidSyntax", "the body must be a JSON object");
  if (!Array.isArray(body.schemas) || !body.schemas.includes(BULK_REQUEST)) throw badRequest("invalidValue", `schemas must include ${BULK_REQUEST}`);
  const ops = body.Operations;
  if (!Array.isArray(ops) || ops.length === 0) throw badRequest("invalidValue", "Operations must be a non-empty list");
  if (ops.length > BULK_MAX_OPERATIONS) throw new ScimError(413, `at most ${BULK_MAX_OPERATIONS} operations in one bulk request`);
  const failOnErrors = body.failOnErrors === undefined ? Infinity : body.failOnErrors;
  if (typeof failOnErrors !== "number" || !(failOnErrors >= 1)) throw badRequest("invalidValue", "failOnErrors must be a positive integer");
  const created = new Map<string, string>();
  const resolve = (v: unknown): unknown => {
    if (typeof v === "string" && v.startsWith("bulkId:")) {
      const id = created.get(v.slice(7));
      if (id === undefined) throw new ScimError(409, `${v} names no resource created earlier in this request`, "invalidValue");
      return id;
    }
    if (Array.isArray(v)) return v.map(resolve);
    if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolve(x)]));
    return v;
  };
  const out: object[] = [];
  let errors = 0;
  for (const op of ops) {
    if (errors >= failOnErrors) break;
    const o = isObj(op) ? op : {};
    const method = typeof o.method === "string" ? o.method.toUpperCase() : "";
    const bulkId = typeof o.bulkId === "string" ? o.bulkId : undefined;
    const head = { method, ...(bulkId !== undefined ? { bulkId } : {}) };
    try {
      if (!isObj(op)) throw badRequest("invalidSyntax", "an operation must be an object");
      if (typeof o.path !== "string") throw badRequest("invalidValue", "an operation needs a path");
      const path = o.path.replace(/bulkId:([^/?#]+)/g, (ref) => resolve(ref) as string);
      const m = /^\/(Users|Groups)(?:\/([^/?#]+))?$/.exec(path);
      if (!m) throw new ScimError(404, `no SCIM resource path ${path}`, "invalidPath");
      const [, kind, id] = m as unknown as [string, "Users" | "Groups", string | undefined];
      const data = resolve(o.data);
      const version = typeof o.version === "string" ? o.version : undefined;
      if (method === "POST") {
        if (id !== undefined) throw badRequest("invalidPath", "POST goes to /Users or /Groups");
        if (bulkId === undefined) throw badRequest("invalidValue", "a POST in a bulk request needs a bulkId");
        const res = kind === "Users" ? await r.createUser(data, meta) : await r.createGroup(data, meta);
        created.set(bulkId, res.id);
        out.push({ ...head, location: res.meta.location, version: res.meta.version, status: "201" });
        continue;
      }
      if (id === undefined) throw badRequest("invalidPath", `${method} needs /${kind}/<id>`);
      if (method === "PUT" || method === "PATCH") {
        const res = kind === "Users" ? await (method === "PUT" ? r.replaceUser(id, data, version, meta) : r.patchUser(id, data, version, meta)) : await (method === "PUT" ? r.replaceGroup(id, data, version, meta) : r.patchGroup(id, data, version, meta));
        out.push({ ...head, location: res.meta.location, version: res.meta.version, status: "200" });
      } else if (method === "DELETE") {
        await (kind === "Users" ? r.deleteUser(id, version, meta) : r.deleteGroup(id, version, meta));
        out.push({ ...head, location: `${base}/${kind}/${id}`, status: "204" });
      } else throw badRequest("invalidValue", "method must be POST, PUT, PATCH or DELETE");
    } catch (err) {
      errors++;
      const e = toScimError(err);
      out.push({ ...head, status: String(e.status), response: e.body() });
    }
  }
  return { schemas: [BULK_RESPONSE], Operations: out };
}
