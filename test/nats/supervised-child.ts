/**
 * Child process of test/nats/supervisor.test.ts: starts a NatsSupervisor on the data dir in argv[2], prints
 * {pid, port, diesWithParent} as one JSON line and then runs until it is killed.
 */
import { NatsSupervisor } from "../../services/nats/supervisor.js";

const dataDir = process.argv[2];
if (!dataDir) throw new Error("usage: supervised-child.ts <dataDir>");
const supervisor = new NatsSupervisor({ dataDir, jetstream: false, maxRestarts: 0 });
await supervisor.start();
process.stdout.write(`${JSON.stringify({ pid: supervisor.pid, port: supervisor.port, diesWithParent: supervisor.diesWithParent })}\n`);
setInterval(() => undefined, 1 << 30);
