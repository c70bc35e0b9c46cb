/**
 * Authorization: one decision for every command and query, in the host's one request path (NATS and HTTP).
 *
 * Permissions are named `<context>:<aggregate>.<action>` for commands and `<context>:<query>` for queries,
 * derived from the endpoint declarations. A role grants permission patterns: the exact name, `<context>:*`
 * (everything of a context), `<context>:<aggregate>.*` (every action on an aggregate), `<context>:read`
 * (every query of a context), `*:read` (every query), `*:*` or `*` (everything). A role binding may carry
 * a resource scope (a zone and its subzones, a NATS account, a subject namespace, a PKI issuer, an
 * organization or unit subtree, the principal itself); then it counts only for requests about resources
 * inside it. Deny by default.
 */

export type ScopeKind = "zone" | "account" | "namespace" | "issuer" | "org" | "self";

/** What a binding is limited to. `org` with `unit`: that unit and the units under it. */
export interface Scope {
  kind: ScopeKind;
  id: string;
  unit?: string | undefined;
}

/**
 * What a request is about, as its endpoint names it: a DNS name, an account, a subject, an issuer, a
 * principal, or an organization (`org`, `org/unit`).
 */
export interface Resource {
  kind: "name" | "account" | "subject" | "issuer" | "principal" | "org";
  id: string;
}

export interface Grant {
  /** The role binding (policy) this grant comes from. */
  binding: string;
  role: string;
  permissions: string[];
  scope?: Scope | undefined;
}

/** Who a request is from, with what they may do. */
export interface Principal {
  id: string;
  roles: string[];
  grants: Grant[];
  /** How the request authenticated: an API key (its id), an access token (its client), or none. */
  via?: string | undefined;
}

export interface Decision {
  allowed: boolean;
  permission: string;
  /** The binding that allowed it. */
  binding?: string | undefined;
  role?: string | undefined;
  /** Why it was refused. */
  reason?: string | undefined;
}

export const permissionOf = (context: string, endpoint: { name: string }): string => `${context}:${endpoint.name}`;

/** True when the grant pattern covers `permission` (a query's permission also matches `read` patterns). */
export function patternCovers(pattern: string, permission: string, kind: "command" | "query"): boolean {
  if (pattern === "*" || pattern === "*:*" || pattern === permission) return true;
  const [pc, pn] = splitPermission(pattern);
  const [c, n] = splitPermission(permission);
  if (pc !== "*" && pc !== c) return false;
  if (pn === "*") return true;
  if (pn === "read") return kind === "query";
  if (pn.endsWith(".*")) return kind === "command" && n.startsWith(pn.slice(0, -1));
  return pn === n;
}

function splitPermission(p: string): [string, string] {
  const i = p.indexOf(":");
  return i < 0 ? [p, ""] : [p.slice(0, i), p.slice(i + 1)];
}

/** A pattern a role may hold: a permission name or one of the wildcards above. */
export function isPermissionPattern(p: string): boolean {
  return p === "*" || /^(\*|[a-z][a-z0-9-]*):(\*|read|[a-zA-Z][a-zA-Z0-9-]*(\.(\*|[a-zA-Z][a-zA-Z0-9-]*))?)$/.test(p);
}

/** Whether a scope holds a resource. `org` and `self` need the directory: `resolve` answers those. */
export type ScopeResolver = (scope: Scope, resource: Resource, caller: Principal) => boolean;

const lower = (s: string) => s.toLowerCase().replace(/\.$/, "");

/** Zones, accounts, issuers and namespaces are decided here; `org`/`self` by the context that knows principals. */
export function defaultContains(scope: Scope, r: Resource, caller: Principal, resolve?: ScopeResolver): boolean {
  switch (scope.kind) {
    case "zone": {
      if (r.kind !== "name") return false;
      const z = lower(scope.id);
      const n = lower(r.id);
      return n === z || n.endsWith(`.${z}`);
    }
    case "account":
      return r.kind === "account" && r.id === scope.id;
    case "issuer":
      return r.kind === "issuer" && r.id === scope.id;
    case "namespace": {
      if (r.kind !== "subject") return false;
      const ns = scope.id.split(".").filter((t) => t !== ">" && t !== "*");
      const s = r.id.split(".");
      return ns.every((t, i) => s[i] === t);
    }
    case "self":
      return r.kind === "principal" && r.id === caller.id;
    case "org":
      return resolve ? resolve(scope, r, caller) : false;
  }
}

/**
 * The decision for one request: some grant must cover the permission, and be unscoped, or scoped to a
 * scope that holds every resource the request is about. `resources` undefined: the endpoint names none, so
 * only unscoped grants count (a query may filter its answer instead: `canAccess`).
 */
export function decide(p: Principal, permission: string, kind: "command" | "query", resources: Resource[] | undefined, resolve?: ScopeResolver): Decision {
  const covering = p.grants.filter((g) => g.permissions.some((pat) => patternCovers(pat, permission, kind)));
  if (covering.length === 0) return { allowed: false, permission, reason: `principal ${p.id} lacks the permission ${permission}` };
  const unscoped = covering.find((g) => !g.scope);
  if (unscoped) return { allowed: true, permission, binding: unscoped.binding, role: unscoped.role };
  if (!resources || resources.length === 0) return { allowed: false, permission, reason: `principal ${p.id} holds ${permission} only within scopes (${scopesOf(covering)}), and this request names no resource in them` };
  const inScope = covering.find((g) => resources.every((r) => defaultContains(g.scope!, r, p, resolve)));
  if (inScope) return { allowed: true, permission, binding: inScope.binding, role: inScope.role };
  return { allowed: false, permission, reason: `principal ${p.id} holds ${permission} only within ${scopesOf(covering)}, not for ${resources.map((r) => `${r.kind} ${r.id}`).join(", ")}` };
}

/** Whether the principal may see one resource through a query (results are filtered with this). */
export function canAccess(p: Principal, permission: string, kind: "command" | "query", resource: Resource, resolve?: ScopeResolver): boolean {
  return decide(p, permission, kind, [resource], resolve).allowed;
}

/** Whether any grant covers the permission at all (a cheap first check before the body is read). */
export function mayHold(p: Principal, permission: string, kind: "command" | "query"): boolean {
  return p.grants.some((g) => g.permissions.some((pat) => patternCovers(pat, permission, kind)));
}

function scopesOf(gs: Grant[]): string {
  return [...new Set(gs.map((g) => (g.scope ? `${g.scope.kind} ${g.scope.id}${g.scope.unit ? `/${g.scope.unit}` : ""}` : "everything")))].join(", ");
}
