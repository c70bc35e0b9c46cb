import type { Decider, NewEvent } from "../../services/kernel/index.js";
import { invalid } from "../../services/kernel/index.js";
import { isPermissionPattern } from "../../services/host/authz.js";
import { assertName, dataOf, ev, uniq } from "./common.js";

/**
 * A named role with the permission patterns it grants (`<context>:<aggregate>.<action>`, `<context>:<query>`,
 * `<context>:*`, `<context>:<aggregate>.*`, `<context>:read`, `*:read`, `*`; services/host/authz.ts).
 * `self`: the role's grants hold only for requests about the caller itself (self-service).
 */
export interface RoleState {
  id: string;
  exists: boolean;
  description: string;
  permissions: string[];
  self?: boolean | undefined;
}

export type RoleCommand = { type: "define"; description: string; permissions: string[]; self?: boolean | undefined };

export const RoleEvents = { Defined: "RoleDefined", Redefined: "RoleRedefined" } as const;

export const roleDecider: Decider<RoleState, RoleCommand> = {
  aggregateType: "role",
  initialState: (id) => ({ id, exists: false, description: "", permissions: [] }),
  decide(s, c): NewEvent[] {
    assertName("role id", s.id);
    for (const p of c.permissions) {
      if (!isPermissionPattern(p)) throw invalid(`permission ${JSON.stringify(p)} must be '<context>:<aggregate>.<action>', '<context>:<query>', '<context>:*', '<context>:<aggregate>.*', '<context>:read', '*:read' or '*'`);
    }
    const permissions = uniq(c.permissions);
    const self = c.self === true;
    if (!s.exists) return [ev(RoleEvents.Defined, { description: c.description, permissions, ...(self ? { self } : {}) })];
    if (s.description === c.description && JSON.stringify(s.permissions) === JSON.stringify(permissions) && !!s.self === self) return [];
    return [ev(RoleEvents.Redefined, { description: c.description, permissions, ...(self ? { self } : {}) })];
  },
  evolve(s, e) {
    if (e.type !== RoleEvents.Defined && e.type !== RoleEvents.Redefined) return s;
    const d = dataOf<{ description: string; permissions: string[]; self?: boolean }>(e);
    return { ...s, exists: true, description: d.description, permissions: d.permissions, self: d.self === true };
  },
};
