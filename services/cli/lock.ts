/**
 * One `realm up` per data dir: `<dataDir>/realm.lock` holds {pid, startedAt, host} of the process that runs
 * on it, so a second one does not start a second nats-server on the same JetStream store.
 *
 * Creating the lock. The content is written to a private temp file first (created O_EXCL, "wx") and then
 * hard-linked to realm.lock: link(2) fails with EEXIST when the name exists and otherwise makes the name
 * appear with its whole content at once, so a reader never sees a half-written lock, and of any number of
 * starters exactly one link succeeds.
 *
 * Taking over a stale lock (its pid is gone). Deleting it and creating a new one is not safe: A and B both
 * read the stale lock, A deletes it and links its own, then B deletes A's (believing it the stale one) and
 * links its own, and both run. Renaming our lock over the stale one has the same flaw (the last rename
 * wins, both believe they hold it). Instead a starter that found stale content S first claims the right to
 * replace S: it links its temp file to `realm.lock.takeover-<hash of S>`, which exactly one starter can do.
 * The claimant then reads realm.lock again; if it still holds S, it renames its claim over realm.lock
 * (atomic: the name is never absent, so nobody can link a fresh lock in between). While realm.lock holds S
 * nothing else can change it: its owner is dead (so it does not release it), a fresh link fails (the name
 * exists), and any other starter that wants to replace S needs the claim we hold. If realm.lock no longer
 * holds S (someone replaced it between our two reads), the claimant drops its claim and starts over. Losers
 * of the claim start over too and then find the winner's live lock (CONFLICT).
 *
 * A claim whose owner died between the link and the rename (a SIGKILL in those microseconds) is left
 * behind; it names that dead pid, and the error says to remove it.
 */
import { randomBytes, createHash } from "node:crypto";
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { RealmError } from "../kernel/errors.js";

export interface DataDirLock {
  /** The lock file, `<dataDir>/realm.lock` (absolute). */
  readonly file: string;
  readonly pid: number;
  readonly startedAt: string;
  /** Removes the lock file if it still holds our pid; idempotent. Also done on process exit. */
  release(): void;
}

interface LockContent {
  pid: number;
  startedAt: string;
  host: string;
}

/** Is `pid` a live process here? EPERM means it exists but belongs to someone else: alive. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

const errCode = (err: unknown) => (err as NodeJS.ErrnoException).code;

function readIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    if (errCode(err) === "ENOENT") return undefined;
    throw err;
  }
}

function parse(raw: string): LockContent | undefined {
  try {
    const v = JSON.parse(raw) as Partial<LockContent>;
    return typeof v.pid === "number" && Number.isInteger(v.pid) && v.pid > 0 ? { pid: v.pid, startedAt: String(v.startedAt ?? "?"), host: String(v.host ?? "") } : undefined;
  } catch {
    return undefined;
  }
}

/** Lock contents written by this process and not released yet. */
const heldHere = new Set<string>();

/**
 * The holder of a lock whose content is `raw`, if it still runs. Only the pid decides (the host is
 * informational: a container gets a new hostname each time it is created, so a host check would keep a
 * dead container's lock forever). Our own pid in a lock we did not write is a previous process that had
 * the same pid (in a container, realm up is often pid 1 every time): stale.
 */
function liveHolder(raw: string): LockContent | undefined {
  const c = parse(raw);
  if (!c) return undefined; // not a lock we wrote: nobody can hold it
  if (c.pid === process.pid) return heldHere.has(raw) ? c : undefined;
  return alive(c.pid) ? c : undefined;
}

/** Waits `ms` synchronously (acquire is synchronous; this is only for another starter mid-takeover). */
const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function inUse(dir: string, file: string, c: LockContent): RealmError {
  const on = c.host && c.host !== hostname() ? ` on host ${c.host}` : "";
  return new RealmError("CONFLICT", `data dir ${dir} is in use by realm up pid ${c.pid}${on} since ${c.startedAt} (lock ${file}); stop it first, or remove the lock if that process is gone`, { pid: c.pid, startedAt: c.startedAt, host: c.host, lock: file });
}

/**
 * Takes `<dataDir>/realm.lock` for this process (creating the data dir 0700 if missing), or throws
 * CONFLICT naming the live holder. A lock left by a dead process is taken over.
 */
export function acquireDataDirLock(dataDir: string): DataDirLock {
  const dir = resolve(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, "realm.lock");
  const content: LockContent = { pid: process.pid, startedAt: new Date().toISOString(), host: hostname() };
  const text = JSON.stringify(content) + "\n";
  const tmp = join(dir, `.realm.lock.${process.pid}.${randomBytes(6).toString("hex")}`);
  const fd = openSync(tmp, "wx", 0o600);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  try {
    // Bounded: a round wins, throws, or saw another starter in the middle of a change (then waits for it).
    for (let round = 0; round < 200; round++) {
      try {
        linkSync(tmp, file);
        return held(file, content, text);
      } catch (err) {
        if (errCode(err) !== "EEXIST") throw err;
      }
      const stale = readIfExists(file);
      if (stale === undefined) continue; // released meanwhile: link again
      const holder = liveHolder(stale);
      if (holder) throw inUse(dir, file, holder);
      const claim = `${file}.takeover-${createHash("sha256").update(stale).digest("hex").slice(0, 16)}`;
      try {
        linkSync(tmp, claim);
      } catch (err) {
        if (errCode(err) !== "EEXIST") throw err;
        // Another starter is replacing the same stale lock, or died doing so.
        const other = readIfExists(claim);
        const claimant = other === undefined ? undefined : parse(other);
        // (A claim with our own pid is not ours either: we hold none between calls; a previous process had it.)
        if (claimant && (claimant.pid === process.pid || !alive(claimant.pid)) && readIfExists(file) === stale) {
          throw new RealmError("CONFLICT", `data dir ${dir}: a takeover of the stale lock ${file} by pid ${claimant.pid} was interrupted; remove ${file} and ${claim} if no realm up runs on it`, { lock: file, claim });
        }
        pause(5); // the claimant is between its claim and its rename
        continue;
      }
      if (readIfExists(file) === stale) {
        renameSync(claim, file); // the claim becomes the lock; nothing to clean up
        return held(file, content, text);
      }
      unlinkSync(claim); // the stale lock went away under us: start over
    }
    throw new RealmError("CONFLICT", `data dir ${dir}: the lock ${file} keeps changing; is another realm up starting?`, { lock: file });
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
  }
}

function held(file: string, content: LockContent, text: string): DataDirLock {
  heldHere.add(text);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.removeListener("exit", release);
    heldHere.delete(text);
    // Ours only while it holds our pid (and start time): read-then-unlink is safe because nobody else
    // replaces a lock whose pid is alive, and we are.
    if (readIfExists(file) === text) {
      try {
        unlinkSync(file);
      } catch (err) {
        if (errCode(err) !== "ENOENT") throw err;
      }
    }
  };
  process.on("exit", release);
  return { file, pid: content.pid, startedAt: content.startedAt, release };
}
