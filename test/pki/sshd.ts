import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../../services/nats/supervisor.js";

export interface TestSshd {
  port: number;
  /** What sshd wrote to stderr (-e), for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Debian's sshd on a free loopback port, as the current user, with its own config in `dir`: the host key
 * and certificate given, `TrustedUserCAKeys`, `RevokedKeys`, an `AuthorizedPrincipalsFile`, no PAM, no
 * passwords, `StrictModes no`. Resolves once sshd says it listens (bounded).
 */
export async function startSshd(opts: { dir: string; hostKey: string; hostCert: string; userCaKeys: string; revokedKeys: string; principals: string[] }): Promise<TestSshd> {
  const port = await freePort();
  const principalsFile = join(opts.dir, "principals");
  writeFileSync(principalsFile, opts.principals.join("\n") + "\n");
  const config = join(opts.dir, "sshd_config");
  writeFileSync(
    config,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${opts.hostKey}`,
      `HostCertificate ${opts.hostCert}`,
      `TrustedUserCAKeys ${opts.userCaKeys}`,
      `RevokedKeys ${opts.revokedKeys}`,
      `AuthorizedPrincipalsFile ${principalsFile}`,
      "AuthorizedKeysFile none",
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PermitRootLogin prohibit-password",
      "UsePAM no",
      "StrictModes no",
      `PidFile ${join(opts.dir, "sshd.pid")}`,
      "LogLevel VERBOSE",
      "",
    ].join("\n"),
  );
  // As root sshd separates privileges into this directory (systemd's tmpfiles make it on a real host).
  if (process.getuid?.() === 0) mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const child: ChildProcess = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sshd did not listen within 10 s:\n${log}`)), 10_000);
    const check = () => {
      if (/Server listening on 127\.0\.0\.1 port/.test(log)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stderr!.on("data", check);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`sshd exited with ${code}:\n${log}`));
    });
  });
  return {
    port,
    log: () => log,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}
