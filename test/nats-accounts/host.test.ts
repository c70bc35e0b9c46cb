import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { startHost, type Host } from "../../services/host/host.js";
import { callRealm } from "../../services/host/client.js";
import { createLogger } from "../../services/host/logger.js";
import type { NatsSupervisor } from "../../services/nats/supervisor.js";
import { createNatsAccountsContext } from "../../identity/nats/service.js";
import { startOperatorNats, type OperatorNats } from "../support/realm-nats.js";
import { registerNatsAccountCommands } from "../../identity/nats/cli.js";
import { Command } from "commander";
import { existsSync, readFileSync } from "node:fs";
import type { SecretEscrow } from "../../secrets-client/contract.js";

let realm: OperatorNats;
let dir: string;
let server: NatsSupervisor;
/** The context's own identity (serves), and the local operator's (calls). */
let svcNc: NatsConnection;
let nc: NatsConnection;
let host: Host;
let serviceCreds: string;
const conns: NatsConnection[] = [];
const accountsOf = (d: string, extra: object = {}) => createNatsAccountsContext({ dir: d, sysCredsFile: realm.credsFile("realm-sys"), ...extra });

beforeAll(async () => {
  realm = await startOperatorNats(mkdtempSync(join(tmpdir(), "realm-nats-host-")));
  dir = realm.dir;
  server = realm.server;
  serviceCreds = readFileSync(realm.credsFile("realm-identity"), "utf8");
  svcNc = await realm.connectAs("realm-identity");
  nc = await realm.connectAs("admin");
  const ctx = await accountsOf(realm.paths.operator)({ nc: svcNc, log: createLogger({ level: "silent" }), dataDir: dir, trust: realm.trust });
  host = await startHost({ nc: svcNc, contexts: [ctx], httpPort: 0, log: createLogger({ level: "silent" }) });
}, 30_000);

afterAll(async () => {
  await host?.stop();
  await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
  await realm?.stop();
});

describe("NATS accounts over the host (NATS subjects and HTTP)", () => {
  it("account.create / user.create over NATS; the creds connect; queries list them without secrets", async () => {
    await callRealm(nc, "realm.identity.commands.account.create", { name: "app", jetstream: true });
    const u = await callRealm<{ creds: string; publicKey: string }>(nc, "realm.identity.commands.user.create", { account: "app", name: "svc", kind: "service", permissions: { pub: { allow: ["app.>"] } } });
    const c = await connect({ servers: server.url, authenticator: credsAuthenticator(new TextEncoder().encode(u.creds)) });
    conns.push(c);
    await c.flush();
    const users = await callRealm<{ users: { name: string; publicKey: string }[] }>(nc, "realm.identity.queries.users", { account: "app" });
    expect(users.users.map((x) => x.name)).toEqual(["svc"]);
    expect(JSON.stringify(users)).not.toMatch(/\bSU[A-Z2-7]{56}\b/);
  });

  it("HTTP: bad input is a typed 400 and a user for an unknown account a 404", async () => {
    const post = (path: string, body: unknown) => fetch(`${host.httpUrl}/api/identity${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const bad = await post("/account/update", { name: "app", limits: { conn: -7 } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("VALIDATION");
    const unknown = await post("/user/create", { account: "ghost", name: "x", kind: "person" });
    expect(unknown.status).toBe(404);
    const list = await fetch(`${host.httpUrl}/api/identity/accounts`);
    expect(((await list.json()) as { accounts: { name: string }[] }).accounts.map((a) => a.name).sort()).toEqual(["SYS", "app", "realm"]);
  });

  it("events carry no creds, seeds or JWT secrets", async () => {
    const { jetstreamManager } = await import("@nats-io/jetstream");
    const jsm = await jetstreamManager(svcNc);
    const info = await jsm.streams.info("REALM_IDENTITY");
    let all = "";
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) all += new TextDecoder().decode((await jsm.streams.getMessage("REALM_IDENTITY", { seq }))!.data);
    expect(all).toContain("NatsUserIssued");
    const secret = /\bS[OAU][A-Z2-7]{56}\b|NATS USER JWT|eyJ/;
    expect(serviceCreds).toMatch(secret); // the pattern does find a creds file
    expect(all).not.toMatch(secret);
  });

  it("CLI: realm account create, user create --out, user revoke, account export-nsc; --help on each", async () => {
    const credsFile = realm.credsFile("admin");
    const out: string[] = [];
    const log = console.log;
    const write = process.stdout.write.bind(process.stdout);
    console.log = (...a: unknown[]) => void out.push(a.join(" "));
    const run = async (...args: string[]) => {
      const program = new Command().exitOverride();
      registerNatsAccountCommands(program);
      await program.parseAsync(["node", "realm", ...args, "--nats", server.url, "--creds", credsFile]);
    };
    try {
      await run("account", "create", "cli", "--conns", "10");
      await run("user", "create", "cli", "dev", "--allow-pub", "cli.>", "--out", join(dir, "dev.creds"));
      expect(readFileSync(join(dir, "dev.creds"), "utf8")).toContain("BEGIN USER NKEY SEED");
      await run("user", "revoke", "cli", "dev");
      await run("account", "export-nsc", join(dir, "nsc"));
    } finally {
      console.log = log;
      process.stdout.write = write;
    }
    expect(out.join("\n")).toContain('"servers": 1');
    expect(existsSync(join(dir, "nsc", "cim-realm", "accounts", "cli", "cli.jwt"))).toBe(true);
    const help = new Command();
    registerNatsAccountCommands(help);
    for (const group of help.commands) for (const c of group.commands) expect(c.helpInformation()).toContain("Usage:");
  });

  it("with an escrow the creds go to the escrow; the reply carries only the reference", async () => {
    const kept = new Map<string, string>();
    const escrow: SecretEscrow = {
      async store(req) {
        const itemId = `item-${kept.size + 1}`;
        kept.set(itemId, req.secret);
        return { itemId, revision: "r1" };
      },
      async get(ref) {
        return kept.get(ref.itemId)!;
      },
    };
    const ctx = await accountsOf(realm.paths.operator, { escrow })({ nc: svcNc, log: createLogger({ level: "silent" }), dataDir: dir, trust: realm.trust });
    try {
      const r = await ctx.nats.createUser({ account: "app", name: "escrowed", kind: "agent" }, { commandId: (await import("../../services/kernel/index.js")).newId(), actor: "t" });
      expect(r.creds).toBeUndefined();
      expect(r.secretRef?.itemId).toBe("item-1");
      const c = await connect({ servers: server.url, authenticator: credsAuthenticator(new TextEncoder().encode(await escrow.get(r.secretRef!))) });
      conns.push(c);
      await c.flush();
    } finally {
      await ctx.stop?.();
    }
  });
});
