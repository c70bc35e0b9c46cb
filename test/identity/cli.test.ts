import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Command } from "commander";
import type { NatsConnection } from "@nats-io/nats-core";
import { registerIdentityCommands } from "../../identity/cli.js";
import { startHost, type Host } from "../../services/host/host.js";
import { createLogger } from "../../services/host/logger.js";
import { createIdentityContext } from "../../identity/service.js";
import { authenticatorOf } from "../../identity/auth.js";
import { startNats, type TestNats } from "../support/nats.js";

let nats: TestNats;
let nc: NatsConnection;
let host: Host;

beforeAll(async () => {
  nats = await startNats();
  nc = await nats.connect();
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
    const key = /rk_\S+/.exec(out)![0];
    const log = createLogger({ level: "silent" });
    const ctx = await createIdentityContext({ issuer: "http://127.0.0.1/oidc" })({ nc, log, dataDir: nats.dataDir });
    host = await startHost({ nc, contexts: [ctx], log, authenticate: authenticatorOf(ctx) });
    const created = JSON.parse(await realm("identity", "principal", "create", "dora", "--name", "Dora", "--nats", nats.url, "--token", key)) as { principal: { id: string } };
    expect(created.principal.id).toBe("dora");
    await expect(realm("identity", "principal", "list", "--nats", nats.url)).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    const audit = JSON.parse(await realm("identity", "audit", "--aggregate", "principal/dora", "--nats", nats.url, "--token", key)) as { entries: { actor: string; type: string }[] };
    expect(audit.entries).toEqual([expect.objectContaining({ actor: "admin", type: "PrincipalCreated" })]);
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
