/**
 * NATS accounts bench: user creds issued per second (JWT signed, validated, event appended and projected)
 * one by one (user.create) and in one batch (user.createMany), beside bare @nats-io/jwt (createUser +
 * encodeUser + fmtCreds with nkeys.js keys, no validation, no event: the reference) and our bare encoder
 * (jwt-encode.ts, same output); and the time from `account update` to the server enforcing it (p50/p99)
 * beside a bare `$SYS.REQ.CLAIMS.UPDATE` of a pre-signed JWT (reference). One local nats-server in operator mode.
 * BENCH_USERS (one by one, default 300), BENCH_BATCH (default 5000), BENCH_UPDATES (default 40).
 */
import { readFileSync } from "node:fs";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { createUser, encodeUser, fmtCreds } from "@nats-io/jwt";
import { fromSeed } from "@nats-io/nkeys";
import { newId } from "../services/kernel/index.js";
import { NatsAccounts } from "../identity/nats/service.js";
import { startOperatorNats } from "../test/support/realm-nats.js";
import { KeyStore } from "../identity/nats/keystore.js";
import { encodeUserJwt, formatCreds, newNkey, nkeyFromSeed } from "../identity/nats/jwt-encode.js";
import { ClaimsPusher } from "../identity/nats/push.js";

const N = Number(process.env.BENCH_USERS ?? 300);
const R = Number(process.env.BENCH_UPDATES ?? 40);
const B = Number(process.env.BENCH_BATCH ?? 5000);
// The realm's own setup (operator, trust, least-privilege identities, provisioned streams), as `realm up` makes it.
const realm = await startOperatorNats();
const server = realm.server;
const enc = new TextEncoder();
const as = (creds: string) => connect({ servers: server.url, authenticator: credsAuthenticator(enc.encode(creds)), reconnect: false });
const nc = await realm.connectAs("realm-identity");
const svc = await NatsAccounts.open(nc, { dir: realm.paths.operator, realmTrust: realm.trust, sysCredsFile: realm.credsFile("realm-sys") });
const meta = () => ({ commandId: newId(), actor: "bench" });
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

try {
  await svc.createAccount({ name: "bench" }, meta());
  const perms = { pub: { allow: ["bench.>"] }, sub: { allow: ["_INBOX.>"] } };
  const cpu = () => process.cpuUsage();
  const cpuMs = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1000;
  // creds/s through the realm, one by one (user.create)
  let c0 = cpu();
  let t0 = performance.now();
  for (let i = 0; i < N; i++) await svc.createUser({ account: "bench", name: `u${i}`, kind: "service", permissions: perms }, meta());
  const onePerSec = N / ((performance.now() - t0) / 1000);
  const oneCpuMs = cpuMs(process.cpuUsage(c0)) / N;
  // in one batch (user.createMany)
  const seq0 = await svc.store.lastSequence();
  c0 = cpu();
  t0 = performance.now();
  const batch = await svc.createUsers({ account: "bench", users: Array.from({ length: B }, (_, i) => ({ name: `b${i}`, kind: "service" as const, permissions: perms })) }, meta());
  const batchPerSec = B / ((performance.now() - t0) / 1000);
  const batchCpuMs = cpuMs(process.cpuUsage(c0)) / B;
  if (batch.issued !== B || (await svc.store.lastSequence()) - seq0 !== B) throw new Error(`batch: ${batch.issued} issued, ${(await svc.store.lastSequence()) - seq0} events`);
  // reference: bare jwt.js (nkeys.js keys) sign + creds formatting, no validation, no event
  const acct = await svc.account("bench");
  const seed = new KeyStore(realm.paths.operator).seed(acct.signingKeys[0]!.key);
  const sk = fromSeed(new TextEncoder().encode(seed));
  const M = Math.max(20, Math.min(N, 100));
  t0 = performance.now();
  for (let i = 0; i < M; i++) {
    const u = createUser();
    fmtCreds(await encodeUser(`r${i}`, u, acct.publicKey, { pub: { allow: ["bench.>"], deny: [] }, sub: { allow: ["_INBOX.>"], deny: [] } }, { signer: sk, exp: Math.floor(Date.now() / 1000) + 86400 }), u);
  }
  const rawPerSec = M / ((performance.now() - t0) / 1000);
  // our bare encoder: new key, sign, creds (what jwt.js does above, same bytes)
  const ours = nkeyFromSeed(seed);
  t0 = performance.now();
  for (let i = 0; i < B; i++) {
    const u = newNkey("U");
    formatCreds(encodeUserJwt(`e${i}`, u.publicKey, acct.publicKey, { pub: { allow: ["bench.>"], deny: [] }, sub: { allow: ["_INBOX.>"], deny: [] } }, ours, { exp: Math.floor(Date.now() / 1000) + 86400 }), u.seed);
  }
  const encPerSec = B / ((performance.now() - t0) / 1000);

  // update -> enforcement: one live connection, toggle conn limit 1 / -1; enforced when a new connect is refused / accepted
  const creds = (await svc.createUser({ account: "bench", name: "probe", kind: "service" }, meta())).creds!;
  const live = await as(creds);
  const canConnect = async () => {
    try {
      const c: NatsConnection = await as(creds);
      await c.close();
      return true;
    } catch {
      return false;
    }
  };
  const lat: number[] = [];
  for (let i = 0; i < R; i++) {
    const limit = i % 2 === 0 ? 1 : -1;
    const start = performance.now();
    await svc.updateAccount({ name: "bench", limits: { conn: limit } }, meta());
    while ((await canConnect()) !== (limit === -1)) await new Promise((r) => setTimeout(r, 1));
    lat.push(performance.now() - start);
  }
  // reference: bare CLAIMS.UPDATE of a pre-signed JWT and the same enforcement probe
  const pusher = await ClaimsPusher.open(server.url, readFileSync(realm.credsFile("realm-sys"), "utf8"));
  const jwts = { 1: await svc.accountJwt({ ...acct, limits: { ...acct.limits, conn: 1 } }), [-1]: await svc.accountJwt({ ...acct, limits: { ...acct.limits, conn: -1 } }) } as Record<number, string>;
  const raw: number[] = [];
  for (let i = 0; i < R; i++) {
    const limit = i % 2 === 0 ? 1 : -1;
    const start = performance.now();
    await pusher.update(jwts[limit]!);
    while ((await canConnect()) !== (limit === -1)) await new Promise((r) => setTimeout(r, 1));
    raw.push(performance.now() - start);
  }
  await pusher.close();
  await live.close();
  // revoke -> live connection closed (issue target: within 1 s)
  const rev: number[] = [];
  for (let i = 0; i < 10; i++) {
    const c = await as((await svc.createUser({ account: "bench", name: `rv${i}`, kind: "person" }, meta())).creds!);
    const start = performance.now();
    const closed = c.closed();
    await svc.revokeUser({ account: "bench", name: `rv${i}` }, meta());
    await closed;
    rev.push(performance.now() - start);
  }

  const f = (n: number) => n.toFixed(1).padStart(10);
  console.log(`nats-accounts bench: ${N} users one by one, ${B} in a batch, ${R} account updates, one local nats-server ${server.url} (operator mode, full resolver), node ${process.versions.node}`);
  console.log(`${"figure".padEnd(34)} ${"cim-realm".padStart(10)} ${"reference".padStart(10)} ${"ratio".padStart(7)}`);
  const ratio = (a: number, b: number) => `${((a / b) * 100).toFixed(0).padStart(6)}%`;
  console.log(`${"user creds issued/s, one by one".padEnd(34)} ${f(onePerSec)} ${f(rawPerSec)} ${ratio(onePerSec, rawPerSec)}   (ref: bare jwt.js createUser + encodeUser + fmtCreds; realm: ${oneCpuMs.toFixed(2)} ms CPU per creds)`);
  console.log(`${`user creds issued/s, batch of ${B}`.padEnd(34)} ${f(batchPerSec)} ${f(rawPerSec)} ${ratio(batchPerSec, rawPerSec)}   (same ref; realm: ${batchCpuMs.toFixed(3)} ms CPU per creds, every event appended and projected)`);
  console.log(`${"bare jwt-encode.ts key+sign+creds/s".padEnd(34)} ${f(encPerSec)} ${f(rawPerSec)} ${ratio(encPerSec, rawPerSec)}   (no validation, no event)`);
  for (const p of [50, 99]) {
    const a = pct(lat, p);
    const b = pct(raw, p);
    console.log(`${`update -> enforced p${p} (ms)`.padEnd(34)} ${f(a)} ${f(b)} ${((a / b) * 100).toFixed(0).padStart(6)}%   (ref: bare CLAIMS.UPDATE of a signed JWT)`);
  }
  console.log(`${"revoke -> connection closed p50 (ms)".padEnd(34)} ${f(pct(rev, 50))}   p99 ${pct(rev, 99).toFixed(1)} ms (target < 1000)`);
} finally {
  await svc.close();
  await realm.stop();
}
