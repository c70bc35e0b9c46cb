/**
 * Policy bench: the authorization decision per request (authenticate an API key + decide, in process) with
 * 1,000 role bindings in the directory, p50/p99 us; and, over HTTP with autocannon, a cheap query
 * (`GET /api/dns/zones`) and the OIDC token endpoint (client credentials) with authorization on beside a
 * realm run with `--insecure-no-auth` (authorization off), as ratios. Two realms, one after the other, each
 * with its own nats-server, as `realm up` makes them.
 *   npx tsx bench/policy.bench.ts [--bindings 1000] [--seconds 5] [--connections 16]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { startRealm, type RunningRealm } from "../services/cli/runtime.js";
import { connectAs } from "../services/cli/connection.js";
import { callRealm } from "../services/host/client.js";
import { createLogger } from "../services/host/logger.js";
import { decide } from "../services/host/authz.js";
import { identityAuthOf } from "../identity/auth.js";

const { values } = parseArgs({ options: { bindings: { type: "string", default: "1000" }, seconds: { type: "string", default: "5" }, connections: { type: "string", default: "16" } } });
const BINDINGS = Number(values.bindings);
const SECONDS = Number(values.seconds);
const CONNECTIONS = Number(values.connections);
const say = (s: string) => process.stderr.write(`bench: ${s}\n`);
const log = createLogger({ level: "silent" });
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function load(name: string, opts: autocannon.Options) {
  await autocannon({ ...opts, connections: CONNECTIONS, duration: 1 });
  const r = await autocannon({ ...opts, connections: CONNECTIONS, duration: SECONDS });
  if (r.non2xx > 0 || r["2xx"] === 0) throw new Error(`${name}: ${r.non2xx} non-2xx of ${r.requests.total}`);
  return { rps: r["2xx"] / SECONDS, p50: r.latency.p50, p99: r.latency.p99 };
}

/** A realm with a zone and a confidential client; with auth also BINDINGS principals each bound to a role. */
async function realmFor(noAuth: boolean): Promise<{ realm: RunningRealm; dir: string; key?: string; secret: string }> {
  const dir = mkdtempSync(join(tmpdir(), `realm-bench-policy-${noAuth ? "off" : "on"}-`));
  const realm = await startRealm({ dataDir: dir, natsPort: 0, httpPort: 0, dnsPort: 0, noAuth, log });
  const op = await connectAs(realm.natsUrl, join(dir, "operator", "admin.creds"), "bench");
  const admin = noAuth ? undefined : (await callRealm<{ key: string }>(op, "realm.identity.commands.admin.bootstrap", {})).key;
  const cmd = (name: string, input: object) => callRealm(op, `realm.${name}`, input, admin ? { authorization: `Bearer ${admin}` } : {});
  await cmd("dns.commands.zone.create", { zone: "bench.example", ns: ["ns1.bench.example"] });
  const reg = (await cmd("identity.commands.client.register", { id: "bench", displayName: "Bench", grantTypes: ["client_credentials"] })) as { clientSecret: string };
  let key: string | undefined;
  if (!noAuth) {
    say(`making ${BINDINGS} principals with a role binding each`);
    for (let i = 0; i < BINDINGS; i++) {
      await cmd("identity.commands.principal.create", { id: `p${i}`, kind: "service", displayName: `p${i}` });
      await cmd("identity.commands.policy.bind", { id: `b${i}`, role: i % 2 ? "auditor" : "dns-operator", subject: { kind: "principal", id: `p${i}` }, ...(i % 3 === 0 ? { scope: { kind: "zone", id: `z${i}.example` } } : {}) });
    }
    key = ((await cmd("identity.commands.apikey.issue", { owner: "p1", label: "bench", roles: ["auditor"] })) as { key: string }).key;
  }
  await op.close();
  return { realm, dir, ...(key ? { key } : {}), secret: reg.clientSecret };
}

const on = await realmFor(false);
// The decision alone: authenticate the key (hash, lookup, the owner's grants from 1,000 bindings) and decide.
const { authenticate } = identityAuthOf(on.realm.contexts.find((c) => c.name === "identity")!);
const times: number[] = [];
for (let i = 0; i < 20_000; i++) {
  const t = performance.now();
  const p = await authenticate(`Bearer ${on.key}`);
  const d = decide(p!, "dns:zones", "query", undefined);
  if (!d.allowed) throw new Error("the bench key should be allowed");
  times.push((performance.now() - t) * 1000);
}
const zonesOn = await load("zones (auth on)", { url: `${on.realm.httpUrl}/api/dns/zones`, headers: { authorization: `Bearer ${on.key}` } });
const tokenBody = "grant_type=client_credentials";
const tokenOn = await load("token (auth on)", { url: `${on.realm.httpUrl}/oidc/token`, method: "POST", headers: { authorization: `Basic ${Buffer.from(`bench:${on.secret}`).toString("base64")}`, "content-type": "application/x-www-form-urlencoded" }, body: tokenBody });
await on.realm.stop();
rmSync(on.dir, { recursive: true, force: true });

const off = await realmFor(true);
const zonesOff = await load("zones (auth off)", { url: `${off.realm.httpUrl}/api/dns/zones` });
const tokenOff = await load("token (auth off)", { url: `${off.realm.httpUrl}/oidc/token`, method: "POST", headers: { authorization: `Basic ${Buffer.from(`bench:${off.secret}`).toString("base64")}`, "content-type": "application/x-www-form-urlencoded" }, body: tokenBody });
await off.realm.stop();
rmSync(off.dir, { recursive: true, force: true });

const f = (n: number) => Math.round(n).toLocaleString("en-US").padStart(9);
console.log(`policy bench: ${BINDINGS} role bindings, ${CONNECTIONS} connections x ${SECONDS}s, node ${process.versions.node}, one realm (own nats-server) at a time`);
console.log(`authorization decision (authenticate API key + decide), 20,000 in process: p50 ${pct(times, 50).toFixed(1)} us, p99 ${pct(times, 99).toFixed(1)} us`);
console.log(`${"requests/s".padEnd(32)} ${"auth on".padStart(9)} ${"auth off".padStart(9)} ${"ratio".padStart(7)}   p50 on/off ms`);
for (const [name, a, b] of [["GET /api/dns/zones", zonesOn, zonesOff], ["POST /oidc/token (client creds)", tokenOn, tokenOff]] as const) {
  console.log(`${name.padEnd(32)} ${f(a.rps)} ${f(b.rps)} ${((a.rps / b.rps) * 100).toFixed(0).padStart(6)}%   ${a.p50}/${b.p50}`);
}
