import { createRequire } from "node:module";
import { extname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { SignedUser, UserSigningJob } from "./user-signing.js";

interface Pending {
  resolve: (signed: SignedUser[]) => void;
  reject: (err: Error) => void;
}

/**
 * A worker thread that signs user JWTs (signing-worker.ts), so that a large user.createMany signs on one core
 * while the service's thread appends the users' events on the other. Started on first use and kept; it keeps
 * the process alive only while a job is pending. If it dies, pending jobs fail and the next job starts a new one.
 */
export class SigningWorker {
  private worker: Worker | undefined;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();

  sign(job: UserSigningJob): Promise<SignedUser[]> {
    const w = (this.worker ??= this.start());
    const id = ++this.seq;
    if (this.pending.size === 0) w.ref();
    return new Promise<SignedUser[]>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, job });
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.failAll(new Error("the signing worker was stopped"));
    await w?.terminate();
  }

  private start(): Worker {
    const here = fileURLToPath(import.meta.url);
    const entry = here.replace(/signing-pool(\.[cm]?[jt]s)$/, `signing-worker${extname(here)}`);
    // From source (tests, tsx) the worker is TypeScript and is loaded through tsx's loader; built, it is plain JS.
    const w = entry.endsWith(".ts")
      ? new Worker(`import(${JSON.stringify(tsxLoader())}).then(({ register }) => { register(); return import(${JSON.stringify(pathToFileURL(entry).href)}); })`, { eval: true })
      : new Worker(entry);
    w.unref();
    w.on("message", (m: { id: number; signed?: SignedUser[]; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) w.unref();
      if (m.signed) p.resolve(m.signed);
      else p.reject(new Error(`signing worker: ${m.error ?? "no answer"}`));
    });
    const lost = (err: Error) => {
      if (this.worker === w) this.worker = undefined;
      this.failAll(err);
    };
    w.on("error", (err) => lost(err));
    w.on("exit", (code) => lost(new Error(`the signing worker exited (${code})`)));
    return w;
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}

/** tsx's ESM API (its `register()` installs the TypeScript loader in the worker's thread). */
function tsxLoader(): string {
  if (typeof import.meta.resolve === "function") return import.meta.resolve("tsx/esm/api");
  // Where import.meta.resolve is missing (a test runner's module loader), the package's require entry sits beside it.
  return pathToFileURL(createRequire(import.meta.url).resolve("tsx/esm/api").replace(/\.cjs$/, ".mjs")).href;
}
