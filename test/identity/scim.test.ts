import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startIdentity, type IdentityHarness } from "./harness.js";

/**
 * SCIM 2.0 against a real realm (identity context behind the host, NATS JetStream): requests built from
 * RFC 7644's examples, authenticated with a realm API key whose role grants only `identity:scim`; each
 * change is checked in the identity event stream.
 */
let h: IdentityHarness;
let key: string;
let readOnlyKey: string;
beforeAll(async () => {
  h = await startIdentity();
  await h.call("principal.create", { id: "provisioner", kind: "service", displayName: "SCIM client" });
  await h.call("role.define", { id: "scim-provisioner", description: "SCIM provisioning", permissions: ["identity:scim"] });
  await h.call("policy.bind", { id: "provisioner-scim", role: "scim-provisioner", subject: { kind: "principal", id: "provisioner" } });
  key = `Bearer ${(await h.call<{ key: string }>("apikey.issue", { owner: "provisioner", label: "scim", roles: ["scim-provisioner"] })).key}`;
  await h.call("principal.create", { id: "reader", kind: "service", displayName: "Reader" });
  await h.call("policy.bind", { id: "reader-auditor", role: "auditor", subject: { kind: "principal", id: "reader" } });
  readOnlyKey = `Bearer ${(await h.call<{ key: string }>("apikey.issue", { owner: "reader", label: "read", roles: ["auditor"] })).key}`;
});
afterAll(async () => {
  await h?.stop();
});

type Res = { status: number; headers: Headers; body: Record<string, any> }; // any: SCIM JSON read by the assertions
async function scim(method: string, path: string, body?: object, headers: Record<string, string> = {}, auth: string | null = key): Promise<Res> {
  const res = await fetch(`${h.url}/scim/v2${path}`, {
    method,
    headers: { ...(auth ? { authorization: auth } : {}), ...(body ? { "content-type": "application/scim+json" } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, any>) : {} };
}

/** The identity events of one aggregate, in order (read from the stream, as the audit does). */
async function eventsOf(type: string, id: string): Promise<{ type: string; data: Record<string, unknown>; actor: string; authz?: { permission: string } }[]> {
  const store = h.ctx.core.store;
  const out = [];
  for await (const { event } of store.readEvents({ filter: store.subjectOf({ type, id }) })) out.push({ type: event.type, data: event.data as Record<string, unknown>, actor: event.actor, ...(event.authz ? { authz: event.authz as { permission: string } } : {}) });
  return out;
}

const ERROR = "urn:ietf:params:scim:api:messages:2.0:Error";
const USER = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

describe("SCIM discovery and authentication", () => {
  it("serves ServiceProviderConfig, Schemas and ResourceTypes as application/scim+json", async () => {
    const spc = await scim("GET", "/ServiceProviderConfig");
    expect(spc.status).toBe(200);
    expect(spc.headers.get("content-type")).toMatch(/^application\/scim\+json/);
    expect(spc.body).toMatchObject({ patch: { supported: true }, filter: { supported: true }, etag: { supported: true }, bulk: { supported: true, maxOperations: 1000 } });
    const schemas = await scim("GET", "/Schemas");
    expect(schemas.body.Resources.map((s: { id: string }) => s.id)).toEqual([USER, GROUP]);
    const user = await scim("GET", `/Schemas/${USER}`);
    expect(user.body.attributes.find((a: { name: string }) => a.name === "userName")).toMatchObject({ caseExact: false, uniqueness: "server", required: true });
    const rts = await scim("GET", "/ResourceTypes");
    expect(rts.body.Resources).toMatchObject([{ id: "User", endpoint: "/Users", schema: USER }, { id: "Group", endpoint: "/Groups", schema: GROUP }]);
    expect((await scim("GET", "/ResourceTypes/Nope")).status).toBe(404);
    const api = (await (await fetch(`${h.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, { tags?: string[] }>> };
    expect(api.paths["/scim/v2/Users/{id}"]?.patch?.tags).toEqual(["scim"]);
  });

  it("answers 401 with the SCIM error schema without or with a bad credential, 403 without identity:scim", async () => {
    for (const auth of [null, "Bearer rk_0000_nope", "Basic abc"]) {
      const r = await scim("GET", "/Users", undefined, {}, auth);
      expect(r.status).toBe(401);
      expect(r.body).toMatchObject({ schemas: [ERROR], status: "401" });
      expect(JSON.stringify(r.body)).not.toContain("nope");
    }
    // An auditor (`*:read`) may read but not write.
    expect((await scim("GET", "/Users", undefined, {}, readOnlyKey)).status).toBe(200);
    const w = await scim("POST", "/Users", { schemas: [USER], userName: "x1" }, {}, readOnlyKey);
    expect(w).toMatchObject({ status: 403, body: { schemas: [ERROR], status: "403" } });
    expect(h.ctx.core.dir.principals.get("x1")).toBeUndefined();
    expect((await scim("GET", "/Nope")).body).toMatchObject({ schemas: [ERROR], status: "404" });
  });
});

describe("SCIM Users (RFC 7644 §3.3-3.6 examples)", () => {
  let etag = "";
  it("creates a user (§3.3): PrincipalCreated with the SCIM fields, 201 with Location and ETag", async () => {
    const r = await scim("POST", "/Users", { schemas: [USER], userName: "bjensen", externalId: "bjensen", name: { formatted: "Ms. Barbara J Jensen III", familyName: "Jensen", givenName: "Barbara" } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ id: "bjensen", userName: "bjensen", externalId: "bjensen", displayName: "Ms. Barbara J Jensen III", active: true, name: { familyName: "Jensen", givenName: "Barbara" }, groups: [], meta: { resourceType: "User", version: 'W/"1"' } });
    expect(r.headers.get("location")).toBe(`${h.url}/scim/v2/Users/bjensen`);
    etag = r.headers.get("etag")!;
    expect(etag).toBe('W/"1"');
    const evs = await eventsOf("principal", "bjensen");
    expect(evs).toMatchObject([{ type: "PrincipalCreated", actor: "provisioner", authz: { permission: "identity:scim" }, data: { kind: "person", displayName: "Ms. Barbara J Jensen III", externalId: "bjensen", givenName: "Barbara", familyName: "Jensen" } }]);
    // userName is unique case-insensitively; a bad one changes nothing.
    expect(await scim("POST", "/Users", { schemas: [USER], userName: "BJensen" })).toMatchObject({ status: 409, body: { scimType: "uniqueness" } });
    expect(await scim("POST", "/Users", { schemas: [USER], userName: "has space" })).toMatchObject({ status: 400, body: { scimType: "invalidValue" } });
    expect(await scim("POST", "/Users", { schemas: [USER] })).toMatchObject({ status: 400, body: { scimType: "invalidValue" } });
    expect(await scim("POST", "/Users", { schemas: [USER], userName: "two", emails: [{ value: "a@x.test" }, { value: "b@x.test" }] })).toMatchObject({ status: 400, body: { scimType: "invalidValue" } });
    expect((await scim("POST", "/Users", undefined, { "content-type": "application/scim+json" })).status).toBe(400);
    const raw = await fetch(`${h.url}/scim/v2/Users`, { method: "POST", headers: { authorization: key, "content-type": "application/scim+json" }, body: "{not json" });
    expect(raw.status).toBe(400);
    expect(await raw.json()).toMatchObject({ schemas: [ERROR], scimType: "invalidSyntax" });
    expect(h.ctx.core.dir.principals.get("two")).toBeUndefined();
  });

  it("gets it (§3.4.1) and answers 304 for If-None-Match of the current version", async () => {
    const r = await scim("GET", "/Users/bjensen");
    expect(r).toMatchObject({ status: 200, body: { id: "bjensen", meta: { location: `${h.url}/scim/v2/Users/bjensen` } } });
    expect((await scim("GET", "/Users/bjensen", undefined, { "if-none-match": etag })).status).toBe(304);
    expect((await scim("GET", "/Users/nobody")).body).toMatchObject({ status: "404", schemas: [ERROR] });
  });

  it("replaces it (§3.5.1): PrincipalUpdated with the differences; If-Match of an old version is 412 and changes nothing", async () => {
    const body = { schemas: [USER], id: "bjensen", userName: "bjensen", externalId: "bjensen", name: { formatted: "Ms. Barbara J Jensen III", familyName: "Jensen", givenName: "Barbara" }, emails: [{ value: "bjensen@example.com", type: "work" }], displayName: "Babs Jensen" };
    const r = await scim("PUT", "/Users/bjensen", body, { "if-match": etag });
    expect(r).toMatchObject({ status: 200, body: { displayName: "Babs Jensen", emails: [{ value: "bjensen@example.com" }], meta: { version: 'W/"2"' } } });
    expect((await eventsOf("principal", "bjensen")).at(-1)).toMatchObject({ type: "PrincipalUpdated", data: { displayName: "Babs Jensen", email: "bjensen@example.com" } });
    const stale = await scim("PUT", "/Users/bjensen", { ...body, displayName: "Stale" }, { "if-match": etag });
    expect(stale.status).toBe(412);
    expect(h.ctx.core.dir.principals.get("bjensen")!.displayName).toBe("Babs Jensen");
    expect(await scim("PUT", "/Users/bjensen", { ...body, userName: "other" })).toMatchObject({ status: 400, body: { scimType: "mutability" } });
    // A replace without emails clears the address.
    await scim("PUT", "/Users/bjensen", { ...body, emails: undefined });
    expect(h.ctx.core.dir.principals.get("bjensen")!.email).toBeUndefined();
    expect((await eventsOf("principal", "bjensen")).at(-1)).toMatchObject({ type: "PrincipalUpdated", data: { email: null } });
    etag = (await scim("GET", "/Users/bjensen")).headers.get("etag")!;
  });

  it("patches it (§3.5.2): add, replace, remove; active=false is PrincipalDisabled, true PrincipalEnabled", async () => {
    const add = await scim("PATCH", "/Users/bjensen", { schemas: [PATCH], Operations: [{ op: "add", value: { emails: [{ value: "babs@jensen.org", type: "home" }], nickname: "Babs" } }] }, { "if-match": etag });
    expect(add).toMatchObject({ status: 200, body: { emails: [{ value: "babs@jensen.org" }] } });
    const rep = await scim("PATCH", "/Users/bjensen", { schemas: [PATCH], Operations: [{ op: "replace", path: "name.familyName", value: "Jensen-Smith" }, { op: "replace", path: "active", value: false }] });
    expect(rep.body).toMatchObject({ name: { familyName: "Jensen-Smith" }, active: false });
    const rem = await scim("PATCH", "/Users/bjensen", { schemas: [PATCH], Operations: [{ op: "remove", path: "externalId" }, { op: "Replace", path: "active", value: "True" }] });
    expect(rem.body.externalId).toBeUndefined();
    expect(rem.body.active).toBe(true);
    const types = (await eventsOf("principal", "bjensen")).map((e) => e.type);
    expect(types.slice(-5)).toEqual(["PrincipalUpdated", "PrincipalUpdated", "PrincipalDisabled", "PrincipalUpdated", "PrincipalEnabled"]);
    expect(await scim("PATCH", "/Users/bjensen", { schemas: [PATCH], Operations: [{ op: "replace", path: "groups", value: [] }] })).toMatchObject({ status: 400, body: { scimType: "mutability" } });
    expect(await scim("PATCH", "/Users/bjensen", { schemas: [PATCH], Operations: [{ op: "replace", path: 'emails[type eq "nope"].value', value: "x@y.z" }] })).toMatchObject({ status: 400, body: { scimType: "noTarget" } });
    expect(await scim("PATCH", "/Users/bjensen", { schemas: [PATCH], Operations: [{ op: "replace", path: "emails[type eq]", value: "x" }] })).toMatchObject({ status: 400, body: { scimType: "invalidPath" } });
  });

  it("sets a password through SCIM without putting it in an event or an answer", async () => {
    const r = await scim("PATCH", "/Users/bjensen", { schemas: [PATCH], Operations: [{ op: "replace", path: "password", value: "correct horse battery staple" }] });
    expect(r.status).toBe(200);
    expect(JSON.stringify(r.body)).not.toContain("horse");
    const evs = await eventsOf("principal", "bjensen");
    expect(evs.at(-1)!.type).toBe("PasswordSet");
    expect(JSON.stringify(evs)).not.toContain("horse");
    expect((await h.ctx.core.login("bjensen", "correct horse battery staple", undefined, { correlationId: "c", causationId: "c" })).ok).toBe(true);
    expect(await scim("PATCH", "/Users/bjensen", { schemas: [PATCH], Operations: [{ op: "replace", path: "password", value: "short" }] })).toMatchObject({ status: 400, body: { scimType: "invalidValue" } });
  });
});

describe("SCIM If-Match under concurrent writers", () => {
  it("lets exactly one of five concurrent PATCHes with the same If-Match through; the others are 412 and change nothing", async () => {
    const c = await scim("POST", "/Users", { schemas: [USER], userName: "racer" });
    const tag = c.headers.get("etag")!;
    const rs = await Promise.all([0, 1, 2, 3, 4].map((i) => scim("PATCH", "/Users/racer", { schemas: [PATCH], Operations: [{ op: "replace", path: "displayName", value: `Racer ${i}` }] }, { "if-match": tag })));
    expect(rs.map((r) => r.status).sort()).toEqual([200, 412, 412, 412, 412]);
    const updates = (await eventsOf("principal", "racer")).filter((e) => e.type === "PrincipalUpdated");
    expect(updates).toHaveLength(1);
    expect(h.ctx.core.dir.principals.get("racer")!.displayName).toBe(rs.find((r) => r.status === 200)!.body.displayName);
    await scim("DELETE", "/Users/racer");
  });
});

describe("SCIM Groups and filtered lists", () => {
  let guides = "";
  it("creates a group with members (§3.3), patches members add/remove (§3.5.2.1, §3.5.2.2), refuses a rename", async () => {
    for (const u of ["jsmith", "ajones"]) await scim("POST", "/Users", { schemas: [USER], userName: u, name: { givenName: u.slice(1), familyName: u === "jsmith" ? "Smith" : "Jones" }, emails: [{ value: `${u}@example.com` }] });
    const r = await scim("POST", "/Groups", { schemas: [GROUP], displayName: "Tour Guides", members: [{ value: "bjensen" }] });
    expect(r).toMatchObject({ status: 201, body: { id: "tour-guides", displayName: "Tour Guides", members: [{ value: "bjensen", type: "User" }] } });
    guides = r.body.id as string;
    expect(await scim("POST", "/Groups", { schemas: [GROUP], displayName: "tour guides" })).toMatchObject({ status: 409, body: { scimType: "uniqueness" } });
    expect(await scim("POST", "/Groups", { schemas: [GROUP], displayName: "X", members: [{ value: "ghost" }] })).toMatchObject({ status: 400, body: { scimType: "invalidValue" } });
    const add = await scim("PATCH", `/Groups/${guides}`, { schemas: [PATCH], Operations: [{ op: "add", path: "members", value: [{ display: "Smith", $ref: "x", value: "jsmith" }, { value: "ajones" }] }] });
    expect(add.body.members.map((m: { value: string }) => m.value)).toEqual(["bjensen", "jsmith", "ajones"]);
    const rem = await scim("PATCH", `/Groups/${guides}`, { schemas: [PATCH], Operations: [{ op: "remove", path: 'members[value eq "bjensen"]' }] });
    expect(rem.body.members.map((m: { value: string }) => m.value)).toEqual(["jsmith", "ajones"]);
    const evs = await eventsOf("group", guides);
    expect(evs.map((e) => [e.type, e.data.principal])).toEqual([["GroupCreated", undefined], ["GroupMemberAdded", "bjensen"], ["GroupMemberAdded", "jsmith"], ["GroupMemberAdded", "ajones"], ["GroupMemberRemoved", "bjensen"]]);
    expect((await scim("GET", "/Users/jsmith")).body.groups).toMatchObject([{ value: guides, display: "Tour Guides" }]);
    expect(await scim("PATCH", `/Groups/${guides}`, { schemas: [PATCH], Operations: [{ op: "replace", path: "displayName", value: "Guides" }] })).toMatchObject({ status: 400, body: { scimType: "mutability" } });
    const put = await scim("PUT", `/Groups/${guides}`, { schemas: [GROUP], displayName: "Tour Guides", members: [{ value: "ajones" }] }, { "if-match": 'W/"1"' });
    expect(put.status).toBe(412);
    expect(h.ctx.core.dir.groups.get(guides)!.members).toEqual(["jsmith", "ajones"]);
  });

  it("filters, sorts and pages users (§3.4.2) and groups", async () => {
    const names = async (q: string) => {
      const r = await scim("GET", `/Users?${q}`);
      expect(r.status, q).toBe(200);
      return r.body.Resources.map((u: { userName: string }) => u.userName);
    };
    expect(await names(`filter=${encodeURIComponent('userName eq "BJENSEN"')}`)).toEqual(["bjensen"]);
    expect(await names(`filter=${encodeURIComponent('name.familyName co "o" or emails.value sw "jsmith@"')}&sortBy=userName`)).toEqual(["ajones", "jsmith"]);
    expect(await names(`filter=${encodeURIComponent('emails[value ew "@example.com"] and not (userName eq "ajones")')}`)).toEqual(["jsmith"]);
    expect(await names(`filter=${encodeURIComponent("externalId pr")}`)).toEqual([]);
    expect(await names(`filter=${encodeURIComponent('userName eq "nobody" or userName eq "AJONES"')}`)).toEqual(["ajones"]);
    expect(await names(`filter=${encodeURIComponent('id eq "AJONES"')}`)).toEqual([]); // id is caseExact
    expect(await names(`filter=${encodeURIComponent('userName eq "ajones" and active eq false')}`)).toEqual([]);
    expect(await names(`filter=${encodeURIComponent(`groups.value eq "${guides}"`)}&sortBy=userName&sortOrder=descending`)).toEqual(["jsmith", "ajones"]);
    const page = await scim("GET", "/Users?sortBy=userName&startIndex=2&count=1");
    expect(page.body).toMatchObject({ totalResults: 3, startIndex: 2, itemsPerPage: 1, Resources: [{ userName: "bjensen" }] });
    expect(await scim("GET", `/Users?filter=${encodeURIComponent("userName eq")}`)).toMatchObject({ status: 400, body: { scimType: "invalidFilter", schemas: [ERROR] } });
    expect(await scim("GET", "/Users?count=abc")).toMatchObject({ status: 400, body: { scimType: "invalidValue" } });
    const search = await scim("POST", "/Users/.search", { schemas: ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], filter: 'userName sw "a"' });
    expect(search.body.Resources.map((u: { id: string }) => u.id)).toEqual(["ajones"]);
    const g = await scim("GET", `/Groups?filter=${encodeURIComponent('members[value eq "jsmith"] and displayName eq "tour guides"')}`);
    expect(g.body.Resources.map((x: { id: string }) => x.id)).toEqual([guides]);
  });

  it("deletes a user (disabled, out of its groups, then 404) and a group (GroupDeleted)", async () => {
    expect((await scim("DELETE", "/Users/jsmith", undefined, { "if-match": 'W/"99"' })).status).toBe(412);
    expect((await scim("DELETE", "/Users/jsmith")).status).toBe(204);
    expect((await scim("GET", "/Users/jsmith")).status).toBe(404);
    expect((await scim("DELETE", "/Users/jsmith")).status).toBe(404);
    expect((await eventsOf("principal", "jsmith")).at(-1)).toMatchObject({ type: "PrincipalDisabled", data: { reason: "deleted through SCIM" } });
    expect((await eventsOf("group", guides)).at(-1)).toMatchObject({ type: "GroupMemberRemoved", data: { principal: "jsmith" } });
    expect((await scim("GET", "/Users")).body.Resources.map((u: { id: string }) => u.id)).toEqual(["ajones", "bjensen"]);
    expect(await scim("POST", "/Users", { schemas: [USER], userName: "jsmith" })).toMatchObject({ status: 409, body: { scimType: "uniqueness" } });
    expect((await scim("DELETE", `/Groups/${guides}`)).status).toBe(204);
    expect((await scim("GET", `/Groups/${guides}`)).status).toBe(404);
    expect((await eventsOf("group", guides)).at(-1)!.type).toBe("GroupDeleted");
    expect((await scim("GET", "/Users/ajones")).body.groups).toEqual([]);
  });
});

describe("SCIM Bulk (RFC 7644 §3.7)", () => {
  it("runs the RFC's example in order: a user, then a group whose member is bulkId:qwerty; each its own events", async () => {
    const r = await scim("POST", "/Bulk", {
      schemas: ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
      Operations: [
        { method: "POST", path: "/Users", bulkId: "qwerty", data: { schemas: [USER], userName: "alice", name: { givenName: "Alice", familyName: "Smith" } } },
        { method: "POST", path: "/Groups", bulkId: "ytrewq", data: { schemas: [GROUP], displayName: "Bulk Guides", members: [{ type: "User", value: "bulkId:qwerty" }] } },
        { method: "PATCH", path: "/Users/bulkId:qwerty", data: { schemas: [PATCH], Operations: [{ op: "replace", path: "displayName", value: "Alice S." }] } },
        { method: "POST", path: "/Users", bulkId: "dup", data: { schemas: [USER], userName: "ALICE" } },
        { method: "DELETE", path: "/Groups/nope" },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.body.Operations.map((o: { status: string }) => o.status)).toEqual(["201", "201", "200", "409", "404"]);
    expect(r.body.Operations[0]).toMatchObject({ method: "POST", bulkId: "qwerty", location: `${h.url}/scim/v2/Users/alice`, version: 'W/"1"' });
    expect(r.body.Operations[3].response).toMatchObject({ schemas: [ERROR], scimType: "uniqueness" });
    expect(h.ctx.core.dir.groups.get("bulk-guides")!.members).toEqual(["alice"]);
    expect((await eventsOf("principal", "alice")).map((e) => e.type)).toEqual(["PrincipalCreated", "PrincipalUpdated"]);
    expect((await eventsOf("group", "bulk-guides")).map((e) => [e.type, e.data.principal])).toEqual([["GroupCreated", undefined], ["GroupMemberAdded", "alice"]]);
  });

  it("stops after failOnErrors errors, and refuses a reference to a resource not created earlier", async () => {
    const r = await scim("POST", "/Bulk", {
      schemas: ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
      failOnErrors: 1,
      Operations: [
        { method: "POST", path: "/Groups", bulkId: "g", data: { schemas: [GROUP], displayName: "Forward", members: [{ value: "bulkId:later" }] } },
        { method: "POST", path: "/Users", bulkId: "later", data: { schemas: [USER], userName: "never" } },
      ],
    });
    expect(r.body.Operations).toMatchObject([{ status: "409", response: { scimType: "invalidValue" } }]);
    expect(h.ctx.core.dir.principals.get("never")).toBeUndefined();
    expect([...h.ctx.core.dir.groups.values()].some((g) => g.displayName === "Forward")).toBe(false);
    expect(await scim("POST", "/Bulk", { schemas: ["x"], Operations: [] })).toMatchObject({ status: 400, body: { scimType: "invalidValue" } });
  });
});
