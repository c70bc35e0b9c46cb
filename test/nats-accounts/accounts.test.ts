import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { jetstreamManager } from "@nats-io/jetstream";
import { newId } from "../../services/kernel/index.js";
import { RealmError } from "../../services/kernel/errors.js";
import type { NatsSupervisor } from "../../services/nats/supervisor.js";
import { bootstrapOperator, type Bootstrap } from "../../identity/nats/bootstrap.js";
import { startOperatorNats, type OperatorNats } from "../support/realm-nats.js";
import { publishVerdict } from "../support/permissions.js";
import { NatsAccounts } from "../../identity/nats/service.js";
import { validateUserJwt } from "../../identity/nats/jwt.js";

let realm: OperatorNats;
let operatorDir: string;
let server: NatsSupervisor;
let boot: Bootstrap;
let nc: NatsConnection;
let svc: NatsAccounts;
const open: NatsConnection[] = [];
const meta = () => ({ commandId: newId(), actor: "test" });

async function as(creds: string, opts: object = {}): Promise<NatsConnection> {
  const c = await connect({ servers: server.url, authenticator: credsAuthenticator(new TextEncoder().encode(creds)), reconnect: false, ...opts });
  open.push(c);
  return c;
}

const pubError = publishVerdict;

async function refused(creds: string): Promise<boolean> {
  try {
    const c = await as(creds);
    await c.flush();
    return false;
  } catch {
    return true;
  }
}

beforeAll(async () => {
  realm = await startOperatorNats(mkdtempSync(join(tmpdir(), "realm-nats-acc-")));
  operatorDir = realm.paths.operator;
  boot = realm.operator;
  server = realm.server;
  nc = await realm.connectAs("realm-identity");
  svc = await NatsAccounts.open(nc, { dir: operatorDir, realmTrust: realm.trust, sysCredsFile: realm.credsFile("realm-sys") });
}, 30_000);

afterAll(async () => {
  await svc?.close();
  await Promise.all(open.map((c) => c.close().catch(() => undefined)));
  await realm?.stop();
});

describe("NATS accounts against nats-server in operator mode", () => {
  it("bootstrap: realm services connect with realm-issued creds, the operator identity seed is only in the sealed bundle", async () => {
    expect(svc.accounts().map((a) => a.name).sort()).toEqual(["SYS", "realm"]);
    const { readFileSync, readdirSync } = await import("node:fs");
    const keys = readdirSync(join(operatorDir, "keys"));
    expect(keys.some((k) => k.startsWith(boot.state.operatorPublicKey))).toBe(false);
    expect(readFileSync(boot.bundleFile, "utf8")).not.toMatch(/\bSO[A-Z2-7]{56}\b/);
    const again = await bootstrapOperator(operatorDir);
    expect(again.state.operatorPublicKey).toBe(boot.state.operatorPublicKey);
  });

  it("a retried account command (same command id) is answered without a second event", async () => {
    const m = meta();
    await svc.createAccount({ name: "retry" }, m);
    const before = await svc.store.lastSequence();
    await expect(svc.createAccount({ name: "retry" }, m)).resolves.toMatchObject({ name: "retry" });
    expect(await svc.store.lastSequence()).toBe(before);
    await expect(svc.createAccount({ name: "retry" }, meta())).rejects.toMatchObject({ code: "ALREADY_EXISTS" });
  });

  it("a user's creds connect; allowed publish works, a forbidden one is a permissions violation", async () => {
    await svc.createAccount({ name: "ops" }, meta());
    const u = await svc.createUser({ account: "ops", name: "alice", kind: "person", permissions: { pub: { allow: ["ops.>"] }, sub: { allow: ["ops.>", "_INBOX.>"] } } }, meta());
    expect(u.creds).toContain("BEGIN NATS USER JWT");
    const c = await as(u.creds!);
    const sub = c.subscribe("ops.in", { max: 1 });
    await c.flush();
    expect(await pubError(c, "ops.in")).toBeUndefined();
    for await (const m of sub) expect(m.string()).toBe("x");
    const err = await pubError(c, "billing.x");
    expect(err).toMatch(/permissions violation/i);
  });

  it("a scoped-signing-key user gets exactly the template's permissions", async () => {
    await svc.addSigningKey({ account: "ops", role: "team", template: { pub: { allow: ["{{name()}}.>"] }, sub: { allow: ["_INBOX.>"] } } }, meta());
    const u = await svc.createUser({ account: "ops", name: "bob", kind: "agent", role: "team" }, meta());
    const c = await as(u.creds!);
    expect(await pubError(c, "bob.x")).toBeUndefined();
    expect(await pubError(c, "alice.x")).toMatch(/permissions violation/i);
    await expect(svc.createUser({ account: "ops", name: "carol", kind: "agent", role: "team", permissions: { pub: { allow: ["x"] } } }, meta())).rejects.toMatchObject({ code: "VALIDATION" });
  });

  it("JetStream works in a JetStream-enabled account and is refused in one without", async () => {
    await svc.createAccount({ name: "js", jetstream: true }, meta());
    const withJs = await as((await svc.createUser({ account: "js", name: "svc", kind: "service" }, meta())).creds!);
    const jsm = await jetstreamManager(withJs);
    await jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"] });
    expect((await jsm.streams.info("ORDERS")).config.name).toBe("ORDERS");
    const noJs = await as((await svc.createUser({ account: "ops", name: "nojs", kind: "service" }, meta())).creds!);
    await expect(jetstreamManager(noJs).then((m) => m.getAccountInfo())).rejects.toThrow();
  });

  it("account limits changed by an event take effect without restart; a deleted account's users are refused", async () => {
    await svc.createAccount({ name: "lim" }, meta());
    const creds = (await svc.createUser({ account: "lim", name: "u", kind: "service" }, meta())).creds!;
    await as(creds);
    expect(await refused(creds)).toBe(false);
    await svc.updateAccount({ name: "lim", limits: { conn: 2 } }, meta());
    expect(await refused(creds)).toBe(true);
    await svc.updateAccount({ name: "lim", limits: { conn: -1 } }, meta());
    expect(await refused(creds)).toBe(false);
    await svc.deleteAccount({ name: "lim" }, meta());
    expect(await refused(creds)).toBe(true);
    await expect(svc.createUser({ account: "lim", name: "v", kind: "service" }, meta())).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("a revoked user's live connection is closed and a reconnect is refused", async () => {
    const creds = (await svc.createUser({ account: "ops", name: "mallory", kind: "person" }, meta())).creds!;
    const c = await as(creds);
    const closed = c.closed();
    await svc.revokeUser({ account: "ops", name: "mallory" }, meta());
    const why = await closed;
    expect(String(why)).toMatch(/revoked|authorization/i);
    expect(await refused(creds)).toBe(true);
    expect(svc.users("ops").find((u) => u.name === "mallory")?.revoked).toBe(true);
  });

  it("revoking a signing key drops the users it signed; the account's other users stay", async () => {
    const sk = await svc.addSigningKey({ account: "ops", role: "temp", template: { pub: { allow: ["tmp.>"] } } }, meta());
    const temp = await as((await svc.createUser({ account: "ops", name: "tempuser", kind: "agent", role: "temp" }, meta())).creds!);
    const stays = await as((await svc.createUser({ account: "ops", name: "stays", kind: "person" }, meta())).creds!);
    const closed = temp.closed();
    await svc.revokeSigningKey({ account: "ops", key: sk.key }, meta());
    await closed;
    expect(temp.isClosed()).toBe(true);
    await stays.flush();
    expect(stays.isClosed()).toBe(false);
    expect(svc.accounts().find((a) => a.name === "ops")!.signingKeys.map((k) => k.key)).not.toContain(sk.key);
  });

  it("rotating a scoped signing key keeps the scope: old-key users drop, new users get the same template", async () => {
    const sk = await svc.addSigningKey({ account: "ops", role: "rot", template: { pub: { allow: ["rot.>"] } } }, meta());
    const old = await as((await svc.createUser({ account: "ops", name: "rot1", kind: "agent", role: "rot" }, meta())).creds!);
    const closed = old.closed();
    const r = await svc.rotateSigningKey({ account: "ops", key: sk.key }, meta());
    await closed;
    expect(old.isClosed()).toBe(true);
    const keys = svc.accounts().find((a) => a.name === "ops")!.signingKeys;
    expect(keys).toContainEqual({ key: r.key, role: "rot" });
    expect(keys.map((k) => k.key)).not.toContain(sk.key);
    await svc.revokeUser({ account: "ops", name: "rot1" }, meta());
    const fresh = await as((await svc.createUser({ account: "ops", name: "rot1", kind: "agent", role: "rot" }, meta())).creds!);
    expect(await pubError(fresh, "rot.x")).toBeUndefined();
    expect(await pubError(fresh, "other.x")).toMatch(/permissions violation/i);
  });

  it("subject mappings on an account take effect after the update", async () => {
    await svc.createAccount({ name: "map" }, meta());
    const c = await as((await svc.createUser({ account: "map", name: "m", kind: "service" }, meta())).creds!);
    const sub = c.subscribe("new.orders", { max: 1 });
    await c.flush();
    await svc.updateAccount({ name: "map", mappings: { "old.orders": [{ subject: "new.orders", weight: 100 }] } }, meta());
    c.publish("old.orders", "moved");
    for await (const m of sub) expect(m.string()).toBe("moved");
    await expect(svc.updateAccount({ name: "map", mappings: { "a.*": [{ subject: "b.*", weight: 100 }] } }, meta())).rejects.toMatchObject({ code: "VALIDATION" });
  });

  it("a service in account A answers a request from account B only after the import is granted", async () => {
    await svc.createAccount({ name: "a" }, meta());
    await svc.createAccount({ name: "b" }, meta());
    await svc.updateAccount({ name: "a", exports: [{ name: "time", subject: "svc.time", type: "service", tokenRequired: true }] }, meta());
    const ca = await as((await svc.createUser({ account: "a", name: "srv", kind: "service" }, meta())).creds!);
    ca.subscribe("svc.time", { callback: (_e, m) => {
        m.respond("tick");
      } });
    await ca.flush();
    const cb = await as((await svc.createUser({ account: "b", name: "cli", kind: "service" }, meta())).creds!);
    await expect(cb.request("svc.time", "", { timeout: 500 })).rejects.toThrow();
    await svc.updateAccount({ name: "b", imports: [{ name: "time", account: "a", subject: "svc.time", type: "service" }] }, meta());
    expect((await cb.request("svc.time", "", { timeout: 2000 })).string()).toBe("tick");
  });

  it("a public stream export reaches an importing account without a token", async () => {
    await svc.createAccount({ name: "feed" }, meta());
    await svc.createAccount({ name: "reader" }, meta());
    await svc.updateAccount({ name: "feed", exports: [{ name: "prices", subject: "prices.>", type: "stream" }] }, meta());
    await svc.updateAccount({ name: "reader", imports: [{ name: "prices", account: "feed", subject: "prices.>", type: "stream", localSubject: "ext.prices.>" }] }, meta());
    const pubc = await as((await svc.createUser({ account: "feed", name: "p", kind: "service" }, meta())).creds!);
    const subc = await as((await svc.createUser({ account: "reader", name: "r", kind: "service" }, meta())).creds!);
    const sub = subc.subscribe("ext.prices.eur", { max: 1 });
    await subc.flush();
    pubc.publish("prices.eur", "1.08");
    for await (const m of sub) expect(m.string()).toBe("1.08");
  });

  it("user restrictions: response permission, source network, connection types, tag templates", async () => {
    const responder = await as((await svc.createUser({ account: "ops", name: "responder", kind: "service", permissions: { sub: { allow: ["ops.svc"] }, pub: { allow: ["ops.none"] }, resp: { max: 1, ttlMs: 5000 } } }, meta())).creds!);
    responder.subscribe("ops.svc", { callback: (_e, m) => {
      m.respond("pong");
    } });
    await responder.flush();
    const caller = await as((await svc.createUser({ account: "ops", name: "caller", kind: "service" }, meta())).creds!);
    expect((await caller.request("ops.svc", "", { timeout: 2000 })).string()).toBe("pong");
    const far = (await svc.createUser({ account: "ops", name: "far", kind: "person", src: ["10.99.0.0/16"] }, meta())).creds!;
    expect(await refused(far)).toBe(true);
    const near = (await svc.createUser({ account: "ops", name: "near", kind: "person", src: ["127.0.0.0/8"] }, meta())).creds!;
    expect(await refused(near)).toBe(false);
    const wsOnly = (await svc.createUser({ account: "ops", name: "ws", kind: "person", connectionTypes: ["WEBSOCKET"] }, meta())).creds!;
    expect(await refused(wsOnly)).toBe(true);
    await svc.addSigningKey({ account: "ops", role: "teams", template: { pub: { allow: ["team.{{tag(team)}}.>"] } } }, meta());
    const red = await as((await svc.createUser({ account: "ops", name: "red1", kind: "agent", role: "teams", tags: ["team:red"] }, meta())).creds!);
    expect(await pubError(red, "team.red.x")).toBeUndefined();
    expect(await pubError(red, "team.blue.x")).toMatch(/permissions violation/i);
  });

  it("bad input is a typed error and nothing is pushed or recorded", async () => {
    const before = await svc.store.lastSequence();
    await expect(svc.createUser({ account: "ops", name: "e1", kind: "person", permissions: { pub: { allow: ["a..b"] } } }, meta())).rejects.toMatchObject({ code: "VALIDATION", message: expect.stringMatching(/empty token/) });
    await expect(svc.createUser({ account: "ops", name: "e2", kind: "person", permissions: { sub: { allow: ["a.>.b"] } } }, meta())).rejects.toMatchObject({ code: "VALIDATION", message: expect.stringMatching(/'>'/) });
    await expect(svc.updateAccount({ name: "ops", limits: { conn: -5 } }, meta())).rejects.toMatchObject({ code: "VALIDATION" });
    await expect(svc.createUser({ account: "nosuch", name: "e3", kind: "person" }, meta())).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(svc.createAccount({ name: "bad", limits: { payload: -2 } }, meta())).rejects.toMatchObject({ code: "VALIDATION" });
    expect(await svc.store.lastSequence()).toBe(before);
    expect(svc.accounts().find((a) => a.name === "bad")).toBeUndefined();
    const ops = await svc.account("ops");
    const acctJwt = await svc.accountJwt(ops);
    // expired JWT
    const { encodeUser, createUser, createAccount } = await import("@nats-io/jwt");
    const { kpFromSeed } = await import("../../identity/nats/jwt.js");
    const { KeyStore } = await import("../../identity/nats/keystore.js");
    const ks = new KeyStore(operatorDir);
    const sk = kpFromSeed(ks.seed(ops.signingKeys.find((k) => !k.scope)!.key));
    const expired = await encodeUser("old", createUser(), ops.publicKey, {}, { signer: sk, exp: Math.floor(Date.now() / 1000) - 10 });
    expect(() => validateUserJwt(expired, acctJwt, svc.trust)).toThrow(/expired/);
    const foreign = await encodeUser("f", createUser(), ops.publicKey, {}, { signer: createAccount() });
    expect(() => validateUserJwt(foreign, acctJwt, svc.trust)).toThrow(expect.objectContaining({ code: "INTEGRITY" }));
    const { encodeAccount, createOperator } = await import("@nats-io/jwt");
    const { validateAccountJwt } = await import("../../identity/nats/jwt.js");
    const foreignAcct = await encodeAccount("ops", ops.publicKey, { limits: { conn: -1, subs: -1, payload: -1, data: -1, leaf: -1, imports: -1, exports: -1, wildcards: true } } as never, { signer: createOperator() });
    expect(() => validateAccountJwt(foreignAcct, svc.trust)).toThrow(expect.objectContaining({ code: "INTEGRITY" }));
    const tampered = acctJwt.slice(0, -4) + (acctJwt.endsWith("AAAA") ? "BBBB" : "AAAA");
    expect(() => validateAccountJwt(tampered, svc.trust)).toThrow(expect.objectContaining({ code: "INTEGRITY" }));
    expect(validateAccountJwt(acctJwt, svc.trust).sub).toBe(ops.publicKey);
  });

  it("nsc export lists the operator and every live account JWT", async () => {
    const files = await svc.nscExport();
    expect(Object.keys(files)).toContain("cim-realm/cim-realm.jwt");
    expect(Object.keys(files)).toContain("cim-realm/accounts/ops/ops.jwt");
    expect(Object.keys(files).some((f) => f.includes("/lim/"))).toBe(false);
    expect(JSON.stringify(files)).not.toMatch(/\bS[OAU][A-Z2-7]{56}\b/);
  });
});
