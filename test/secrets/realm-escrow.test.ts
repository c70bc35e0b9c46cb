import { createPrivateKey, X509Certificate } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { filesUnder } from "../support/files.js";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { createLogger } from "../../services/host/logger.js";
import { newId } from "../../services/kernel/index.js";
import { RealmError } from "../../services/kernel/errors.js";
import { createNatsAccountsContext, type NatsAccountsContext } from "../../identity/nats/service.js";
import { createIdentityContext } from "../../identity/service.js";
import { Sealer } from "../../services/kernel/seal.js";
import { vaultwardenEscrowFromEnv, type VaultwardenEscrow } from "../../secrets-client/escrow.js";
import { createSecretsContext, type SecretsContext } from "../../secrets-client/records.js";
import type { SecretEscrow } from "../../secrets-client/contract.js";
import { registerSecretsCommands } from "../../secrets-client/cli.js";
import { startVaultwardenDouble, type VaultwardenDouble } from "../support/vaultwarden/server.js";
import { escrowEnv, setupOrganization, type RealmVault } from "../support/vaultwarden/setup.js";
import { startPki, type PkiHarness } from "../pki/harness.js";
import { testTrust } from "../support/trust.js";
import { startOperatorNats, type OperatorNats } from "../support/realm-nats.js";

/** The base64 body of a PEM or the seed line of a creds file: what a leak would carry. */
const secretLines = (text: string): string[] => text.split("\n").filter((l) => /^[A-Za-z0-9+/=]{40,}$/.test(l.trim()) || /^SU[A-Z2-7]{56}$/.test(l.trim()));

describe("escrow in the realm: generated keys and NATS creds go to Vaultwarden, events and logs keep only the reference", () => {
  let vw: VaultwardenDouble;
  let vault: RealmVault;
  let env: Record<string, string>;
  let vaultEscrow: VaultwardenEscrow;
  /** What the contexts get: the secrets context's recording escrow over Vaultwarden. */
  let escrow: SecretEscrow & { versions: VaultwardenEscrow["versions"] };
  let secrets: SecretsContext;
  let pki: PkiHarness;
  const logLines: string[] = [];
  const log = createLogger({ level: "debug", destination: new Writable({ write: (c, _e, cb) => (logLines.push(String(c)), cb()) }) });
  // NATS accounts (operator mode) with the same escrow.
  let realm: OperatorNats;
  let nc: NatsConnection;
  const trust = testTrust();
  let accounts: NatsAccountsContext;

  beforeAll(async () => {
    // Vaultwarden's login rate limit on (10, then one a minute): the realm must get by with cached sessions.
    vw = await startVaultwardenDouble({ loginRateLimit: true });
    vault = await setupOrganization(vw, { orgName: "realm" });
    env = escrowEnv(vw, vault);
    vaultEscrow = vaultwardenEscrowFromEnv(env)!;
    expect((await vaultEscrow.check()).organizationId).toBe(vault.organizationId);
    // The secrets context records each escrow on the PKI's nats-server (one JetStream for the test).
    let recording: SecretEscrow | undefined;
    pki = await startPki({ escrow: { store: (r) => recording!.store(r), get: (r) => recording!.get(r) }, log, trust });
    secrets = await createSecretsContext({ escrow: vaultEscrow })({ nc: pki.nc, log, dataDir: join(pki.work, "secrets"), trust });
    recording = secrets.escrow;
    escrow = { store: (r) => secrets.escrow.store(r), get: (r) => secrets.escrow.get(r), versions: (r) => vaultEscrow.versions(r) };
    realm = await startOperatorNats(mkdtempSync(join(tmpdir(), "realm-escrow-")));
    nc = await realm.connectAs("realm-identity");
    accounts = await createNatsAccountsContext({ dir: realm.paths.operator, escrow, sysCredsFile: realm.credsFile("realm-sys") })({ nc, log, dataDir: realm.dir, trust: realm.trust });
  }, 120_000);
  afterAll(async () => {
    await accounts?.stop?.();
    await realm?.stop();
    await secrets?.stop?.();
    await pki?.stop();
    vaultEscrow?.close();
    vault?.client.close();
    await vw?.stop();
  });

  const meta = () => {
    const id = newId();
    return { commandId: id, actor: "test", correlationId: id, causationId: id };
  };

  async function streamText(store: { read(): AsyncGenerator<{ data: Uint8Array }> }): Promise<string> {
    const out: string[] = [];
    for await (const m of store.read()) out.push(new TextDecoder().decode(m.data));
    return out.join("\n");
  }

  it("a certificate with a generated key: the key is in Vaultwarden (only ciphertext on the wire), the reply and the event carry the reference", async () => {
    const m = meta();
    const r = await pki.pki.issue({ profile: "client", commonName: "alice.example.test", principal: "alice" }, m);
    expect(r.privateKeyPem).toBeUndefined();
    expect(r.secretRef).toMatchObject({ itemId: expect.any(String), revision: expect.any(String) });
    const key = await escrow.get(r.secretRef!);
    expect(new X509Certificate(r.certPem).checkPrivateKey(createPrivateKey(key))).toBe(true);
    const versions = await escrow.versions(r.secretRef!);
    expect(versions).toMatchObject({ principal: "alice", name: `cert:${r.serial}:key`, version: 1 });
    const stored = pki.pki.projection.state.certificates.get(r.serial)!;
    expect(stored.secretRef).toEqual(r.secretRef);

    const leaks = secretLines(key);
    expect(leaks.length).toBeGreaterThan(0);
    const events = await streamText(pki.pki.store);
    const logs = logLines.join("");
    const wire = vw.bodies.join("\n");
    const files = filesUnder(pki.nats.dataDir).map((f) => readFileSync(f).toString("latin1")).join("\n");
    for (const l of leaks) {
      expect(events).not.toContain(l);
      expect(logs).not.toContain(l);
      expect(wire).not.toContain(l);
      expect(files).not.toContain(l);
    }
    expect(events).toContain(r.secretRef!.itemId);
    // The secrets context recorded it, caused by the issuing command, without the key.
    const record = secrets.projection.state.get(r.secretRef!.itemId)!;
    expect(record).toMatchObject({ principal: "alice", name: `cert:${r.serial}:key`, revision: r.secretRef!.revision, versions: 1, causedBy: m.commandId });
    const secretsEvents = await streamText(secrets.store);
    for (const l of leaks) expect(secretsEvents).not.toContain(l);
    const listed = (await secrets.endpoints[0]!.handle({ principal: "alice" }, m as never)) as { secrets: { itemId: string }[] };
    expect(listed.secrets.map((x) => x.itemId)).toEqual([r.secretRef!.itemId]);
  });

  it("NATS creds: escrowed, they connect, and neither the seed nor the JWT+seed file appears in the stream or the logs", async () => {
    await accounts.nats.createAccount({ name: "app" }, meta());
    const u = await accounts.nats.createUser({ account: "app", name: "worker", kind: "service" }, meta());
    expect(u.creds).toBeUndefined();
    const creds = await escrow.get(u.secretRef!);
    expect(creds).toContain("BEGIN USER NKEY SEED");
    const c = await connect({ servers: realm.url, authenticator: credsAuthenticator(new TextEncoder().encode(creds)), reconnect: false });
    await c.flush();
    await c.close();
    const seed = creds.split("\n").find((l) => /^SU[A-Z2-7]{56}$/.test(l.trim()))!.trim();
    const events = await streamText(accounts.nats.store);
    expect(events).toContain(u.secretRef!.itemId);
    expect(events).not.toContain(seed);
    expect(logLines.join("")).not.toContain(seed);
    expect(vw.bodies.join("\n")).not.toContain(seed);
  });

  it("identity: an API key and an OIDC client secret are escrowed in their principal's collection; events hold only hashes and references", async () => {
    const ctx = await createIdentityContext({ issuer: "http://127.0.0.1/oidc", escrow, sealer: Sealer.generate() })({ nc: pki.nc, log, dataDir: join(pki.work, "identity"), trust });
    try {
      const call = (name: string, input: object) => {
        const m = meta();
        return ctx.endpoints.find((e) => e.name === name)!.handle(input as never, { ...m, log } as never) as Promise<Record<string, unknown>>;
      };
      await call("principal.create", { id: "svc-billing", kind: "service", displayName: "Billing" });
      await call("role.define", { id: "reader", description: "Read", permissions: ["identity:principals"] });
      await call("policy.bind", { id: "billing-reader", role: "reader", subject: { kind: "principal", id: "svc-billing" } });
      const k = await call("apikey.issue", { owner: "svc-billing", label: "ci", roles: ["reader"] });
      expect(k.key).toBeUndefined();
      const apiKey = await escrow.get(k.secretRef as { itemId: string });
      expect(apiKey).toMatch(new RegExp(`^rk_${k.id as string}_`));
      expect((await escrow.versions(k.secretRef as { itemId: string })).principal).toBe("svc-billing");
      // The escrowed key works: the identity context authenticates it.
      expect(await ctx.authenticate(`Bearer ${apiKey}`)).toMatchObject({ id: "svc-billing" });
      const c = await call("client.register", { id: "billing-app", displayName: "Billing", grantTypes: ["client_credentials"], principal: "svc-billing" });
      expect(c.clientSecret).toBeUndefined();
      const clientSecret = await escrow.get(c.secretRef as { itemId: string });
      const events = await streamText(ctx.core.store);
      expect(events).toContain((k.secretRef as { itemId: string }).itemId);
      for (const secret of [apiKey, apiKey.split("_").pop()!, clientSecret]) {
        expect(events).not.toContain(secret);
        expect(logLines.join("")).not.toContain(secret);
        expect(vw.bodies.join("\n")).not.toContain(secret);
      }
    } finally {
      await ctx.stop?.();
    }
  });

  it("Vaultwarden refusing the realm's own account is UNAVAILABLE to the realm's caller (not UNAUTHORIZED), and records nothing", async () => {
    const before = await pki.pki.store.lastSequence();
    // A 401 while the session works: the realm's account lacks the organization role (auth.rs guards).
    vw.faults.push({ status: 401, times: Infinity, path: /ciphers/ });
    const err = await pki.pki.issue({ profile: "client", commonName: "eve.example.test", principal: "eve" }, meta()).catch((e: unknown) => e);
    vw.faults.length = 0;
    expect(err).toBeInstanceOf(RealmError);
    expect((err as RealmError).code).toBe("UNAVAILABLE");
    expect((err as RealmError).message).toContain("refused the realm's own account (FORBIDDEN");
    expect(await pki.pki.store.lastSequence()).toBe(before);
  });

  it("an escrow that fails leaves the issuance pending, not half-done: no event, a typed error, and the retry issues once", async () => {
    const before = await pki.pki.store.lastSequence();
    const m = meta();
    vw.faults.push({ status: 500, times: Infinity, path: /ciphers/ });
    let err: unknown;
    try {
      await pki.pki.issue({ profile: "client", commonName: "bob.example.test", principal: "bob" }, m);
    } catch (e) {
      err = e;
    } finally {
      vw.faults.length = 0;
    }
    expect(err).toBeInstanceOf(RealmError);
    expect((err as RealmError).code).toBe("UNAVAILABLE");
    expect(String((err as Error).message)).not.toMatch(/PRIVATE KEY|password/i);
    expect(await pki.pki.store.lastSequence()).toBe(before);
    // The same command again (the caller's retry) now completes, exactly once.
    const r = await pki.pki.issue({ profile: "client", commonName: "bob.example.test", principal: "bob" }, m);
    expect(r.secretRef).toBeDefined();
    const again = await pki.pki.issue({ profile: "client", commonName: "bob.example.test", principal: "bob" }, m);
    expect(again.serial).toBe(r.serial);
    expect(again.replayed).toBe(true);
    expect(await pki.pki.store.lastSequence()).toBe(before + 1);
    expect(new X509Certificate(r.certPem).checkPrivateKey(createPrivateKey(await escrow.get(r.secretRef!)))).toBe(true);

    // The same for NATS creds: a failed escrow records no user, the retry issues it.
    const seqBefore = await accounts.nats.store.lastSequence();
    vw.faults.push({ status: 503, times: Infinity, path: /ciphers/ });
    const m2 = meta();
    const e2 = await accounts.nats.createUser({ account: "app", name: "late", kind: "agent" }, m2).catch((e: RealmError) => e);
    vw.faults.length = 0;
    expect((e2 as RealmError).code).toBe("UNAVAILABLE");
    expect(await accounts.nats.store.lastSequence()).toBe(seqBefore);
    const u = await accounts.nats.createUser({ account: "app", name: "late", kind: "agent" }, m2);
    expect(u.secretRef).toBeDefined();
    expect(await accounts.nats.store.lastSequence()).toBe(seqBefore + 1);
  });

  it("`realm secrets get|versions|find` read it back with the caller's own Vaultwarden settings, logging in once for all of them", async () => {
    const r = await pki.pki.issue({ profile: "client", commonName: "carol.example.test", principal: "carol" }, meta());
    const xdg = mkdtempSync(join(tmpdir(), "realm-secrets-xdg-"));
    const cliEnv = { ...env, XDG_CONFIG_HOME: xdg };
    const logins = () => vw.log.filter((l) => l.path === "/identity/connect/token" && l.method === "POST").length;
    const before = logins();
    const realm = async (...args: string[]) => {
      const program = new Command("realm").exitOverride();
      registerSecretsCommands(program);
      let out = "";
      const saved = { ...process.env };
      Object.assign(process.env, cliEnv);
      const spy = vi.spyOn(process.stdout, "write").mockImplementation((c: string | Uint8Array) => ((out += c.toString()), true));
      try {
        await program.parseAsync(["node", "realm", ...args]);
      } finally {
        spy.mockRestore();
        for (const k of Object.keys(cliEnv)) if (saved[k] === undefined) delete process.env[k];
        Object.assign(process.env, saved);
      }
      return out;
    };
    const key = await realm("secrets", "get", r.secretRef!.itemId);
    expect(new X509Certificate(r.certPem).checkPrivateKey(createPrivateKey(key))).toBe(true);
    expect(JSON.parse(await realm("secrets", "find", "carol", `cert:${r.serial}:key`))).toMatchObject({ itemId: r.secretRef!.itemId });
    const v = JSON.parse(await realm("secrets", "versions", r.secretRef!.itemId)) as { current: { version: number; value?: string } };
    expect(v.current.version).toBe(1);
    expect(v.current.value).toBeUndefined();
    await expect(realm("secrets", "get", "00000000-0000-0000-0000-000000000000")).rejects.toMatchObject({ code: "NOT_FOUND" });
    // Four commands, one login: the session (tokens only) is kept between them, 0600, no password or key in it.
    expect(logins() - before).toBe(1);
    const file = join(xdg, "cim-realm", "vaultwarden-sessions.json");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(xdg, "cim-realm")).mode & 0o777).toBe(0o700);
    const kept = readFileSync(file, "utf8");
    expect(kept).not.toContain(vault.owner.password);
    expect(kept).not.toContain(vault.apiKey.clientSecret);
    // A session file others may read is not trusted: the command logs in instead (and still works).
    chmodSync(file, 0o644);
    const n = logins();
    expect(JSON.parse(await realm("secrets", "find", "carol", `cert:${r.serial}:key`))).toMatchObject({ itemId: r.secretRef!.itemId });
    expect(logins() - n).toBe(1);
    rmSync(xdg, { recursive: true, force: true });
  });

  it("misconfiguration is a clear error at start: wrong password, unreachable server, unknown organization", async () => {
    const wrong = vaultwardenEscrowFromEnv({ ...env, REALM_VAULTWARDEN_PASSWORD: "not the password" })!;
    const e1 = await wrong.check().catch((e: RealmError) => e);
    wrong.close();
    expect(e1).toBeInstanceOf(RealmError);
    expect((e1 as RealmError).message).not.toContain("not the password");
    const gone = vaultwardenEscrowFromEnv({ ...env, REALM_VAULTWARDEN_URL: "https://127.0.0.1:1" })!;
    const e2 = await gone.check().catch((e: RealmError) => e);
    gone.close();
    expect((e2 as RealmError).code).toBe("UNAVAILABLE");
    const org = vaultwardenEscrowFromEnv({ ...env, REALM_VAULTWARDEN_ORG: "no-such-org" })!;
    const e3 = await org.check().catch((e: RealmError) => e);
    org.close();
    expect((e3 as RealmError).code).toBe("NOT_FOUND");
    expect((e3 as RealmError).message).toContain("no-such-org");
  });

  it("with Vaultwarden's login rate limit on, no login was refused: every escrow reused its session", () => {
    expect(vw.loginRateLimit.enabled).toBe(true);
    expect(vw.log.filter((l) => l.status === 429)).toEqual([]);
    expect(vw.log.filter((l) => l.path === "/identity/connect/token").length).toBeLessThanOrEqual(10);
  });
});
