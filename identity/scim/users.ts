import { principalDecider, type PrincipalCommand, type PrincipalState } from "../domain/principal.js";
import { groupsOf, type Directory } from "../domain/directory.js";
import { NAME } from "../domain/common.js";
import { badRequest, ScimError } from "./errors.js";
import { USER_SCHEMA } from "./schemas.js";

/**
 * SCIM User <-> realm person principal. `id` and `userName` are the principal id (the realm's sign-in
 * name); `name.givenName`/`familyName` and `externalId` are the principal's SCIM profile fields; the one
 * email is `emails[0]`; `active` is the inverse of `disabled`; `groups` is read from the groups.
 */

/** The reason a SCIM DELETE disables a principal with: such a principal is gone for SCIM (404). */
export const SCIM_DELETED = "deleted through SCIM";

/** Whether SCIM serves this principal: a person that SCIM has not deleted. */
export const isScimUser = (p: PrincipalState | undefined): p is PrincipalState => !!p?.exists && p.kind === "person" && !(p.disabled && p.disabledReason === SCIM_DELETED);

export interface ScimUser {
  schemas: string[];
  id: string;
  externalId?: string;
  userName: string;
  name?: { formatted?: string; givenName?: string; familyName?: string };
  displayName: string;
  active: boolean;
  emails?: { value: string; type: string; primary: boolean }[];
  groups: { value: string; $ref: string; display: string }[];
  meta: { resourceType: "User"; location: string; version: string };
}

export const etagOf = (version: number) => `W/"${version}"`;

/** `groups`: the principal's groups when the caller has them (a list computes them once), else read here. */
export function toScimUser(d: Directory, p: PrincipalState, version: number, base: string, groups = groupsOf(d, p.id)): ScimUser {
  const formatted = [p.givenName, p.familyName].filter(Boolean).join(" ");
  return {
    schemas: [USER_SCHEMA],
    id: p.id,
    ...(p.externalId !== undefined ? { externalId: p.externalId } : {}),
    userName: p.id,
    ...(p.givenName !== undefined || p.familyName !== undefined ? { name: { formatted, ...(p.givenName !== undefined ? { givenName: p.givenName } : {}), ...(p.familyName !== undefined ? { familyName: p.familyName } : {}) } } : {}),
    displayName: p.displayName,
    active: !p.disabled,
    ...(p.email ? { emails: [{ value: p.email, type: "work", primary: true }] } : {}),
    groups: groups.map((g) => ({ value: g, $ref: `${base}/Groups/${g}`, display: d.groups.get(g)?.displayName ?? g })),
    meta: { resourceType: "User", location: `${base}/Users/${p.id}`, version: etagOf(version) },
  };
}

/** What a SCIM User body asks the realm to hold, validated; `password` is kept apart (it never enters an event). */
export interface UserIntent {
  userName: string;
  displayName: string;
  externalId: string | null;
  givenName: string | null;
  familyName: string | null;
  email: string | null;
  active: boolean;
  password?: string | undefined;
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
/** A member of a SCIM object by case-insensitive name. */
export function get(o: Record<string, unknown>, name: string): unknown {
  const k = Object.keys(o).find((x) => x.toLowerCase() === name.toLowerCase());
  return k === undefined ? undefined : o[k];
}
function optString(o: Record<string, unknown>, name: string, max = 256): string | null {
  const v = get(o, name);
  if (v === undefined || v === null || v === "") return null;
  if (typeof v !== "string") throw badRequest("invalidValue", `${name} must be a string`);
  if (v.length > max) throw badRequest("invalidValue", `${name} is longer than ${max} characters`);
  return v;
}

/** Reads a full User representation (POST, PUT, or the result of a PATCH). Attributes not in the schema are ignored (RFC 7644 §3.3). */
export function userIntent(body: unknown): UserIntent {
  if (!isObj(body)) throw badRequest("invalidSyntax", "the body must be a JSON object");
  const schemas = get(body, "schemas");
  if (!Array.isArray(schemas) || !schemas.includes(USER_SCHEMA)) throw badRequest("invalidValue", `schemas must include ${USER_SCHEMA}`);
  const userName = optString(body, "userName", 128);
  if (!userName) throw badRequest("invalidValue", "userName is required");
  if (!NAME.test(userName)) throw badRequest("invalidValue", "userName must be 1-128 letters, digits, '.', '_', '@', '-', starting with a letter or digit (it is the realm principal id)");
  const name = get(body, "name");
  if (name !== undefined && name !== null && !isObj(name)) throw badRequest("invalidValue", "name must be an object");
  const givenName = isObj(name) ? optString(name, "givenName") : null;
  const familyName = isObj(name) ? optString(name, "familyName") : null;
  const formatted = isObj(name) ? optString(name, "formatted") : null;
  const emails = get(body, "emails");
  let email: string | null = null;
  if (emails !== undefined && emails !== null) {
    if (!Array.isArray(emails) || emails.some((e) => !isObj(e) || typeof get(e, "value") !== "string")) throw badRequest("invalidValue", "emails must be a list of { value }");
    const list = emails as Record<string, unknown>[];
    if (list.length > 1) throw badRequest("invalidValue", "the realm keeps one email per person: send one address in emails");
    if (list[0]) email = get(list[0], "value") as string;
    if (email !== null && !/^[^\s@]+@[^\s@]+$/.test(email)) throw badRequest("invalidValue", "emails[0].value is not an address");
  }
  const rawActive = get(body, "active");
  // Some clients (Entra ID) send "True"/"False" as strings.
  const active = typeof rawActive === "string" && /^(true|false)$/i.test(rawActive) ? rawActive.toLowerCase() === "true" : rawActive;
  if (active !== undefined && active !== null && typeof active !== "boolean") throw badRequest("invalidValue", "active must be true or false");
  const password = get(body, "password");
  if (password !== undefined && password !== null && typeof password !== "string") throw badRequest("invalidValue", "password must be a string");
  const displayName = optString(body, "displayName") ?? formatted ?? ([givenName, familyName].filter(Boolean).join(" ") || userName);
  return { userName, displayName, externalId: optString(body, "externalId"), givenName, familyName, email, active: active !== false, ...(typeof password === "string" ? { password } : {}) };
}

/** The principal commands that bring `p` to `want` (none when nothing changes); each is decided before any is run. */
export function userCommands(p: PrincipalState, want: UserIntent): PrincipalCommand[] {
  if (want.userName.toLowerCase() !== p.id.toLowerCase()) throw new ScimError(400, `userName is the realm principal id and cannot change (${p.id})`, "mutability");
  const out: PrincipalCommand[] = [];
  const update: Extract<PrincipalCommand, { type: "update" }> = { type: "update", displayName: want.displayName, email: want.email, externalId: want.externalId, givenName: want.givenName, familyName: want.familyName };
  if (principalDecider.decide(p, update).length > 0) out.push(update);
  if (want.active === p.disabled) out.push(want.active ? { type: "enable" } : { type: "disable", reason: "SCIM: active set to false" });
  return out;
}
