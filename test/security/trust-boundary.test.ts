/**
 * The realm protects itself: every attack of the trust-boundary review, replayed against a real `realm up`
 * (its own nats-server in operator mode), is refused by nats-server (permissions violation) or detected
 * (audit verify exit 11 (INTEGRITY) naming the event or the missing tail; the projection quarantines and serves on).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { jetstreamManager } from "@nats-io/jetstream";
import { v7 as uuidv7 } from "uuid";
import { freePort } from "../../services/nats/supervisor.js";
import { eventSubject, sealWithJson } from "../../services/kernel/index.js";
import { inboxPrefixOf } from "../../services/host/creds.js";
import { runRealm, startRealmProcess } from "../support/cli.js";
import { EXIT_CODES } from "../../services/cli/exit-codes.js";
import { publishVerdict, subscribeVerdict } from "../support/permissions.js";
import { opensslAsync } from "../pki/openssl.js";

const data = mkdtempSync(join(tmpdir(), "realm-attack-"));
let natsUrl: string;
let httpUrl: string;
let dnsPort: number;
let realm: Awaited<ReturnType<typeof startRealmProcess>>;
let key: string;
const conns: NatsConnection[] = [];
const env = () => ({ REALM_DATA: data, REALM_NATS_URL: natsUrl, REALM_TOKEN: key });
const cli = async (...args: string[]) => runRealm(args, env());
const ok = async (...args: string[]) => {
  const r = await cli(...args);
  if (r.code !== 0) throw new Error(`realm ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r;
};
const identityCreds = (name: string) => join(data, "operator", "identities", `${name}.creds`);

async function as(credsFile: string): Promise<NatsConnection> {
  const creds = readFileSync(credsFile);
  const inboxPrefix = inboxPrefixOf(creds);
  const nc = await connect({ servers: natsUrl, authenticator: credsAuthenticator(creds), reconnect: false, ...(inboxPrefix ? { inboxPrefix } : {}) });
  conns.push(nc);
  return nc;
}

const violations = () => readFileSync(join(data, "nats", "nats-server.log"), "utf8").split("\n").filter((l) => /permissions violation/i.test(l));

async function startUp(): Promise<void> {
  realm = await startRealmProcess(["up", "--data", data, "--nats-port", String(new URL(natsUrl).port), "--http-port", String(new URL(httpUrl).port), "--dns-port", String(dnsPort)], "cim-realm is up", {}, 60_000);
}

beforeAll(async () => {
  natsUrl = `nats://127.0.0.1:${await freePort()}`;
  httpUrl = `http://127.0.0.1:${await freePort()}`;
  dnsPort = await freePort();
  await startUp();
  const boot = await runRealm(["identity", "bootstrap"], { REALM_DATA: data, REALM_NATS_URL: natsUrl });
  key = boot.stdout.trim();
  expect(key).toMatch(/^rk_/);
}, 90_000);

afterAll(async () => {
  for (const c of conns) await c.close().catch(() => undefined);
  realm?.child.kill("SIGTERM");
  await realm?.exited;
  rmSync(data, { recursive: true, force: true });
});

describe("the realm's own identities", () => {
  it("the local operator runs the README quick start (zones, hosts, PKI, NATS users) and the services hit no permission they lack", async () => {
    await ok("zone", "create", "lab.example", "--ns", "ns1.lab.example");
    await ok("host", "add", "web1.lab.example", "--ip", "192.0.2.80");
    expect(spawnSync("dig", ["+short", "-p", String(dnsPort), "@127.0.0.1", "web1.lab.example", "A"], { encoding: "utf8" }).stdout.trim()).toBe("192.0.2.80");
    const work = join(data, "work");
    const pass = join(data, "ceremony-pass");
    writeFileSync(pass, "a long offline passphrase\n", { mode: 0o600 });
    const { mkdirSync } = await import("node:fs");
    mkdirSync(work);
    // the offline ceremony runs in its own directory; the issuer CSR is written where the CLI runs
    await ok("ceremony", "init", join(work, "root"), "--cn", "Lab Root CA", "--passphrase-file", pass);
    await ok("pki", "issuer", "prepare", "ops", "--cn", "Lab Ops CA", "-o", join(work, "ops.csr"));
    await ok("ceremony", "sign-intermediate", join(work, "root"), join(work, "ops.csr"), "--permit", "lab.example", "--passphrase-file", pass, "-o", join(work, "ops.crt"));
    await ok("pki", "issuer", "import", "ops", "--cert", join(work, "ops.crt"), "--root", join(work, "root", "root-ca.crt"));
    const issued = JSON.parse((await ok("cert", "issue", "--cn", "web1.lab.example", "--out", join(work, "web1"))).stdout) as { serial: string };
    const ocsp = await opensslAsync(["ocsp", "-issuer", join(work, "ops.crt"), "-cert", join(work, "web1.crt"), "-url", `${httpUrl}/pki/ocsp`, "-CAfile", join(work, "root", "root-ca.crt")]);
    expect(ocsp.out).toContain("good");
    expect(issued.serial).toMatch(/^[0-9a-f]+$/);
    await ok("account", "create", "lab");
    await ok("user", "create", "lab", "alice", "--out", join(work, "alice.creds"));
    await ok("user", "create", "realm", "bob", "--out", join(data, "bob.creds"));
    // Nothing the realm did needed a right it was not given.
    expect(violations()).toEqual([]);
  });

  it("an ordinary user of the realm account can do nothing: no forged event, no deletion, no KV, no eavesdropping", async () => {
    const bob = await as(join(data, "bob.creds"));
    for (const subject of [
      eventSubject("identity", "apikey", "forged"),
      eventSubject("dns", "zone", "evil.example."),
      "$JS.API.STREAM.MSG.DELETE.REALM_PKI",
      "$JS.API.STREAM.PURGE.REALM_PKI",
      "$JS.API.STREAM.DELETE.REALM_PKI",
      "$JS.API.DIRECT.GET.KV_realm_identity_oidc_keys.$KV.realm_identity_oidc_keys.current",
      "$JS.API.STREAM.MSG.GET.KV_realm_identity_credentials",
      "$JS.API.CONSUMER.CREATE.KV_realm_identity_oidc",
      "$KV.realm_identity_oidc.AccessToken.x",
      "realm.identity.commands.admin.bootstrap",
    ])
      expect(await publishVerdict(bob, subject), subject).toBeDefined();
    for (const subject of ["_INBOX.>", "_INBOX_admin.>", "realm.*.commands.>", "realm.identity.commands.apikey.issue", ">"]) expect(await subscribeVerdict(bob, subject), subject).toBeDefined();
  });

  it("the local operator's creds may only send commands and queries and read their own inbox", async () => {
    const op = await as(join(data, "operator", "admin.creds"));
    // allowed: a query answered by the realm (over the operator's own inbox)
    const r = await op.request("realm.dns.queries.zones", "{}", { timeout: 10_000, headers: (await import("@nats-io/nats-core")).headers() });
    expect(JSON.parse(new TextDecoder().decode(r.data))).toMatchObject({ ok: false, error: { code: "UNAUTHORIZED" } });
    const forbidden = [
      ...["identity", "dns", "pki", "secrets", "realm"].map((c) => eventSubject(c, "any", "thing")),
      "$JS.API.INFO",
      "$JS.API.STREAM.INFO.REALM_DNS",
      "$JS.API.STREAM.LIST",
      "$JS.API.STREAM.MSG.GET.REALM_IDENTITY",
      "$JS.API.STREAM.MSG.DELETE.REALM_PKI",
      "$JS.API.STREAM.DELETE.REALM_PKI",
      "$JS.API.STREAM.UPDATE.REALM_PKI",
      "$JS.API.CONSUMER.CREATE.REALM_IDENTITY",
      "$JS.API.DIRECT.GET.KV_realm_identity_oidc_keys.$KV.realm_identity_oidc_keys.current",
      "$KV.realm_identity_credentials.x",
      "_INBOX_realm-dns.x",
    ];
    // the probe itself tells an allowed publish from a refused one
    expect(await publishVerdict(op, "realm.dns.queries.zones")).toBeUndefined();
    expect(await subscribeVerdict(op, "_INBOX_admin.probe")).toBeUndefined();
    for (const s of forbidden) expect(await publishVerdict(op, s), s).toBeDefined();
    for (const s of ["_INBOX.>", "_INBOX_realm-identity.>", "realm.dns.commands.>", "realm.identity.queries.>", "realm.*.events.>", "$KV.>", "$SRV.>", ">"]) expect(await subscribeVerdict(op, s), s).toBeDefined();
  });

  it("each service identity works only its own context: no other context's events, no deletes, no other buckets", async () => {
    const dns = await as(identityCreds("realm-dns"));
    expect(await publishVerdict(dns, "$JS.API.STREAM.INFO.REALM_DNS")).toBeUndefined();
    expect(await subscribeVerdict(dns, "realm.dns.commands.probe")).toBeUndefined();
    for (const s of [eventSubject("identity", "apikey", "x"), eventSubject("pki", "certificate", "x"), "$JS.API.STREAM.MSG.DELETE.REALM_DNS", "$JS.API.STREAM.UPDATE.REALM_DNS", "$JS.API.STREAM.DELETE.REALM_DNS", "$JS.API.STREAM.MSG.GET.KV_realm_identity_oidc_keys", "realm.pki.commands.certificate.issue"]) expect(await publishVerdict(dns, s), s).toBeDefined();
    for (const s of ["realm.pki.commands.>", "_INBOX.>"]) expect(await subscribeVerdict(dns, s), s).toBeDefined();
    const pki = await as(identityCreds("realm-pki"));
    for (const s of [eventSubject("dns", "zone", "evil.example."), "$JS.API.CONSUMER.CREATE.KV_realm_identity_credentials", "$JS.API.STREAM.PURGE.REALM_PKI"]) expect(await publishVerdict(pki, s), s).toBeDefined();
    const reader = await as(identityCreds("realm-dns-reader"));
    for (const s of [eventSubject("dns", "zone", "lab.example."), "$JS.API.STREAM.INFO.REALM_IDENTITY"]) expect(await publishVerdict(reader, s), s).toBeDefined();
    const sys = await as(identityCreds("realm-sys"));
    expect(await publishVerdict(sys, "$SYS.REQ.ACCOUNT.x.CONNZ")).toBeDefined();
    // the creds files are the owner's only
    for (const f of readdirSync(join(data, "operator", "identities"))) expect(statSync(join(data, "operator", "identities", f)).mode & 0o077).toBe(0);
  });

  it("bootstrap works only once; the operator bundle's passphrase recovers", async () => {
    const again = await runRealm(["identity", "bootstrap"], { REALM_DATA: data, REALM_NATS_URL: natsUrl });
    expect(again.code).toBe(EXIT_CODES.FORBIDDEN);
    expect(again.stderr).toContain("FORBIDDEN");
    const rescue = await runRealm(["identity", "bootstrap", "--principal", "rescue", "--passphrase-file", join(data, "operator", "operator-passphrase")], { REALM_DATA: data, REALM_NATS_URL: natsUrl });
    expect(rescue.code).toBe(0);
    expect(rescue.stdout.trim()).toMatch(/^rk_/);
  });
});

describe("streams that cannot be rewritten, events that cannot be forged", () => {
  it("even break-glass maintenance creds cannot delete or purge an event", async () => {
    const mcreds = join(data, "maint.creds");
    const r = await cli("maintenance", "creds", "--data", data, "--out", mcreds, "--passphrase-file", join(data, "operator", "operator-passphrase"));
    expect(r.code).toBe(0);
    expect(statSync(mcreds).mode & 0o777).toBe(0o600);
    const bad = await cli("maintenance", "creds", "--data", data, "--out", join(data, "nope.creds"), "--passphrase-file", join(data, "ceremony-pass"));
    expect(bad.stderr).toContain("UNAUTHORIZED");
    const m = await as(mcreds);
    const jsm = await jetstreamManager(m);
    await expect(jsm.streams.deleteMessage("REALM_PKI", 1)).rejects.toThrow(/not permitted|deny/i);
    await expect(jsm.streams.purge("REALM_PKI")).rejects.toThrow(/not permitted|deny/i);
    const info = await jsm.streams.info("REALM_PKI");
    await expect(jsm.streams.update("REALM_PKI", { ...info.config, deny_delete: false })).rejects.toThrow();
  });

  it("a junk or forged event from a compromised DNS service is quarantined: named, listed, audited; the DNS context serves on", async () => {
    const dns = await as(identityCreds("realm-dns"));
    const js = (await import("@nats-io/jetstream")).jetstream(dns);
    await js.publish(eventSubject("dns", "zone", "lab.example."), "one junk message");
    // a forged ZoneCreated for a foreign domain, sealed by a key the trust document does not know
    const { generateTrust } = await import("../../services/kernel/index.js");
    const rogue = generateTrust("rogue", [{ name: "dns", subjects: ["realm.dns.events.>"] }]);
    const forged = sealWithJson({ id: uuidv7(), type: "ZoneCreated", aggregate: { type: "zone", id: "evil.example." }, version: 1, occurredAt: new Date().toISOString(), actor: "mallory", correlationId: uuidv7(), causationId: uuidv7(), data: { ns: ["ns1.evil.example."], soa: { mname: "ns1.evil.example.", rname: "h.evil.example.", serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: 300, ttl: 3600 }, serial: 1 }, prev: null }, rogue.signer("dns"));
    await js.publish(eventSubject("dns", "zone", "evil.example."), forged.json);
    // the context serves on: a new command on the same zone is decided on its verified chain
    await ok("host", "add", "web2.lab.example", "--ip", "192.0.2.81");
    expect(spawnSync("dig", ["+short", "-p", String(dnsPort), "@127.0.0.1", "web2.lab.example", "A"], { encoding: "utf8" }).stdout.trim()).toBe("192.0.2.81");
    // the forged zone is not served with authority, and the PKI does not own it
    const evil = spawnSync("dig", ["+norec", "-p", String(dnsPort), "@127.0.0.1", "www.evil.example", "A"], { encoding: "utf8" }).stdout;
    expect(evil).not.toMatch(/flags:[^;]*\baa\b/);
    const cert = await cli("cert", "issue", "--cn", "www.evil.example", "--out", join(data, "work", "evil"));
    expect(cert.code).toBe(EXIT_CODES.VALIDATION);
    const ready = (await (await fetch(`${httpUrl}/readyz`)).json()) as { status: string; degraded: { context: string; stream: string }[] };
    expect(ready.status).toBe("degraded");
    expect(ready.degraded).toEqual(expect.arrayContaining([expect.objectContaining({ context: "dns", stream: "REALM_DNS" })]));
    const q = await cli("audit", "quarantine");
    expect(q.code).toBe(EXIT_CODES.INTEGRITY);
    expect(q.stdout).toMatch(/REALM_DNS seq \d+ +malformed/);
    expect(q.stdout).toMatch(/REALM_DNS seq \d+ +unknown-signer/);
    const audit = await cli("audit", "verify", "--context", "dns");
    expect(audit.code).toBe(EXIT_CODES.INTEGRITY);
    expect(audit.stdout).toContain("malformed");
    expect(audit.stdout).toContain("unknown-signer");
    expect(audit.stdout).toContain(forged.envelope.id);
  });

  it("kill -9 of nats-server: realm up restarts it, clients reconnect, commands work again", async () => {
    const pid = Number(/local nats-server pid (\d+)/.exec(realm.stdout())![1]);
    process.kill(pid, "SIGKILL");
    // wait for the realm to report the restart (an event on its stderr), not for a timer
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no restart reported: ${realm.stderr()}`)), 30_000);
      const check = () => {
        if (/nats-server restarted/.test(realm.stderr())) {
          clearTimeout(timer);
          resolve();
        } else realm.child.stderr!.once("data", check);
      };
      check();
    });
    // The contexts reconnect on their own schedule (a try a second): wait until the DNS service answers its
    // discovery ping again (a fast CLI would otherwise get there first and be answered "no responders").
    const op = await as(join(data, "operator", "admin.creds"));
    for (;;) {
      const back = await op.request("$SRV.PING.realm-dns", "", { timeout: 1_000 }).then(() => true, () => false);
      if (back) break;
      await new Promise((r) => setTimeout(r, 50)); // between tries: "no responders" comes back at once
    }
    await ok("host", "add", "web3.lab.example", "--ip", "192.0.2.82");
    expect((await fetch(`${httpUrl}/healthz`)).status).toBe(200);
  });

  it("a stream cut short by a stream admin: audit verify reports the missing tail from the auditor's checkpoint; OCSP says tryLater", async () => {
    // revoke, checkpoint: the auditor has now signed that REALM_PKI reaches the revocation
    const list = JSON.parse((await ok("cert", "list")).stdout) as { certificates: { serial: string }[] };
    const serial = list.certificates[0]!.serial;
    await ok("cert", "revoke", serial, "--reason", "keyCompromise");
    await ok("audit", "checkpoint");
    // break glass: a stream admin deletes REALM_PKI (single events cannot be deleted); the realm then
    // stops, and its provisioning makes the stream again, empty, when it starts
    const m = await as(join(data, "maint.creds"));
    await (await jetstreamManager(m)).streams.delete("REALM_PKI");
    realm.child.kill("SIGTERM");
    await realm.exited;
    await startUp();
    const audit = await cli("audit", "verify", "--context", "pki");
    expect(audit.code).toBe(EXIT_CODES.INTEGRITY);
    expect(audit.stdout).toMatch(/missing-tail/);
    const ready = (await (await fetch(`${httpUrl}/readyz`)).json()) as { status: string };
    expect(ready.status).toBe("degraded");
    const ocsp = await opensslAsync(["ocsp", "-issuer", join(data, "work", "ops.crt"), "-cert", join(data, "work", "web1.crt"), "-url", `${httpUrl}/pki/ocsp`, "-CAfile", join(data, "work", "root", "root-ca.crt")]);
    expect(ocsp.out).toMatch(/tryLater|trylater/i);
  });
});

describe("process supervision", () => {
  it("a second realm up on the same data dir is refused; kill -9 of realm up leaves no nats-server", async () => {
    const second = await runRealm(["up", "--data", data, "--nats-port", String(await freePort()), "--http-port", String(await freePort()), "--dns-port", String(await freePort())]);
    expect(second.code).toBe(EXIT_CODES.CONFLICT);
    expect(second.stderr).toMatch(/CONFLICT: data dir .* is in use by realm up pid \d+/);
    const pid = Number(/local nats-server pid (\d+)/.exec(realm.stdout())![1]);
    realm.child.kill("SIGKILL");
    await realm.exited;
    // nats-server dies with its parent (PR_SET_PDEATHSIG): wait for the pid to go, bounded
    const gone = async () => {
      for (let i = 0; i < 200; i++) {
        try {
          const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
          if (/\) Z /.test(stat)) return true;
        } catch {
          return true;
        }
        await new Promise((r) => setImmediate(r));
        await new Promise((r) => setTimeout(r, 50));
      }
      return false;
    };
    expect(await gone()).toBe(true);
    realm = undefined as never;
  });
});
