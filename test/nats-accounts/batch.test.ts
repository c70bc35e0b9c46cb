import { mkdtempSync, readFileSync, statSync, writeFileSync, existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Command } from "commander";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { fromPublic } from "@nats-io/nkeys";
import { newId } from "../../services/kernel/index.js";
import { startHost, type Host } from "../../services/host/host.js";
import { callRealm } from "../../services/host/client.js";
import { createLogger } from "../../services/host/logger.js";
import { createNatsAccountsContext, type NatsAccounts, type NatsAccountsContext } from "../../identity/nats/service.js";
import { registerNatsAccountCommands } from "../../identity/nats/cli.js";
import { decodeVerified } from "../../identity/nats/jwt.js";
import { chunkUsers, parseUsersCsv, replyBytesOf } from "../../identity/nats/users-csv.js";
import type { SecretEscrow } from "../../secrets-client/contract.js";
import { startOperatorNats, type OperatorNats } from "../support/realm-nats.js";
import { publishVerdict } from "../support/permissions.js";

let realm: OperatorNats;
let ctx: NatsAccountsContext;
let svc: NatsAccounts;
let host: Host;
let admin: NatsConnection;
const open: NatsConnection[] = [];
const meta = () => ({ commandId: newId(), actor: "test" });
const jwtOf = (creds: string) => /-----BEGIN NATS USER JWT-----\n(.+)\n/.exec(creds)![1]!;

async function as(creds: string): Promise<NatsConnection> {
  const c = await connect({ servers: realm.url, authenticator: credsAuthenticator(new TextEncoder().encode(creds)), reconnect: false });
  open.push(c);
  return c;
}
async function refused(creds: string): Promise<boolean> {
  try {
    await (await as(creds)).flush();
    return false;
  } catch {
    return true;
  }
}

beforeAll(async () => {
  realm = await startOperatorNats(mkdtempSync(join(tmpdir(), "realm-nats-batch-")));
  const nc = await realm.connectAs("realm-identity");
  ctx = await createNatsAccountsContext({ dir: realm.paths.operator, sysCredsFile: realm.credsFile("realm-sys") })({ nc, log: createLogger({ level: "silent" }), dataDir: realm.dir, trust: realm.trust });
  svc = ctx.nats;
  host = await startHost({ nc, contexts: [ctx], httpPort: 0, log: createLogger({ level: "silent" }) });
  admin = await realm.connectAs("admin");
  await svc.createAccount({ name: "team" }, meta());
  await svc.addSigningKey({ account: "team", role: "crew", template: { pub: { allow: ["crew.{{tag(crew)}}.>"] }, sub: { allow: ["_INBOX.>"] } } }, meta());
}, 60_000);

afterAll(async () => {
  await host?.stop();
  await Promise.all(open.map((c) => c.close().catch(() => undefined)));
  await realm?.stop();
});

describe("user.createMany: creds for many users in one command", () => {
  it("issues every user in order, one event each; nats-server accepts the creds (unscoped, scoped, restricted)", async () => {
    const before = await svc.store.lastSequence();
    const users = [
      ...Array.from({ length: 300 }, (_, i) => ({ name: `w${i}`, kind: "service" as const, permissions: { pub: { allow: [`w${i}.>`] }, sub: { allow: ["_INBOX.>"] } } })),
      { name: "red", kind: "agent" as const, role: "crew", tags: ["crew:red"] },
      { name: "far", kind: "person" as const, src: ["10.99.0.0/16"], expiresInDays: 7 },
      { name: "bearer", kind: "person" as const, bearer: true, tags: ["t:1"] },
    ];
    const r = await svc.createUsers({ account: "team", users }, meta());
    expect(r.issued).toBe(users.length);
    expect(r.failed).toBe(0);
    expect(r.users.map((u) => u.user)).toEqual(users.map((u) => u.name));
    expect(new Set(r.users.map((u) => u.publicKey)).size).toBe(users.length);
    expect((await svc.store.lastSequence()) - before).toBe(users.length);
    const listed = svc.users("team");
    for (const u of users) expect(listed.find((x) => x.name === u.name)?.revoked).toBe(false);
    // each JWT verifies with nkeys.js, names the user's key, and was issued at the second its event records
    for (const [i, u] of r.users.entries()) {
      const c = decodeVerified<Record<string, unknown>>(jwtOf(u.creds!));
      const [h, p, s] = jwtOf(u.creds!).split(".");
      if (i % 25 === 0) expect(fromPublic(c.iss).verify(new TextEncoder().encode(`${h}.${p}`), Buffer.from(s!, "base64url"))).toBe(true); // nkeys.js: ~20 ms each
      expect(c.sub).toBe(u.publicKey);
      expect(c.exp).toBe(u.expiresAt);
      expect(listed.find((x) => x.name === u.user)!.issuedAt).toBe(c.iat);
    }
    const w7 = await as(r.users[7]!.creds!);
    expect(await publishVerdict(w7, "w7.x")).toBeUndefined();
    expect(await publishVerdict(w7, "w8.x")).toMatch(/permissions violation/i);
    const red = await as(r.users[300]!.creds!);
    expect(await publishVerdict(red, "crew.red.x")).toBeUndefined();
    expect(await publishVerdict(red, "crew.blue.x")).toMatch(/permissions violation/i);
    expect(await refused(r.users[301]!.creds!)).toBe(true); // src 10.99.0.0/16
    expect(r.users[301]!.expiresAt! - listed.find((x) => x.name === "far")!.issuedAt).toBe(7 * 86400);
    await (await as(r.users[302]!.creds!)).flush();
  });

  it("one bad entry refuses the whole batch, naming its index; nothing is issued", async () => {
    const before = await svc.store.lastSequence();
    const ok = (i: number) => ({ name: `ok${i}`, kind: "person" as const });
    const cases: [object, RegExp, string][] = [
      [{ name: "bad1", kind: "person", permissions: { pub: { allow: ["a..b"] } } }, /users\[2\] \(bad1\): .*empty token/, "VALIDATION"],
      [{ name: "ok0", kind: "person" }, /users\[2\] \(ok0\): the name is also users\[0\]/, "VALIDATION"],
      [{ name: "w3", kind: "service" }, /users\[2\] \(w3\): .*has valid creds; revoke first/, "ALREADY_EXISTS"],
      [{ name: "sc", kind: "agent", role: "nosuch" }, /users\[2\] \(sc\): .*no scoped signing key with role nosuch/, "NOT_FOUND"],
      [{ name: "sc2", kind: "agent", role: "crew", permissions: { pub: { allow: ["x"] } } }, /users\[2\] \(sc2\): .*scoped/, "VALIDATION"],
      [{ name: "long", kind: "person", expiresInDays: 5000 }, /users\[2\] \(long\): expiresInDays/, "VALIDATION"],
    ];
    for (const [bad, message, code] of cases) {
      await expect(svc.createUsers({ account: "team", users: [ok(0), ok(1), bad as never, ok(3)] }, meta())).rejects.toMatchObject({ code, message: expect.stringMatching(message), details: expect.objectContaining({ index: 2 }) });
    }
    await expect(svc.createUsers({ account: "nosuch", users: [ok(0)] }, meta())).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(svc.createUsers({ account: "SYS", users: [ok(0)] }, meta())).rejects.toMatchObject({ code: "VALIDATION" });
    await expect(svc.createUsers({ account: "team", users: [] }, meta())).rejects.toMatchObject({ code: "VALIDATION" });
    await expect(svc.createUsers({ account: "team", users: Array.from({ length: 10_001 }, (_, i) => ok(i)) }, meta())).rejects.toMatchObject({ code: "VALIDATION", message: expect.stringMatching(/10000/) });
    // a reply over the server's max_payload is refused before anything is recorded
    await expect(svc.createUsers({ account: "team", users: Array.from({ length: 50 }, (_, i) => ok(i)) }, meta(), { maxReplyBytes: 20_000 })).rejects.toMatchObject({ code: "VALIDATION", message: expect.stringMatching(/max_payload.*at most ~1\d users per call/) });
    expect(await svc.store.lastSequence()).toBe(before);
    expect(svc.users("team").some((u) => u.name.startsWith("ok"))).toBe(false);
  });

  it("a resent batch (same command id) issues nothing twice; a revoked user is issued anew in a batch", async () => {
    const m = meta();
    const first = await svc.createUsers({ account: "team", users: [{ name: "again1", kind: "person" }, { name: "again2", kind: "person" }] }, m);
    expect(first.issued).toBe(2);
    const before = await svc.store.lastSequence();
    await expect(svc.createUsers({ account: "team", users: [{ name: "again1", kind: "person" }, { name: "again2", kind: "person" }] }, m)).rejects.toMatchObject({ code: "CONFLICT", message: expect.stringMatching(/users\[0\].*delivered only once/) });
    expect(await svc.store.lastSequence()).toBe(before);
    const old = first.users[0]!.creds!;
    await svc.revokeUser({ account: "team", name: "again1" }, meta());
    await new Promise((r) => setTimeout(r, 1100)); // revocations have second granularity
    const re = await svc.createUsers({ account: "team", users: [{ name: "again1", kind: "person" }, { name: "fresh", kind: "person" }] }, meta());
    expect(re.issued).toBe(2);
    expect(re.users[0]!.publicKey).not.toBe(first.users[0]!.publicKey);
    expect(await refused(old)).toBe(true);
    await (await as(re.users[0]!.creds!)).flush();
  });

  it("with an escrow the batch answers escrow references, in order", async () => {
    const kept = new Map<string, string>();
    const escrow: SecretEscrow = {
      async store(req) {
        const itemId = `item-${req.name}`;
        kept.set(itemId, req.secret);
        return { itemId, revision: "r1" };
      },
      async get(ref) {
        return kept.get(ref.itemId)!;
      },
    };
    const nc = await realm.connectAs("realm-identity");
    const e = await createNatsAccountsContext({ dir: realm.paths.operator, sysCredsFile: realm.credsFile("realm-sys"), escrow })({ nc, log: createLogger({ level: "silent" }), dataDir: realm.dir, trust: realm.trust });
    try {
      const r = await e.nats.createUsers({ account: "team", users: [{ name: "esc1", kind: "agent" }, { name: "esc2", kind: "service" }] }, meta());
      expect(r.users.map((u) => [u.creds, u.secretRef?.itemId])).toEqual([[undefined, "item-nats:team/esc1:creds"], [undefined, "item-nats:team/esc2:creds"]]);
      await (await as(kept.get("item-nats:team/esc2:creds")!)).flush();
    } finally {
      await e.stop?.();
    }
  });

  it("over NATS (user.createMany): the operator's creds call it; a reply of ~700 users fits max_payload", async () => {
    const users = Array.from({ length: 700 }, (_, i) => ({ name: `n${i}`, kind: "service", permissions: { pub: { allow: [`apps.n${i}.>`, "apps.shared.>"] }, sub: { allow: [`_INBOX.n${i}.>`] } }, tags: ["app:n"] }));
    const r = await callRealm<{ issued: number; users: { user: string; creds: string }[] }>(admin, "realm.identity.commands.user.createMany", { account: "team", users }, { timeoutMs: 60_000 });
    expect(r.issued).toBe(700);
    await (await as(r.users[699]!.creds)).flush();
    // the CLI's estimate of a reply is an upper bound of what a user takes in it
    for (const [i, u] of r.users.entries()) expect(JSON.stringify(u).length).toBeLessThan(replyBytesOf(users[i] as never));
    await expect(callRealm(admin, "realm.identity.commands.user.createMany", { account: "team", users: Array.from({ length: 1000 }, (_, i) => ({ ...users[0]!, name: `big${i}` })) }, { timeoutMs: 60_000 })).rejects.toMatchObject({ code: "VALIDATION", message: expect.stringMatching(/max_payload/) });
    expect(svc.users("team").some((u) => u.name.startsWith("big"))).toBe(false);
  });
});

describe("realm user create <account> --from-file users.csv --out-dir", () => {
  const run = async (...args: string[]) => {
    const program = new Command().exitOverride();
    registerNatsAccountCommands(program);
    const log = console.log;
    const err = console.error;
    const out: string[] = [];
    const notes: string[] = [];
    console.log = (...a: unknown[]) => void out.push(a.join(" "));
    console.error = (...a: unknown[]) => void notes.push(a.join(" "));
    try {
      await program.parseAsync(["node", "realm", ...args, "--nats", realm.url, "--creds", realm.credsFile("admin")]);
    } finally {
      console.log = log;
      console.error = err;
    }
    return { out: out.join("\n"), notes };
  };

  it("writes each user's creds as <name>.creds (0600) with progress every 1,000 users", async () => {
    const dir = mkdtempSync(join(tmpdir(), "realm-csv-"));
    const lines = ["name,kind,allow_pub,allow_sub,expiry_days,tags", ...Array.from({ length: 2300 }, (_, i) => `c${i},service,c${i}.>;shared.>,_INBOX.>,30,app:c;tier:${i % 3}`), `"quoted",person,,,,`];
    writeFileSync(join(dir, "users.csv"), lines.join("\n") + "\n");
    const r = await run("user", "create", "team", "--from-file", join(dir, "users.csv"), "--out-dir", join(dir, "out"));
    expect(r.notes).toEqual(["1000/2301 users done", "2000/2301 users done", "2301/2301 users done"]);
    expect(JSON.parse(r.out)).toMatchObject({ account: "team", issued: 2301, failed: 0 });
    expect(readdirSync(join(dir, "out"))).toHaveLength(2301);
    const f = join(dir, "out", "c1234.creds");
    expect(statSync(f).mode & 0o777).toBe(0o600);
    const c = decodeVerified<{ pub?: { allow: string[] }; tags: string[] }>(jwtOf(readFileSync(f, "utf8")));
    expect(c.nats.pub!.allow).toEqual(["c1234.>", "shared.>"]);
    expect(c.nats.tags).toEqual(["app:c", "tier:1"]);
    expect(c.exp! - c.iat).toBe(30 * 86400);
    const u = await as(readFileSync(f, "utf8"));
    expect(await publishVerdict(u, "c1234.x")).toBeUndefined();
    expect(await publishVerdict(u, "c1235.x")).toMatch(/permissions violation/i);
    expect(existsSync(join(dir, "out", "quoted.creds"))).toBe(true);
  });

  it("a bad line names its line number and nothing of the file is issued", async () => {
    const dir = mkdtempSync(join(tmpdir(), "realm-csv-"));
    const before = await svc.store.lastSequence();
    const file = (rows: string[]) => {
      writeFileSync(join(dir, "u.csv"), ["name,kind,allow_pub", ...rows].join("\n"));
      return join(dir, "u.csv");
    };
    const good = Array.from({ length: 1500 }, (_, i) => `d${i},person,d${i}.>`);
    await expect(run("user", "create", "team", "--from-file", file([...good.slice(0, 1200), "bad,person,a..b", ...good.slice(1200)]), "--out-dir", join(dir, "o"))).rejects.toThrow(/^line 1202: .*empty token/);
    await expect(run("user", "create", "team", "--from-file", file([...good, "x,robot,"]), "--out-dir", join(dir, "o"))).rejects.toThrow(/^line 1502: kind/);
    // a user that holds valid creds (w5, issued above) is found before any chunk is sent
    await expect(run("user", "create", "team", "--from-file", file([...good, "w5,service,"]), "--out-dir", join(dir, "o"))).rejects.toThrow(/line 1502: .*w5 has valid creds.*nothing of the file was issued/);
    expect(await svc.store.lastSequence()).toBe(before);
    expect(existsSync(join(dir, "o"))).toBe(false);
    await expect(run("user", "create", "team", "--from-file", file(good.slice(0, 3)))).rejects.toThrow(/--out-dir/);
  });
});

describe("users.csv (pure)", () => {
  it("reads header columns in any order, quoted cells, ;-lists and defaults; names the line of any error", () => {
    const users = parseUsersCsv('\uFEFFtags,name,allow_sub\r\n"a:1;b",alice,"x.>;y"\r\n\r\n,bob,\n', { kind: "service", denyPub: [">"], expiresInDays: 30 });
    expect(users).toEqual([
      { line: 2, input: { name: "alice", kind: "service", permissions: { pub: { deny: [">"] }, sub: { allow: ["x.>", "y"], deny: undefined } }, expiresInDays: 30, tags: ["a:1", "b"] } },
      { line: 4, input: { name: "bob", kind: "service", permissions: { pub: { deny: [">"] } }, expiresInDays: 30 } },
    ].map((u) => JSON.parse(JSON.stringify(u))));
    expect(() => parseUsersCsv("name,colour\na,red")).toThrow(/line 1: unknown column "colour"/);
    expect(() => parseUsersCsv("kind\nperson")).toThrow(/line 1: .*name/);
    expect(() => parseUsersCsv("name\na\nb\na")).toThrow(/line 4: user a is also on line 2/);
    expect(() => parseUsersCsv('name\n"open')).toThrow(/line 2: unterminated/);
    expect(() => parseUsersCsv("name,tags\na,Upper")).toThrow(/line 2: tag "Upper"/);
    expect(() => parseUsersCsv("name,expiry_days\na,ten")).toThrow(/line 2: expiry_days "ten"/);
    expect(() => parseUsersCsv("name,allow_pub\na,x", { role: "crew" })).toThrow(/line 2: .*scoped/);
    expect(() => parseUsersCsv("name\n-a")).toThrow(/line 2: user name/);
    expect(() => parseUsersCsv("name\n")).toThrow(/no user/);
  });

  it("chunks hold at most 1,000 users and an estimated reply under the limit", () => {
    const users = parseUsersCsv(["name,allow_pub", ...Array.from({ length: 2500 }, (_, i) => `u${i},a.${i}.>`)].join("\n"));
    const chunks = chunkUsers(users);
    expect(chunks.every((c) => c.length <= 1000)).toBe(true);
    expect(chunks.flat()).toEqual(users);
    for (const c of chunks) expect(c.reduce((s, u) => s + replyBytesOf(u.input), 0)).toBeLessThanOrEqual(700 * 1024);
    expect(chunkUsers(users, 1000, 10 * 1024 * 1024).map((c) => c.length)).toEqual([1000, 1000, 500]);
  });
});
