/**
 * The thread that signs user JWTs for large batches (signing-pool.ts starts it): it answers each
 * `{id, job}` with `{id, signed}` or `{id, error}`. It holds signing-key seeds only while it runs, in memory.
 */
import { parentPort } from "node:worker_threads";
import { signUsers, type UserSigningJob } from "./user-signing.js";

parentPort?.on("message", (m: { id: number; job: UserSigningJob }) => {
  try {
    parentPort!.postMessage({ id: m.id, signed: signUsers(m.job) });
  } catch (err) {
    parentPort!.postMessage({ id: m.id, error: err instanceof Error ? err.message : String(err) });
  }
});
