import { writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../../services/kernel/index.js";
import { startPki, type PkiHarness } from "./harness.js";
import { sshKeygen, sshTool, sshToolAsync } from "./ssh-tools.js";
import { startSshd, type TestSshd } from "./sshd.js";

interface Signed {
  serial: string;
  certificate: string;
}

/**
 * Debian's sshd and ssh against realm SSH certificates: sshd trusts the realm's user CA and reads its KRL;
 * ssh trusts the realm's host CA through one @cert-authority line. sshd checks that the login user exists,
 * so the principal that logs in is the current user's name.
 */
describe("sshd and ssh with realm SSH certificates", () => {
  let h: PkiHarness;
  let sshd: TestSshd;
  let skewMs = 0;
  let hostSerial = "";
  const me = userInfo().username;
  const files: Record<string, string> = {};
  beforeAll(async () => {
    h = await startPki({ clock: () => new Date(Date.now() + skewMs) });
    await h.command("ssh-ca.create", { issuer: "ops" });
    const cfg = await h.query<{ caPublicKey: string; knownHosts: string; krlUrl: string }>("ssh-config", {});
    files.userCa = h.file("user_ca.pub", `${cfg.caPublicKey}\n`);
    files.knownHosts = h.file("known_hosts", `${cfg.knownHosts}\n`);
    files.emptyKnownHosts = h.file("known_hosts.empty", "");
    files.krl = join(h.work, "revoked.krl");
    await fetchKrl(cfg.krlUrl);
    const host = sshKeygen(h.work, "ssh_host_ed25519_key");
    const hostCert = await h.command<Signed>("ssh.sign-host", { publicKey: host.pub, names: ["web1.example.test"] });
    files.hostCert = h.file("ssh_host_ed25519_key-cert.pub", hostCert.certificate);
    hostSerial = hostCert.serial;
    sshd = await startSshd({ dir: h.work, hostKey: host.path, hostCert: files.hostCert, userCaKeys: files.userCa, revokedKeys: files.krl, principals: [me, "ops-admins"] });
  }, 60_000);
  afterAll(async () => {
    await sshd?.stop();
    await h?.stop();
  });

  async function fetchKrl(url: string) {
    const res = await fetch(url);
    expect(res.status).toBe(200);
    writeFileSync(files.krl!, Buffer.from(await res.arrayBuffer()));
  }

  /** A key pair and a realm user certificate for it (`-cert.pub` beside the key, where ssh looks). */
  async function userCert(input: object): Promise<{ key: string; serial: string; certFile: string }> {
    const k = sshKeygen(h.work, `user-${newId()}`);
    const r = await h.command<Signed>("ssh.sign-user", { publicKey: k.pub, ...input });
    const certFile = `${k.path}-cert.pub`;
    writeFileSync(certFile, r.certificate);
    return { key: k.path, serial: r.serial, certFile };
  }

  const ssh = (key: string, command: string, knownHosts = files.knownHosts!, extra: string[] = []) =>
    sshToolAsync("ssh", [
      "-F", "/dev/null",
      "-p", String(sshd.port),
      "-i", key,
      "-o", "IdentitiesOnly=yes",
      "-o", "BatchMode=yes",
      "-o", "StrictHostKeyChecking=yes",
      "-o", `UserKnownHostsFile=${knownHosts}`,
      "-o", "GlobalKnownHostsFile=/dev/null",
      "-o", "HostName=127.0.0.1",
      // On a port other than 22 ssh looks up "[host]:port"; the alias is the name the host certificate and the @cert-authority line carry.
      "-o", "HostKeyAlias=web1.example.test",
      "-o", "ConnectTimeout=10",
      ...extra,
      `${me}@web1.example.test`,
      command,
    ]);

  it("accepts a realm user certificate for an allowed principal, and the host certificate without a TOFU prompt", async () => {
    const c = await userCert({ principals: [me], hours: 1 });
    const r = await ssh(c.key, "echo realm-ok; id -un", files.knownHosts, ["-v"]);
    expect(r.code, `${r.out}\n--- sshd:\n${sshd.log()}`).toBe(0);
    expect(r.stdout).toBe(`realm-ok\n${me}\n`);
    // ssh verified the server's certificate against the @cert-authority line (no key was ever pinned).
    expect(r.out).toMatch(/Server host certificate: ssh-ed25519-cert-v01@openssh\.com/);
    expect(r.out).toMatch(/Host 'web1\.example\.test' is known and matches the ED25519-CERT host certificate/);
    // Without that line the same host is refused under StrictHostKeyChecking: the CA line is what let it in.
    const unknown = await ssh(c.key, "true", files.emptyKnownHosts);
    expect(unknown.code).not.toBe(0);
    expect(unknown.out).toMatch(/Host key verification failed/);
    // sshd logged the certificate it accepted: the realm serial and key id.
    expect(sshd.log()).toContain(`serial ${c.serial}`);
  });

  it("accepts a group principal the principals file lists, with force-command applied", async () => {
    const c = await userCert({ principals: ["ops-admins"], forceCommand: "echo forced-by-certificate", sourceAddress: ["127.0.0.1/32"] });
    const r = await ssh(c.key, "echo not-this");
    expect(r.code, r.out).toBe(0);
    expect(r.stdout).toBe("forced-by-certificate\n");
  });

  it("refuses a certificate for another principal, one whose source-address excludes the client, and an expired one", async () => {
    const other = await userCert({ principals: ["someone-else"] });
    const r1 = await ssh(other.key, "true");
    expect(r1.code).not.toBe(0);
    expect(r1.out).toMatch(/Permission denied \(publickey\)/);
    const elsewhere = await userCert({ principals: [me], sourceAddress: ["192.0.2.0/24"] });
    expect((await ssh(elsewhere.key, "true")).code).not.toBe(0);
    skewMs = -3 * 3600_000;
    const expired = await userCert({ principals: [me], hours: 1 });
    skewMs = 0;
    expect(sshTool("ssh-keygen", ["-L", "-f", expired.certFile]).out).toMatch(/Valid: from \S+ to \S+/);
    const r3 = await ssh(expired.key, "true");
    expect(r3.code).not.toBe(0);
    expect(r3.out).toMatch(/Permission denied \(publickey\)/);
    expect(sshd.log()).toMatch(/expired|Certificate invalid/i);
  });

  it("refuses a revoked certificate once the KRL is fetched", async () => {
    const c = await userCert({ principals: [me] });
    expect((await ssh(c.key, "true")).code).toBe(0);
    await h.command("ssh.revoke", { serial: c.serial, reason: "keyCompromise" });
    // Before the new KRL is in place sshd still accepts it (it reads only its file).
    expect((await ssh(c.key, "true")).code).toBe(0);
    await fetchKrl(`${h.baseUrl}/pki/ssh/ops.krl`);
    const r = await ssh(c.key, "true");
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/Permission denied \(publickey\)/);
    expect(sshd.log()).toMatch(/revoked/i);
  });

  it("ssh refuses the host certificate once it is revoked and the client reads the KRL (RevokedHostKeys)", async () => {
    const c = await userCert({ principals: [me] });
    const withKrl = ["-o", `RevokedHostKeys=${files.krl}`];
    expect((await ssh(c.key, "true", files.knownHosts, withKrl)).code).toBe(0);
    await h.command("ssh.revoke", { serial: hostSerial, reason: "keyCompromise" });
    await fetchKrl(`${h.baseUrl}/pki/ssh/ops.krl`);
    const r = await ssh(c.key, "true", files.knownHosts, withKrl);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/revoked/i);
  });
});
