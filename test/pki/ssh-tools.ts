import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** Runs an OpenSSH tool (ssh-keygen, ...); returns stdout+stderr and the exit code (never throws on a non-zero exit). */
export function sshTool(cmd: string, args: string[], input?: string): { code: number; out: string } {
  const r = spawnSync(cmd, args, { input, encoding: "utf8", timeout: 30_000 });
  return { code: r.status ?? -1, out: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

/** Like sshTool without blocking the event loop (the realm answering in this process must keep running). */
export function sshToolAsync(cmd: string, args: string[]): Promise<{ code: number; out: string; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let stdout = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.stdout.on("data", (d: Buffer) => ((out += d.toString()), (stdout += d.toString())));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out, stdout });
    });
  });
}

/** A new OpenSSH key pair made by ssh-keygen in `dir`: `<name>` and `<name>.pub`; returns the public line. */
export function sshKeygen(dir: string, name: string, type: "ed25519" | "ecdsa" | "rsa" = "ed25519"): { path: string; pub: string } {
  const path = join(dir, name);
  const r = sshTool("ssh-keygen", ["-q", "-t", type, ...(type === "rsa" ? ["-b", "3072"] : []), "-N", "", "-C", name, "-f", path]);
  if (r.code !== 0) throw new Error(`ssh-keygen failed: ${r.out}`);
  return { path, pub: readFileSync(`${path}.pub`, "utf8") };
}
