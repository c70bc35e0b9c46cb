import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as oc from "openid-client";
import { Attribute, Change } from "ldapts";
import { startIdentity, type IdentityHarness } from "./harness.js";
import { ouLdif, startSlapd, type TestSlapd } from "../support/slapd.js";
import { Agent, signIn } from "./agent.js";
import { planSync } from "../../identity/domain/federation.js";

const base = "dc=example,dc=org";
const person = (uid: string, name: string, password: string) => `dn: uid=${uid},ou=people,${base}
objectClass: inetOrgPerson
uid: ${uid}
cn: ${name}
sn: ${name.split(" ").pop()}
mail: ${uid}@example.org
userPassword: ${password}

`;
const LDIF = `${ouLdif(base)}${person("alice", "Alice Liddell", "alice-ldap-secret")}${person("bob", "Bob Builder", "bob-ldap-secret")}dn: cn=engineers,ou=groups,${base}
objectClass: groupOfNames
cn: engineers
member: uid=alice,ou=people,${base}
member: uid=bob,ou=people,${base}

dn: cn=ops,ou=groups,${base}
objectClass: posixGroup
cn: ops
gidNumber: 5000
memberUid: alice

`;

let h: IdentityHarness;
let ldap: TestSlapd;
const redirect = "http://127.0.0.1:9/cb";

beforeAll(async () => {
  ldap = await startSlapd({ baseDn: base, ldif: LDIF });
  h = await startIdentity();
  await h.call("client.register", { id: "spa", displayName: "SPA", public: true, redirectUris: [redirect], grantTypes: ["authorization_code"], trusted: true });
  await h.call("directory.register", { id: "corp", url: ldap.url, bindDn: ldap.adminDn, bindPassword: ldap.adminPassword, usersBase: `ou=people,${base}`, groupsBase: `ou=groups,${base}`, syncIntervalSeconds: 0 });
});
afterAll(async () => {
  await h?.stop();
  await ldap?.stop();
});

async function login(username: string, password: string) {
  const cfg = await oc.discovery(new URL(h.issuer), "spa", undefined, oc.None(), { execute: [oc.allowInsecureRequests] });
  const verifier = oc.randomPKCECodeVerifier();
  const url = oc.buildAuthorizationUrl(cfg, { redirect_uri: redirect, scope: "openid groups", code_challenge: await oc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256" });
  const end = await signIn(new Agent(), url.href, username, password, redirect);
  if (!end.url.startsWith(redirect)) return { page: end };
  const t = await oc.authorizationCodeGrant(cfg, new URL(end.url), { pkceCodeVerifier: verifier, expectedState: oc.skipStateCheck });
  return { page: end, claims: t.claims()! };
}

describe("LDAP federation with a real slapd", () => {
  it("syncs users and groups (groupOfNames and posixGroup) and records the sync", async () => {
    const { report } = await h.call<{ report: { created: number; users: number; groups: number } }>("directory.sync", { id: "corp" });
    expect(report).toMatchObject({ created: 2, users: 2, groups: 2 });
    const alice = await h.call<{ principal: { source: { kind: string; dn: string }; groups: string[]; email: string; displayName: string } }>("principal", { id: "alice" });
    expect(alice.principal).toMatchObject({ source: { kind: "ldap", dn: `uid=alice,ou=people,${base}` }, groups: ["engineers", "ops"], email: "alice@example.org", displayName: "Alice Liddell" });
    // A second sync with nothing changed changes nothing.
    const again = await h.call<{ report: { created: number; updated: number; groupChanges: number } }>("directory.sync", { id: "corp" });
    expect(again.report).toMatchObject({ created: 0, updated: 0, groupChanges: 0 });
    const audit = await h.call<{ entries: { type: string; actor: string }[] }>("audit", { aggregateType: "directory", aggregateId: "corp" });
    expect(audit.entries.map((e) => e.type)).toEqual(["DirectoryRegistered", "DirectorySynced", "DirectorySynced"]);
    // The bind password is in no event.
    for await (const m of h.ctx.core.store.read()) expect(new TextDecoder().decode(m.data)).not.toContain(ldap.adminPassword);
  });

  it("a federated user signs in with the LDAP password; a wrong password fails", async () => {
    const ok = await login("alice", "alice-ldap-secret");
    expect(ok.claims?.groups).toEqual(["engineers", "ops"]);
    const bad = await login("alice", "not-alice-password");
    expect(bad.page.status).toBe(401);
    expect(bad.page.html).toContain("Wrong user name or password.");
    const empty = await login("alice", "");
    expect(empty.claims).toBeUndefined();
  });

  it("a user deleted in LDAP is disabled (not deleted) after the next sync and can no longer sign in", async () => {
    const admin = await ldap.admin();
    await admin.modify(`cn=engineers,ou=groups,${base}`, [new Change({ operation: "delete", modification: new Attribute({ type: "member", values: [`uid=bob,ou=people,${base}`] }) })]);
    await admin.del(`uid=bob,ou=people,${base}`);
    const { report } = await h.call<{ report: { disabled: number } }>("directory.sync", { id: "corp" });
    expect(report.disabled).toBe(1);
    const bob = await h.call<{ principal: { disabled: boolean; disabledReason: string; groups: string[] } }>("principal", { id: "bob" });
    expect(bob.principal).toMatchObject({ disabled: true, disabledReason: "removed from the LDAP directory", groups: [] });
    const r = await login("bob", "bob-ldap-secret");
    expect(r.page.status).toBe(403);
    expect(r.page.html).toContain("disabled");
  });

  it("syncs on a schedule", async () => {
    const admin = await ldap.admin();
    await admin.add(`uid=carol,ou=people,${base}`, { objectClass: "inetOrgPerson", uid: "carol", cn: "Carol Danvers", sn: "Danvers" });
    await h.call("directory.register", { id: "corp2", url: ldap.url, bindDn: ldap.adminDn, bindPassword: ldap.adminPassword, usersBase: `ou=people,${base}`, groupsBase: `ou=groups,${base}`, syncIntervalSeconds: 1 });
    // corp2 finds carol on its own; alice is corp's, so corp2 reports her as skipped.
    for (let i = 0; i < 100 && !h.ctx.core.dir.principals.get("carol")?.exists; i++) await new Promise((r) => setTimeout(r, 100));
    expect(h.ctx.core.dir.principals.get("carol")?.source).toMatchObject({ kind: "ldap", directory: "corp2" });
  });

  it("plans: local names are never taken over", () => {
    const principals = new Map([["alice", { id: "alice", exists: true, kind: "person" as const, source: { kind: "local" as const }, displayName: "A", disabled: false, failedLogins: 0, passwordSet: true, totp: "none" as const }]]);
    const plan = planSync("corp", { users: [{ uid: "alice", dn: "uid=alice", displayName: "Alice" }], groups: [] }, principals, new Map());
    expect(plan.steps).toEqual([]);
    expect(plan.skipped[0]).toContain("alice");
  });
});
