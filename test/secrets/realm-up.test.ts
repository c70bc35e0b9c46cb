import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../services/nats/supervisor.js";
import { runRealm } from "../support/cli.js";
import { startVaultwardenDouble, type VaultwardenDouble } from "../support/vaultwarden/server.js";
import { escrowEnv, setupOrganization, type RealmVault } from "../support/vaultwarden/setup.js";

describe("realm up with a Vaultwarden escrow", () => {
  let vw: VaultwardenDouble;
  let vault: RealmVault;
  const dirs: string[] = [];
  beforeAll(async () => {
    vw = await startVaultwardenDouble();
    vault = await setupOrganization(vw, { orgName: "realm" });
  }, 60_000);
  afterAll(async () => {
    vault?.client.close();
    await vw?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("refuses to start with wrong Vaultwarden credentials: a clear error, no password in it, nats-server stopped", async () => {
    const data = mkdtempSync(join(tmpdir(), "realm-up-vw-"));
    dirs.push(data);
    const env = { ...escrowEnv(vw, vault), REALM_VAULTWARDEN_PASSWORD: "definitely-wrong-password" };
    const r = await runRealm(["up", "--data", data, "--nats-port", String(await freePort()), "--http-port", String(await freePort()), "--dns-port", String(await freePort())], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("checking the Vaultwarden escrow");
    expect(r.stderr).toMatch(/realm: error UNAUTHORIZED: /);
    expect(r.stderr + r.stdout).not.toContain("definitely-wrong-password");
    // The nats-server it had started for this data dir is gone.
    expect(spawnSync("pgrep", ["-f", join(data, "nats")]).status).toBe(1);
  }, 60_000);
});
