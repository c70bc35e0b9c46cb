import type { Decider, EventEnvelope, ProjectionDefinition } from "../../services/kernel/index.js";
import { apiKeyDecider, type ApiKeyState } from "./apikey.js";
import { clientDecider, type ClientState } from "./client.js";
import { federationDecider, type FederationState } from "./federation.js";
import { groupDecider, type GroupState } from "./group.js";
import { organizationDecider, type OrganizationState } from "./organization.js";
import { effectiveRoles, policyDecider, type PolicyState } from "./policy.js";
import { principalDecider, type PrincipalState } from "./principal.js";
import { roleDecider, type RoleState } from "./role.js";
import { posixDecider, type PosixIdsState } from "../directory-server/posix.js";

/** The read model of the identity context: every aggregate's current state, by id. */
export interface Directory {
  principals: Map<string, PrincipalState>;
  organizations: Map<string, OrganizationState>;
  groups: Map<string, GroupState>;
  roles: Map<string, RoleState>;
  policies: Map<string, PolicyState>;
  apiKeys: Map<string, ApiKeyState>;
  clients: Map<string, ClientState>;
  federations: Map<string, FederationState>;
  /** POSIX uid/gid numbers the LDAP directory allocated (one aggregate, `posix/ids`). */
  posix: Map<string, PosixIdsState>;
}

type Slot = { [K in keyof Directory]: { key: K; decider: Decider<Directory[K] extends Map<string, infer S> ? S : never, never> } }[keyof Directory];
const slots: Record<string, Slot> = {
  principal: { key: "principals", decider: principalDecider as Decider<PrincipalState, never> },
  organization: { key: "organizations", decider: organizationDecider as Decider<OrganizationState, never> },
  group: { key: "groups", decider: groupDecider as Decider<GroupState, never> },
  role: { key: "roles", decider: roleDecider as Decider<RoleState, never> },
  policy: { key: "policies", decider: policyDecider as Decider<PolicyState, never> },
  apikey: { key: "apiKeys", decider: apiKeyDecider as Decider<ApiKeyState, never> },
  client: { key: "clients", decider: clientDecider as Decider<ClientState, never> },
  directory: { key: "federations", decider: federationDecider as Decider<FederationState, never> },
  posix: { key: "posix", decider: posixDecider as Decider<PosixIdsState, never> },
};

export function emptyDirectory(): Directory {
  return { principals: new Map(), organizations: new Map(), groups: new Map(), roles: new Map(), policies: new Map(), apiKeys: new Map(), clients: new Map(), federations: new Map(), posix: new Map() };
}

/**
 * An aggregate's state as the directory holds it (what a command decides on, write-model.ts), or undefined
 * when the directory does not keep that aggregate type. Never modify what it returns.
 */
export function directoryView(d: Directory, aggregateType: string, id: string): unknown {
  const slot = slots[aggregateType];
  if (!slot) return undefined;
  return (d[slot.key] as Map<string, unknown>).get(id) ?? (slot.decider as Decider<unknown, never>).initialState(id);
}

/** Folds one event into the directory. Aggregates other parts of the context own (NATS accounts) are ignored. */
export function applyToDirectory(d: Directory, e: EventEnvelope): Directory {
  const slot = slots[e.aggregate.type];
  if (!slot) return d;
  const map = d[slot.key] as Map<string, unknown>;
  const decider = slot.decider as Decider<unknown, never>;
  const id = e.aggregate.id;
  map.set(id, decider.evolve(map.get(id) ?? decider.initialState(id), e));
  return d;
}

export const directoryProjection: ProjectionDefinition<Directory> = {
  name: "identity-directory",
  version: 1,
  initial: emptyDirectory,
  apply: (d, e) => applyToDirectory(d, e),
  // Snapshot records: [map, id, state], one per aggregate (states are plain JSON values).
  snapshot: {
    *encode(d) {
      for (const key of Object.keys(d) as (keyof Directory)[]) for (const [id, s] of d[key] as Map<string, unknown>) yield [key, id, s];
    },
    decode(records) {
      const d = emptyDirectory();
      for (const rec of records) {
        const [key, id, s] = rec as [keyof Directory, string, unknown];
        const map = Object.hasOwn(d, key) ? (d[key] as Map<string, unknown>) : undefined;
        if (!map) throw new Error(`not a directory record: ${JSON.stringify(key)}`);
        map.set(id, s);
      }
      return d;
    },
  },
};

/** The groups a principal is a member of. */
export function groupsOf(d: Directory, principal: string): string[] {
  const out: string[] = [];
  for (const g of d.groups.values()) if (g.exists && g.members.includes(principal)) out.push(g.id);
  return out.sort();
}

/** A principal's groups and effective roles at `now`. */
export function membership(d: Directory, principal: string, now: Date): { groups: string[]; roles: string[] } {
  const p = d.principals.get(principal);
  const groups = groupsOf(d, principal);
  const roles = effectiveRoles(d.policies.values(), { id: principal, groups, organization: p?.organization, orgUnit: p?.orgUnit }, now);
  return { groups, roles };
}
