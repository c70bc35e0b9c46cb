import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import { freePort } from "../../services/nats/supervisor.js";
import { runRealm, startRealmProcess } from "../support/cli.js";
import { EXIT_CODES, EXIT_USAGE } from "../../services/cli/exit-codes.js";

/** The error is one line, the last on stderr (after any progress lines): `error: <CODE>: <message>`; no stack trace, no warning. */
const oneErrorLine = (stderr: string, code: string) => {
  const lines = stderr.trimEnd().split("\n");
  expect(lines.at(-1)).toMatch(new RegExp(`^error: ${code}: \\S`));
  expect(lines.filter((l) => l.startsWith("error:"))).toHaveLength(1);
  expect(stderr).not.toMatch(/^\s+at |warn/im);
};

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe("realm command line", () => {
  it("prints help for every command", async () => {
    const top = await runRealm(["--help"]);
    expect(top.code).toBe(0);
    // nothing but the help: no runtime warning (oidc-provider's "Unsupported runtime" came from loading every context)
    expect(top.stderr).toBe("");
    expect(top.stdout).toContain("secrets");
    expect(top.stdout).toContain("up");
    expect(top.stdout).toContain("audit");
    expect(top.stdout).toContain("maintenance");
    const up = await runRealm(["up", "--help"]);
    expect(up.stdout).toContain("--nats <url>");
    const verify = await runRealm(["audit", "verify", "--help"]);
    expect(verify.stdout).toContain("checkpoints");
    expect((await runRealm(["maintenance", "creds", "--help"])).stdout).toContain("passphrase");
  });

  it("`realm up` runs nats-server and the host, serves health, the quick start works with the operator creds, and it stops cleanly on SIGTERM", async () => {
    const data = mkdtempSync(join(tmpdir(), "realm-up-"));
    dirs.push(data);
    const natsPort = await freePort();
    const httpPort = await freePort();
    const dnsPort = await freePort();
    // DNS on another loopback address than the API: --dns-host is where it listens, and only there.
    const upArgs = ["up", "--data", data, "--nats-port", String(natsPort), "--http-port", String(httpPort), "--dns-port", String(dnsPort), "--dns-host", "127.0.0.2"];
    const realm = await startRealmProcess(upArgs, "cim-realm is up");
    expect(realm.stdout()).toContain(`nats://127.0.0.1:${natsPort}`);
    expect(realm.stdout()).toContain(`http://127.0.0.1:${httpPort}`);
    expect(realm.stdout()).toContain(`dns       udp+tcp 127.0.0.2:${dnsPort}`);
    // each context once (the NATS accounts context serves under identity too); no admin yet, so the banner says how to make one
    expect(realm.stdout()).toMatch(/contexts {2}identity, dns, pki, realm\n/);
    expect(realm.stdout()).toContain("create the first admin API key with: realm identity bootstrap");
    // the generated operator passphrase goes to a 0600 file, never to stdout or stderr
    const passFile = join(data, "operator", "operator-passphrase");
    const passphrase = readFileSync(passFile, "utf8").trim();
    expect(statSync(passFile).mode & 0o777).toBe(0o600);
    expect(realm.stdout()).toContain(passFile);
    expect(realm.stdout() + realm.stderr()).not.toContain(passphrase);
    // the PKI's public routes answer without credentials (no issuer yet, so no CRL)
    expect((await fetch(`http://127.0.0.1:${httpPort}/pki/crl/ops.crl`)).status).toBe(404);
    expect(existsSync(join(data, "nats", "nats-server.conf"))).toBe(true);
    expect(statSync(join(data, "nats", "jetstream")).mode & 0o777).toBe(0o700);
    // the admin API is protected: no credential, no answer
    const anon = await fetch(`http://127.0.0.1:${httpPort}/api/realm/contexts`);
    expect(anon.status).toBe(401);
    expect(((await anon.json()) as { error: { code: string } }).error.code).toBe("UNAUTHORIZED");
    // the OIDC issuer is the realm's own HTTP address
    const discovery = (await (await fetch(`http://127.0.0.1:${httpPort}/oidc/.well-known/openid-configuration`)).json()) as { issuer: string };
    expect(discovery.issuer).toBe(`http://127.0.0.1:${httpPort}/oidc`);
    expect((await fetch(`http://127.0.0.1:${httpPort}/healthz`)).status).toBe(200);
    const ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: "ready" });

    // operator mode: anonymous connections are refused; the CLI connects with the operator creds it finds
    await expect(connect({ servers: `nats://127.0.0.1:${natsPort}`, reconnect: false })).rejects.toThrow();
    const operatorCreds = join(data, "operator", "admin.creds");
    expect(realm.stdout()).toContain(operatorCreds);
    const env = { REALM_DATA: data, REALM_NATS_URL: `nats://127.0.0.1:${natsPort}` };

    // first admin key (stdout is the key alone), then the name domain, answered by the realm's DNS server
    const boot = await runRealm(["identity", "bootstrap"], env);
    expect(boot.code).toBe(0);
    const key = boot.stdout.trim();
    expect(key).toMatch(/^rk_[0-9a-f]+_\S+$/);
    expect(boot.stderr).not.toContain(key);
    expect(boot.stderr).not.toMatch(/warn/i);
    const denied = await runRealm(["zone", "create", "lab.example", "--ns", "ns1.lab.example"], env);
    expect(denied.code).toBe(EXIT_CODES.UNAUTHORIZED);
    oneErrorLine(denied.stderr, "UNAUTHORIZED");
    const authed = { ...env, REALM_TOKEN: key };
    expect((await runRealm(["zone", "create", "lab.example", "--ns", "ns1.lab.example"], authed)).code).toBe(0);
    expect((await runRealm(["host", "add", "web1.lab.example", "--ip", "192.0.2.80"], authed)).code).toBe(0);
    // exit status by error class: NOT_FOUND (and the serial as given, in its normal form)
    const missing = await runRealm(["cert", "show", "0x0112AB"], authed);
    expect(missing.code).toBe(EXIT_CODES.NOT_FOUND);
    oneErrorLine(missing.stderr, "NOT_FOUND");
    expect(missing.stderr).toContain("no certificate with serial 0x0112AB (0112ab in normal form)");
    // outside the repository, with no creds found: the error names the file looked for and how to point at one
    const elsewhere = mkdtempSync(join(tmpdir(), "realm-elsewhere-"));
    dirs.push(elsewhere);
    const lost = await runRealm(["zone", "list"], { REALM_NATS_URL: env.REALM_NATS_URL, REALM_TOKEN: key }, undefined, elsewhere);
    expect(lost.code).toBe(EXIT_CODES.UNAUTHORIZED);
    oneErrorLine(lost.stderr, "UNAUTHORIZED");
    expect(lost.stderr).toContain(`looked for ${join(elsewhere, "data", "operator", "admin.creds")}`);
    expect(lost.stderr).toContain("--creds <file>, REALM_NATS_CREDS=<file> or REALM_DATA=<data dir>");
    expect(lost.stderr).not.toContain("is `realm up` running");
    expect((await runRealm(["zone", "list"], { REALM_NATS_URL: env.REALM_NATS_URL, REALM_TOKEN: key, REALM_DATA: data }, undefined, elsewhere)).code).toBe(0);
    const dig = spawnSync("dig", ["+short", "+time=2", "+tries=2", "-p", String(dnsPort), "@127.0.0.2", "web1.lab.example", "A"], { encoding: "utf8" });
    expect(dig.stdout.trim()).toBe("192.0.2.80");
    expect(spawnSync("dig", ["+short", "+time=1", "+tries=1", "-p", String(dnsPort), "@127.0.0.1", "web1.lab.example", "A"], { encoding: "utf8" }).stdout).toContain("no servers could be reached");
    // a NATS account and user through the CLI; the creds connect
    expect((await runRealm(["account", "create", "lab"], authed)).code).toBe(0);
    const userCreds = join(data, "alice.creds");
    expect((await runRealm(["user", "create", "lab", "alice", "--out", userCreds], authed)).code).toBe(0);
    const alice = await connect({ servers: `nats://127.0.0.1:${natsPort}`, authenticator: credsAuthenticator(readFileSync(userCreds)) });
    await alice.flush();
    await alice.close();
    const contexts = await fetch(`http://127.0.0.1:${httpPort}/api/realm/contexts`, { headers: { authorization: `Bearer ${key}` } });
    expect(contexts.status).toBe(200);
    // every event so far verifies: signatures, chains
    const audit = await runRealm(["audit", "verify"], authed);
    expect(audit.code).toBe(0);
    expect(audit.stdout).toMatch(/ok {6}dns: 2 events in 1 aggregates verified/);
    expect(audit.stdout).toMatch(/ok {6}identity: \d+ events/);

    realm.child.kill("SIGTERM");
    expect(await realm.exited).toBe(0);
    expect(realm.stderr()).toContain("stopped");
    // the supervised nats-server is gone too, and the data dir is free again
    await expect(connect({ servers: `nats://127.0.0.1:${natsPort}`, reconnect: false, timeout: 1000 })).rejects.toThrow();
    expect(existsSync(join(data, "realm.lock"))).toBe(false);

    // restarted: the realm has its admin, so the banner no longer offers to make the first one
    const again = await startRealmProcess(upArgs, "cim-realm is up");
    expect(again.stdout()).toMatch(/contexts {2}identity, dns, pki, realm\n/);
    expect(again.stdout()).not.toContain("create the first admin");
    again.child.kill("SIGTERM");
    expect(await again.exited).toBe(0);
  });

  it("reports an unreachable NATS as a clear error", async () => {
    const port = await freePort();
    const r = await runRealm(["audit", "verify", "--nats", `nats://127.0.0.1:${port}`, "--creds", join(tmpdir(), "realm-no-such-dir", "none.creds")]);
    expect(r.code).toBe(EXIT_CODES.VALIDATION);
    oneErrorLine(r.stderr, "VALIDATION");
    const down = await runRealm(["audit", "verify", "--nats", `nats://127.0.0.1:${port}`]);
    expect(down.code).toBe(EXIT_CODES.UNAVAILABLE);
    oneErrorLine(down.stderr, "UNAVAILABLE");
    expect(down.stderr).toContain("cannot reach");
  });

  it("a bad option value is a usage error (exit 2, one line) before anything is done", async () => {
    const data = mkdtempSync(join(tmpdir(), "realm-usage-"));
    dirs.push(data);
    const [ttl, httpPort, natsPort, workers, dnsHost] = await Promise.all([
      runRealm(["zone", "create", "x", "--ns", "a", "--ttl", "abc"]),
      runRealm(["up", "--data", data, "--http-port", "abc"]),
      runRealm(["up", "--data", data, "--nats-port", "70000"]),
      runRealm(["up", "--data", data, "--nats-port", "0", "--http-port", "0", "--dns-port", "0"], { REALM_DNS_WORKERS: "two" }),
      runRealm(["up", "--data", data, "--dns-host", "dns.example"]),
    ]);
    expect(ttl.code).toBe(EXIT_USAGE);
    expect(ttl.stderr).toMatch(/^error: USAGE: option '--ttl <seconds>' argument 'abc' is invalid\. Expected an integer 0 or more\.\n/);
    expect(ttl.stderr).not.toMatch(/^\s+at /m);
    expect(httpPort.code).toBe(EXIT_USAGE);
    expect(httpPort.stderr).toContain("option '--http-port <port>' argument 'abc' is invalid. Expected a port from 0 to 65535.");
    expect(natsPort.code).toBe(EXIT_USAGE);
    expect(dnsHost.code).toBe(EXIT_USAGE);
    expect(dnsHost.stderr).toContain("Expected an IPv4 or IPv6 address");
    expect(workers.code).toBe(EXIT_CODES.VALIDATION);
    oneErrorLine(workers.stderr, "VALIDATION");
    expect(workers.stderr).toContain("REALM_DNS_WORKERS");
    // no operator keys, no nats-server, no lock: the data dir is as it was
    expect(readdirSync(data)).toEqual([]);
  });

  it("refuses a data dir made before the realm protected itself", async () => {
    const data = mkdtempSync(join(tmpdir(), "realm-legacy-"));
    dirs.push(data);
    const { mkdirSync, writeFileSync } = await import("node:fs");
    mkdirSync(join(data, "operator"), { recursive: true });
    writeFileSync(join(data, "operator", "realm-service.creds"), "legacy");
    const r = await runRealm(["up", "--data", data, "--nats-port", String(await freePort()), "--http-port", String(await freePort()), "--dns-port", String(await freePort())]);
    expect(r.code).toBe(EXIT_CODES.VALIDATION);
    oneErrorLine(r.stderr, "VALIDATION");
    expect(r.stderr).toContain("earlier cim-realm");
    expect(existsSync(join(data, "realm.lock"))).toBe(false);
  });
});
