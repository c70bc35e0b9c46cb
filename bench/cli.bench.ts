/**
 * CLI bench: the median wall time of `realm --help` and of `realm zone list` against a running realm (an admin
 * API key in REALM_TOKEN, the operator creds of the realm's data dir), each run as a new process from the
 * built CLI (`node dist/services/cli/main.js`, what `realm` is), beside a bare `node -e 0` (the floor: Node's
 * own start). The realm is started the same way (`realm up` on free ports in a temp data dir) and stopped.
 * Builds dist/ first when it is missing.
 *   npx tsx bench/cli.bench.ts [--runs 10]
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { freePort } from "../services/nats/supervisor.js";

const { values } = parseArgs({ options: { runs: { type: "string", default: "10" } } });
const RUNS = Number(values.runs);
const root = resolve(fileURLToPath(new URL("..", import.meta.url)));
const cli = join(root, "dist", "services", "cli", "main.js");
const say = (s: string) => process.stderr.write(`bench: ${s}\n`);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

if (!existsSync(cli)) {
  say("building dist/ (npm run build)");
  if (spawnSync("npm", ["run", "build"], { cwd: root, stdio: "inherit" }).status !== 0) process.exit(1);
}

/** Median wall time (ms) of RUNS runs of `node <args>`, after one warm-up run; every run must exit 0. Counts runs that printed a warning. */
function time(args: string[], env: Record<string, string> = {}): { median: number; min: number; max: number; warned: number } {
  const runs: number[] = [];
  let warned = 0;
  for (let i = 0; i <= RUNS; i++) {
    const t = performance.now();
    const r = spawnSync(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, encoding: "utf8" });
    const ms = performance.now() - t;
    if (r.status !== 0) throw new Error(`node ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
    if (i > 0 && /warn/i.test(r.stderr)) warned++;
    if (i > 0) runs.push(ms);
  }
  return { median: median(runs), min: Math.min(...runs), max: Math.max(...runs), warned };
}

const data = mkdtempSync(join(tmpdir(), "realm-bench-cli-"));
const [natsPort, httpPort, dnsPort] = [await freePort(), await freePort(), await freePort()];
say(`starting realm up in ${data}`);
const up = spawn(process.execPath, [cli, "up", "--data", data, "--nats-port", String(natsPort), "--http-port", String(httpPort), "--dns-port", String(dnsPort)], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
let upErr = "";
up.stderr.on("data", (d: Buffer) => (upErr += d.toString()));
await new Promise<void>((ready, fail) => {
  let out = "";
  up.stdout.on("data", (d: Buffer) => {
    out += d.toString();
    if (out.includes("cim-realm is up")) ready();
  });
  up.on("exit", (c) => fail(new Error(`realm up exited ${c}: ${upErr}`)));
});
const stopped = new Promise((r) => up.on("exit", r));
try {
  const env = { REALM_DATA: data, REALM_NATS_URL: `nats://127.0.0.1:${natsPort}`, REALM_URL: `http://127.0.0.1:${httpPort}` };
  const boot = spawnSync(process.execPath, [cli, "identity", "bootstrap"], { cwd: root, env: { ...process.env, ...env }, encoding: "utf8" });
  if (boot.status !== 0) throw new Error(`identity bootstrap: ${boot.stderr}`);
  const authed = { ...env, REALM_TOKEN: boot.stdout.trim() };
  if (spawnSync(process.execPath, [cli, "zone", "create", "bench.example", "--ns", "ns1.bench.example"], { cwd: root, env: { ...process.env, ...authed } }).status !== 0) throw new Error("zone create failed");

  const bare = time(["-e", "0"]);
  const help = time([cli, "--help"]);
  const list = time([cli, "zone", "list"], authed);
  const row = (what: string, r: ReturnType<typeof time>) =>
    console.log(`${what.padEnd(44)} median ${r.median.toFixed(0).padStart(4)} ms  (min ${r.min.toFixed(0)}, max ${r.max.toFixed(0)}; ${RUNS} runs${r.warned ? `; ${r.warned} printed a warning` : ""})`);
  console.log(`cli, each run a new process (${process.version})`);
  row("node -e 0 (reference: Node's own start)", bare);
  row("realm --help", help);
  row("realm zone list (running realm, API key)", list);
} finally {
  up.kill("SIGTERM");
  await stopped;
  rmSync(data, { recursive: true, force: true });
}
