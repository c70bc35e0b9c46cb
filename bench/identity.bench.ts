/**
 * Identity benchmark: the OIDC token endpoint (client credentials grant) of the realm — oidc-provider
 * mounted in the realm's Fastify host, its adapter on JetStream KV, clients from the event-sourced
 * directory — beside a bare oidc-provider with its in-memory adapter and a static client, in the same run.
 *   npx tsx bench/identity.bench.ts [--seconds 10] [--connections 16]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Server } from "node:http";
import autocannon from "autocannon";
import Provider from "oidc-provider";
import { connect } from "@nats-io/transport-node";
import { NatsSupervisor } from "../services/nats/supervisor.js";
import { startHost } from "../services/host/host.js";
import { createLogger } from "../services/host/logger.js";
import { newId } from "../services/kernel/index.js";
import { createIdentityContext } from "../identity/service.js";
import { Sealer } from "../services/kernel/seal.js";
import { testTrust } from "../test/support/trust.js";

const { values } = parseArgs({ options: { seconds: { type: "string", default: "10" }, connections: { type: "string", default: "16" } } });
const SECONDS = Number(values.seconds);
const CONNECTIONS = Number(values.connections);
const say = (s: string) => process.stderr.write(`bench: ${s}\n`);

const dir = mkdtempSync(join(tmpdir(), "realm-bench-identity-"));
const nats = new NatsSupervisor({ dataDir: dir });
await nats.start();
const nc = await connect({ servers: nats.url, noAsyncTraces: true });
const log = createLogger({ level: "silent" });

// The realm: identity context in the host, a confidential client registered by command.
const ctx = await createIdentityContext({ issuer: "http://127.0.0.1/oidc", sealer: Sealer.generate() })({ nc, log, dataDir: dir, trust: testTrust() });
const host = await startHost({ nc, contexts: [ctx], httpPort: 0, log });
const register = ctx.endpoints.find((e) => e.name === "client.register")!;
const reg = (await register.handle({ id: "bench", displayName: "Bench", grantTypes: ["client_credentials"] }, { commandId: newId(), correlationId: newId(), causationId: newId(), actor: "bench", log })) as { clientSecret: string };
const realmAuth = `Basic ${Buffer.from(`bench:${reg.clientSecret}`).toString("base64")}`;

// Bare oidc-provider: in-memory adapter, static client, its own Koa server.
const bare = new Provider("http://127.0.0.1/bare", {
  clients: [{ client_id: "bench", client_secret: "bare-bench-secret", grant_types: ["client_credentials"], redirect_uris: [], response_types: [] }],
  features: { clientCredentials: { enabled: true }, devInteractions: { enabled: false } },
});
const bareServer: Server = bare.listen(0);
await new Promise((r) => bareServer.once("listening", r));
const bareAddr = bareServer.address();
const bareUrl = `http://127.0.0.1:${typeof bareAddr === "object" && bareAddr ? bareAddr.port : 0}`;
const bareAuth = `Basic ${Buffer.from("bench:bare-bench-secret").toString("base64")}`;

async function run(name: string, url: string, authorization: string) {
  const opts = { url, method: "POST" as const, headers: { authorization, "content-type": "application/x-www-form-urlencoded" }, body: "grant_type=client_credentials", connections: CONNECTIONS };
  // Warm up (JIT, caches), then measure.
  await autocannon({ ...opts, duration: 2 });
  say(`${name}: ${SECONDS}s, ${CONNECTIONS} connections`);
  const r = await autocannon({ ...opts, duration: SECONDS });
  const ok = r["2xx"];
  if (ok === 0 || r.non2xx > 0) throw new Error(`${name}: ${r.non2xx} non-2xx answers of ${r.requests.total}`);
  return { name, rps: ok / SECONDS, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors };
}

try {
  // Check both answer before measuring.
  for (const [u, a] of [[`${host.httpUrl}/oidc/token`, realmAuth], [`${bareUrl}/token`, bareAuth]] as const) {
    const res = await fetch(u, { method: "POST", headers: { authorization: a, "content-type": "application/x-www-form-urlencoded" }, body: "grant_type=client_credentials" });
    if (res.status !== 200) throw new Error(`${u} answered ${res.status}: ${await res.text()}`);
  }
  const bareR = await run("bare oidc-provider (memory adapter)", `${bareUrl}/token`, bareAuth);
  const realmR = await run("realm (Fastify + JetStream KV adapter)", `${host.httpUrl}/oidc/token`, realmAuth);
  const rows = [bareR, realmR];
  console.log("\nOIDC token endpoint, client_credentials grant");
  console.log("| run | req/s | p50 ms | p99 ms | non-2xx | errors |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const r of rows) console.log(`| ${r.name} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.non2xx} | ${r.errors} |`);
  const ratio = realmR.rps / bareR.rps;
  console.log(`\nratio realm / bare: ${(ratio * 100).toFixed(1)}% (target >= 60%)`);
} finally {
  bareServer.close();
  await host.stop();
  await nc.close();
  await nats.stop();
  rmSync(dir, { recursive: true, force: true });
}
