import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../services/nats/supervisor.js";
import { exitCodeOf } from "../../services/cli/exit-codes.js";
import { runRealm, startRealmProcess } from "../support/cli.js";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import { startVaultwardenDouble, type VaultwardenDouble } from "../support/vaultwarden/server.js";
import { escrowEnv, setupOrganization, type RealmVault } from "../support/vaultwarden/setup.js";

describe("realm up with a Vaultwarden escrow", () => {
  let vw: VaultwardenDouble;
  let vault: RealmVault;
  const dirs: string[] = [];
  beforeAll(async () => {
    // Vaultwarden's login rate limit on: realm up and the `realm secrets` commands must stay within it.
    vw = await startVaultwardenDouble({ loginRateLimit: true });
    vault = await setupOrganization(vw, { orgName: "realm" });
  }, 60_000);
  afterAll(async () => {
    vault?.client.close();
    await vw?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("with the escrow: NATS creds from `realm user create` land in Vaultwarden, `realm secrets list` shows the record, `realm secrets get` gives creds that connect", async () => {
    const data = mkdtempSync(join(tmpdir(), "realm-up-vw-"));
    dirs.push(data);
    const natsPort = await freePort();
    const env = escrowEnv(vw, vault);
    const realm = await startRealmProcess(["up", "--data", data, "--nats-port", String(natsPort), "--http-port", String(await freePort()), "--dns-port", String(await freePort())], "cim-realm is up", env, 60_000);
    try {
      expect(realm.stderr()).toContain("starting context secrets");
      expect(realm.stdout()).toMatch(/contexts {2}secrets, identity, dns, pki/);
      // the local operator's creds (commands and queries only), as the README tells
      const nats = ["--nats", `nats://127.0.0.1:${natsPort}`, "--creds", join(data, "operator", "admin.creds")];
      const boot = await runRealm(["identity", "bootstrap", ...nats]);
      const token = { REALM_TOKEN: boot.stdout.trim() };
      expect((await runRealm(["account", "create", "lab", ...nats], token)).code).toBe(0);
      const created = await runRealm(["user", "create", "lab", "bob", "--kind", "service", ...nats], token);
      expect(created.code).toBe(0);
      expect(created.stdout).not.toContain("NKEY SEED");
      const ref = (JSON.parse(created.stdout) as { secretRef: { itemId: string } }).secretRef;
      const listed = await runRealm(["secrets", "list", "--principal", "nats:lab/bob", ...nats], token);
      expect(JSON.parse(listed.stdout)).toMatchObject({ secrets: [{ itemId: ref.itemId, name: "nats:lab/bob:creds", versions: 1 }] });
      // (its own config dir: `realm secrets` keeps its Vaultwarden session there)
      const got = await runRealm(["secrets", "get", ref.itemId], { ...env, XDG_CONFIG_HOME: data });
      expect(got.code).toBe(0);
      const bob = await connect({ servers: `nats://127.0.0.1:${natsPort}`, authenticator: credsAuthenticator(new TextEncoder().encode(got.stdout)), reconnect: false });
      await bob.flush();
      await bob.close();
    } finally {
      realm.child.kill("SIGTERM");
      await realm.exited;
    }
  }, 120_000);

  it("refuses to start with wrong Vaultwarden credentials: a clear error, no password in it, nats-server stopped", async () => {
    const data = mkdtempSync(join(tmpdir(), "realm-up-vw-"));
    dirs.push(data);
    const env = { ...escrowEnv(vw, vault), REALM_VAULTWARDEN_PASSWORD: "definitely-wrong-password" };
    const r = await runRealm(["up", "--data", data, "--nats-port", String(await freePort()), "--http-port", String(await freePort()), "--dns-port", String(await freePort())], env);
    // The CLI's exit status by error class (services/cli/exit-codes.ts): UNAUTHORIZED.
    expect(r.code).toBe(exitCodeOf("UNAUTHORIZED"));
    expect(r.stderr).toContain("checking the Vaultwarden escrow");
    // (the line is `error: UNAUTHORIZED: …` since the CLI core changes; `realm: error UNAUTHORIZED: …` before)
    expect(r.stderr).toMatch(/error:? UNAUTHORIZED: /);
    expect(r.stderr + r.stdout).not.toContain("definitely-wrong-password");
    // The nats-server it had started for this data dir is gone.
    expect(spawnSync("pgrep", ["-f", join(data, "nats")]).status).toBe(1);
  }, 60_000);
});
