import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import { v7 as uuidv7 } from "uuid";
import { EventStore, EMPTY_POSITION } from "../../services/kernel/index.js";
import { freePort } from "../../services/nats/supervisor.js";
import { runRealm, startRealmProcess } from "../support/cli.js";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe("realm command line", () => {
  it("prints help for every command", async () => {
    const top = await runRealm(["--help"]);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain("up");
    expect(top.stdout).toContain("audit");
    const up = await runRealm(["up", "--help"]);
    expect(up.stdout).toContain("--nats <url>");
    const verify = await runRealm(["audit", "verify", "--help"]);
    expect(verify.stdout).toContain("first break");
  });

  it("`realm up` runs nats-server and the host, serves health, and stops cleanly on SIGTERM", async () => {
    const data = mkdtempSync(join(tmpdir(), "realm-up-"));
    dirs.push(data);
    const natsPort = await freePort();
    const httpPort = await freePort();
    const dnsPort = await freePort();
    const realm = await startRealmProcess(["up", "--data", data, "--nats-port", String(natsPort), "--http-port", String(httpPort), "--dns-port", String(dnsPort)], "cim-realm is up");
    expect(realm.stdout()).toContain(`nats://127.0.0.1:${natsPort}`);
    expect(realm.stdout()).toContain(`http://127.0.0.1:${httpPort}`);
    expect(realm.stdout()).toContain(`dns       udp+tcp ${dnsPort}`);
    expect(realm.stdout()).toMatch(/contexts {2}identity, dns, pki, identity, realm/);
    // the PKI's public routes answer without credentials (no issuer yet, so no CRL)
    expect((await fetch(`http://127.0.0.1:${httpPort}/pki/crl/ops.crl`)).status).toBe(404);
    expect(realm.stdout()).toContain("sealed with a generated passphrase");
    expect(existsSync(join(data, "nats", "nats-server.conf"))).toBe(true);
    // the admin API is protected: no credential, no answer
    const anon = await fetch(`http://127.0.0.1:${httpPort}/api/realm/contexts`);
    expect(anon.status).toBe(401);
    expect(((await anon.json()) as { error: { code: string } }).error.code).toBe("UNAUTHORIZED");
    // the OIDC issuer is the realm's own HTTP address
    const discovery = (await (await fetch(`http://127.0.0.1:${httpPort}/oidc/.well-known/openid-configuration`)).json()) as { issuer: string };
    expect(discovery.issuer).toBe(`http://127.0.0.1:${httpPort}/oidc`);
    const health = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
    expect(health.status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status).toBe(200);

    // write a few events through the kernel, then audit them with the CLI
    // operator mode: anonymous connections are refused, the realm's service creds are accepted
    await expect(connect({ servers: `nats://127.0.0.1:${natsPort}`, reconnect: false })).rejects.toThrow();
    const credsFile = join(data, "operator", "realm-service.creds");
    expect(realm.stdout()).toContain(credsFile);
    const nc = await connect({ servers: `nats://127.0.0.1:${natsPort}`, authenticator: credsAuthenticator(readFileSync(credsFile)) });
    const store = await EventStore.open(nc, "clitest");
    for (let i = 0; i < 5; i++) await store.append({ type: "thing", id: `t${i}` }, EMPTY_POSITION, [{ type: "ThingMade", data: { i } }], { commandId: uuidv7(), actor: "test" });
    await nc.close();
    const audit = await runRealm(["audit", "verify", "--nats", `nats://127.0.0.1:${natsPort}`, "--creds", credsFile]);
    expect(audit.code).toBe(0);
    expect(audit.stdout).toContain("clitest: 5 events in 5 aggregates verified");

    // first admin key, then the name domain through the CLI with it, answered by the realm's DNS server
    const nats = ["--nats", `nats://127.0.0.1:${natsPort}`, "--creds", credsFile];
    const boot = await runRealm(["identity", "bootstrap", ...nats]);
    expect(boot.code).toBe(0);
    const key = boot.stdout.trim().split("\n").pop()!;
    expect(key).toMatch(/^rk_/);
    expect(boot.stderr).not.toContain(key);
    const denied = await runRealm(["zone", "create", "lab.example", "--ns", "ns1.lab.example", ...nats]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain("UNAUTHORIZED");
    const env = { REALM_TOKEN: key };
    expect((await runRealm(["zone", "create", "lab.example", "--ns", "ns1.lab.example", ...nats], env)).code).toBe(0);
    expect((await runRealm(["host", "add", "web1.lab.example", "--ip", "192.0.2.80", ...nats], env)).code).toBe(0);
    const dig = spawnSync("dig", ["+short", "+time=2", "+tries=2", "-p", String(dnsPort), "@127.0.0.1", "web1.lab.example", "A"], { encoding: "utf8" });
    expect(dig.stdout.trim()).toBe("192.0.2.80");
    // a NATS account and user through the CLI; the creds connect
    expect((await runRealm(["account", "create", "lab", ...nats], env)).code).toBe(0);
    const userCreds = join(data, "alice.creds");
    expect((await runRealm(["user", "create", "lab", "alice", "--out", userCreds, ...nats], env)).code).toBe(0);
    const alice = await connect({ servers: `nats://127.0.0.1:${natsPort}`, authenticator: credsAuthenticator(readFileSync(userCreds)) });
    await alice.flush();
    await alice.close();
    const authed = await fetch(`http://127.0.0.1:${httpPort}/api/realm/contexts`, { headers: { authorization: `Bearer ${key}` } });
    expect(authed.status).toBe(200);

    realm.child.kill("SIGTERM");
    expect(await realm.exited).toBe(0);
    expect(realm.stderr()).toContain("stopped");
    // the supervised nats-server is gone too
    await expect(connect({ servers: `nats://127.0.0.1:${natsPort}`, reconnect: false, timeout: 1000 })).rejects.toThrow();
  });

  it("reports an unreachable NATS as a clear error", async () => {
    const port = await freePort();
    const r = await runRealm(["audit", "verify", "--nats", `nats://127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("UNAVAILABLE");
    expect(r.stderr).toContain("cannot reach");
  });
});
