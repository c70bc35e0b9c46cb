import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import { newId } from "../../services/kernel/index.js";
import { NatsSupervisor } from "../../services/nats/supervisor.js";
import { bootstrapOperator } from "../../identity/nats/bootstrap.js";
import { NatsAccounts } from "../../identity/nats/service.js";

const dir = mkdtempSync(join(tmpdir(), "realm-nats-restart-"));
let server: NatsSupervisor | undefined;
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const tryConnect = async (url: string, creds: string) => {
  try {
    const c = await connect({ servers: url, authenticator: credsAuthenticator(new TextEncoder().encode(creds)), reconnect: false });
    await c.close();
    return true;
  } catch {
    return false;
  }
};

describe("realm up twice: the second bootstrap reuses the operator, the server keeps pushed accounts and revocations", () => {
  it("after a restart an issued user connects, a revoked one is still refused, the event log is replayed", async () => {
    const first = await bootstrapOperator(join(dir, "nats"));
    expect(first.generatedPassphrase).toBeTruthy();
    server = new NatsSupervisor({ dataDir: join(dir, "server"), operator: first.operator });
    await server.start();
    let nc = await connect({ servers: server.url, authenticator: credsAuthenticator(new TextEncoder().encode(first.serviceCreds)) });
    let svc = await NatsAccounts.open(nc, { dir: join(dir, "nats") });
    await svc.createAccount({ name: "team" }, { commandId: newId(), actor: "t" });
    const keep = (await svc.createUser({ account: "team", name: "keep", kind: "person" }, { commandId: newId(), actor: "t" })).creds!;
    const gone = (await svc.createUser({ account: "team", name: "gone", kind: "person" }, { commandId: newId(), actor: "t" })).creds!;
    await svc.revokeUser({ account: "team", name: "gone" }, { commandId: newId(), actor: "t" });
    await svc.close();
    await nc.close();
    await server.stop();

    const second = await bootstrapOperator(join(dir, "nats"));
    expect(second.generatedPassphrase).toBeUndefined();
    expect(second.operator).toEqual(first.operator);
    server = new NatsSupervisor({ dataDir: join(dir, "server"), operator: second.operator });
    await server.start();
    expect(await tryConnect(server.url, keep)).toBe(true);
    expect(await tryConnect(server.url, gone)).toBe(false);
    nc = await connect({ servers: server.url, authenticator: credsAuthenticator(new TextEncoder().encode(second.serviceCreds)) });
    svc = await NatsAccounts.open(nc, { dir: join(dir, "nats") });
    expect(svc.accounts().map((a) => a.name).sort()).toEqual(["SYS", "realm", "team"]);
    expect(svc.users("team").map((u) => [u.name, u.revoked])).toEqual([["keep", false], ["gone", true]]);
    await svc.close();
    await nc.close();
  });
});
