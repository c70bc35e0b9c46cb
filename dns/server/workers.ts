import cluster, { type Worker } from "node:cluster";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import type { TrustDocument } from "../../services/kernel/trust.js";
import type { NotifyRetry } from "./notify.js";
import type { JournalLimits } from "./journal.js";
import type { RateLimitOptions } from "./rrl.js";

export interface DnsWorkerConfig {
  natsUrl: string;
  /** Creds of the read-only DNS reader identity (consumers on REALM_DNS only). */
  natsCreds?: string | undefined;
  /** The realm's trust document: the worker verifies every event it applies (it holds no signing key). */
  trust: TrustDocument;
  host: string;
  port: number;
  transferAllow?: string[];
  notify?: { host: string; port: number }[];
  /** Set per worker: only the first sends NOTIFY (to the `notify` list and each zone's secondaries). */
  sendsNotify?: boolean;
  notifyRetry?: NotifyRetry | undefined;
  journal?: JournalLimits | undefined;
  /** The realm's catalog zone (catalog.ts), or false. */
  catalog?: string | false | undefined;
  /** Response rate limiting: each worker keeps its own buckets (a source spread over N workers gets up to N x the rate). */
  rateLimit?: RateLimitOptions | false | undefined;
}

export interface DnsWorkers {
  port: number;
  /** The current worker processes (a replaced worker has a new pid). */
  readonly pids: number[];
  stop(): Promise<void>;
}

/**
 * Runs the DNS server in `n` worker processes (node:cluster) sharing one UDP socket and one TCP listener.
 * Each worker follows REALM_DNS with its own projection, so answers stay live; the hot path then scales
 * with cores, since sending a datagram is most of the cost of an answer. Only worker 1 sends NOTIFY.
 */
export async function startDnsWorkers(n: number, cfg: DnsWorkerConfig): Promise<DnsWorkers> {
  if (!cluster.isPrimary) throw new Error("DNS workers are started from the primary process");
  const here = fileURLToPath(import.meta.url);
  const exec = here.replace(/workers(\.[cm]?[jt]s)$/, `worker${extname(here)}`);
  // From source (tests, tsx) the worker is TypeScript: load it through tsx; built, it is plain JS.
  cluster.setupPrimary({ exec, execArgv: exec.endsWith(".ts") ? ["--import", "tsx"] : [], silent: false });
  const workers: Worker[] = [];
  let stopping = false;
  const envOf = (i: number) => ({ REALM_DNS_WORKER: JSON.stringify({ ...cfg, notify: i === 0 ? cfg.notify : [], sendsNotify: i === 0 }) });
  /**
   * A worker that exits on its own once serving (its projection could not recover: worker.ts) is replaced
   * by a new one, which follows the stream from its start: the DNS port never stays without a server.
   */
  const failures = new Array<number>(n).fill(0);
  const replaceOnExit = (i: number, w: Worker) =>
    w.once("exit", (code, signal) => {
      if (stopping) return;
      // 1 s, doubling while replacements fail to start (NATS still down), at most 30 s.
      const delay = Math.min(30_000, 1_000 * 2 ** failures[i]!++);
      process.stderr.write(`realm: DNS worker ${i + 1} (pid ${w.process.pid}) exited (${signal ?? `code ${code}`}); starting another in ${delay / 1000} s\n`);
      const timer = setTimeout(() => {
        if (stopping) return;
        const next = cluster.fork(envOf(i));
        workers[i] = next;
        next.on("message", (m: { ready?: boolean; error?: string }) => {
          if (!m.ready) return;
          failures[i] = 0;
          process.stderr.write(`realm: DNS worker ${i + 1} is back (pid ${next.process.pid})\n`);
        });
        replaceOnExit(i, next);
      }, delay);
      timer.unref();
    });
  const ready: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const w = cluster.fork(envOf(i));
    workers.push(w);
    ready.push(
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`DNS worker ${i + 1} did not start within 30 s`)), 30_000);
        w.on("message", (m: { ready?: boolean; error?: string }) => {
          if (m.ready) {
            clearTimeout(timer);
            resolve();
          } else if (m.error) {
            clearTimeout(timer);
            reject(new Error(`DNS worker ${i + 1}: ${m.error}`));
          }
        });
        w.on("exit", (code) => {
          clearTimeout(timer);
          reject(new Error(`DNS worker ${i + 1} exited with ${code}`));
        });
      }),
    );
  }
  try {
    await Promise.all(ready);
  } catch (err) {
    stopping = true;
    for (const w of workers) w.kill();
    throw err;
  }
  workers.forEach((w, i) => replaceOnExit(i, w));
  return {
    port: cfg.port,
    get pids() {
      return workers.map((w) => w.process.pid!);
    },
    async stop() {
      stopping = true;
      await Promise.all(
        workers.map(
          (w) =>
            new Promise<void>((resolve) => {
              if (w.isDead()) return resolve();
              w.once("exit", () => resolve());
              w.send({ stop: true });
              setTimeout(() => w.kill("SIGKILL"), 5000).unref();
            }),
        ),
      );
    },
  };
}
