import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as OTPAuth from "otpauth";
import { startIdentity, type IdentityHarness } from "./harness.js";
import { ldapDirectory } from "../../identity/directory-server/extension.js";
import { ldapFederation } from "../../identity/ldap/federation.js";
import { BerReader, bool, frameLength, int, readInt, seq, str, Tag } from "../../identity/directory-server/ber.js";
import { OID } from "../../identity/directory-server/protocol.js";
import { startDirectoryServer } from "../../identity/directory-server/server.js";

/**
 * The realm's read-only LDAP directory against OpenLDAP's own clients (ldap-utils): ldapsearch,
 * ldapwhoami, ldapmodify, ldapadd, ldapcompare.
 */
const base = "dc=example,dc=test";
const pw = { alice: "alice's long passphrase", bob: "bob's long passphrase", carol: "carol's long passphrase", dave: "dave's long passphrase", eve: "eve's long passphrase" };
let h: IdentityHarness;
let url: string;
let wikiKey: string;
let dnsKey: string;
let daveTotp: OTPAuth.TOTP;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], input?: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    // LDAPNOINIT keeps ~/.ldaprc and /etc/ldap/ldap.conf out, but it also ignores LDAPTLS_* variables.
    const p = spawn(cmd, args, { env: { ...process.env, ...(Object.keys(env).length ? { LDAPRC: "/dev/null" } : { LDAPNOINIT: "1" }), ...env } });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("error", reject);
    p.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    p.stdin.end(input ?? "");
  });
}

const person = (id: string) => `uid=${id},ou=people,${base}`;
const bindAs = (dn: string, password: string) => ["-x", "-H", url, "-D", dn, "-w", password];
const search = (bind: string[], searchBase: string, filter: string, ...rest: string[]) => run("ldapsearch", [...bind, "-LLL", "-o", "ldif-wrap=no", "-b", searchBase, filter, ...rest]);

/** LDIF (unwrapped) into entries: dn -> attribute (lower-case) -> values. */
function parseLdif(text: string): Map<string, Map<string, string[]>> {
  const out = new Map<string, Map<string, string[]>>();
  for (const block of text.split(/\n\n+/)) {
    let dn: string | undefined;
    const attrs = new Map<string, string[]>();
    for (const line of block.split("\n")) {
      if (!line || line.startsWith("#")) continue;
      const m = /^([^:]+)(::?) ?(.*)$/.exec(line);
      if (!m) continue;
      const value = m[2] === "::" ? Buffer.from(m[3]!, "base64").toString("utf8") : m[3]!;
      if (m[1] === "dn") dn = value;
      else attrs.set(m[1]!.toLowerCase(), [...(attrs.get(m[1]!.toLowerCase()) ?? []), value]);
    }
    if (dn !== undefined) out.set(dn, attrs);
  }
  return out;
}

async function events(type: string): Promise<{ aggregate: { type: string; id: string }; data: Record<string, unknown> }[]> {
  const out = [];
  for await (const m of h.ctx.core.store.read()) {
    const text = new TextDecoder().decode(m.data);
    if (!text.includes(type)) continue;
    const e = JSON.parse(text) as { type: string; aggregate: { type: string; id: string }; data: Record<string, unknown> };
    if (e.type === type) out.push(e);
  }
  return out;
}

beforeAll(async () => {
  h = await startIdentity({ lockout: { maxFailures: 3, lockMinutes: 15 }, extensions: [ldapFederation(), ldapDirectory({ port: 0, baseDn: base })] });
  url = (await h.call<{ url: string }>("ldapDirectory", {})).url;
  await h.call("organization.create", { id: "acme", displayName: "Acme Ltd" });
  await h.call("organization.addUnit", { id: "acme", unit: "eng", displayName: "Engineering" });
  const people: [string, string, string?][] = [
    ["alice", "Alice Liddell", "alice@example.test"],
    ["bob", "Bob Builder", "bob@example.test"],
    ["carol", "Carol Danvers"],
    ["dave", "Dave Bowman"],
    ["eve", "Eve Moneypenny"],
  ];
  for (const [id, displayName, email] of people) {
    await h.call("principal.create", { id, kind: "person", displayName, ...(email ? { email } : {}), ...(id === "alice" ? { organization: "acme", orgUnit: "eng" } : {}) });
    await h.call("principal.setPassword", { id, password: pw[id as keyof typeof pw] });
  }
  await h.call("principal.disable", { id: "carol", reason: "left" });
  await h.call("group.create", { id: "engineers", displayName: "Engineers" });
  await h.call("group.create", { id: "ops", displayName: "Operations" });
  for (const [g, p] of [["engineers", "alice"], ["engineers", "bob"], ["ops", "alice"]]) await h.call("group.addMember", { id: g, principal: p });
  // Services: `wiki` may read the directory (auditor: *:read), `dns-bot` holds only dns-operator.
  for (const [id, role] of [["wiki", "auditor"], ["dns-bot", "dns-operator"]] as const) {
    await h.call("principal.create", { id, kind: "service", displayName: id });
    await h.call("policy.bind", { id: `${id}-${role}`, role, subject: { kind: "principal", id } });
  }
  wikiKey = (await h.call<{ key: string }>("apikey.issue", { owner: "wiki", label: "ldap", roles: ["auditor"] })).key;
  dnsKey = (await h.call<{ key: string }>("apikey.issue", { owner: "dns-bot", label: "ldap", roles: ["dns-operator"] })).key;
  const { otpauthUri } = await h.call<{ otpauthUri: string }>("principal.enrollTotp", { id: "dave" });
  daveTotp = OTPAuth.URI.parse(otpauthUri) as OTPAuth.TOTP;
  await h.call("principal.confirmTotp", { id: "dave", code: daveTotp.generate() });
}, 60_000);
afterAll(async () => {
  await h?.stop();
});

describe("read-only LDAP directory with ldap-utils", () => {
  it("a person binds with the realm password and finds people as inetOrgPerson + posixAccount, with memberOf", async () => {
    const r = await search(bindAs(person("alice"), pw.alice), `ou=people,${base}`, "(uid=alice)");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const e = parseLdif(r.stdout).get(person("alice"))!;
    expect(e.get("objectclass")).toEqual(expect.arrayContaining(["inetOrgPerson", "posixAccount"]));
    expect(e.get("cn")).toEqual(["Alice Liddell"]);
    expect(e.get("sn")).toEqual(["Liddell"]);
    expect(e.get("mail")).toEqual(["alice@example.test"]);
    expect(e.get("homedirectory")).toEqual(["/home/alice"]);
    expect(e.get("loginshell")).toEqual(["/bin/bash"]);
    expect(e.get("gidnumber")).toEqual(["100"]);
    expect(Number(e.get("uidnumber")![0])).toBeGreaterThanOrEqual(10000);
    expect(e.get("memberof")).toEqual([`cn=engineers,ou=groups,${base}`, `cn=ops,ou=groups,${base}`]);
    const who = await run("ldapwhoami", bindAs(person("alice"), pw.alice));
    expect(who.stdout.trim()).toBe(`dn:${person("alice")}`);
  });

  it("uidNumber and gidNumber are allocated once as PosixIdAllocated events, upward from the base, never twice", async () => {
    const r = await search(bindAs(person("bob"), pw.bob), base, "(|(objectClass=posixAccount)(objectClass=posixGroup))", "uidNumber", "gidNumber");
    const entries = parseLdif(r.stdout);
    const allocated = await events("PosixIdAllocated");
    expect(allocated.every((e) => e.aggregate.type === "posix" && e.aggregate.id === "ids")).toBe(true);
    const uids = allocated.filter((e) => e.data.kind === "uid");
    const gids = allocated.filter((e) => e.data.kind === "gid");
    expect(uids.map((e) => e.data.name).sort()).toEqual(["alice", "bob", "carol", "dave", "eve"]);
    expect(gids.map((e) => e.data.name).sort()).toEqual(["engineers", "ops"]);
    expect(new Set(uids.map((e) => e.data.number)).size).toBe(uids.length);
    expect(uids.map((e) => e.data.number).sort()).toEqual([10000, 10001, 10002, 10003, 10004]);
    for (const e of uids) expect(entries.get(person(String(e.data.name)))?.get("uidnumber")).toEqual([String(e.data.number)]);
    // A person created later gets the next number; the earlier ones keep theirs.
    await h.call("principal.create", { id: "frank", kind: "person", displayName: "Frank Poole" });
    const f = parseLdif((await search(bindAs(person("bob"), pw.bob), person("frank"), "(objectClass=*)", "-s", "base", "uidNumber")).stdout);
    expect(f.get(person("frank"))?.get("uidnumber")).toEqual(["10005"]);
    expect((await events("PosixIdAllocated")).length).toBe(allocated.length + 1);
  });

  it("groups are groupOfNames + posixGroup with member, memberUid and gidNumber; memberOf filters match them", async () => {
    const bind = bindAs(person("alice"), pw.alice);
    const g = parseLdif((await search(bind, `ou=groups,${base}`, "(cn=engineers)")).stdout).get(`cn=engineers,ou=groups,${base}`)!;
    expect(g.get("objectclass")).toEqual(expect.arrayContaining(["groupOfNames", "posixGroup"]));
    expect(g.get("member")).toEqual([person("alice"), person("bob")]);
    expect(g.get("memberuid")).toEqual(["alice", "bob"]);
    expect(Number(g.get("gidnumber")![0])).toBeGreaterThanOrEqual(10000);
    const ops = await search(bind, base, `(memberOf=CN=Ops,OU=Groups,${base.toUpperCase()})`, "1.1");
    expect([...parseLdif(ops.stdout).keys()]).toEqual([person("alice")]);
    const eng = await search(bind, base, `(&(objectClass=inetOrgPerson)(memberOf=cn=engineers,ou=groups,${base}))`, "uid");
    expect([...parseLdif(eng.stdout).keys()].sort()).toEqual([person("alice"), person("bob")]);
  });

  it("filters: and/or/not, presence, substrings, >=/<=, case-insensitive per attribute syntax; scopes and attribute selection", async () => {
    const bind = bindAs(person("alice"), pw.alice);
    const dns = async (filter: string, ...rest: string[]) => [...parseLdif((await search(bind, base, filter, "1.1", ...rest)).stdout).keys()].sort();
    expect(await dns("(cn=ALICE liddell)")).toEqual([person("alice")]);
    expect(await dns("(&(objectClass=person)(mail=*))")).toEqual([person("alice"), person("bob")]);
    expect(await dns("(&(objectClass=person)(!(mail=*)))")).toEqual([person("carol"), person("dave"), person("eve"), person("frank")]);
    expect(await dns("(|(uid=bo*)(cn=*danv*))")).toEqual([person("bob"), person("carol")]);
    expect(await dns("(sn=*ll)")).toEqual([person("alice")]);
    expect(await dns("(&(uidNumber>=10003)(uidNumber<=10004))")).toEqual([person("dave"), person("eve")]);
    // homeDirectory is case-exact (caseExactIA5Match): a different case does not match.
    expect(await dns("(homeDirectory=/home/alice)")).toEqual([person("alice")]);
    expect(await dns("(homeDirectory=/HOME/ALICE)")).toEqual([]);
    // Org units as organizationalUnit under o=<org>; people carry o/ou.
    expect(await dns("(objectClass=organizationalUnit)", "-s", "sub")).toEqual([`ou=eng,o=acme,${base}`, `ou=groups,${base}`, `ou=people,${base}`, `ou=services,${base}`].sort());
    expect(await dns("(&(o=acme)(ou=eng)(objectClass=inetOrgPerson))")).toEqual([person("alice")]);
    const one = await run("ldapsearch", [...bind, "-LLL", "-b", base, "-s", "one", "(objectClass=*)", "1.1"]);
    expect([...parseLdif(one.stdout).keys()].sort()).toEqual([`o=acme,${base}`, `ou=groups,${base}`, `ou=people,${base}`, `ou=services,${base}`].sort());
    const sel = parseLdif((await search(bind, person("bob"), "(objectClass=*)", "-s", "base", "mail", "UID")).stdout).get(person("bob"))!;
    expect([...sel.keys()].sort()).toEqual(["mail", "uid"]);
    // sizeLimit: two entries, then sizeLimitExceeded (exit 4).
    const limited = await search(bind, `ou=people,${base}`, "(uid=*)", "-z", "2", "1.1");
    expect(limited.code).toBe(4);
    expect(parseLdif(limited.stdout).size).toBe(2);
    // A base outside the tree.
    expect((await search(bind, "dc=elsewhere", "(objectClass=*)")).code).toBe(32);
  });

  it("pages with the RFC 2696 control (-E pr=2/noprompt) and returns every person once", async () => {
    const r = await run("ldapsearch", [...bindAs(person("alice"), pw.alice), "-o", "ldif-wrap=no", "-b", `ou=people,${base}`, "-E", "pr=2/noprompt", "(objectClass=inetOrgPerson)", "uid"]);
    expect(r.code).toBe(0);
    const people = [...h.ctx.core.dir.principals.values()].filter((p) => p.exists && p.kind === "person").map((p) => person(p.id));
    expect(people.length).toBeGreaterThan(4);
    // Each page's SearchResultDone carries the control: a cookie on every page but the last.
    const cookies = [...r.stdout.matchAll(/^pagedresults: estimate=\d+ cookie=(\S*)$/gm)].map((m) => m[1]);
    expect(cookies.length).toBe(Math.ceil(people.length / 2));
    expect(cookies.slice(0, -1).every((c) => c !== "")).toBe(true);
    expect(cookies.at(-1)).toBe("");
    const found = [...parseLdif(r.stdout).keys()];
    expect(found.sort()).toEqual(people.sort());
  });

  it("a service binds with its API key and reads the directory; a key without directory read is refused", async () => {
    const svc = bindAs(`cn=wiki,ou=services,${base}`, wikiKey);
    const r = await search(svc, `ou=people,${base}`, "(uid=bob)", "cn");
    expect(r.code).toBe(0);
    expect(parseLdif(r.stdout).get(person("bob"))?.get("cn")).toEqual(["Bob Builder"]);
    expect((await run("ldapwhoami", svc)).stdout.trim()).toBe(`dn:cn=wiki,ou=services,${base}`);
    // A service whose directory read is scoped to organization acme sees acme's people only.
    await h.call("principal.create", { id: "crm", kind: "service", displayName: "crm" });
    await h.call("policy.bind", { id: "crm-auditor-acme", role: "auditor", subject: { kind: "principal", id: "crm" }, scope: { kind: "org", id: "acme" } });
    const crmKey = (await h.call<{ key: string }>("apikey.issue", { owner: "crm", label: "ldap", roles: ["auditor"] })).key;
    const scoped = await search(bindAs(`cn=crm,ou=services,${base}`, crmKey), `ou=people,${base}`, "(objectClass=inetOrgPerson)", "1.1");
    expect(scoped.code).toBe(0);
    expect([...parseLdif(scoped.stdout).keys()]).toEqual([person("alice")]);
    // dns-bot's key is genuine but its roles do not grant reading principals.
    expect((await search(bindAs(`cn=dns-bot,ou=services,${base}`, dnsKey), base, "(objectClass=*)")).code).toBe(50);
    // The right key under another service's DN, or a wrong key: invalid credentials.
    expect((await search(bindAs(`cn=dns-bot,ou=services,${base}`, wikiKey), base, "(objectClass=*)")).code).toBe(49);
    expect((await search(bindAs(`cn=wiki,ou=services,${base}`, `${wikiKey.slice(0, -2)}xx`), base, "(objectClass=*)")).code).toBe(49);
  });

  it("refuses a wrong password, a disabled person, anonymous and unauthenticated binds; locks after repeated failures", async () => {
    expect((await search(bindAs(person("alice"), "not alice's passphrase"), base, "(uid=alice)")).code).toBe(49);
    expect((await search(bindAs(person("carol"), pw.carol), base, "(uid=alice)")).code).toBe(49);
    expect((await search(bindAs(person("nobody"), "whatever password"), base, "(uid=alice)")).code).toBe(49);
    expect((await run("ldapsearch", ["-x", "-H", url, "-b", base, "(uid=alice)"])).code).toBe(48);
    expect((await run("ldapsearch", ["-x", "-H", url, "-D", person("alice"), "-w", "", "-b", base, "(uid=alice)"])).code).toBe(53);
    for (let i = 0; i < 3; i++) expect((await search(bindAs(person("eve"), "wrong passphrase!"), base, "(uid=eve)")).code).toBe(49);
    expect((await search(bindAs(person("eve"), pw.eve), base, "(uid=eve)")).code).toBe(49);
    expect((await events("PrincipalLocked")).map((e) => e.aggregate.id)).toContain("eve");
  });

  it("a person with TOTP appends the code to the password", async () => {
    expect((await search(bindAs(person("dave"), pw.dave), base, "(uid=dave)")).code).toBe(49);
    // The enrollment used the current step; the next step's code is within the allowed drift.
    const code = daveTotp.generate({ timestamp: Date.now() + 30_000 });
    const r = await search(bindAs(person("dave"), `${pw.dave}${code}`), base, "(uid=dave)", "uid");
    expect(r.code).toBe(0);
    expect(parseLdif(r.stdout).has(person("dave"))).toBe(true);
    // The same code again is a replay.
    expect((await search(bindAs(person("dave"), `${pw.dave}${code}`), base, "(uid=dave)")).code).toBe(49);
  });

  it("refuses every write (ldapmodify, ldapadd, ldapdelete) and changes nothing", async () => {
    const bind = bindAs(person("alice"), pw.alice);
    const before = (await h.ctx.core.store.read().next()).value;
    const mod = await run("ldapmodify", bind, `dn: ${person("bob")}\nchangetype: modify\nreplace: mail\nmail: evil@example.test\n\n`);
    expect(mod.code).toBe(53);
    expect(mod.stderr).toContain("read-only");
    const add = await run("ldapadd", bind, `dn: uid=mallory,ou=people,${base}\nobjectClass: inetOrgPerson\nuid: mallory\ncn: M\nsn: M\n\n`);
    expect(add.code).toBe(53);
    expect((await run("ldapdelete", [...bind, person("bob")])).code).toBe(53);
    expect(before).toBeDefined();
    expect(h.ctx.core.dir.principals.get("bob")?.email).toBe("bob@example.test");
    expect(h.ctx.core.dir.principals.has("mallory")).toBe(false);
    const cmp = await run("ldapcompare", [...bind, person("bob"), "mail:bob@example.test"]);
    expect(cmp.code).toBe(6);
  });

  it("random and truncated BER does not stop the server; a following search still works", async () => {
    const { port } = new URL(url);
    const send = (bytes: Buffer) =>
      new Promise<void>((resolve) => {
        const s = connect(Number(port), "127.0.0.1", () => s.end(bytes));
        s.on("data", () => undefined);
        s.on("error", () => resolve());
        s.on("close", () => resolve());
        s.setTimeout(2000, () => s.destroy());
      });
    // A name no principal has: a mutation that stays a valid bind must not count failures against a real person.
    const bindMsg = seq(Tag.Sequence, [int(1), seq(0x60, [int(3), str(person("nobody")), str("x", 0x80)])]);
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const inputs: Buffer[] = [Buffer.from([0x30, 0x80, 0, 0]), Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), Buffer.from([0x30, 0x03, 0x02, 0x01])];
    for (let i = 1; i < bindMsg.length; i++) inputs.push(bindMsg.subarray(0, i));
    for (let i = 0; i < 150; i++) {
      const b = Buffer.from(bindMsg);
      for (let k = 0; k < 3; k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
      inputs.push(b);
      inputs.push(Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 64) }, () => Math.floor(rand() * 256))));
    }
    for (const b of inputs) await send(b);
    const r = await search(bindAs(person("bob"), pw.bob), base, "(uid=bob)", "uid");
    expect(r.code).toBe(0);
    expect(parseLdif(r.stdout).has(person("bob"))).toBe(true);
  });

  it("a paged results cookie the server did not give for this search is refused (protocolError)", async () => {
    const { port } = new URL(url);
    const bindMsg = seq(Tag.Sequence, [int(1), seq(0x60, [int(3), str(person("alice")), str(pw.alice, 0x80)])]);
    const searchMsg = (id: number, cookie: Buffer) =>
      seq(Tag.Sequence, [
        int(id),
        seq(0x63, [str(`ou=people,${base}`), int(2, Tag.Enumerated), int(0, Tag.Enumerated), int(0), int(0), bool(false), str("objectClass", 0x87), seq(Tag.Sequence, [])]),
        seq(0xa0, [seq(Tag.Sequence, [str(OID.pagedResults), str(seq(Tag.Sequence, [int(2), str(cookie)]))])]),
      ]);
    // Result codes of the SearchResultDone (0x65) messages, by message id.
    const codes = await new Promise<Map<number, number>>((resolve, reject) => {
      const out = new Map<number, number>();
      let buf = Buffer.alloc(0);
      const s = connect(Number(port), "127.0.0.1", () => s.write(Buffer.concat([bindMsg, searchMsg(2, Buffer.from("made-up")), searchMsg(3, Buffer.alloc(0))])));
      s.on("error", reject);
      s.setTimeout(5000, () => s.destroy(new Error("timeout")));
      s.on("data", (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        for (let len = frameLength(buf, 1 << 20); len !== undefined; len = frameLength(buf, 1 << 20)) {
          const r = new BerReader(buf.subarray(0, len));
          const body = r.sub(r.expect(Tag.Sequence, "msg"));
          const id = readInt(body.expect(Tag.Integer, "id"), "id");
          const op = body.next();
          if (op.tag === 0x65) out.set(id, readInt(body.sub(op.value).expect(Tag.Enumerated, "code"), "code"));
          buf = buf.subarray(len);
        }
        if (out.size === 2) {
          s.end();
          resolve(out);
        }
      });
    });
    expect(codes.get(2)).toBe(2);
    expect(codes.get(3)).toBe(0);
  });

  it("serves LDAPS with a certificate; ldapsearch verifies it against the CA file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "realm-ldaps-"));
    try {
      const key = join(dir, "key.pem");
      const cert = join(dir, "cert.pem");
      const gen = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", key, "-out", cert], { encoding: "utf8" });
      expect(gen.status, gen.stderr).toBe(0);
      const tls = await startDirectoryServer(h.ctx.core, { port: 0, baseDn: base, tls: { key: readFileSync(key, "utf8"), cert: readFileSync(cert, "utf8") } }, h.ctx.core.log);
      try {
        expect(tls.url).toMatch(/^ldaps:/);
        const args = ["-x", "-H", tls.url, "-D", person("bob"), "-w", pw.bob, "-LLL", "-b", base, "(uid=bob)", "uid"];
        const ok = await run("ldapsearch", args, undefined, { LDAPTLS_CACERT: cert, LDAPTLS_REQCERT: "demand" });
        expect(ok.stderr).toBe("");
        expect(parseLdif(ok.stdout).has(person("bob"))).toBe(true);
        // Without the CA the client refuses the server (exit 255: can't contact): the TLS is real.
        const untrusted = await run("ldapsearch", args, undefined, { LDAPTLS_CACERT: "/dev/null", LDAPTLS_REQCERT: "demand" });
        expect(untrusted.code).toBe(255);
      } finally {
        await tls.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
