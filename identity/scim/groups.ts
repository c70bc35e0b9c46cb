import type { GroupCommand, GroupState } from "../domain/group.js";
import type { Directory } from "../domain/directory.js";
import { NAME } from "../domain/common.js";
import { badRequest, ScimError } from "./errors.js";
import { GROUP_SCHEMA } from "./schemas.js";
import { etagOf, get, isScimUser } from "./users.js";

/** SCIM Group <-> realm group: `id` is the group id, `displayName` its display name, `members` its principals. */
export interface ScimGroup {
  schemas: string[];
  id: string;
  displayName: string;
  members: { value: string; $ref: string; display: string; type: "User" }[];
  meta: { resourceType: "Group"; location: string; version: string };
}

export function toScimGroup(d: Directory, g: GroupState, version: number, base: string): ScimGroup {
  return {
    schemas: [GROUP_SCHEMA],
    id: g.id,
    displayName: g.displayName,
    members: g.members.map((m) => ({ value: m, $ref: `${base}/Users/${m}`, display: d.principals.get(m)?.displayName ?? m, type: "User" })),
    meta: { resourceType: "Group", location: `${base}/Groups/${g.id}`, version: etagOf(version) },
  };
}

export interface GroupIntent {
  displayName: string;
  members: string[];
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** Reads a full Group representation; every member must be a SCIM user of the realm. */
export function groupIntent(d: Directory, body: unknown): GroupIntent {
  if (!isObj(body)) throw badRequest("invalidSyntax", "the body must be a JSON object");
  const schemas = get(body, "schemas");
  if (!Array.isArray(schemas) || !schemas.includes(GROUP_SCHEMA)) throw badRequest("invalidValue", `schemas must include ${GROUP_SCHEMA}`);
  const displayName = get(body, "displayName");
  if (typeof displayName !== "string" || displayName.trim() === "" || displayName.length > 256) throw badRequest("invalidValue", "displayName must be a string of 1-256 characters");
  const members = get(body, "members") ?? [];
  if (!Array.isArray(members) || members.some((m) => !isObj(m) || typeof get(m, "value") !== "string")) throw badRequest("invalidValue", "members must be a list of { value }");
  if (members.length > 10_000) throw badRequest("invalidValue", "at most 10000 members in one request");
  const ids = [...new Set(members.map((m) => get(m as Record<string, unknown>, "value") as string))];
  for (const id of ids) if (!d.principals.get(id)?.exists || (!isScimUser(d.principals.get(id)) && d.principals.get(id)!.kind === "person")) throw badRequest("invalidValue", `member ${JSON.stringify(id)} is not a user of this realm`);
  return { displayName, members: ids };
}

/** A group id from a display name ("Tour Guides" -> "tour-guides"), made unique with a suffix. */
export function groupIdFor(d: Directory, displayName: string): string {
  let base = displayName.toLowerCase().replace(/[^a-z0-9._@-]+/g, "-").replace(/^[^a-z0-9]+/, "").replace(/-+$/, "").slice(0, 100);
  if (!NAME.test(base)) base = "group";
  for (let n = 1; ; n++) {
    const id = n === 1 ? base : `${base}-${n}`;
    if (!d.groups.get(id)?.exists) return id;
  }
}

/** Whether another group already has this display name (compared case-insensitively). */
export function displayNameTaken(d: Directory, displayName: string, except?: string): boolean {
  const want = displayName.toLowerCase();
  for (const g of d.groups.values()) if (g.exists && g.id !== except && g.displayName.toLowerCase() === want) return true;
  return false;
}

/** The group commands that bring `g` to `want`: the member changes, one event each. */
export function groupCommands(g: GroupState, want: GroupIntent): GroupCommand[] {
  if (want.displayName !== g.displayName) throw new ScimError(400, `the realm does not rename groups: displayName stays ${JSON.stringify(g.displayName)}`, "mutability");
  const wanted = new Set(want.members);
  return [
    ...want.members.filter((m) => !g.members.includes(m)).map((principal): GroupCommand => ({ type: "addMember", principal })),
    ...g.members.filter((m) => !wanted.has(m)).map((principal): GroupCommand => ({ type: "removeMember", principal })),
  ];
}
