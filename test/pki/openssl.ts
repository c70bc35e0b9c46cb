import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Runs openssl; returns stdout+stderr and the exit code (never throws on a non-zero exit). */
export function openssl(args: string[], input?: Buffer | string): { code: number; out: string } {
  const r = spawnSync("openssl", args, { input, encoding: "utf8", timeout: 30_000 });
  return { code: r.status ?? -1, out: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

/** A key and CSR made by openssl (ECDSA P-256 unless told): `{ keyPem, csrPem }`. */
export function opensslCsr(cn: string, sans: string[] = [], key: "ec" | "rsa1024" | "rsa2048" = "ec"): { keyPem: string; csrPem: string } {
  const dir = mkdtempSync(join(tmpdir(), "realm-csr-"));
  try {
    const newkey = key === "ec" ? ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] : ["-newkey", `rsa:${key === "rsa1024" ? 1024 : 2048}`];
    const args = ["req", "-new", ...newkey, "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "csr.pem"), "-subj", `/CN=${cn}`];
    if (sans.length) args.push("-addext", `subjectAltName=${sans.join(",")}`);
    const r = openssl(args);
    if (r.code !== 0) throw new Error(`openssl req failed: ${r.out}`);
    return { keyPem: readFileSync(join(dir, "key.pem"), "utf8"), csrPem: readFileSync(join(dir, "csr.pem"), "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Runs openssl without blocking the event loop: needed whenever openssl talks to a server in this same
 * process (OCSP, s_client), which `openssl()` (spawnSync) would starve.
 */
export function opensslAsync(args: string[], input?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn("openssl", args, { stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    let out = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out });
    });
    if (input !== undefined && child.stdin) {
      // openssl may exit before reading its input (a refused argument): EPIPE then is its answer, not ours.
      child.stdin.on("error", () => undefined);
      child.stdin.end(input);
    }
  });
}
