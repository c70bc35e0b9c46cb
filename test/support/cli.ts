import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { resolve } from "node:path";

export const repoRoot = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const main = resolve(repoRoot, "services/cli/main.ts");
/** tsx by its file, so that the CLI also runs from a directory outside the repository. */
const tsx = pathToFileURL(resolve(repoRoot, "node_modules/tsx/dist/loader.mjs")).href;

/** Runs `realm <args>` (through tsx, from source) to completion, in the repository unless `cwd` is given. */
export function runRealm(args: string[], env: Record<string, string> = {}, input?: string, cwd = repoRoot): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ["--import", tsx, main, ...args], { cwd, env: { ...process.env, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    // The CLI may exit before it reads its input (a refused option): EPIPE then is its answer, not a test error.
    child.stdin.on("error", () => undefined);
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
    child.on("exit", (code) => done({ code, stdout, stderr }));
  });
}

/** Starts a long-running `realm <args>` and resolves once stdout contains `readyText`. */
export function startRealmProcess(args: string[], readyText: string, env: Record<string, string> = {}, timeoutMs = 30_000): Promise<{ child: ChildProcess; stdout: () => string; stderr: () => string; exited: Promise<number | null> }> {
  return new Promise((resolveStart, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", main, ...args], { cwd: repoRoot, env: { ...process.env, ...env } });
    let stdout = "";
    let stderr = "";
    const exited = new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
    const timer = setTimeout(() => reject(new Error(`realm ${args.join(" ")} not ready: ${stderr}`)), timeoutMs);
    child.stdout!.on("data", (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes(readyText)) {
        clearTimeout(timer);
        resolveStart({ child, stdout: () => stdout, stderr: () => stderr, exited });
      }
    });
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    void exited.then((c) => {
      clearTimeout(timer);
      reject(new Error(`realm exited ${c}: ${stderr}`));
    });
  });
}
