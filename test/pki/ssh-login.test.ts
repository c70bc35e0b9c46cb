import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { identityAuthOf } from "../../identity/auth.js";
import { registerPkiCommands } from "../../pki/cli.js";
import { createPkiContext, type PkiContext } from "../../pki/service.js";
import { callRealm } from "../../services/host/client.js";
import { startHost, type Host } from "../../services/host/host.js";
import { createLogger } from "../../services/host/logger.js";
import { RealmError } from "../../services/kernel/errors.js";
import { rejectionOf } from "../support/errors.js";
import { startIdentity, type IdentityHarness } from "../identity/harness.js";
import { sshKeygen, sshTool } from "./ssh-tools.js";

/**
 * `step ssh login` for the realm: a person the realm authenticated (an access token from `realm login`, or
 * their own API key: the host's authenticator takes both) gets a user certificate for themselves only.
 */
describe("ssh.sign-self / realm ssh login", () => {
  let id: IdentityHarness;
  let pki: PkiContext;
  let host: Host;
  let dir: string;
  const keys: Record<string, string> = {};
  beforeAll(async () => {
    id = await startIdentity();
    const log = createLogger({ level: "silent" });
    pki = await createPkiContext({ ownedZones: () => ["example.test."] })({ nc: id.nc, log, dataDir: id.nats.dataDir, trust: id.trust });
    host = await startHost({ nc: id.nc, contexts: [pki], httpPort: 0, log, ...identityAuthOf(id.ctx) });
    await id.call("principal.create", { id: "alice", kind: "person", displayName: "Alice" });
    await id.call("principal.create", { id: "backup-bot", kind: "service", displayName: "Backups" });
    await id.call("group.create", { id: "admins", displayName: "Admins" });
    await id.call("group.addMember", { id: "admins", principal: "alice" });
    // Each holds only the self-service role (their own password and keys): no pki permission at all.
    for (const owner of ["alice", "backup-bot"]) {
      await id.call("policy.bind", { id: `${owner}-self`, role: "self-service", subject: { kind: "principal", id: owner } });
      keys[owner] = `Bearer ${(await id.call<{ key: string }>("apikey.issue", { owner, label: "ssh", roles: ["self-service"] })).key}`;
    }
    await callRealm(id.nc, "realm.pki.commands.ssh-ca.create", { issuer: "ops" }, { authorization: id.admin });
    dir = mkdtempSync(join(tmpdir(), "realm-ssh-login-"));
  }, 60_000);
  afterAll(async () => {
    await host?.stop();
    await pki?.stop?.();
    await id?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const signSelf = (input: object, authorization?: string) => callRealm<{ principals: string[]; keyId: string; certificate: string }>(id.nc, "realm.pki.commands.ssh.sign-self", input, authorization ? { authorization } : {});

  it("a person gets a certificate for their own login name and groups; nothing else", async () => {
    const k = sshKeygen(dir, "alice");
    const r = await signSelf({ publicKey: k.pub, hours: 4 }, keys.alice);
    expect(r.principals).toEqual(["alice", "admins"]);
    expect(r.keyId).toBe("alice");
    expect((await signSelf({ publicKey: k.pub, principals: ["admins"] }, keys.alice)).principals).toEqual(["admins"]);
    expect((await rejectionOf(signSelf({ publicKey: k.pub, principals: ["root"] }, keys.alice), RealmError)).code).toBe("VALIDATION");
    // Without a credential, or as a service principal: refused. The operator endpoint needs a permission alice lacks.
    expect((await rejectionOf(signSelf({ publicKey: k.pub }), RealmError)).code).toBe("UNAUTHORIZED");
    expect((await rejectionOf(signSelf({ publicKey: k.pub }, keys["backup-bot"]), RealmError)).code).toBe("VALIDATION");
    const sudo = callRealm(id.nc, "realm.pki.commands.ssh.sign-user", { publicKey: k.pub, principals: ["root"] }, { authorization: keys.alice! });
    expect((await rejectionOf(sudo, RealmError)).code).toBe("FORBIDDEN");
  });

  it("realm ssh login writes <key>-cert.pub beside the key with the caller's credential", async () => {
    const k = sshKeygen(dir, "id_ed25519");
    const program = new Command("realm").exitOverride();
    registerPkiCommands(program);
    let out = "";
    const o = vi.spyOn(process.stdout, "write").mockImplementation((c: string | Uint8Array) => ((out += c.toString()), true));
    const e = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      await program.parseAsync(["node", "realm", "ssh", "login", "--key", `${k.path}.pub`, "--nats", id.nats.url, "--token", keys.alice!.slice("Bearer ".length)]);
    } finally {
      o.mockRestore();
      e.mockRestore();
    }
    expect(JSON.parse(out)).toMatchObject({ principals: ["alice", "admins"], file: `${k.path}-cert.pub` });
    const shown = sshTool("ssh-keygen", ["-L", "-f", `${k.path}-cert.pub`]).out;
    expect(shown).toContain('Key ID: "alice"');
    expect(shown).toMatch(/Principals: \n\s+alice\n\s+admins\n/);
    expect(readFileSync(`${k.path}-cert.pub`, "utf8")).toMatch(/^ssh-ed25519-cert-v01@openssh\.com /);
  });
});
