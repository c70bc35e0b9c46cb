/**
 * SCIM bench: users created per second through POST /scim/v2/Users beside the plain identity API creating
 * the same principals (POST /api/identity/principal/create), both over HTTP with an API key, same
 * concurrency, same realm; then filtered lists per second (GET /scim/v2/Users?filter=...) beside the
 * identity API's `principals` query and one principal by id.
 *   npm run bench -- scim   (BENCH_SCIM_USERS, BENCH_SCIM_CONCURRENCY, BENCH_SCIM_SECONDS)
 */
import { startIdentity } from "../test/identity/harness.js";

const N = Number(process.env.BENCH_SCIM_USERS ?? 1000);
const CONCURRENCY = Number(process.env.BENCH_SCIM_CONCURRENCY ?? 16);
const SECONDS = Number(process.env.BENCH_SCIM_SECONDS ?? 5);
const USER = "urn:ietf:params:scim:schemas:core:2.0:User";

const h = await startIdentity();
const auth = h.admin;
const post = async (path: string, body: object, type = "application/json") => {
  const r = await fetch(`${h.url}${path}`, { method: "POST", headers: { authorization: auth, "content-type": type }, body: JSON.stringify(body) });
  if (r.status >= 300) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  await r.arrayBuffer();
};
const get = async (path: string) => {
  const r = await fetch(`${h.url}${path}`, { headers: { authorization: auth } });
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  await r.arrayBuffer();
};

async function pool(n: number, fn: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < n) await fn(next++);
  }));
  return n / ((performance.now() - t0) / 1000);
}

async function forSeconds(fn: (i: number) => Promise<void>): Promise<number> {
  let done = 0;
  const end = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < end) await fn(done++);
  }));
  return done / ((performance.now() - t0) / 1000);
}

const scimCreate = (i: number) => post("/scim/v2/Users", { schemas: [USER], userName: `scim${i}`, name: { givenName: `Given${i}`, familyName: `Family${i % 50}` }, emails: [{ value: `scim${i}@example.test` }] }, "application/scim+json");
const apiCreate = (i: number) => post("/api/identity/principal/create", { id: `api${i}`, kind: "person", displayName: `Given${i} Family${i % 50}`, email: `api${i}@example.test` });

// Warm up both paths, then measure (interleaved halves so neither gets the emptier directory).
await pool(50, (i) => scimCreate(1_000_000 + i));
await pool(50, (i) => apiCreate(1_000_000 + i));
const half = Math.floor(N / 2);
const s1 = await pool(half, (i) => scimCreate(i));
const a1 = await pool(half, (i) => apiCreate(i));
const a2 = await pool(N - half, (i) => apiCreate(half + i));
const s2 = await pool(N - half, (i) => scimCreate(half + i));
const scimRate = (s1 + s2) / 2;
const apiRate = (a1 + a2) / 2;

const total = h.ctx.core.dir.principals.size;
const eq = await forSeconds((i) => get(`/scim/v2/Users?filter=${encodeURIComponent(`userName eq "scim${i % N}"`)}`));
const co = await forSeconds(() => get(`/scim/v2/Users?filter=${encodeURIComponent('name.familyName eq "family7" and emails.value co "@example"')}&count=100`));
const byId = await forSeconds((i) => get(`/scim/v2/Users/scim${i % N}`));
const apiOne = await forSeconds((i) => get(`/api/identity/principals/api${i % N}`));
const apiAll = await forSeconds(() => get("/api/identity/principals"));

console.log(`\nSCIM beside the identity API: ${N} users each way, concurrency ${CONCURRENCY}, ${total} principals in the directory for the reads, ${SECONDS} s per read run`);
console.log("| operation | SCIM /s | identity API /s | SCIM / API |");
console.log("|---|---:|---:|---:|");
console.log(`| create a person | ${scimRate.toFixed(0)} | ${apiRate.toFixed(0)} | ${((scimRate / apiRate) * 100).toFixed(0)}% |`);
console.log(`| one user by id (GET /Users/:id vs GET /principals/:id) | ${byId.toFixed(0)} | ${apiOne.toFixed(0)} | ${((byId / apiOne) * 100).toFixed(0)}% |`);
console.log(`| filtered list \`userName eq\` (vs GET /principals/:id) | ${eq.toFixed(0)} | ${apiOne.toFixed(0)} | ${((eq / apiOne) * 100).toFixed(0)}% |`);
console.log(`| filtered list \`familyName eq and emails.value co\`, count 100 (vs GET /principals, all) | ${co.toFixed(0)} | ${apiAll.toFixed(0)} | ${((co / apiAll) * 100).toFixed(0)}% |`);
await h.stop();
