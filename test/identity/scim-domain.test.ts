import { describe, expect, it } from "vitest";
import { principalDecider, type PrincipalCommand, type PrincipalState } from "../../identity/domain/principal.js";
import { groupDecider, type GroupCommand, type GroupState } from "../../identity/domain/group.js";
import { userCommands, userIntent } from "../../identity/scim/users.js";
import { groupCommands } from "../../identity/scim/groups.js";
import { ScimError } from "../../identity/scim/errors.js";

/** The domain changes SCIM needs, pure: profile fields that clear, re-disable with a reason, group deletion. */
const runP = (s: PrincipalState, c: PrincipalCommand) => principalDecider.decide(s, c).reduce((x, e) => principalDecider.evolve(x, { ...e, aggregate: { type: "principal", id: s.id } } as never), s);
const runG = (s: GroupState, c: GroupCommand) => groupDecider.decide(s, c).reduce((x, e) => groupDecider.evolve(x, { ...e, aggregate: { type: "group", id: s.id } } as never), s);
const USER = "urn:ietf:params:scim:schemas:core:2.0:User";

describe("identity domain for SCIM", () => {
  it("keeps externalId and name parts, clears them with null, refuses a bad email on update", () => {
    let p = runP(principalDecider.initialState("ann"), { type: "create", kind: "person", displayName: "Ann", externalId: "E1", givenName: "Ann", familyName: "Lee", email: "ann@x.test" });
    expect(p).toMatchObject({ externalId: "E1", givenName: "Ann", familyName: "Lee" });
    expect(principalDecider.decide(p, { type: "update", externalId: "E1", email: "ann@x.test" })).toEqual([]);
    expect(principalDecider.decide(p, { type: "update", givenName: null })[0]!.data).toEqual({ givenName: null });
    p = runP(p, { type: "update", givenName: null, email: null });
    expect(p.givenName).toBeUndefined();
    expect(p.email).toBeUndefined();
    expect(principalDecider.decide(p, { type: "update", familyName: null, email: null }).length).toBe(1); // only familyName still set
    expect(() => principalDecider.decide(p, { type: "update", email: "nope" })).toThrow(/not an address/);
  });

  it("disabling again records a new reason, the same reason nothing", () => {
    let p = runP(principalDecider.initialState("bo"), { type: "create", kind: "person", displayName: "Bo" });
    p = runP(p, { type: "disable", reason: "left" });
    expect(principalDecider.decide(p, { type: "disable", reason: "left" })).toEqual([]);
    expect(runP(p, { type: "disable", reason: "deleted through SCIM" }).disabledReason).toBe("deleted through SCIM");
  });

  it("deletes a local group (members gone, the id can be created again), refuses an LDAP-owned one", () => {
    let g = runG(groupDecider.initialState("ops"), { type: "create", displayName: "Ops" });
    g = runG(g, { type: "addMember", principal: "ann" });
    g = runG(g, { type: "delete" });
    expect(g).toMatchObject({ exists: false, members: [] });
    expect(() => groupDecider.decide(g, { type: "delete" })).toThrow(/no group/);
    expect(runG(g, { type: "create", displayName: "Ops again" })).toMatchObject({ exists: true, members: [] });
    const ldap = runG(groupDecider.initialState("l"), { type: "create", displayName: "L", source: { kind: "ldap", directory: "corp", dn: "cn=l" } });
    expect(() => groupDecider.decide(ldap, { type: "delete" })).toThrow(/delete it there/);
  });

  it("plans the commands of a SCIM replace: only differences, userName and displayName immutable", () => {
    const p = runP(principalDecider.initialState("cy"), { type: "create", kind: "person", displayName: "Cy" });
    expect(userCommands(p, userIntent({ schemas: [USER], userName: "CY", displayName: "Cy" }))).toEqual([]);
    expect(userCommands(p, userIntent({ schemas: [USER], userName: "cy", displayName: "Cy", active: false })).map((c) => c.type)).toEqual(["disable"]);
    expect(() => userCommands(p, userIntent({ schemas: [USER], userName: "other" }))).toThrow(ScimError);
    const g = runG(groupDecider.initialState("g"), { type: "create", displayName: "G" });
    expect(groupCommands(runG(g, { type: "addMember", principal: "a" }), { displayName: "G", members: ["b"] })).toEqual([{ type: "addMember", principal: "b" }, { type: "removeMember", principal: "a" }]);
    expect(() => groupCommands(g, { displayName: "H", members: [] })).toThrow(/does not rename/);
  });
});
