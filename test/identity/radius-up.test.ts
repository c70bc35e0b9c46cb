import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { freePort } from "../../services/nats/supervisor.js";
import { ok, realmProcesses } from "../support/realm-processes.js";
import { radclient, radtest } from "./radius-peers.js";

const rp = realmProcesses();

describe("RADIUS under `realm up` (REALM_RADIUS_PORT, the identity context's least-privilege NATS identity)", () => {
  it("serves PAP and accounting for a NAS added with the CLI", async () => {
    const data = rp.tmp("realm-radius-up-");
    const [auth, acct] = [await freePort(), await freePort()];
    const realm = await rp.up(data, [], { REALM_RADIUS_PORT: String(auth), REALM_RADIUS_ACCT_PORT: String(acct), REALM_RADIUS_HOST: "127.0.0.1" });
    const key = (await ok(["identity", "bootstrap"], realm.env)).stdout.trim();
    const env = { ...realm.env, REALM_TOKEN: key };
    const pw = join(data, "pw");
    writeFileSync(pw, "a long enough password\n", { mode: 0o600 });
    await ok(["identity", "group", "create", "staff", "--name", "Staff"], env);
    await ok(["identity", "principal", "create", "ana", "--name", "Ana"], env);
    await ok(["identity", "principal", "set-password", "ana", "--password-file", pw], env);
    await ok(["identity", "group", "add", "staff", "ana"], env);
    const added = JSON.parse((await ok(["radius", "client", "add", "lo", "--address", "127.0.0.1", "--group", "staff", "--vlan", "staff=30"], env)).stdout) as { secret: string };
    const accept = await radtest("ana", "a long enough password", `127.0.0.1:${auth}`, added.secret);
    expect(accept.out).toContain("Received Access-Accept");
    expect(accept.out).toMatch(/Tunnel-Private-Group-Id(:0)? = "30"/);
    expect((await radtest("ana", "the wrong password", `127.0.0.1:${auth}`, added.secret)).out).toContain("Received Access-Reject");
    const acctOut = await radclient(`127.0.0.1:${acct}`, "acct", added.secret, 'Acct-Status-Type = Start, Acct-Session-Id = "up-1", User-Name = "ana"\n');
    expect(acctOut.out).toContain("Received Accounting-Response");
    const audit = await ok(["identity", "audit", "--actor", "radius-client:lo"], env);
    expect(audit.stdout).toContain("RadiusAccountingRecorded");
    expect(audit.stdout).not.toContain(added.secret);
  }, 120_000);
});
