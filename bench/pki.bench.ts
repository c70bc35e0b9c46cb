/**
 * PKI bench: leaf certificates issued per second through the realm (ECDSA P-256 CSR parsed and checked,
 * names planned against the realm's zones, certificate signed, CertificateIssued appended to JetStream and
 * folded into the projection) beside `openssl x509 -req` signing the same CSRs with the same intermediate
 * key, one process per certificate as an operator would script it (reference). Target: >= 500 certs/s.
 * Then the same issuance as NATS requests through the host, and the OCSP responder over HTTP beside
 * `openssl ocsp` answering from an index file with the same intermediate key.
 *   npm run bench -- pki   (BENCH_CERTS, BENCH_CONCURRENCY, BENCH_OPENSSL_CERTS, BENCH_OCSP_SECONDS, BENCH_OCSP_CONNECTIONS)
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, cpus } from "node:os";
import { join } from "node:path";
import { newId } from "../services/kernel/index.js";
import { createLogger } from "../services/host/logger.js";
import { NatsSupervisor } from "../services/nats/supervisor.js";
import { connect } from "@nats-io/transport-node";
import { createPkiContext } from "../pki/service.js";
import { initCeremony, signIntermediate } from "../pki/ceremony/ceremony.js";
import { createCsr } from "../pki/x509/csr.js";
import { buildName } from "../pki/x509/cert.js";
import { generateKeyPair, signerFor } from "../pki/x509/keys.js";
import { fromPem, toPem } from "../pki/x509/der.js";
import { derTime } from "../pki/x509/tlv.js";
import { buildOcspRequest, readOcspResponse } from "../pki/x509/ocsp.js";
import { X509Certificate } from "node:crypto";
import { request as httpRequest } from "node:http";
import { Worker } from "node:worker_threads";
import { startHost } from "../services/host/host.js";
import { callRealm } from "../services/host/client.js";
import { freePort } from "../services/nats/supervisor.js";
import { PkiSubjects } from "../pki/contract.js";
import { testTrust } from "../test/support/trust.js";

const N = Number(process.env.BENCH_CERTS ?? 2000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const OPENSSL_N = Number(process.env.BENCH_OPENSSL_CERTS ?? Math.min(N, 500));
const OCSP_SECONDS = Number(process.env.BENCH_OCSP_SECONDS ?? 5);
const OCSP_CONNECTIONS = Number(process.env.BENCH_OCSP_CONNECTIONS ?? 16);
const dir = mkdtempSync(join(tmpdir(), "realm-pki-bench-"));
const PASS = "bench passphrase, not secret";
const server = new NatsSupervisor({ dataDir: join(dir, "nats") });
await server.start();
const nc = await connect({ servers: server.url });
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const OCSP_LOAD = `
const { workerData, parentPort } = require("node:worker_threads");
const { request } = require("node:http");
const { url, body, callers, warmMs, ms } = workerData;
const post = () => new Promise((resolve, reject) => {
  const req = request(url, { method: "POST", agent: false, headers: { "content-type": "application/ocsp-request", "content-length": body.length, connection: "close" } }, (res) => {
    res.resume();
    res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error("HTTP " + res.statusCode))));
  });
  req.on("error", reject);
  req.setTimeout(10000, () => req.destroy(new Error("timeout")));
  req.end(Buffer.from(body));
});
async function loop(duration, lat) {
  let ok = 0, errors = 0, lastError = "";
  const end = performance.now() + duration;
  await Promise.all(Array.from({ length: callers }, async () => {
    while (performance.now() < end) {
      const t = performance.now();
      try { await post(); ok++; } catch (e) { errors++; lastError = e.message; }
      if (lat) lat.push(performance.now() - t);
    }
  }));
  return { ok, errors, lastError };
}
(async () => {
  await loop(warmMs);
  const lat = [];
  const r = await loop(ms, lat);
  parentPort.postMessage({ ...r, lat });
})();
`;
const ctx = () => {
  const id = newId();
  return { commandId: id, actor: "bench", correlationId: id, causationId: id };
};

try {
  const pki = await createPkiContext({ publicUrl: "http://127.0.0.1:8080", ownedZones: () => ["bench.test."] })({ nc, log: createLogger({ level: "silent" }), dataDir: join(dir, "pki"), trust: testTrust() });
  await initCeremony({ dir: join(dir, "ceremony"), passphrase: PASS, subject: { CN: "Bench Root" }, scrypt: { N: 2 ** 14, r: 8, p: 1 } });
  const prepare = pki.endpoints.find((e) => e.name === "issuer.prepare")!;
  const imp = pki.endpoints.find((e) => e.name === "issuer.import")!;
  const prep = (await prepare.handle({ issuer: "bench", commonName: "Bench Issuing CA" }, ctx() as never)) as { csrPem: string; publicKeySha256: string };
  const signed = signIntermediate({ dir: join(dir, "ceremony"), passphrase: PASS, csrPem: prep.csrPem, permittedDns: ["bench.test"] });
  await imp.handle({ issuer: "bench", certificate: signed.certPem, root: signed.rootPem }, ctx() as never);

  process.stderr.write(`making ${N} ECDSA P-256 CSRs ...\n`);
  const csrs: string[] = [];
  for (let i = 0; i < N; i++) {
    const { privateKey, publicKey } = await generateKeyPair("ecdsa-p256");
    csrs.push(toPem(createCsr(buildName({ CN: `h${i}.bench.test` }), publicKey, signerFor(privateKey)), "CERTIFICATE REQUEST"));
  }

  // Warm-up (JIT, stream, signing state), not counted.
  for (let i = 0; i < 50; i++) await pki.issue({ profile: "server", csr: csrs[i]! }, ctx());

  // Realm: N issuances, CONCURRENCY in flight (each a command with its own id, as separate callers would send).
  const before = await pki.store.lastSequence();
  let next = 0;
  const lat: number[] = [];
  const cpu0 = process.cpuUsage();
  let t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < N) {
        const i = next++;
        const s = performance.now();
        await pki.issue({ profile: "server", csr: csrs[i]! }, ctx());
        lat.push(performance.now() - s);
      }
    }),
  );
  const realmSecs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuMsPerCert = (cpu.user + cpu.system) / 1000 / N;
  const appended = (await pki.store.lastSequence()) - before;
  if (appended !== N) throw new Error(`expected ${N} CertificateIssued events, the stream holds ${appended}`);

  // Sequential: one caller, one at a time (latency of a single issuance).
  const seqN = Math.min(300, N);
  const seq: number[] = [];
  for (let i = 0; i < seqN; i++) {
    const s = performance.now();
    await pki.issue({ profile: "server", csr: csrs[i]! }, ctx());
    seq.push(performance.now() - s);
  }

  // Through the host: certificate.issue as a NATS request (what `realm cert issue` and services send).
  const host = await startHost({ nc, contexts: [pki], httpPort: 0, log: createLogger({ level: "silent" }) });
  const natsN = Math.min(N, 1000);
  let k2 = 0;
  t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (k2 < natsN) await callRealm(nc, PkiSubjects.issue, { profile: "server", csr: csrs[k2++]! });
    }),
  );
  const natsRate = natsN / ((performance.now() - t0) / 1000);

  // OCSP: one leaf's status over HTTP POST, the realm's responder beside `openssl ocsp` answering from an index.
  const leaf = await pki.issue({ profile: "server", csr: csrs[0]! }, ctx());
  const leafDer = fromPem(leaf.certPem, ["CERTIFICATE"], "leaf");
  const interDer = fromPem(signed.certPem, ["CERTIFICATE"], "intermediate");
  const ocspBody = buildOcspRequest(leafDer, interDer);
  // One connection per request (Connection: close), as openssl's responder serves anyway: same for both.
  const post = (url: string) =>
    new Promise<Buffer>((resolve, reject) => {
      const req = httpRequest(url, { method: "POST", agent: false, headers: { "content-type": "application/ocsp-request", "content-length": ocspBody.length, connection: "close" } }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`HTTP ${res.statusCode}`))));
      });
      req.on("error", reject);
      req.setTimeout(10_000, () => req.destroy(new Error("timeout")));
      req.end(ocspBody);
    });
  // The load: OCSP_CONNECTIONS callers in a closed loop on a worker thread (so the realm's event loop is not
  // also the client's), the same for both responders. autocannon cannot drive openssl's HTTP/1.0 responder.
  const ocspRun = (url: string, body = ocspBody) =>
    new Promise<{ rps: number; p50: string; p99: string; errors: number }>((resolve, reject) => {
      const w = new Worker(OCSP_LOAD, { eval: true, workerData: { url, body, callers: OCSP_CONNECTIONS, warmMs: 1000, ms: OCSP_SECONDS * 1000 } });
      w.once("message", (r: { ok: number; errors: number; lastError: string; lat: number[] }) => {
        void w.terminate();
        if (r.ok === 0) return reject(new Error(`${url}: no answers (${r.errors} errors, the last: ${r.lastError})`));
        resolve({ rps: r.ok / OCSP_SECONDS, p50: pct(r.lat, 50).toFixed(1), p99: pct(r.lat, 99).toFixed(1), errors: r.errors });
      });
      w.once("error", reject);
    });
  const realmCheck = readOcspResponse(await post(`${host.httpUrl}/pki/ocsp`), interDer);
  if (realmCheck.responses[0]?.status !== "good") throw new Error("the realm's OCSP answer is not good");
  const realmOcsp = await ocspRun(`${host.httpUrl}/pki/ocsp`);
  // Without a nonce (browsers, most TLS stacks; RFC 5019): answered from a pre-signed response.
  const realmOcspNoNonce = await ocspRun(`${host.httpUrl}/pki/ocsp`, buildOcspRequest(leafDer, interDer, null));
  // The intermediate (certificate and online key) both references sign with.
  const caFile = join(dir, "intermediate.pem");
  writeFileSync(caFile, signed.certPem);
  const keyFile = join(dir, "pki", "keys", `${prep.publicKeySha256}.key.pem`);
  const index = join(dir, "index.txt");
  // openssl's index wants the expiry as an UTCTime string: the DER time's content.
  const expiry = derTime(new Date(new X509Certificate(leaf.certPem).validTo)).subarray(2).toString("ascii");
  writeFileSync(index, `V\t${expiry}\t\t${leaf.serial.toUpperCase()}\tunknown\t/CN=h0.bench.test\n`);
  const ocspPort = await freePort();
  const responder = spawn("openssl", ["ocsp", "-index", index, "-port", String(ocspPort), "-rsigner", caFile, "-rkey", keyFile, "-CA", caFile, "-ignore_err"], { stdio: "ignore" }); // it logs a line per request: never to an unread pipe
  let opensslOcsp: Awaited<ReturnType<typeof ocspRun>> | undefined;
  try {
    let answer: Buffer | undefined;
    for (let i = 0; i < 50 && !answer; i++) {
      answer = await post(`http://127.0.0.1:${ocspPort}/`).catch(() => undefined);
      if (!answer) await new Promise((r) => setTimeout(r, 100));
    }
    if (!answer || readOcspResponse(answer, interDer).responses[0]?.status !== "good") throw new Error("openssl's OCSP responder did not answer good");
    opensslOcsp = await ocspRun(`http://127.0.0.1:${ocspPort}/`);
  } finally {
    responder.kill("SIGTERM");
  }
  await host.stop();

  // Reference: openssl x509 -req with the same intermediate key, one process per certificate, as many in
  // flight as there are cores.
  const ext = join(dir, "ext.cnf");
  writeFileSync(ext, "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:$ENV::SAN\n");
  const csrFiles = csrs.slice(0, OPENSSL_N).map((c, i) => {
    const f = join(dir, `c${i}.csr`);
    writeFileSync(f, c);
    return f;
  });
  const runOpenssl = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const p = spawn("openssl", ["x509", "-req", "-in", csrFiles[i]!, "-CA", caFile, "-CAkey", keyFile, "-set_serial", String(1000 + i), "-days", "90", "-sha256", "-extfile", ext, "-out", join(dir, `c${i}.crt`)], {
        env: { ...process.env, SAN: `h${i}.bench.test` },
        stdio: ["ignore", "ignore", "pipe"],
      });
      let err = "";
      p.stderr.on("data", (d: Buffer) => (err += d.toString()));
      p.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`openssl: ${err}`))));
    });
  let k = 0;
  t0 = performance.now();
  await Promise.all(
    Array.from({ length: cpus().length }, async () => {
      while (k < OPENSSL_N) await runOpenssl(k++);
    }),
  );
  const opensslSecs = (performance.now() - t0) / 1000;

  const realmRate = N / realmSecs;
  const opensslRate = OPENSSL_N / opensslSecs;
  console.log(`leaf issuance, ECDSA P-256 from CSR (${cpus().length} cores)`);
  console.log(`  realm   ${realmRate.toFixed(0).padStart(6)} certs/s  ${N} certs, ${CONCURRENCY} in flight, event appended + projected; latency p50 ${pct(lat, 50).toFixed(1)} ms p99 ${pct(lat, 99).toFixed(1)} ms; realm process CPU ${cpuMsPerCert.toFixed(2)} ms/cert`);
  console.log(`  realm   sequential one caller: p50 ${pct(seq, 50).toFixed(2)} ms p99 ${pct(seq, 99).toFixed(2)} ms (${(seqN / (seq.reduce((a, b) => a + b, 0) / 1000)).toFixed(0)} certs/s)`);
  console.log(`  openssl ${opensslRate.toFixed(0).padStart(6)} certs/s  ${OPENSSL_N} x 'openssl x509 -req', ${cpus().length} processes in flight, no record kept`);
  console.log(`  ratio realm/openssl ${(realmRate / opensslRate).toFixed(2)}x; target >= 500 certs/s: ${realmRate >= 500 ? "met" : "NOT met"}`);
  console.log(`  realm via NATS request/reply (host, JSON in and out): ${natsRate.toFixed(0)} certs/s, ${natsN} certs, ${CONCURRENCY} in flight`);
  console.log(`OCSP over HTTP POST, one leaf, ${OCSP_CONNECTIONS} callers, ${OCSP_SECONDS}s (node:http on a worker thread, a connection per request)`);
  console.log(`  realm   ${realmOcsp.rps.toFixed(0).padStart(6)} responses/s  p50 ${realmOcsp.p50} ms p99 ${realmOcsp.p99} ms, ${realmOcsp.errors} errors (with nonce: signed per request)`);
  console.log(`  realm   ${realmOcspNoNonce.rps.toFixed(0).padStart(6)} responses/s  p50 ${realmOcspNoNonce.p50} ms p99 ${realmOcspNoNonce.p99} ms, ${realmOcspNoNonce.errors} errors (no nonce: pre-signed, RFC 5019)`);
  if (opensslOcsp) console.log(`  openssl ${opensslOcsp.rps.toFixed(0).padStart(6)} responses/s  p50 ${opensslOcsp.p50} ms p99 ${opensslOcsp.p99} ms, ${opensslOcsp.errors} errors ('openssl ocsp -index', one process)`);
  await pki.stop?.();
} finally {
  await nc.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
