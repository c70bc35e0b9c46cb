import type { Decider, NewEvent } from "../../services/kernel/index.js";
import { alreadyExists, invalid, notFound } from "../../services/kernel/index.js";
import { assertName, dataOf, ev } from "./common.js";

/** A group of principals; `source` says whether an LDAP sync owns its membership. */
export interface GroupState {
  id: string;
  exists: boolean;
  displayName: string;
  source: { kind: "local" } | { kind: "ldap"; directory: string; dn: string };
  members: string[];
}

export type GroupCommand =
  | { type: "create"; displayName: string; source?: GroupState["source"] }
  | { type: "addMember"; principal: string }
  | { type: "removeMember"; principal: string }
  /** Replace the membership (LDAP sync): emits only the differences. */
  | { type: "setMembers"; principals: string[] }
  /** Delete the group (its memberships go with it; the id may be created again). */
  | { type: "delete" };

export const GroupEvents = { Created: "GroupCreated", MemberAdded: "GroupMemberAdded", MemberRemoved: "GroupMemberRemoved", Deleted: "GroupDeleted" } as const;

export const groupDecider: Decider<GroupState, GroupCommand> = {
  aggregateType: "group",
  initialState: (id) => ({ id, exists: false, displayName: id, source: { kind: "local" }, members: [] }),
  decide(s, c): NewEvent[] {
    if (c.type === "create") {
      if (s.exists) throw alreadyExists(`group ${s.id} already exists`);
      assertName("group id", s.id);
      return [ev(GroupEvents.Created, { displayName: c.displayName, source: c.source ?? { kind: "local" } })];
    }
    if (!s.exists) throw notFound(`no group ${s.id}`);
    switch (c.type) {
      case "addMember":
        return s.members.includes(c.principal) ? [] : [ev(GroupEvents.MemberAdded, { principal: c.principal })];
      case "removeMember":
        return s.members.includes(c.principal) ? [ev(GroupEvents.MemberRemoved, { principal: c.principal })] : [];
      case "delete":
        if (s.source.kind !== "local") throw invalid(`group ${s.id} is kept by the ${s.source.kind} directory ${s.source.directory}; delete it there`);
        return [ev(GroupEvents.Deleted, {})];
      case "setMembers": {
        const want = new Set(c.principals);
        return [
          ...[...want].filter((p) => !s.members.includes(p)).sort().map((principal) => ev(GroupEvents.MemberAdded, { principal })),
          ...s.members.filter((p) => !want.has(p)).map((principal) => ev(GroupEvents.MemberRemoved, { principal })),
        ];
      }
    }
  },
  evolve(s, e) {
    switch (e.type) {
      case GroupEvents.Created: {
        const d = dataOf<{ displayName: string; source: GroupState["source"] }>(e);
        return { ...s, exists: true, displayName: d.displayName, source: d.source };
      }
      case GroupEvents.MemberAdded:
        return { ...s, members: [...s.members, dataOf<{ principal: string }>(e).principal] };
      case GroupEvents.MemberRemoved: {
        const p = dataOf<{ principal: string }>(e).principal;
        return { ...s, members: s.members.filter((m) => m !== p) };
      }
      case GroupEvents.Deleted:
        return { ...s, exists: false, members: [] };
      default:
        return s;
    }
  },
};
