import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import { freePort } from "../../services/nats/supervisor.js";
import { inboxOf } from "../../services/cli/identities.js";
import { EXIT_CODES } from "../../services/cli/exit-codes.js";
import { runRealm, startRealmProcess } from "../support/cli.js";
import { startCluster, type NodeSpec, type TestCluster } from "../support/nats-cluster.js";
import { opensslAsync } from "../pki/openssl.js";
import { serverConfigArgs } from "../support/operator-cluster.js";

/**
 * A 3-node operator-mode cluster whose every node's config is written by `realm nats server-config`, and two
 * `realm up --nats` instances sharing one operator (the second joined through `realm instance export` /
 * `join`) behind one public URL.
 */
const PASS = { REALM_CEREMONY_PASSPHRASE: "a long operator passphrase for the cluster test" };
const dirs: string[] = [];
const children: { child: { kill(s: NodeJS.Signals): boolean }; exited: Promise<number | null> }[] = [];
let cluster: TestCluster | undefined;
const tmp = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};
afterAll(async () => {
  for (const c of children) {
    c.child.kill("SIGTERM");
    await c.exited;
  }
  await cluster?.stop();
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
}, 60_000);

const ok = async (args: string[], env: Record<string, string>, cwd?: string) => {
  const r = await runRealm(args, env, undefined, cwd);
  if (r.code !== 0) throw new Error(`realm ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r;
};

const data1 = tmp("realm-opc-data1-");
const data2 = tmp("realm-opc-data2-");
const work = tmp("realm-opc-work-");
const nodeArgs = (n: NodeSpec) => serverConfigArgs(data1, n);

describe("realm nats server-config", () => {
  it("refuses a wrong option with VALIDATION and writes nothing, not even the operator", async () => {
    const fresh = join(work, "never-made");
    const out = join(work, "never.conf");
    const base = { name: "n1", clientPort: 4222, routePort: 6222, dir: work, routes: ["nats-route://127.0.0.1:6222"] };
    for (const [flag, value, message] of [
      ["--listen", "127.0.0.1", /--listen must be host:port/],
      ["--routes", "nats://127.0.0.1:6222", /nats-route:\/\/host:port/],
      ["--name", "bad name", /--name/],
      ["--cluster-listen", "127.0.0.1:4222", /--cluster-listen uses 127\.0\.0\.1:4222/],
      ["--store-dir", 'a"b', /--store-dir/],
    ] as const) {
      const args = nodeArgs(base).map((a) => (a === data1 ? fresh : a));
      args[args.indexOf(flag) + 1] = value;
      const r = await runRealm([...args, "--out", out], PASS);
      expect(r.code, r.stderr).toBe(EXIT_CODES.VALIDATION);
      expect(r.stderr).toMatch(message);
      expect(existsSync(out)).toBe(false);
      expect(existsSync(fresh)).toBe(false);
    }
    const noDir = await runRealm([...nodeArgs(base).map((a) => (a === data1 ? fresh : a)), "--out", join(work, "absent", "n1.conf")], PASS);
    expect(noDir.code, noDir.stderr).toBe(EXIT_CODES.VALIDATION);
    expect(existsSync(fresh)).toBe(false);
    const help = await runRealm(["nats", "server-config", "--help"]);
    expect(help.code).toBe(0);
    for (const o of ["--data", "--name", "--listen", "--cluster-name", "--cluster-listen", "--routes", "--store-dir", "--http-port", "--out"]) expect(help.stdout).toContain(o);
  });
});

describe("realm up --public-url", () => {
  it("is refused before anything starts unless it is an absolute http(s) URL without query or fragment", async () => {
    for (const bad of ["realm.lab.example", "ftp://realm.lab.example", "https://realm.lab.example/?a=1", "https://realm.lab.example/#x", "https://u:p@realm.lab.example"]) {
      const data = join(work, "never-up");
      const r = await runRealm(["up", "--data", data, "--public-url", bad, "--http-port", "0"]);
      expect(r.code, `${bad}: ${r.stderr}`).toBe(EXIT_CODES.VALIDATION);
      expect(r.stderr).toMatch(/--public-url/);
      expect(r.stderr).not.toContain(":p@");
      expect(existsSync(data)).toBe(false);
    }
  });
});

describe("two realm instances on an operator-mode cluster", () => {
  let publicUrl: string;
  const inst: { http: number; dns: number }[] = [];
  beforeAll(async () => {
    // The first run makes the operator, trust and identities (as `realm up` would), the config to stdout.
    const first = await ok([...nodeArgs({ name: "probe", clientPort: 4222, routePort: 6222, dir: work, routes: ["nats-route://127.0.0.1:6222"] })], PASS);
    expect(first.stdout).toMatch(/^operator: "eyJ/m);
    expect(first.stdout).toContain("resolver");
    const reader = readFileSync(join(data1, "operator", "identities", "realm-dns-reader.creds"));
    cluster = await startCluster(3, {
      config: async (n) => {
        const out = join(n.dir, "server.conf");
        await ok([...nodeArgs(n), "--out", out], PASS);
        expect(statSync(out).mode & 0o777).toBe(0o600);
        return readFileSync(out, "utf8");
      },
      // The cluster trusts only the operator: the probe connects as one of its identities.
      connect: { authenticator: credsAuthenticator(reader), inboxPrefix: inboxOf("realm-dns-reader") },
    });
    publicUrl = `http://127.0.0.1:${await freePort()}`;
  }, 120_000);

  const up = async (data: string, extra: string[], env: Record<string, string>) => {
    const ports = { http: await freePort(), dns: await freePort() };
    const realm = await startRealmProcess(["up", "--data", data, "--nats", cluster!.servers.join(","), "--replicas", "3", "--http-port", String(ports.http), "--dns-port", String(ports.dns), ...extra], "cim-realm is up", { ...PASS, ...env }, 120_000);
    children.push(realm);
    inst.push(ports);
    return realm;
  };

  it("serves accounts, users, certificates with CRL and OCSP, and one OIDC issuer through either instance", async () => {
    const servers = cluster!.servers.join(",");
    const r1 = await up(data1, ["--public-url", publicUrl], {});
    expect(r1.stdout()).toContain("operator mode: identities issued from this data dir's operator");
    expect(r1.stdout()).toContain(`public    ${publicUrl}`);
    const env1 = { REALM_DATA: data1, REALM_NATS_URL: servers };
    const admin = (await ok(["identity", "bootstrap"], env1)).stdout.trim();
    const env = { ...env1, REALM_TOKEN: admin };

    // NATS accounts: the context runs and pushes claims to the cluster's resolver.
    await ok(["account", "create", "lab"], env);
    const aliceCreds = join(work, "alice.creds");
    await ok(["user", "create", "lab", "alice", "--out", aliceCreds], env);
    for (const url of cluster!.servers) {
      const nc = await connect({ servers: url, authenticator: credsAuthenticator(readFileSync(aliceCreds)), reconnect: false });
      await nc.flush();
      await nc.close();
    }

    // The PKI: a zone, a root ceremony, an intermediate and a leaf issued through instance 1.
    const ceremonyPass = join(work, "ceremony-passphrase");
    writeFileSync(ceremonyPass, "a long offline ceremony passphrase\n", { mode: 0o600 });
    await ok(["zone", "create", "lab.example", "--ns", "ns1.lab.example"], env);
    await ok(["ceremony", "init", "./root", "--cn", "Cluster Test Root", "--passphrase-file", ceremonyPass], env, work);
    await ok(["pki", "issuer", "prepare", "ops", "--cn", "Cluster Test Ops CA"], env, work);
    await ok(["ceremony", "sign-intermediate", "./root", "ops.csr", "--permit", "lab.example", "--passphrase-file", ceremonyPass], env, work);
    await ok(["pki", "issuer", "import", "ops", "--cert", "ops.crt", "--root", "root/root-ca.crt"], env, work);
    await ok(["cert", "issue", "--cn", "web1.lab.example"], env, work);
    const text = (await opensslAsync(["x509", "-in", join(work, "web1.lab.example.crt"), "-noout", "-text"])).out;
    expect(text).toContain(`OCSP - URI:${publicUrl}/pki/ocsp`);
    expect(text).toContain(`URI:${publicUrl}/pki/crl/`);

    // The second instance: the first's operator, trust and seal key through one sealed bundle; REALM_PUBLIC_URL.
    const bundle = join(work, "instance.bundle");
    const BUNDLE = { REALM_BUNDLE_PASSPHRASE: "a long instance bundle passphrase" };
    await ok(["instance", "export", "--data", data1, "--out", bundle], BUNDLE);
    expect(statSync(bundle).mode & 0o777).toBe(0o600);
    expect(readFileSync(bundle, "utf8")).not.toContain(readFileSync(join(data1, "operator", "seal.key"), "utf8").trim());
    const wrong = await runRealm(["instance", "join", bundle, "--data", data2], { REALM_BUNDLE_PASSPHRASE: "not the bundle passphrase" });
    expect(wrong.code).toBe(EXIT_CODES.UNAUTHORIZED);
    expect(existsSync(join(data2, "operator"))).toBe(false);
    await ok(["instance", "join", bundle, "--data", data2], BUNDLE);
    expect(statSync(join(data2, "operator", "seal.key")).mode & 0o777).toBe(0o600);
    expect(statSync(join(data2, "operator")).mode & 0o777).toBe(0o700);
    expect(readFileSync(join(data2, "operator", "seal.key"))).toEqual(readFileSync(join(data1, "operator", "seal.key")));
    // A realm data dir that is not empty is refused.
    const again = await runRealm(["instance", "join", bundle, "--data", data2], BUNDLE);
    expect(again.code, again.stderr).toBe(EXIT_CODES.VALIDATION);
    const r2 = await up(data2, [], { REALM_PUBLIC_URL: publicUrl });
    expect(r2.stdout()).toContain("operator mode");
    const i1 = inst[0]!;
    const i2 = inst[1]!;

    const list = await ok(["account", "list"], { REALM_DATA: data2, REALM_NATS_URL: servers, REALM_TOKEN: admin });
    expect(list.stdout).toContain("lab");

    // An account made by instance 1 after instance 2 joined: instance 2 holds its keys too (shared, sealed,
    // in KV) and issues its users. Over HTTP each request is served by the instance it is sent to.
    const api = async (port: number, path: string, body: object) => {
      const r = await fetch(`http://127.0.0.1:${port}/api/identity/${path}`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${admin}` }, body: JSON.stringify(body) });
      const json = (await r.json()) as { ok: boolean; creds?: string; error?: { message: string } };
      expect(r.status, JSON.stringify(json.error)).toBe(200);
      return json;
    };
    await api(i1.http, "account/create", { name: "late" });
    const bob = await api(i2.http, "user/create", { account: "late", name: "bob", kind: "service" });
    expect(bob.creds).toContain("NATS USER JWT");
    const bobNc = await connect({ servers: servers.split(","), authenticator: credsAuthenticator(new TextEncoder().encode(bob.creds!)), reconnect: false });
    await bobNc.flush();
    await bobNc.close();

    const ocsp = await opensslAsync(["ocsp", "-issuer", join(work, "ops.crt"), "-cert", join(work, "web1.lab.example.crt"), "-url", `http://127.0.0.1:${i2.http}/pki/ocsp`, "-CAfile", join(work, "root", "root-ca.crt")]);
    expect(ocsp.out).toContain("Response verify OK");
    expect(ocsp.out).toContain("web1.lab.example.crt: good");
    const crl = await fetch(`http://127.0.0.1:${i2.http}/pki/crl/ops.crl`);
    expect(crl.status).toBe(200);
    const crlFile = join(work, "ops.crl");
    writeFileSync(crlFile, Buffer.from(await crl.arrayBuffer()));
    const crlText = (await opensslAsync(["crl", "-inform", "DER", "-in", crlFile, "-noout", "-issuer"])).out;
    expect(crlText).toContain("Cluster Test Ops CA");

    const issuerOf = async (port: number) => ((await (await fetch(`http://127.0.0.1:${port}/oidc/.well-known/openid-configuration`)).json()) as { issuer: string }).issuer;
    expect(await issuerOf(i1.http)).toBe(`${publicUrl}/oidc`);
    expect(await issuerOf(i2.http)).toBe(`${publicUrl}/oidc`);
  }, 400_000);
});
