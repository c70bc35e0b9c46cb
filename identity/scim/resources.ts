import type { CommandMeta, Decider } from "../../services/kernel/index.js";
import type { IdentityCore } from "../core.js";
import { checkPasswordPolicy } from "../credentials.js";
import { groupDecider } from "../domain/group.js";
import { principalDecider } from "../domain/principal.js";
import { badRequest, ScimError } from "./errors.js";
import { matches, parseFilter, parsePath, valuesAt, type Filter } from "./filter.js";
import type { Directory } from "../domain/directory.js";
import type { PrincipalState } from "../domain/principal.js";
import { displayNameTaken, groupCommands, groupIdFor, groupIntent, toScimGroup, type ScimGroup } from "./groups.js";
import { applyPatch, patchOps } from "./patch.js";
import { LIST_SCHEMA, MAX_RESULTS } from "./schemas.js";
import { etagOf, isScimUser, SCIM_DELETED, toScimUser, userCommands, userIntent, type ScimUser, type UserIntent } from "./users.js";

/** List parameters (RFC 7644 §3.4.2): filter, 1-based startIndex, count, sortBy, sortOrder. */
export interface ListQuery {
  filter?: string | undefined;
  startIndex?: string | number | undefined;
  count?: string | number | undefined;
  sortBy?: string | undefined;
  sortOrder?: string | undefined;
}

/** Every realm change a SCIM request makes goes through the identity deciders, with this request's meta. */
export type MetaOf = () => CommandMeta;

const int = (name: string, v: string | number | undefined, dflt: number): number => {
  if (v === undefined || v === "") return dflt;
  const n = typeof v === "number" ? v : Number(v);
  if (!Number.isInteger(n)) throw badRequest("invalidValue", `${name} must be an integer`);
  return n;
};

/** The If-Match precondition: a mismatch (or an ETag of another version) is 412, nothing changes. */
export function checkIfMatch(ifMatch: string | undefined, version: number): number | undefined {
  if (ifMatch === undefined || ifMatch.trim() === "*") return undefined;
  const want = etagOf(version);
  const given = ifMatch.split(",").map((t) => t.trim());
  if (!given.some((t) => t === want || t === want.slice(2))) throw new ScimError(412, `the resource is at version ${want}, not ${ifMatch}`);
  return version;
}

export function listResponse<T extends object>(all: T[], q: ListQuery): object {
  const filter = q.filter !== undefined && q.filter !== "" ? parseFilter(q.filter) : undefined;
  const startIndex = Math.max(1, int("startIndex", q.startIndex, 1));
  const count = Math.min(MAX_RESULTS, Math.max(0, int("count", q.count, 100)));
  let hits = filter ? all.filter((r) => matches(filter, r)) : all;
  if (q.sortBy) {
    const path = parsePath(q.sortBy);
    const desc = (q.sortOrder ?? "ascending").toLowerCase() === "descending";
    if (q.sortOrder && !["ascending", "descending"].includes(q.sortOrder.toLowerCase())) throw badRequest("invalidValue", "sortOrder must be ascending or descending");
    const keyOf = (r: T) => {
      const v = valuesAt(r, path)[0];
      return v === undefined ? undefined : String(v).toLowerCase();
    };
    const keyed = hits.map((r) => [keyOf(r), r] as const);
    // Resources without the attribute sort last either way (RFC 7644 §3.4.2.3).
    keyed.sort(([a], [b]) => (a === b ? 0 : a === undefined ? 1 : b === undefined ? -1 : (a < b ? -1 : 1) * (desc ? -1 : 1)));
    hits = keyed.map(([, r]) => r);
  }
  const page = hits.slice(startIndex - 1, startIndex - 1 + count);
  return { schemas: [LIST_SCHEMA], totalResults: hits.length, startIndex, itemsPerPage: page.length, Resources: page };
}

/** The user id every match must have, lower-cased, when the filter's and-tree holds `userName eq` or `id eq` a string. */
function idKey(f: Filter): string | undefined {
  if (f.op === "and") return idKey(f.left) ?? idKey(f.right);
  if (f.op === "eq" && f.path.length === 1 && (f.path[0] === "username" || f.path[0] === "id") && typeof f.value === "string") return f.value.toLowerCase();
  return undefined;
}

/** Each principal's groups, computed once for a whole list. */
function membershipIndex(d: Directory): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const g of d.groups.values()) if (g.exists) for (const m of g.members) out.set(m, [...(out.get(m) ?? []), g.id]);
  for (const gs of out.values()) gs.sort();
  return out;
}

/** The last id index built (one realm per process in practice; keyed by directory object and sequence). */
let lowerIndex: { dir: Directory; seq: number; ids: Map<string, string[]> } | undefined;

export class ScimResources {
  /** `base`: the absolute URL of /scim/v2 as this request reached it (for `location` and `$ref`). */
  constructor(
    private readonly core: IdentityCore,
    private readonly base: string,
  ) {}

  /** The SCIM users whose id is `key` ignoring case (case-insensitive userName lookups; an id index per directory version). */
  private byLowerId(key: string): PrincipalState[] {
    const seq = this.core.projection.lastSeq;
    if (lowerIndex?.dir !== this.core.dir || lowerIndex.seq !== seq) {
      const ids = new Map<string, string[]>();
      for (const id of this.core.dir.principals.keys()) {
        const k = id.toLowerCase();
        ids.set(k, [...(ids.get(k) ?? []), id]);
      }
      lowerIndex = { dir: this.core.dir, seq, ids };
    }
    return (lowerIndex.ids.get(key) ?? []).map((id) => this.core.dir.principals.get(id)!).filter(isScimUser);
  }

  private version(type: "principal" | "group", id: string): number {
    return this.core.projection.headOf({ type, id })?.version ?? 0;
  }

  private userOf(id: string): ScimUser {
    const p = this.core.dir.principals.get(id);
    if (!isScimUser(p)) throw new ScimError(404, `no user ${id}`);
    return toScimUser(this.core.dir, p, this.version("principal", id), this.base);
  }

  getUser(id: string): ScimUser {
    return this.userOf(id);
  }

  listUsers(q: ListQuery): object {
    const d = this.core.dir;
    // `userName eq` / `id eq` (what provisioning clients ask before every create) narrows the candidates on
    // the id before any SCIM object is built; the filter itself still decides.
    const key = q.filter ? idKey(parseFilter(q.filter)) : undefined;
    const users = (key === undefined ? [...d.principals.values()].filter(isScimUser) : this.byLowerId(key)).sort((a, b) => (a.id < b.id ? -1 : 1));
    const groups = membershipIndex(d);
    return listResponse(users.map((p) => toScimUser(d, p, this.version("principal", p.id), this.base, groups.get(p.id) ?? [])), q);
  }

  async createUser(body: unknown, meta: MetaOf): Promise<ScimUser> {
    const want = userIntent(body);
    const lower = want.userName.toLowerCase();
    for (const p of this.core.dir.principals.values()) if (p.exists && p.id.toLowerCase() === lower) throw new ScimError(409, `userName ${want.userName} is taken`, "uniqueness");
    if (want.password !== undefined) checkPasswordPolicy(want.password);
    const u = (v: string | null) => v ?? undefined;
    await this.core.run(principalDecider, want.userName, { type: "create", kind: "person", displayName: want.displayName, email: u(want.email), externalId: u(want.externalId), givenName: u(want.givenName), familyName: u(want.familyName) }, meta());
    if (!want.active) await this.core.run(principalDecider, want.userName, { type: "disable", reason: "SCIM: active set to false" }, meta());
    if (want.password !== undefined) await this.setPassword(want.userName, want.password, meta);
    return this.userOf(want.userName);
  }

  /**
   * The decider, refusing with 412 unless the aggregate is still at `version` when the command is decided.
   * The write model decides right after reading the aggregate's head and appends after exactly that head, so a
   * writer elsewhere in between makes the append fail and the decision (this check) run again: If-Match holds
   * for the request's first command without a window. undefined: no If-Match, the decider as it is.
   */
  private guard<S, C>(decider: Decider<S, C>, id: string, version: number | undefined): Decider<S, C> {
    if (version === undefined) return decider;
    const projection = this.core.projection;
    return {
      ...decider,
      decide(s, c) {
        const now = projection.headOf({ type: decider.aggregateType, id })?.version ?? 0;
        if (now !== version) throw new ScimError(412, `the resource is at version ${etagOf(now)}, not ${etagOf(version)}`);
        return decider.decide(s, c);
      },
    };
  }

  private async setPassword(id: string, password: string, meta: MetaOf, expected?: number): Promise<void> {
    // As principal.setPassword: decide first, then store the hash, then append PasswordSet.
    checkPasswordPolicy(password);
    const at = new Date().toISOString();
    principalDecider.decide(this.core.dir.principals.get(id)!, { type: "setPassword", at });
    await this.core.credentials.setPassword(id, password);
    await this.core.run(this.guard(principalDecider, id, expected), id, { type: "setPassword", at }, meta());
  }

  private async applyUser(id: string, want: UserIntent, meta: MetaOf, expected: number | undefined): Promise<ScimUser> {
    const p = this.core.dir.principals.get(id)!;
    const cmds = userCommands(p, want);
    if (want.password !== undefined) {
      checkPasswordPolicy(want.password);
      principalDecider.decide(p, { type: "setPassword", at: new Date().toISOString() });
    }
    for (const [i, c] of cmds.entries()) await this.core.run(this.guard(principalDecider, id, i === 0 ? expected : undefined), id, c, meta());
    if (want.password !== undefined) await this.setPassword(id, want.password, meta, cmds.length === 0 ? expected : undefined);
    return this.userOf(id);
  }

  async replaceUser(id: string, body: unknown, ifMatch: string | undefined, meta: MetaOf): Promise<ScimUser> {
    this.userOf(id);
    const expected = checkIfMatch(ifMatch, this.version("principal", id));
    return this.applyUser(id, userIntent(body), meta, expected);
  }

  async patchUser(id: string, body: unknown, ifMatch: string | undefined, meta: MetaOf): Promise<ScimUser> {
    const cur = this.userOf(id);
    const expected = checkIfMatch(ifMatch, this.version("principal", id));
    const patched = applyPatch(cur, patchOps(body), ["id", "meta", "groups", "schemas"]);
    return this.applyUser(id, userIntent(patched), meta, expected);
  }

  /**
   * DELETE disables the principal (reason SCIM_DELETED) and takes it out of its groups: the realm never
   * deletes a principal (its id stays in the audit trail and in signed events, and a new person must not
   * inherit it). SCIM answers 404 for it from then on; an admin may enable it again.
   */
  async deleteUser(id: string, ifMatch: string | undefined, meta: MetaOf): Promise<void> {
    this.userOf(id);
    const expected = checkIfMatch(ifMatch, this.version("principal", id));
    await this.core.run(this.guard(principalDecider, id, expected), id, { type: "disable", reason: SCIM_DELETED }, meta());
    for (const g of this.core.dir.groups.values()) {
      if (g.exists && g.source.kind === "local" && g.members.includes(id)) await this.core.run(groupDecider, g.id, { type: "removeMember", principal: id }, meta());
    }
  }

  private groupOf(id: string): ScimGroup {
    const g = this.core.dir.groups.get(id);
    if (!g?.exists) throw new ScimError(404, `no group ${id}`);
    return toScimGroup(this.core.dir, g, this.version("group", id), this.base);
  }

  getGroup(id: string): ScimGroup {
    return this.groupOf(id);
  }

  listGroups(q: ListQuery): object {
    const d = this.core.dir;
    const groups = [...d.groups.values()].filter((g) => g.exists).sort((a, b) => (a.id < b.id ? -1 : 1));
    return listResponse(groups.map((g) => toScimGroup(d, g, this.version("group", g.id), this.base)), q);
  }

  async createGroup(body: unknown, meta: MetaOf): Promise<ScimGroup> {
    const d = this.core.dir;
    const want = groupIntent(d, body);
    if (displayNameTaken(d, want.displayName)) throw new ScimError(409, `a group named ${JSON.stringify(want.displayName)} exists`, "uniqueness");
    const id = groupIdFor(d, want.displayName);
    await this.core.run(groupDecider, id, { type: "create", displayName: want.displayName }, meta());
    for (const principal of want.members) await this.core.run(groupDecider, id, { type: "addMember", principal }, meta());
    return this.groupOf(id);
  }

  private async applyGroup(id: string, body: unknown, meta: MetaOf, expected: number | undefined): Promise<ScimGroup> {
    const g = this.core.dir.groups.get(id)!;
    const want = groupIntent(this.core.dir, body);
    const cmds = groupCommands(g, want);
    if (cmds.length > 0 && g.source.kind !== "local") throw new ScimError(400, `group ${id} is kept by the LDAP directory ${g.source.directory}; change it there`, "mutability");
    for (const [i, c] of cmds.entries()) await this.core.run(this.guard(groupDecider, id, i === 0 ? expected : undefined), id, c, meta());
    return this.groupOf(id);
  }

  async replaceGroup(id: string, body: unknown, ifMatch: string | undefined, meta: MetaOf): Promise<ScimGroup> {
    this.groupOf(id);
    const expected = checkIfMatch(ifMatch, this.version("group", id));
    return this.applyGroup(id, body, meta, expected);
  }

  async patchGroup(id: string, body: unknown, ifMatch: string | undefined, meta: MetaOf): Promise<ScimGroup> {
    const cur = this.groupOf(id);
    const expected = checkIfMatch(ifMatch, this.version("group", id));
    return this.applyGroup(id, applyPatch(cur, patchOps(body), ["id", "meta", "schemas"]), meta, expected);
  }

  async deleteGroup(id: string, ifMatch: string | undefined, meta: MetaOf): Promise<void> {
    this.groupOf(id);
    const expected = checkIfMatch(ifMatch, this.version("group", id));
    await this.core.run(this.guard(groupDecider, id, expected), id, { type: "delete" }, meta());
  }
}
