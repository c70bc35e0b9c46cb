import type { Grant, Resource, Scope, ScopeResolver } from "../services/host/authz.js";
import { groupsOf, type Directory } from "./domain/directory.js";
import { bindingHolds } from "./domain/policy.js";

/**
 * What a principal may do, from the directory: every role binding that holds for it now (directly or
 * through a group, within its time window and organization conditions) gives the role's permission
 * patterns, limited to the binding's scope (and to the principal itself for a `self` role).
 */
export function grantsOf(d: Directory, principal: string, now = new Date()): Grant[] {
  const p = d.principals.get(principal);
  if (!p?.exists || p.disabled) return [];
  const who = { id: principal, groups: groupsOf(d, principal), organization: p.organization, orgUnit: p.orgUnit };
  const out: Grant[] = [];
  for (const b of d.policies.values()) {
    if (!bindingHolds(b, who, now)) continue;
    const role = d.roles.get(b.role);
    if (!role?.exists) continue;
    const scope: Scope | undefined = role.self ? { kind: "self", id: "" } : b.scope;
    out.push({ binding: b.id, role: role.id, permissions: role.permissions, ...(scope ? { scope } : {}) });
  }
  return out;
}

/** The roles behind the grants, each once. */
export const rolesOf = (grants: Grant[]): string[] => [...new Set(grants.map((g) => g.role))];

/** True when `unit` is `within` or lies under it in the organization's unit tree. */
function unitUnder(d: Directory, org: string, unit: string | undefined, within: string): boolean {
  const units = d.organizations.get(org)?.units ?? {};
  for (let u = unit, depth = 0; u !== undefined && depth < 64; u = units[u]?.parent, depth++) if (u === within) return true;
  return false;
}

/**
 * `org` scopes hold the principals of that organization (and unit subtree), and the organization (unit)
 * itself; `self` the caller itself.
 */
export function scopeResolver(dir: () => Directory): ScopeResolver {
  return (scope: Scope, r: Resource, caller) => {
    if (scope.kind === "self") return r.kind === "principal" && r.id === caller.id;
    if (scope.kind !== "org") return false;
    let org: string | undefined;
    let unit: string | undefined;
    if (r.kind === "principal") {
      const p = dir().principals.get(r.id);
      if (!p?.exists) return false;
      org = p.organization;
      unit = p.orgUnit;
    } else if (r.kind === "org") [org, unit] = r.id.split("/", 2);
    else return false;
    if (org !== scope.id) return false;
    return scope.unit === undefined || unitUnder(dir(), scope.id, unit, scope.unit);
  };
}

/** The roles every realm starts with (recorded as events at the identity context's first start; editable). */
export const BUILTIN_ROLES: { id: string; description: string; permissions: string[]; self?: boolean }[] = [
  { id: "realm-admin", description: "Everything: every command and query of every context", permissions: ["*"] },
  { id: "auditor", description: "Every query of every context, no command", permissions: ["*:read"] },
  { id: "dns-operator", description: "Zones, records, hosts, subject namespaces, objects, Cloudflare mirroring", permissions: ["dns:*"] },
  { id: "pki-operator", description: "Issuers, certificates, revocation, CRLs", permissions: ["pki:*"] },
  {
    id: "nats-operator",
    description: "NATS accounts, signing keys and users",
    permissions: ["identity:account.*", "identity:signingkey.*", "identity:user.*", "identity:accounts", "identity:users", "identity:nsc-export"],
  },
  { id: "identity-admin", description: "Principals, organizations, groups, roles, bindings, API keys, OIDC clients, directories", permissions: ["identity:*"] },
  {
    id: "self-service",
    description: "One's own password, one-time codes, passkeys and API keys",
    permissions: ["identity:principal.setPassword", "identity:principal.enrollTotp", "identity:principal.confirmTotp", "identity:apikey.issue", "identity:apikey.revoke", "identity:principal", "identity:apikeys", "identity:passkeys", "identity:passkey.revoke"],
    self: true,
  },
];

/**
 * grantsOf, remembered per principal until the directory changes (any event it applies) or a binding's
 * time window opens or closes: a request then costs a map lookup, not a walk over every binding.
 */
export class GrantCache {
  private readonly cache = new Map<string, { seq: number; until: number; grants: Grant[] }>();

  constructor(
    private readonly dir: () => Directory,
    private readonly seq: () => number,
  ) {}

  grants(principal: string, now = new Date()): Grant[] {
    const seq = this.seq();
    const t = now.getTime();
    const hit = this.cache.get(principal);
    if (hit && hit.seq === seq && t < hit.until) return hit.grants;
    const d = this.dir();
    const grants = grantsOf(d, principal, now);
    // The next moment a time condition of any binding changes what holds (bindings are few per principal,
    // but group bindings apply too: take every binding's bounds; a later one only costs a recompute).
    let until = Number.POSITIVE_INFINITY;
    for (const b of d.policies.values()) {
      for (const at of [b.conditions.notBefore, b.conditions.notAfter]) {
        const ms = at ? Date.parse(at) : NaN;
        if (ms > t && ms < until) until = ms;
      }
    }
    if (this.cache.size > 100_000) this.cache.clear();
    this.cache.set(principal, { seq, until, grants });
    return grants;
  }
}
