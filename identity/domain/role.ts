import type { Decider, NewEvent } from "../../services/kernel/index.js";
import { invalid } from "../../services/kernel/index.js";
import { assertName, dataOf, ev, uniq } from "./common.js";

/** A named role with the permissions it grants (free-form `context:action` strings, `*` for all). */
export interface RoleState {
  id: string;
  exists: boolean;
  description: string;
  permissions: string[];
}

export type RoleCommand = { type: "define"; description: string; permissions: string[] };

export const RoleEvents = { Defined: "RoleDefined", Redefined: "RoleRedefined" } as const;

const PERMISSION = /^(\*|[a-z][a-z0-9-]*:(\*|[a-z][a-z0-9.-]*))$/;

export const roleDecider: Decider<RoleState, RoleCommand> = {
  aggregateType: "role",
  initialState: (id) => ({ id, exists: false, description: "", permissions: [] }),
  decide(s, c): NewEvent[] {
    assertName("role id", s.id);
    for (const p of c.permissions) if (!PERMISSION.test(p)) throw invalid(`permission ${JSON.stringify(p)} must be '*' or '<context>:<action>'`);
    const permissions = uniq(c.permissions);
    if (!s.exists) return [ev(RoleEvents.Defined, { description: c.description, permissions })];
    if (s.description === c.description && JSON.stringify(s.permissions) === JSON.stringify(permissions)) return [];
    return [ev(RoleEvents.Redefined, { description: c.description, permissions })];
  },
  evolve(s, e) {
    if (e.type !== RoleEvents.Defined && e.type !== RoleEvents.Redefined) return s;
    const d = dataOf<{ description: string; permissions: string[] }>(e);
    return { ...s, exists: true, description: d.description, permissions: d.permissions };
  },
};
