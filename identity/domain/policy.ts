import type { Decider, NewEvent } from "../../services/kernel/index.js";
import { alreadyExists, invalid, notFound } from "../../services/kernel/index.js";
import type { Scope } from "../../services/host/authz.js";
import { assertName, dataOf, ev, uniq } from "./common.js";

/** Conditions under which a role binding holds; all given ones must hold. */
export interface BindingConditions {
  /** ISO times bounding the binding. */
  notBefore?: string | undefined;
  notAfter?: string | undefined;
  /** The principal must belong to this organization (and unit, when given). */
  organization?: string | undefined;
  orgUnit?: string | undefined;
}

export interface PolicyState {
  id: string;
  exists: boolean;
  revoked: boolean;
  role: string;
  subject: { kind: "principal" | "group"; id: string };
  conditions: BindingConditions;
  /** What the binding is limited to (a zone and its subzones, an account, ...); none: everything the role grants. */
  scope?: Scope | undefined;
}

export type PolicyCommand = { type: "bind"; role: string; subject: PolicyState["subject"]; conditions: BindingConditions; scope?: Scope | undefined } | { type: "revoke" };

export const SCOPE_KINDS = ["zone", "account", "namespace", "issuer", "org", "self"] as const;

/** A scope of a binding, checked: a known kind, an id (a zone name, an account, ...), a unit only for org. */
export function checkScope(scope: Scope): Scope {
  if (!SCOPE_KINDS.includes(scope.kind)) throw invalid(`scope kind ${JSON.stringify(scope.kind)} is not one of ${SCOPE_KINDS.join(", ")}`);
  if (scope.kind !== "self" && (typeof scope.id !== "string" || scope.id.length === 0 || scope.id.length > 253 || /\s/.test(scope.id))) throw invalid(`a ${scope.kind} scope needs an id`);
  if (scope.unit !== undefined && scope.kind !== "org") throw invalid("only an org scope has a unit");
  if (scope.kind === "zone") return { kind: "zone", id: scope.id.toLowerCase().replace(/\.$/, "") };
  return { kind: scope.kind, id: scope.kind === "self" ? "" : scope.id, ...(scope.unit ? { unit: scope.unit } : {}) };
}

export const PolicyEvents = { Bound: "RoleBound", Revoked: "RoleBindingRevoked" } as const;

export const policyDecider: Decider<PolicyState, PolicyCommand> = {
  aggregateType: "policy",
  initialState: (id) => ({ id, exists: false, revoked: false, role: "", subject: { kind: "principal", id: "" }, conditions: {} }),
  decide(s, c): NewEvent[] {
    if (c.type === "revoke") {
      if (!s.exists) throw notFound(`no policy ${s.id}`);
      return s.revoked ? [] : [ev(PolicyEvents.Revoked, {})];
    }
    if (s.exists) throw alreadyExists(`policy ${s.id} already exists`);
    assertName("policy id", s.id);
    assertName("role", c.role);
    const { notBefore, notAfter } = c.conditions;
    for (const t of [notBefore, notAfter]) if (t !== undefined && Number.isNaN(Date.parse(t))) throw invalid(`${t} is not an ISO time`);
    if (notBefore && notAfter && Date.parse(notBefore) >= Date.parse(notAfter)) throw invalid("notBefore must be before notAfter");
    if (c.conditions.orgUnit && !c.conditions.organization) throw invalid("an orgUnit condition needs an organization condition");
    const scope = c.scope ? checkScope(c.scope) : undefined;
    return [ev(PolicyEvents.Bound, { role: c.role, subject: c.subject, conditions: c.conditions, ...(scope ? { scope } : {}) })];
  },
  evolve(s, e) {
    if (e.type === PolicyEvents.Bound) {
      const d = dataOf<Pick<PolicyState, "role" | "subject" | "conditions" | "scope">>(e);
      return { ...s, exists: true, ...d };
    }
    if (e.type === PolicyEvents.Revoked) return { ...s, revoked: true };
    return s;
  },
};

/** What a binding is evaluated against. */
export interface BindingSubject {
  id: string;
  groups: string[];
  organization?: string | undefined;
  orgUnit?: string | undefined;
}

export function bindingHolds(p: PolicyState, who: BindingSubject, now: Date): boolean {
  if (!p.exists || p.revoked) return false;
  const applies = p.subject.kind === "principal" ? p.subject.id === who.id : who.groups.includes(p.subject.id);
  if (!applies) return false;
  const c = p.conditions;
  if (c.notBefore && Date.parse(c.notBefore) > now.getTime()) return false;
  if (c.notAfter && Date.parse(c.notAfter) <= now.getTime()) return false;
  if (c.organization && c.organization !== who.organization) return false;
  if (c.orgUnit && c.orgUnit !== who.orgUnit) return false;
  return true;
}

/** The roles a principal holds at `now` through every binding that applies to it or to one of its groups. */
export function effectiveRoles(policies: Iterable<PolicyState>, who: BindingSubject, now: Date): string[] {
  const roles: string[] = [];
  for (const p of policies) if (bindingHolds(p, who, now)) roles.push(p.role);
  return uniq(roles);
}
