/**
 * PKI bench: leaf certificates issued per second through the realm (ECDSA P-256 CSR parsed and checked,
 * names planned against the realm's zones, certificate signed, CertificateIssued appended to JetStream and
 * folded into the projection) beside `openssl x509 -req` signing the same CSRs with the same intermediate
 * key, one process per certificate as an operator would script it (reference). Target: >= 500 certs/s.
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
import { toPem } from "../pki/x509/der.js";

const N = Number(process.env.BENCH_CERTS ?? 2000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const OPENSSL_N = Number(process.env.BENCH_OPENSSL_CERTS ?? Math.min(N, 500));
const dir = mkdtempSync(join(tmpdir(), "realm-pki-bench-"));
const PASS = "bench passphrase, not secret";
const server = new NatsSupervisor({ dataDir: join(dir, "nats") });
await server.start();
const nc = await connect({ servers: server.url });
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const ctx = () => {
  const id = newId();
  return { commandId: id, actor: "bench", correlationId: id, causationId: id };
};

try {
  const pki = await createPkiContext({ publicUrl: "http://127.0.0.1:8080", ownedZones: () => ["bench.test."] })({ nc, log: createLogger({ level: "silent" }), dataDir: join(dir, "pki") });
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

  // Reference: openssl x509 -req with the same intermediate key, one process per certificate, as many in
  // flight as there are cores.
  const keyFile = join(dir, "pki", "keys", `${prep.publicKeySha256}.key.pem`);
  const caFile = join(dir, "intermediate.pem");
  writeFileSync(caFile, signed.certPem);
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
  await pki.stop?.();
} finally {
  await nc.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
