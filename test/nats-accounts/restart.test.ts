import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import { newId } from "../../services/kernel/index.js";
import { NatsSupervisor } from "../../services/nats/supervisor.js";
import { NatsAccounts } from "../../identity/nats/service.js";
import { establishOperator, provisionLocal, realmPaths } from "../../services/cli/runtime.js";
import { connectAs } from "../../services/cli/connection.js";
import { identityCredsFile } from "../../identity/nats/realm-identities.js";

const dir = mkdtempSync(join(tmpdir(), "realm-nats-restart-"));
const paths = realmPaths(dir);
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
    const open = async (url: string, trust: Awaited<ReturnType<typeof establishOperator>>["trust"]) => {
      const nc = await connectAs(url, identityCredsFile(paths.operator, "realm-identity"), "test");
      return { nc, svc: await NatsAccounts.open(nc, { dir: paths.operator, realmTrust: trust, sysCredsFile: identityCredsFile(paths.operator, "realm-sys") }) };
    };
    const first = await establishOperator(paths, undefined);
    expect(first.operator.generatedPassphraseFile && existsSync(first.operator.generatedPassphraseFile)).toBe(true);
    server = new NatsSupervisor({ dataDir: paths.nats, operator: first.operator.operator });
    await server.start();
    await provisionLocal(server.url, paths, first.operator);
    let { nc, svc } = await open(server.url, first.trust);
    await svc.createAccount({ name: "team" }, { commandId: newId(), actor: "t" });
    const keep = (await svc.createUser({ account: "team", name: "keep", kind: "person" }, { commandId: newId(), actor: "t" })).creds!;
    const gone = (await svc.createUser({ account: "team", name: "gone", kind: "person" }, { commandId: newId(), actor: "t" })).creds!;
    await svc.revokeUser({ account: "team", name: "gone" }, { commandId: newId(), actor: "t" });
    await svc.close();
    await nc.close();
    await server.stop();

    const second = await establishOperator(paths, undefined);
    expect(second.operator.generatedPassphraseFile).toBeUndefined();
    expect(second.operator.operator).toEqual(first.operator.operator);
    expect(second.trust.doc).toEqual(first.trust.doc);
    // the identities' creds were kept (still fresh, same permissions), not issued anew
    expect(second.issued.every((i) => !i.issued)).toBe(true);
    server = new NatsSupervisor({ dataDir: paths.nats, operator: second.operator.operator });
    await server.start();
    expect(await tryConnect(server.url, keep)).toBe(true);
    expect(await tryConnect(server.url, gone)).toBe(false);
    ({ nc, svc } = await open(server.url, second.trust));
    expect(svc.accounts().map((a) => a.name).sort()).toEqual(["SYS", "realm", "team"]);
    expect(svc.users("team").map((u) => [u.name, u.revoked])).toEqual([["keep", false], ["gone", true]]);
    await svc.close();
    await nc.close();
  });
});
