import { describe, expect, it } from "vitest";
import { matches, parseFilter } from "../../identity/scim/filter.js";
import { ScimError } from "../../identity/scim/errors.js";
import { applyPatch, parseTarget, patchOps } from "../../identity/scim/patch.js";
import { PATCH_SCHEMA } from "../../identity/scim/schemas.js";

const bjensen = {
  id: "bjensen",
  userName: "BJensen",
  externalId: "Ext-1",
  name: { familyName: "Jensen", givenName: "Barbara" },
  displayName: "Babs Jensen",
  active: true,
  emails: [{ value: "bjensen@Example.com", type: "work", primary: true }],
  meta: { version: 'W/"3"', lastModified: "2026-01-01T00:00:00Z" },
};
const hit = (f: string) => matches(parseFilter(f), bjensen);

describe("SCIM filter (RFC 7644 §3.4.2.2)", () => {
  it("evaluates the RFC's operators, case-insensitively except for caseExact attributes", () => {
    expect(hit('userName eq "bjensen"')).toBe(true); // userName caseExact false
    expect(hit('userName Eq "bjensen"')).toBe(true);
    expect(hit('name.familyName co "ens"')).toBe(true);
    expect(hit('userName sw "J"')).toBe(false);
    expect(hit('userName sw "bj"')).toBe(true);
    expect(hit('emails.value ew "@example.com"')).toBe(true);
    expect(hit("title pr")).toBe(false);
    expect(hit("name.givenName pr")).toBe(true);
    expect(hit('externalId eq "ext-1"')).toBe(false); // externalId caseExact true
    expect(hit('externalId eq "Ext-1"')).toBe(true);
    expect(hit('id eq "BJENSEN"')).toBe(false);
    expect(hit("active eq true")).toBe(true);
    expect(hit('meta.lastModified gt "2025-12-31T00:00:00Z"')).toBe(true);
    expect(hit('userName ne "bjensen"')).toBe(false);
    expect(hit('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bjensen"')).toBe(true);
  });

  it("combines with and/or/not and parentheses, not binding tighter than and, and tighter than or", () => {
    expect(hit('userName eq "x" or userName eq "bjensen" and active eq false')).toBe(false);
    expect(hit('(userName eq "x" or userName eq "bjensen") and active eq true')).toBe(true);
    expect(hit('userName eq "bjensen" and not (active eq false)')).toBe(true);
    expect(hit('not (userName eq "bjensen") or title pr')).toBe(false);
    expect(hit('emails[type eq "work" and value co "@example.com"]')).toBe(true);
    expect(hit('emails[type eq "home"]')).toBe(false);
    expect(parseFilter('a eq "1" or b eq "2" and c eq "3"')).toMatchObject({ op: "or", right: { op: "and" } });
  });

  it("refuses malformed filters with invalidFilter, never anything else (fuzz)", () => {
    const bad = ['userName eq', 'userName xx "a"', "userName", '(userName eq "a"', 'userName eq "a")', 'userName eq "unterminated', "and", 'userName eq "a" and', "not userName pr", 'emails[type eq "work"', "a.b.c pr", 'userName co 5', "active gt true", "1 eq 1", "", "   ", '"x" eq "x"', "userName eq bare", "@", `${"(".repeat(40)}a pr${")".repeat(40)}`, "a eq \"\\q\""];
    for (const f of bad) {
      let err: unknown;
      try {
        parseFilter(f);
      } catch (e) {
        err = e;
      }
      expect(err, f).toBeInstanceOf(ScimError);
      expect((err as ScimError).scimType, f).toBe("invalidFilter");
      expect((err as ScimError).status).toBe(400);
    }
    // Valid filters, mutated at random (a piece inserted, a span cut): each either parses to a tree that
    // evaluates to a boolean, or is refused with invalidFilter; nothing else escapes.
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 48271) % 2147483647), seed % n);
    const valid = ['userName eq "bjensen"', 'emails[type eq "work" and value co "@x"]', 'not (active eq true) or (name.familyName sw "J" and title pr)', "meta.version pr"];
    const pieces = ["userName", "emails", ".value", " eq ", " co ", " pr", " and ", " or ", "not ", "(", ")", "[", "]", '"b"', "true", "12", " ", "\\", '"', "urn:x:"];
    let parsed = 0;
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      let s = valid[rnd(valid.length)]!;
      for (let m = 0; m < 1 + rnd(3); m++) {
        const at = rnd(s.length + 1);
        s = rnd(2) ? s.slice(0, at) + pieces[rnd(pieces.length)] + s.slice(at) : s.slice(0, at) + s.slice(at + 1 + rnd(4));
      }
      try {
        const f = parseFilter(s);
        parsed++;
        expect(typeof matches(f, bjensen)).toBe("boolean");
      } catch (e) {
        refused++;
        expect(e, s).toBeInstanceOf(ScimError);
        expect((e as ScimError).scimType, s).toBe("invalidFilter");
      }
    }
    expect(refused).toBeGreaterThan(0);
    expect(parsed).toBeGreaterThan(0);
  });
});

describe("SCIM PATCH (RFC 7644 §3.5.2)", () => {
  const group = { id: "g", displayName: "Tour Guides", members: [{ value: "a" }, { value: "b" }] };
  const ops = (...o: object[]) => patchOps({ schemas: [PATCH_SCHEMA], Operations: o });

  it("adds, replaces and removes with and without paths and value filters", () => {
    expect(applyPatch(group, ops({ op: "add", path: "members", value: [{ value: "c" }, { value: "a" }] }), ["id"]).members).toEqual([{ value: "a" }, { value: "b" }, { value: "c" }]);
    expect(applyPatch(group, ops({ op: "remove", path: 'members[value eq "a"]' }), ["id"]).members).toEqual([{ value: "b" }]);
    expect(applyPatch(group, ops({ op: "Remove", path: "members", value: [{ value: "b" }] }), ["id"]).members).toEqual([{ value: "a" }]);
    expect(applyPatch(group, ops({ op: "remove", path: "members" }), ["id"]).members).toBeUndefined();
    const u = applyPatch(bjensen, ops({ op: "replace", value: { displayName: "B", active: false } }, { op: "replace", path: "name.givenName", value: "Barb" }, { op: "replace", path: 'emails[type eq "work"].value', value: "b@x.test" }), ["id"]);
    expect(u).toMatchObject({ displayName: "B", active: false, name: { givenName: "Barb", familyName: "Jensen" }, emails: [{ value: "b@x.test", type: "work" }] });
    expect(applyPatch(bjensen, ops({ op: "remove", path: "name.familyName" }), []).name).toEqual({ givenName: "Barbara" });
    expect(bjensen.name.givenName).toBe("Barbara"); // the input is not modified
  });

  it("answers noTarget, mutability, invalidPath and invalidSyntax for what it cannot apply", () => {
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as ScimError).scimType;
      }
      return "none";
    };
    expect(err(() => applyPatch(group, ops({ op: "replace", path: 'members[value eq "zz"]', value: { value: "y" } }), []))).toBe("noTarget");
    expect(err(() => applyPatch(group, ops({ op: "remove" }), []))).toBe("noTarget");
    expect(err(() => applyPatch(group, ops({ op: "replace", path: "id", value: "x" }), ["id"]))).toBe("mutability");
    expect(err(() => parseTarget('members[value eq "a"'))).toBe("invalidPath");
    expect(err(() => parseTarget('members[value zz "a"]'))).toBe("invalidPath");
    expect(err(() => patchOps({ schemas: [PATCH_SCHEMA], Operations: [{ op: "move", path: "x" }] }))).toBe("invalidSyntax");
    expect(err(() => patchOps({ schemas: ["x"], Operations: [] }))).toBe("invalidValue");
  });
});
