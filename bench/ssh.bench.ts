/**
 * SSH bench: OpenSSH user certificates signed per second through the realm (the .pub line parsed and its key
 * checked, principals and options planned against the CA's policy, the certificate encoded and signed with the
 * Ed25519 CA key, SshCertificateIssued appended to JetStream and folded into the projection), beside
 * `ssh-keygen -s` signing the same public keys with an Ed25519 CA key of its own, one process per
 * certificate as an operator would script it (reference). Also the bare encoder (no event) and the same
 * signing as NATS requests through the host.
 *   npm run bench -- ssh   (BENCH_SSH_CERTS, BENCH_CONCURRENCY, BENCH_SSH_KEYGEN_CERTS)
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { newId } from "../services/kernel/index.js";
import { createLogger } from "../services/host/logger.js";
import { NatsSupervisor } from "../services/nats/supervisor.js";
import { startHost } from "../services/host/host.js";
import { callRealm } from "../services/host/client.js";
import { createPkiContext } from "../pki/service.js";
import { encodeSshCertificate } from "../pki/ssh/cert.js";
import { parseSshPublicKey, sshPublicKeyBlob } from "../pki/ssh/keys.js";
import { testTrust } from "../test/support/trust.js";
import { generateKeyPairSync } from "node:crypto";

const N = Number(process.env.BENCH_SSH_CERTS ?? 2000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const KEYGEN_N = Number(process.env.BENCH_SSH_KEYGEN_CERTS ?? 300);
const KEYS = 64;
const dir = mkdtempSync(join(tmpdir(), "realm-ssh-bench-"));
const server = new NatsSupervisor({ dataDir: join(dir, "nats") });
await server.start();
const nc = await connect({ servers: server.url });
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const ctx = () => {
  const id = newId();
  return { commandId: id, actor: "bench", correlationId: id, causationId: id };
};
const keygen = (args: string[]) => {
  const r = spawnSync("ssh-keygen", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ssh-keygen ${args.join(" ")}: ${r.stderr}`);
};

try {
  process.stderr.write(`making ${KEYS} Ed25519 user keys with ssh-keygen ...\n`);
  const pubs: string[] = [];
  for (let i = 0; i < KEYS; i++) {
    keygen(["-q", "-t", "ed25519", "-N", "", "-f", join(dir, `u${i}`)]);
    pubs.push(readFileSync(join(dir, `u${i}.pub`), "utf8"));
  }

  const pki = await createPkiContext({ publicUrl: "http://127.0.0.1:8080", ownedZones: () => ["bench.test."] })({ nc, log: createLogger({ level: "silent" }), dataDir: join(dir, "pki"), trust: testTrust() });
  const endpoint = (name: string) => pki.endpoints.find((e) => e.name === name)!;
  await endpoint("ssh-ca.create").handle({ issuer: "bench" }, ctx() as never);
  const signUser = endpoint("ssh.sign-user");
  const input = (i: number) => ({ publicKey: pubs[i % KEYS]!, principals: ["deploy", "backup"], hours: 8 });

  // The bare encoder: encode + Ed25519 signature, nothing recorded.
  const ca = generateKeyPairSync("ed25519").privateKey;
  const caBlob = sshPublicKeyBlob(ca);
  const subject = parseSshPublicKey(pubs[0]!);
  const t = Math.floor(Date.now() / 1000);
  let t0 = performance.now();
  for (let i = 0; i < N; i++) encodeSshCertificate({ kind: "user", subject, serial: BigInt(i + 1), keyId: "deploy", principals: ["deploy", "backup"], validAfter: t, validBefore: t + 3600, criticalOptions: {}, extensions: ["permit-pty"], nonce: randomBytes(32) }, ca, caBlob);
  const encoderRate = N / ((performance.now() - t0) / 1000);

  // Warm-up (JIT, stream, signing state), not counted.
  for (let i = 0; i < 50; i++) await signUser.handle(input(i), ctx() as never);
  const lat: number[] = [];
  let k = 0;
  const cpu0 = process.cpuUsage();
  t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (k < N) {
        const i = k++;
        const s = performance.now();
        await signUser.handle(input(i), ctx() as never);
        lat.push(performance.now() - s);
      }
    }),
  );
  const realmSecs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuMsPerCert = (cpu.user + cpu.system) / 1000 / N;

  // Through the host: ssh.sign-user as a NATS request (what `realm ssh sign-user` sends).
  const host = await startHost({ nc, contexts: [pki], httpPort: 0, log: createLogger({ level: "silent" }) });
  const natsN = Math.min(N, 1000);
  let k2 = 0;
  t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (k2 < natsN) await callRealm(nc, "realm.pki.commands.ssh.sign-user", input(k2++));
    }),
  );
  const natsRate = natsN / ((performance.now() - t0) / 1000);
  await host.stop();

  // Reference: ssh-keygen -s with an Ed25519 CA, one process per certificate, one per core in flight.
  keygen(["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "ca")]);
  const runKeygen = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const p = spawn("ssh-keygen", ["-q", "-s", join(dir, "ca"), "-I", "deploy", "-n", "deploy,backup", "-V", "+8h", "-z", String(i + 1), join(dir, `u${i % KEYS}.pub`)], { stdio: ["ignore", "ignore", "pipe"] });
      let err = "";
      p.stderr.on("data", (d: Buffer) => (err += d.toString()));
      p.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`ssh-keygen: ${err}`))));
    });
  let k3 = 0;
  t0 = performance.now();
  await Promise.all(
    Array.from({ length: cpus().length }, async () => {
      while (k3 < KEYGEN_N) await runKeygen(k3++);
    }),
  );
  const keygenRate = KEYGEN_N / ((performance.now() - t0) / 1000);

  const realmRate = N / realmSecs;
  console.log(`SSH user certificates, Ed25519 CA, Ed25519 user keys (${cpus().length} cores)`);
  console.log(`  realm      ${realmRate.toFixed(0).padStart(6)} certs/s  ${N} certs, ${CONCURRENCY} in flight, SshCertificateIssued appended + projected; latency p50 ${pct(lat, 50).toFixed(1)} ms p99 ${pct(lat, 99).toFixed(1)} ms; realm process CPU ${cpuMsPerCert.toFixed(2)} ms/cert`);
  console.log(`  realm via NATS request/reply (host, JSON in and out): ${natsRate.toFixed(0)} certs/s, ${natsN} certs, ${CONCURRENCY} in flight`);
  console.log(`  encoder    ${encoderRate.toFixed(0).padStart(6)} certs/s  encode + sign only, nothing recorded (one thread)`);
  console.log(`  ssh-keygen ${keygenRate.toFixed(0).padStart(6)} certs/s  ${KEYGEN_N} x 'ssh-keygen -s', ${cpus().length} processes in flight, no record kept`);
  console.log(`  ratio realm/ssh-keygen ${(realmRate / keygenRate).toFixed(2)}x`);
  await pki.stop?.();
} finally {
  await nc.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
