/**
 * Child process of test/nats/supervisor.test.ts: prints "ready", then on the first stdin line tries to take
 * the data dir lock in argv[2] and prints {won, pid, code, message}; holds what it got until stdin ends.
 */
import { createInterface } from "node:readline";
import { acquireDataDirLock } from "../../services/cli/lock.js";
import { RealmError } from "../../services/kernel/errors.js";

const dataDir = process.argv[2];
if (!dataDir) throw new Error("usage: lock-child.ts <dataDir>");
createInterface({ input: process.stdin }).once("line", () => {
  try {
    acquireDataDirLock(dataDir);
    process.stdout.write(`${JSON.stringify({ won: true, pid: process.pid })}\n`);
  } catch (err) {
    const e = err instanceof RealmError ? err : new RealmError("INTERNAL", String(err));
    process.stdout.write(`${JSON.stringify({ won: false, pid: process.pid, code: e.code, message: e.message })}\n`);
  }
});
process.stdin.on("end", () => process.exit(0));
process.stdout.write("ready\n");
