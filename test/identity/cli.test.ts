import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Command } from "commander";
import type { NatsConnection } from "@nats-io/nats-core";
import { registerIdentityCommands } from "../../identity/cli.js";
import { startHost, type Host } from "../../services/host/host.js";
import { createLogger } from "../../services/host/logger.js";
import { createIdentityContext } from "../../identity/service.js";
import { Sealer } from "../../services/kernel/seal.js";
import { identityAuthOf } from "../../identity/auth.js";
import { startNats, type TestNats } from "../support/nats.js";
import { testTrust } from "../support/trust.js";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { sealBundle } from "../../identity/nats/keystore.js";

let nats: TestNats;
let nc: NatsConnection;
let host: Host;
const PASSPHRASE = "operator bundle passphrase for the test";
let bundle: string;

beforeAll(async () => {
  nats = await startNats();
  nc = await nats.connect();
  const log = createLogger({ level: "silent" });
  bundle = join(nats.dataDir, "operator-identity.bundle.json");
  writeFileSync(bundle, JSON.stringify(sealBundle("OTEST", "SOTESTSEED", PASSPHRASE)));
  const ctx = await createIdentityContext({ issuer: "http://127.0.0.1/oidc", sealer: Sealer.generate(), operatorBundle: bundle })({ nc, log, dataDir: nats.dataDir, trust: testTrust() });
  host = await startHost({ nc, contexts: [ctx], log, ...identityAuthOf(ctx) });
});
afterAll(async () => {
  await host?.stop();
  await nats?.stop();
});

async function realm(...args: string[]): Promise<string> {
  const program = new Command("realm").exitOverride();
  registerIdentityCommands(program);
  let out = "";
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((s: string | Uint8Array) => {
    out += String(s);
    return true;
  });
  const err = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
  try {
    await program.parseAsync(["node", "realm", ...args]);
  } finally {
    spy.mockRestore();
    err.mockRestore();
  }
  return out;
}

describe("realm identity CLI", () => {
  it("bootstraps an admin whose API key then drives the protected API; no key -> UNAUTHORIZED", async () => {
    const out = await realm("identity", "bootstrap", "--nats", nats.url);
    // stdout is the key alone: REALM_TOKEN=$(realm identity bootstrap) works
    expect(out).toMatch(/^rk_\S+\n$/);
    const key = out.trim();
    const created = JSON.parse(await realm("identity", "principal", "create", "dora", "--name", "Dora", "--nats", nats.url, "--token", key)) as { principal: { id: string } };
    expect(created.principal.id).toBe("dora");
    await expect(realm("identity", "principal", "list", "--nats", nats.url)).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    const audit = JSON.parse(await realm("identity", "audit", "--aggregate", "principal/dora", "--nats", nats.url, "--token", key)) as { entries: { actor: string; type: string }[] };
    expect(audit.entries).toEqual([expect.objectContaining({ actor: "admin", type: "PrincipalCreated" })]);
  });

  it("bootstraps only once: a second bootstrap is FORBIDDEN; the operator passphrase recovers", async () => {
    await expect(realm("identity", "bootstrap", "--nats", nats.url)).rejects.toMatchObject({ code: "FORBIDDEN" });
    await expect(realm("identity", "bootstrap", "--principal", "mallory", "--nats", nats.url)).rejects.toMatchObject({ code: "FORBIDDEN" });
    const wrong = join(nats.dataDir, "wrong-pass");
    writeFileSync(wrong, "not the passphrase\n");
    await expect(realm("identity", "bootstrap", "--passphrase-file", wrong, "--nats", nats.url)).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    const right = join(nats.dataDir, "pass");
    writeFileSync(right, `${PASSPHRASE}\n`, { mode: 0o600 });
    const out = await realm("identity", "bootstrap", "--principal", "rescue", "--passphrase-file", right, "--nats", nats.url);
    const key = out.trim();
    expect(key).toMatch(/^rk_/);
    const shown = JSON.parse(await realm("identity", "principal", "show", "rescue", "--nats", nats.url, "--token", key)) as { principal: { roles: string[] } };
    expect(shown.principal.roles).toContain("realm-admin");
    // the bootstrap command is not on the HTTP API (only holders of realm NATS creds reach it)
    const routes = JSON.stringify(host.app.swagger());
    expect(routes).not.toContain("admin/bootstrap");
  });

  it("has --help on every command", async () => {
    const program = new Command("realm");
    registerIdentityCommands(program);
    const walk = (c: Command): Command[] => [c, ...c.commands.flatMap(walk)];
    for (const c of walk(program.commands[0]!)) {
      expect(c.description().length).toBeGreaterThan(0);
      expect(c.helpInformation()).toContain("--help");
    }
  });
});
