/**
 * ACME bench: orders completed per second with http-01 (newOrder, authorization, challenge response,
 * validation by the realm over loopback against an http-01 responder, polling, finalize with a CSR,
 * certificate download), client, validator and responder all on loopback in this process, beside the plain
 * `certificate.issue` figure (the same CSRs, in-process, same concurrency) of the same realm.
 *   npm run bench -- acme   (BENCH_ACME_ORDERS, BENCH_ACME_CONCURRENCY)
 */
import { createServer } from "node:http";
import { newId } from "../services/kernel/index.js";
import { createCsr } from "../pki/x509/csr.js";
import { buildName } from "../pki/x509/cert.js";
import { generateKeyPair, signerFor } from "../pki/x509/keys.js";
import { toPem } from "../pki/x509/der.js";
import { startAcme } from "../test/pki/acme/support.js";
import { accountKey, AcmeClient } from "../test/pki/acme/client.js";

const N = Number(process.env.BENCH_ACME_ORDERS ?? 300);
const CONCURRENCY = Number(process.env.BENCH_ACME_CONCURRENCY ?? 16);
const h = await startAcme();
const tokens = new Map<string, string>();
const web = createServer((req, res) => {
  const ka = tokens.get((req.url ?? "").split("/").pop() ?? "");
  res.writeHead(ka ? 200 : 404).end(ka ?? "");
});
await new Promise<void>((r) => web.listen(h.http01Port, "127.0.0.1", () => r()));

const { privateKey, publicKey } = await generateKeyPair("ecdsa-p256");
const csrFor = (name: string) => createCsr(buildName({ CN: name }), publicKey, signerFor(privateKey));
const names = (tag: string) => Array.from({ length: N }, (_, i) => `${tag}${i}.example.test`);

const account = await new AcmeClient(h.directory, await accountKey("ES256")).init();
await account.newAccount();

async function oneOrder(name: string, der: Buffer): Promise<void> {
  const c = account.fork();
  const o = await c.post(c.dir.newOrder!, { identifiers: [{ type: "dns", value: name }] });
  if (o.status !== 201) throw new Error(`newOrder: ${o.text}`);
  const authzUrl = (o.body.authorizations as string[])[0]!;
  const ch = ((await c.post(authzUrl, "")).body.challenges as { type: string; url: string; token: string }[]).find((x) => x.type === "http-01")!;
  tokens.set(ch.token, `${ch.token}.${c.key.thumbprint}`);
  await c.post(ch.url, {});
  const az = await c.poll(authzUrl, (b) => b.status !== "pending", 30_000, 2);
  if (az.status !== "valid") throw new Error(`authorization ${JSON.stringify(az)}`);
  const fin = await c.post(o.body.finalize as string, { csr: der.toString("base64url") });
  if (fin.body.status !== "valid") throw new Error(`finalize: ${fin.text}`);
  const cert = await c.post(fin.body.certificate as string, "");
  if (!cert.text.includes("BEGIN CERTIFICATE")) throw new Error("no certificate");
  tokens.delete(ch.token);
}

async function pool<T>(items: T[], fn: (x: T) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
  return (performance.now() - t0) / 1000;
}

// Warm up both paths, then measure.
const warm = names("warm").slice(0, 20);
await pool(warm.map((n) => [n, csrFor(n)] as const), ([n, d]) => oneOrder(n, d));
const acmeItems = names("acme").map((n) => [n, csrFor(n)] as const);
const acmeSeconds = await pool(acmeItems, ([n, d]) => oneOrder(n, d));

const plainItems = names("plain").map((n) => toPem(csrFor(n), "CERTIFICATE REQUEST"));
const plainSeconds = await pool(plainItems, async (csr) => {
  const id = newId();
  await h.pki.issue({ issuer: "ops", profile: "server", csr }, { commandId: id, actor: "bench", correlationId: id, causationId: id });
});

console.log(`ACME http-01 orders, ${N} orders, ${CONCURRENCY} in flight (client, validator and responder on loopback, one process): ${(N / acmeSeconds).toFixed(1)} orders/s (${((acmeSeconds * 1000) / N).toFixed(2)} ms per order of wall time)`);
console.log(`plain certificate.issue, the same CSRs' kind, ${N} certificates, ${CONCURRENCY} in flight:                      ${(N / plainSeconds).toFixed(1)} certs/s`);
console.log(`each ACME order is 8 JWS requests, 1 http-01 fetch and 5 events (AcmeOrderCreated, AcmeChallengeStarted, AcmeChallengeValidated, CertificateIssued, AcmeOrderFinalized) besides the polling`);
web.close();
await h.stop();
process.exit(0);
