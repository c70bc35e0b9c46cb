import { generateKeyPairSync } from "node:crypto";
/**
 * Every command of the realm answers a resent command id with its first outcome and changes nothing the
 * second time: each endpoint of the permission table (the commands of /openapi.json, and the NATS-only
 * ones), sent twice with one id against a whole realm (`startRealm` in operator mode, real slapd for the
 * LDAP directory, the Cloudflare double, an offline-root ceremony for the PKI). Then: the outcomes survive a
 * restart; an id reused by another principal or for another input is refused; no secret is kept with an
 * outcome.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as OTPAuth from "otpauth";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { startRealm, type RunningRealm } from "../../services/cli/runtime.js";
import { connectAs } from "../../services/cli/connection.js";
import { callRealm, RequestHeaders } from "../../services/host/client.js";
import { createLogger } from "../../services/host/logger.js";
import { REPLAYED_HEADER, type PermissionEntry } from "../../services/host/host.js";
import { outcomesBucket } from "../../services/host/outcomes.js";
import { newId } from "../../services/kernel/envelope.js";
import { RealmError } from "../../services/kernel/errors.js";
import { Sealer } from "../../services/kernel/seal.js";
import { EVENT_CONTEXTS } from "../../services/cli/identities.js";
import { initCeremony, issueRootCrl, signIntermediate } from "../../pki/ceremony/ceremony.js";
import { ouLdif, startSlapd, type TestSlapd } from "../support/slapd.js";
import { startCloudflareDouble, type CloudflareDouble } from "../dns/cloudflare-double.js";

const data = mkdtempSync(join(tmpdir(), "realm-idem-"));
const ceremonyDir = mkdtempSync(join(tmpdir(), "realm-idem-root-"));
const CEREMONY_PASS = "idempotency ceremony passphrase";
let realm: RunningRealm;
let op: NatsConnection;
let ldap: TestSlapd;
let cf: CloudflareDouble;
let admin: string;
let bootstrapId: string;
let permissions: PermissionEntry[];

const start = () => startRealm({ dataDir: data, natsPort: 0, httpPort: 0, dnsPort: 0, log: createLogger({ level: "silent" }), cloudflare: { token: cf.token, baseUrl: cf.url, fetch: cf.fetch, owner: "realm-idem", maxWaitMs: 1500 } });

/** Messages in every event stream of the realm: a replay must append none. */
async function eventCounts(): Promise<Record<string, number>> {
  // The realm context's identity reads every stream's info (its auditor follows them all).
  const jsm = await jetstreamManager(realm.nc);
  const out: Record<string, number> = {};
  for (const c of EVENT_CONTEXTS) out[c] = (await jsm.streams.info(`REALM_${c.toUpperCase()}`)).state.messages;
  return out;
}

interface Answer {
  body: Record<string, unknown>;
  replayed: boolean;
}

/** One command over HTTP when it has a route, else over NATS, with the given command id. */
async function send(p: PermissionEntry, input: object, commandId: string, key = admin): Promise<Answer> {
  if (p.http) {
    // the JSON route (an endpoint with an upload route lists that second)
    const [method, path] = p.http.split(", ")[0]!.split(" ");
    const res = await fetch(`${realm.httpUrl}${path}`, { method, headers: { "content-type": "application/json", authorization: `Bearer ${key}`, [RequestHeaders.CommandId]: commandId }, body: JSON.stringify(input) });
    const body = (await res.json()) as { ok: boolean; error?: { code: string; message: string } } & Record<string, unknown>;
    if (!body.ok) throw new RealmError(body.error!.code as never, body.error!.message);
    return { body, replayed: res.headers.get(REPLAYED_HEADER) === "true" };
  }
  const h = await import("@nats-io/nats-core").then((m) => m.headers());
  h.set(RequestHeaders.CommandId, commandId);
  if (p.auth !== "none") h.set(RequestHeaders.Authorization, `Bearer ${key}`);
  const reply = await op.request(p.subject, JSON.stringify(input), { timeout: 30_000, headers: h });
  const body = reply.json<{ ok: boolean; error?: { code: string; message: string } } & Record<string, unknown>>();
  if (!body.ok) throw new RealmError(body.error!.code as never, body.error!.message);
  return { body, replayed: reply.headers?.get(REPLAYED_HEADER) === "true" };
}

const cmd = <T extends object = Record<string, unknown>>(name: string, input: object) => {
  const [ctx, ...rest] = name.split(":");
  return callRealm<T>(op, `realm.${ctx}.commands.${rest.join(":")}`, input, { authorization: `Bearer ${admin}`, timeoutMs: 30_000 });
};

/**
 * The steps, in an order where each finds what it needs: the permission, and its input (a function of the
 * answers so far). Every command of the realm must have one (checked below).
 */
type Step = { permission: string; input: (a: Map<string, Record<string, unknown>>) => object | Promise<object>; key?: () => Promise<string> };

/** A new OpenSSH public key line (ssh-ed25519), for the SSH CA's steps. */
function sshPublicKey(): string {
  const raw = generateKeyPairSync("ed25519").publicKey.export({ format: "der", type: "spki" }).subarray(-32);
  const str = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return `ssh-ed25519 ${Buffer.concat([str(Buffer.from("ssh-ed25519")), str(raw)]).toString("base64")} idem`;
}
const zone = "idem.example";
const steps: Step[] = [
  { permission: "dns:zone.create", input: () => ({ zone, ns: [`ns1.${zone}`] }) },
  { permission: "dns:zone.soa", input: () => ({ zone, refresh: 7200 }) },
  { permission: "dns:record.add", input: () => ({ zone, name: "www", type: "A", data: "192.0.2.10" }) },
  { permission: "dns:record.set", input: () => ({ zone, name: "mail", type: "A", data: ["192.0.2.20", "192.0.2.21"] }) },
  { permission: "dns:record.remove", input: () => ({ zone, name: "mail", type: "A", data: "192.0.2.21" }) },
  { permission: "dns:host.add", input: () => ({ name: `web1.${zone}`, ips: ["192.0.2.30"] }) },
  { permission: "dns:zone.import", input: () => ({ zone: "imported.example", text: "$ORIGIN imported.example.\n$TTL 300\n@ IN SOA ns1 hostmaster 7 3600 900 1209600 300\n@ IN NS ns1\nns1 IN A 192.0.2.53\n" }) },
  { permission: "dns:zone.delete", input: () => ({ zone: "imported.example" }) },
  { permission: "dns:subject.register", input: () => ({ pattern: "idem.orders.>", owner: "orders" }) },
  { permission: "dns:subject.release", input: () => ({ pattern: "idem.orders.>" }) },
  { permission: "dns:cid.register", input: () => ({ name: "idem/readme", cid: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku" }) },
  { permission: "dns:cid.remove", input: () => ({ name: "idem/readme" }) },
  { permission: "dns:cloudflare.apply", input: () => ({ zone }) },
  { permission: "dns:tsig.create", input: () => ({ name: `idem-key.${zone}`, zones: [zone] }) },
  { permission: "dns:tsig.revoke", input: () => ({ name: `idem-key.${zone}` }) },
  { permission: "dns:zone.secondaries", input: () => ({ zone, secondaries: ["192.0.2.53"] }) },
  { permission: "dns:dnssec.enable", input: () => ({ zone }) },
  { permission: "dns:dnssec.policy", input: () => ({ zone, dnskeyTtl: 600 }) },
  { permission: "dns:dnssec.rollover", input: () => ({ zone, role: "ksk" }) },

  { permission: "identity:principal.create", input: () => ({ id: "idem-ada", kind: "person", displayName: "Ada" }) },
  { permission: "identity:principal.update", input: () => ({ id: "idem-ada", displayName: "Ada L." }) },
  { permission: "identity:principal.setPassword", input: () => ({ id: "idem-ada", password: "a long enough passphrase 1" }) },
  { permission: "identity:principal.enrollTotp", input: () => ({ id: "idem-ada" }) },
  { permission: "identity:principal.confirmTotp", input: (a) => ({ id: "idem-ada", code: OTPAuth.URI.parse(a.get("identity:principal.enrollTotp")!.otpauthUri as string).generate() }) },
  { permission: "identity:principal.disable", input: () => ({ id: "idem-ada", reason: "leave" }) },
  { permission: "identity:principal.enable", input: () => ({ id: "idem-ada" }) },
  { permission: "identity:principal.unlock", input: () => ({ id: "idem-ada" }) },
  { permission: "identity:organization.create", input: () => ({ id: "idem-org", displayName: "Idem Org" }) },
  { permission: "identity:organization.addUnit", input: () => ({ id: "idem-org", unit: "ops", displayName: "Ops" }) },
  { permission: "identity:group.create", input: () => ({ id: "idem-group", displayName: "Idem group" }) },
  { permission: "identity:group.addMember", input: () => ({ id: "idem-group", principal: "idem-ada" }) },
  { permission: "identity:group.removeMember", input: () => ({ id: "idem-group", principal: "idem-ada" }) },
  { permission: "identity:radiusClient.add", input: () => ({ id: "idem-nas", address: "192.0.2.0/24", allowedGroups: ["idem-group"] }) },
  { permission: "identity:radiusClient.remove", input: () => ({ id: "idem-nas" }) },
  { permission: "identity:group.delete", input: () => ({ id: "idem-group" }) },
  { permission: "identity:role.define", input: () => ({ id: "idem-role", description: "reads zones", permissions: ["dns:zones"] }) },
  { permission: "identity:policy.bind", input: () => ({ id: "idem-binding", role: "idem-role", subject: { kind: "principal", id: "idem-ada" } }) },
  { permission: "identity:policy.revoke", input: () => ({ id: "idem-binding" }) },
  { permission: "identity:apikey.issue", input: () => ({ owner: "admin", label: "idem", roles: ["realm-admin"] }) },
  { permission: "identity:apikey.revoke", input: (a) => ({ id: a.get("identity:apikey.issue")!.id as string, reason: "done" }) },
  { permission: "identity:client.register", input: () => ({ id: "idem-app", displayName: "Idem app", redirectUris: ["https://app.idem.example/cb"], grantTypes: ["authorization_code"] }) },
  { permission: "identity:client.rotateSecret", input: () => ({ id: "idem-app" }) },
  { permission: "identity:client.disable", input: () => ({ id: "idem-app" }) },
  { permission: "identity:oidc.rotateKeys", input: () => ({}) },
  { permission: "identity:directory.register", input: () => ({ id: "idem-ldap", url: ldap.url, bindDn: ldap.adminDn, bindPassword: ldap.adminPassword, usersBase: `ou=people,${ldap.baseDn}`, groupsBase: `ou=groups,${ldap.baseDn}`, syncIntervalSeconds: 0 }) },
  { permission: "identity:directory.sync", input: () => ({ id: "idem-ldap" }) },

  { permission: "identity:account.create", input: () => ({ name: "idem" }) },
  { permission: "identity:account.update", input: () => ({ name: "idem", description: "idempotency" }) },
  { permission: "identity:signingkey.add", input: () => ({ account: "idem" }) },
  { permission: "identity:signingkey.rotate", input: (a) => ({ account: "idem", key: a.get("identity:signingkey.add")!.key as string }) },
  { permission: "identity:signingkey.revoke", input: (a) => ({ account: "idem", key: a.get("identity:signingkey.rotate")!.key as string }) },
  { permission: "identity:user.create", input: () => ({ account: "idem", name: "dev1", kind: "service" }) },
  { permission: "identity:user.createMany", input: () => ({ account: "idem", users: [{ name: "dev2", kind: "service" }, { name: "dev3", kind: "service" }] }) },
  { permission: "identity:user.revoke", input: () => ({ account: "idem", name: "dev1" }) },
  { permission: "identity:account.delete", input: () => ({ name: "idem" }) },

  { permission: "pki:issuer.prepare", input: () => ({ issuer: "idem", commonName: "Idem CA" }) },
  {
    permission: "pki:issuer.import",
    input: (a) => {
      const s = signIntermediate({ dir: ceremonyDir, passphrase: CEREMONY_PASS, csrPem: a.get("pki:issuer.prepare")!.csrPem as string, permittedDns: [zone] });
      return { issuer: "idem", certificate: s.certPem, root: s.rootPem };
    },
  },
  { permission: "pki:issuer.policy", input: () => ({ issuer: "idem", allowDomains: [zone] }) },
  { permission: "pki:issuer.root-crl", input: () => ({ issuer: "idem", crl: issueRootCrl({ dir: ceremonyDir, passphrase: CEREMONY_PASS }).crlDer.toString("base64") }) },
  { permission: "pki:certificate.issue", input: () => ({ issuer: "idem", profile: "server", commonName: `www.${zone}`, dns: [`www.${zone}`] }) },
  { permission: "pki:certificate.revoke", input: (a) => ({ serial: a.get("pki:certificate.issue")!.serial as string, reason: "superseded" }) },
  { permission: "pki:ssh-ca.create", input: () => ({ issuer: "idem" }) },
  { permission: "pki:ssh-ca.policy", input: () => ({ issuer: "idem", userMaxHours: 48 }) },
  { permission: "pki:ssh.sign-user", input: () => ({ issuer: "idem", publicKey: sshPublicKey(), principal: "idem-ada", hours: 8 }) },
  {
    permission: "pki:ssh.sign-self",
    input: () => ({ issuer: "idem", publicKey: sshPublicKey(), hours: 8 }),
    // A person asks for themselves: Ada's own API key (the admin is a service).
    key: async () => {
      await cmd("identity:policy.bind", { id: "idem-ada-reads", role: "idem-role", subject: { kind: "principal", id: "idem-ada" } });
      return (await cmd<{ key: string }>("identity:apikey.issue", { owner: "idem-ada", label: "ssh", roles: ["idem-role"] })).key;
    },
  },
  { permission: "pki:ssh.sign-host", input: () => ({ issuer: "idem", publicKey: sshPublicKey(), names: [`web1.${zone}`] }) },
  { permission: "pki:ssh.revoke", input: (a) => ({ issuer: "idem", serial: a.get("pki:ssh.sign-host")!.serial as string }) },
  { permission: "pki:acme.configure", input: () => ({ issuer: "idem", enabled: true }) },
  { permission: "pki:acme-eab.create", input: () => ({ issuer: "idem", principal: "idem-ada" }) },
  { permission: "pki:acme-eab.revoke", input: (a) => ({ issuer: "idem", keyId: a.get("pki:acme-eab.create")!.keyId as string }) },

  { permission: "realm:checkpoint.create", input: () => ({}) },
];

/** The first answers, and their command ids. */
const answers = new Map<string, Record<string, unknown>>();
const ids = new Map<string, string>();
const inputs = new Map<string, object>();

beforeAll(async () => {
  ldap = await startSlapd({ baseDn: "dc=idem,dc=example", ldif: ouLdif("dc=idem,dc=example") });
  cf = await startCloudflareDouble({ zone });
  await initCeremony({ dir: ceremonyDir, passphrase: CEREMONY_PASS, subject: { CN: "Idem Root CA" } });
  realm = await start();
  op = await connectAs(realm.natsUrl, join(data, "operator", "admin.creds"), "idem-test");
  bootstrapId = newId();
  admin = (await callRealm<{ key: string }>(op, "realm.identity.commands.admin.bootstrap", {}, { commandId: bootstrapId })).key;
  permissions = (await callRealm<{ permissions: PermissionEntry[] }>(op, "realm.realm.queries.permissions", {}, { authorization: `Bearer ${admin}` })).permissions;
}, 180_000);

afterAll(async () => {
  await op?.close();
  await realm?.stop();
  await ldap?.stop();
  await cf?.stop();
  rmSync(data, { recursive: true, force: true });
  rmSync(ceremonyDir, { recursive: true, force: true });
});

describe("a resent command id", () => {
  it("has a step for every command of the realm", () => {
    const commands = permissions.filter((p) => p.kind === "command").map((p) => p.permission);
    // Not stepped here: dns:dnssec.ds-submitted is accepted only once a KSK roll's new key is active (the key schedule's
    // DNSKEY TTL + propagation delay later): not reachable in this run's order of steps.
    // identity:passkey.revoke needs a passkey, which only a browser's WebAuthn ceremony registers
    // (test/identity/passkeys.test.ts revokes one through the API).
    const covered = new Set([...steps.map((s) => s.permission), "identity:admin.bootstrap", "dns:dnssec.ds-submitted", "identity:passkey.revoke"]);
    expect(commands.filter((c) => !covered.has(c))).toEqual([]);
    expect(steps.map((s) => s.permission).filter((c) => !commands.includes(c))).toEqual([]);
  });

  it("is answered with the first outcome by every command, and appends nothing", async () => {
    for (const step of steps) {
      const p = permissions.find((x) => x.permission === step.permission)!;
      const input = await step.input(answers);
      const id = newId();
      const key = step.key ? await step.key() : undefined;
      const first = await send(p, input, id, key).catch((e: Error) => {
        throw new Error(`${step.permission}: ${(e as RealmError).code ?? ""} ${e.message}`);
      });
      expect(first.replayed, step.permission).toBe(false);
      const before = await eventCounts();
      const second = await send(p, input, id, key);
      expect(second.replayed, step.permission).toBe(true);
      expect(second.body, step.permission).toEqual(first.body);
      expect(await eventCounts(), step.permission).toEqual(before);
      answers.set(step.permission, first.body);
      ids.set(step.permission, id);
      inputs.set(step.permission, input);
    }
  }, 300_000);

  it("of the first admin's bootstrap (no authentication) answers without the key: anyone could send that id", async () => {
    const p = permissions.find((x) => x.permission === "identity:admin.bootstrap")!;
    const again = await send(p, {}, bootstrapId);
    expect(again.replayed).toBe(true);
    expect(again.body.key).toBeUndefined();
    expect(again.body.withheld).toEqual(["key"]);
  });

  it("used again by another principal, or for another input, is refused and tells nothing of the first", async () => {
    const p = permissions.find((x) => x.permission === "identity:apikey.issue")!;
    await cmd("identity:principal.create", { id: "idem-other", kind: "service", displayName: "other admin" });
    await cmd("identity:policy.bind", { id: "idem-other-admin", role: "realm-admin", subject: { kind: "principal", id: "idem-other" } });
    const other = (await cmd<{ key: string }>("identity:apikey.issue", { owner: "idem-other", label: "other", roles: ["realm-admin"] })).key;
    const before = await eventCounts();
    const asOther = await send(p, inputs.get(p.permission)!, ids.get(p.permission)!, other).catch((e: RealmError) => e);
    expect(asOther).toBeInstanceOf(RealmError);
    expect((asOther as RealmError).code).toBe("CONFLICT");
    expect((asOther as RealmError).message).not.toContain(answers.get(p.permission)!.key as string);
    const changed = await send(p, { ...inputs.get(p.permission)!, label: "another label" }, ids.get(p.permission)!).catch((e: RealmError) => e);
    expect((changed as RealmError).code).toBe("CONFLICT");
    expect((changed as RealmError).message).toBe((asOther as RealmError).message);
    expect(await eventCounts()).toEqual(before);
  });

  it("keeps no secret with an outcome: API keys, client secrets, TOTP seeds, private keys and creds are not in the journal", async () => {
    const secrets = [answers.get("identity:apikey.issue")!.key, answers.get("identity:client.register")!.clientSecret, answers.get("identity:client.rotateSecret")!.clientSecret, answers.get("identity:principal.enrollTotp")!.otpauthUri, answers.get("pki:certificate.issue")!.privateKeyPem, answers.get("identity:user.create")!.creds, (answers.get("identity:user.createMany")!.users as { creds: string }[])[0]!.creds, admin] as string[];
    for (const s of secrets) expect(typeof s).toBe("string");
    const sealer = Sealer.open(join(data, "operator", "seal.key"));
    const owner: Record<string, string> = { identity: "realm-identity", dns: "realm-dns", pki: "realm-pki", secrets: "realm-secrets", realm: "realm-system" };
    let seen = 0;
    for (const c of EVENT_CONTEXTS) {
      // Each journal is readable by its context's own identity only.
      const nc = await connectAs(realm.natsUrl, join(data, "operator", "identities", `${owner[c]}.creds`), `idem-${c}`);
      const kv = await new Kvm(nc).open(outcomesBucket(c));
      for await (const k of await kv.keys()) {
        const e = await kv.get(k);
        if (!e || e.operation !== "PUT") continue;
        const text = sealer.openString(e.string(), `${outcomesBucket(c)}/${k}`);
        seen++;
        // A PEM or creds file by its longest line (the key material), a token whole.
        for (const s of secrets) expect(text).not.toContain(s.split("\n").reduce((a, b) => (b.trim().length > a.length ? b.trim() : a), ""));
        expect(e.string().startsWith("s1.")).toBe(true);
      }
      await nc.close();
    }
    expect(seen).toBeGreaterThanOrEqual(steps.length);
  });

  it("is answered the same after a restart (the outcomes are kept, not only inside JetStream's duplicate window)", async () => {
    await op.close();
    await realm.stop();
    realm = await start();
    op = await connectAs(realm.natsUrl, join(data, "operator", "admin.creds"), "idem-test");
    for (const name of ["identity:apikey.issue", "dns:host.add", "identity:user.createMany", "pki:certificate.issue"]) {
      const p = permissions.find((x) => x.permission === name)!;
      const before = await eventCounts();
      const again = await send(p, inputs.get(name)!, ids.get(name)!);
      expect(again.replayed, name).toBe(true);
      expect(again.body, name).toEqual(answers.get(name));
      expect(await eventCounts(), name).toEqual(before);
    }
  }, 120_000);
});
