import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { registerPkiCommands } from "../../pki/cli.js";
import { registerDnsCommands } from "../../dns/cli.js";
import { createDnsContext } from "../../dns/service.js";
import { startHost, type Host } from "../../services/host/host.js";
import { createLogger } from "../../services/host/logger.js";
import { RealmError } from "../../services/kernel/errors.js";
import { testTrust } from "../support/trust.js";
import { startPki, type PkiHarness } from "./harness.js";
import { sshKeygen, sshTool } from "./ssh-tools.js";

let h: PkiHarness;
let dir: string;
let dnsHost: Host;
let stopDns: (() => Promise<void>) | undefined;
beforeAll(async () => {
  const trust = testTrust();
  h = await startPki({ trust });
  const log = createLogger({ level: "silent" });
  const dns = await createDnsContext({ dns: { port: 0 } })({ nc: h.nc, log, dataDir: h.nats.dataDir, trust });
  dnsHost = await startHost({ nc: h.nc, contexts: [dns], httpPort: 0, log });
  stopDns = async () => {
    await dnsHost.stop();
    await dns.stop?.();
  };
  dir = mkdtempSync(join(tmpdir(), "realm-ssh-cli-"));
}, 60_000);
afterAll(async () => {
  await stopDns?.();
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `realm <args>` in this process (the cert/pki/ssh and dns groups) with --nats. */
async function realm(...args: string[]): Promise<{ out: string; err: string }> {
  const program = new Command("realm").exitOverride();
  registerPkiCommands(program);
  registerDnsCommands(program);
  let out = "";
  let err = "";
  const o = vi.spyOn(process.stdout, "write").mockImplementation((c: string | Uint8Array) => ((out += c.toString()), true));
  const e = vi.spyOn(process.stderr, "write").mockImplementation((c: string | Uint8Array) => ((err += c.toString()), true));
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    await program.parseAsync(["node", "realm", ...args, ...(args.includes("--help") ? [] : ["--nats", h.nats.url])]);
  } finally {
    process.chdir(cwd);
    o.mockRestore();
    e.mockRestore();
  }
  return { out, err };
}
const json = async (...args: string[]) => JSON.parse((await realm(...args)).out) as Record<string, unknown>;

describe("realm ssh ...", () => {
  it("every verb has --help", async () => {
    for (const v of [["ca", "create"], ["ca", "policy"], ["ca", "list"], ["sign-user"], ["sign-host"], ["revoke"], ["list"], ["krl"], ["config"]]) {
      const program = new Command("realm").exitOverride();
      registerPkiCommands(program);
      let out = "";
      const o = vi.spyOn(process.stdout, "write").mockImplementation((c: string | Uint8Array) => ((out += c.toString()), true));
      try {
        await program.parseAsync(["node", "realm", "ssh", ...v, "--help"]);
      } catch {
        /* commander's exitOverride throws after printing help */
      } finally {
        o.mockRestore();
      }
      expect(out, v.join(" ")).toMatch(new RegExp(`Usage: realm ssh ${v.join(" ")}`));
    }
  });

  it("ca create, sign-user writes <key>-cert.pub, revoke, krl writes the file ssh-keygen -Q reads, config prints the sshd and known_hosts lines", async () => {
    const ca = await json("ssh", "ca", "create", "ops");
    expect(ca.publicKey).toMatch(/^ssh-ed25519 /);
    const key = sshKeygen(dir, "id_ed25519");
    const signed = await json("ssh", "sign-user", `${key.path}.pub`, "--principals", "deploy,backup", "--hours", "2", "--extension", "permit-pty", "--force-command", "uptime");
    const certFile = `${key.path}-cert.pub`;
    expect(signed.file).toBe(certFile);
    const shown = sshTool("ssh-keygen", ["-L", "-f", certFile]).out;
    expect(shown).toMatch(/Principals: \n\s+deploy\n\s+backup\n/);
    expect(shown).toMatch(/force-command uptime/);
    expect(shown).toMatch(/Extensions: \n\s+permit-pty\n/);
    const listed = await json("ssh", "list", "--principal", "deploy");
    expect((listed.certificates as { serial: string }[]).map((c) => c.serial)).toEqual([signed.serial]);
    await realm("ssh", "revoke", String(signed.serial), "--reason", "keyCompromise");
    const krl = await json("ssh", "krl", "--out", join(dir, "ops.krl"));
    expect(krl.revokedSerials).toEqual([signed.serial]);
    expect(sshTool("ssh-keygen", ["-Q", "-f", join(dir, "ops.krl"), certFile]).out).toContain("REVOKED");
    const cfg = (await realm("ssh", "config")).out;
    expect(cfg).toContain("TrustedUserCAKeys /etc/ssh/realm-ops-user-ca.pub");
    expect(cfg).toContain("RevokedKeys /etc/ssh/realm-ops.krl");
    expect(cfg).toContain(`@cert-authority *.example.test,example.test ${String(ca.publicKey)} realm-ops`);
    expect(cfg).toContain(`${h.baseUrl}/pki/ssh/ops.krl`);
    // Neither a serial nor a key id: refused before anything is sent.
    await expect(realm("ssh", "revoke")).rejects.toMatchObject({ code: "VALIDATION" });
  });

  it("realm host add --ssh-host-key registers the host and writes its SSH host certificate", async () => {
    await realm("zone", "create", "example.test", "--ns", "ns1.example.test");
    const hostKey = sshKeygen(dir, "ssh_host_ed25519_key");
    const r = await json("host", "add", "web2.example.test", "--ip", "127.0.0.2", "--ssh-host-key", `${hostKey.path}.pub`);
    expect(r).toMatchObject({ name: "web2.example.test.", sshCertificate: { principals: ["web2.example.test"] } });
    const certFile = `${hostKey.path}-cert.pub`;
    const shown = sshTool("ssh-keygen", ["-L", "-f", certFile]).out;
    expect(shown).toContain("host certificate");
    expect(shown).toMatch(/Principals: \n\s+web2\.example\.test\n/);
    // An unreadable key file stops the verb before the host is registered.
    await expect(realm("host", "add", "web3.example.test", "--ip", "127.0.0.3", "--ssh-host-key", join(dir, "missing.pub"))).rejects.toBeInstanceOf(RealmError);
    expect(existsSync(join(dir, "missing-cert.pub"))).toBe(false);
    const records = await h.nc.request("realm.dns.queries.records", JSON.stringify({ zone: "example.test.", name: "web3.example.test." }));
    expect(JSON.stringify(records.json())).not.toContain("127.0.0.3");
    expect(readFileSync(certFile, "utf8")).toMatch(/^ssh-ed25519-cert-v01@openssh\.com /);
  });
});
