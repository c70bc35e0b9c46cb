import type { Decider, NewEvent } from "../../services/kernel/index.js";
import { alreadyExists, invalid, notFound } from "../../services/kernel/index.js";
import { assertName, dataOf, ev } from "./common.js";

/** An organization and its organizational units (a tree: each unit names its parent or none). */
export interface OrganizationState {
  id: string;
  exists: boolean;
  displayName: string;
  units: Record<string, { displayName: string; parent?: string | undefined }>;
}

export type OrganizationCommand =
  | { type: "create"; displayName: string }
  | { type: "addUnit"; unit: string; displayName: string; parent?: string | undefined }
  | { type: "removeUnit"; unit: string };

export const OrganizationEvents = { Created: "OrganizationCreated", UnitAdded: "OrgUnitAdded", UnitRemoved: "OrgUnitRemoved" } as const;

export const organizationDecider: Decider<OrganizationState, OrganizationCommand> = {
  aggregateType: "organization",
  initialState: (id) => ({ id, exists: false, displayName: id, units: {} }),
  decide(s, c): NewEvent[] {
    if (c.type === "create") {
      if (s.exists) throw alreadyExists(`organization ${s.id} already exists`);
      assertName("organization id", s.id);
      return [ev(OrganizationEvents.Created, { displayName: c.displayName })];
    }
    if (!s.exists) throw notFound(`no organization ${s.id}`);
    if (c.type === "addUnit") {
      assertName("unit", c.unit);
      if (s.units[c.unit]) throw alreadyExists(`organization ${s.id} already has unit ${c.unit}`);
      if (c.parent !== undefined && !s.units[c.parent]) throw notFound(`organization ${s.id} has no unit ${c.parent}`);
      return [ev(OrganizationEvents.UnitAdded, { unit: c.unit, displayName: c.displayName, parent: c.parent })];
    }
    if (!s.units[c.unit]) throw notFound(`organization ${s.id} has no unit ${c.unit}`);
    const children = Object.entries(s.units).filter(([, u]) => u.parent === c.unit).map(([k]) => k);
    if (children.length) throw invalid(`unit ${c.unit} still has units ${children.join(", ")}`);
    return [ev(OrganizationEvents.UnitRemoved, { unit: c.unit })];
  },
  evolve(s, e) {
    switch (e.type) {
      case OrganizationEvents.Created:
        return { ...s, exists: true, displayName: dataOf<{ displayName: string }>(e).displayName };
      case OrganizationEvents.UnitAdded: {
        const d = dataOf<{ unit: string; displayName: string; parent?: string }>(e);
        return { ...s, units: { ...s.units, [d.unit]: { displayName: d.displayName, parent: d.parent } } };
      }
      case OrganizationEvents.UnitRemoved: {
        const units = { ...s.units };
        delete units[dataOf<{ unit: string }>(e).unit];
        return { ...s, units };
      }
      default:
        return s;
    }
  },
};
