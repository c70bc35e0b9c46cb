import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import { repoRoot, runRealm } from "../support/cli.js";
import { digA, ok, realmProcesses } from "../support/realm-processes.js";
import { opensslAsync } from "../pki/openssl.js";
import { EXIT_CODES } from "../../services/cli/exit-codes.js";
import type { Manifest } from "../../services/cli/backup.js";

const { tmp, up, stop } = realmProcesses();

/** Every file under `dir` (recursively), as [path, bytes]. */
function allFiles(dir: string): [string, Buffer][] {
  const out: [string, Buffer][] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...allFiles(p));
    else out.push([p, readFileSync(p)]);
  }
  return out;
}

/** The error is the last line on stderr, one line: `error: <CODE>: <message>`. */
const lastError = (stderr: string) => stderr.trimEnd().split("\n").at(-1) ?? "";

const dig = digA;

describe("realm backup / realm restore", () => {
  it("a realm with a zone, a certificate, a NATS account and user, a principal and an API key is backed up, restored into a new data dir and served the same; a tampered backup is refused before anything is written", async () => {
    const data = tmp("realm-bk-data-");
    const work = tmp("realm-bk-work-");
    const passFile = join(work, "backup-passphrase");
    writeFileSync(passFile, "a long backup passphrase\n", { mode: 0o600 });
    const ceremonyPass = join(work, "ceremony-passphrase");
    writeFileSync(ceremonyPass, "a long offline ceremony passphrase\n", { mode: 0o600 });

    // --- the realm, and something of everything in it
    const realm = await up(data);
    const admin = (await ok(["identity", "bootstrap"], realm.env)).stdout.trim();
    const env = { ...realm.env, REALM_TOKEN: admin };
    await ok(["zone", "create", "lab.example", "--ns", "ns1.lab.example"], env);
    await ok(["host", "add", "web1.lab.example", "--ip", "192.0.2.80"], env);
    await ok(["record", "add", "lab.example.", "TXT", "backed-up"], env);
    await ok(["ceremony", "init", "./root", "--cn", "Backup Test Root", "--passphrase-file", ceremonyPass], env, work);
    await ok(["pki", "issuer", "prepare", "ops", "--cn", "Backup Test Ops CA"], env, work);
    await ok(["ceremony", "sign-intermediate", "./root", "ops.csr", "--permit", "lab.example", "--passphrase-file", ceremonyPass], env, work);
    await ok(["pki", "issuer", "import", "ops", "--cert", "ops.crt", "--root", "root/root-ca.crt"], env, work);
    await ok(["cert", "issue", "--cn", "web1.lab.example"], env, work);
    await ok(["account", "create", "lab"], env);
    const aliceCreds = join(work, "alice.creds");
    await ok(["user", "create", "lab", "alice", "--out", aliceCreds], env);
    await ok(["identity", "principal", "create", "ana", "--name", "Ana"], env);
    await ok(["identity", "role", "bind", "ana-dns", "dns-operator", "--principal", "ana"], env);
    const anaKey = (JSON.parse((await ok(["identity", "apikey", "issue", "ana", "--label", "ci", "--role", "dns-operator"], env)).stdout) as { key: string }).key;
    expect(anaKey).toMatch(/^rk_/);
    // a checkpoint, so that the restored realm's audit compares digests against it
    await ok(["audit", "checkpoint"], env);
    expect(existsSync(join(data, "trust", "checkpoints.json"))).toBe(true);

    // --- the backup, of the running realm
    const bk = join(work, "bk");
    const t0 = Date.now();
    // no --nats: the backup finds the running realm's nats-server from its data dir
    const backup = await ok(["backup", bk, "--passphrase-file", passFile], { REALM_DATA: data });
    const backupMs = Date.now() - t0;
    const twice = await runRealm(["backup", bk, "--passphrase-file", passFile], { REALM_DATA: data });
    expect(twice.code).toBe(EXIT_CODES.ALREADY_EXISTS);
    expect(lastError(twice.stderr)).toMatch(/^error: ALREADY_EXISTS: .* is not empty/);
    const made = JSON.parse(backup.stdout) as { cid: string; mode: string; bytes: number; streams: { name: string; messages: number; lastSeq: number }[] };
    expect(made.mode).toBe("hot");
    expect(backup.stderr).toMatch(/realm: snapshot of REALM_DNS \.\.\.\nrealm: {3}REALM_DNS: \d+ messages, last seq \d+/);
    const manifestBytes = readFileSync(join(bk, "manifest.json"));
    const manifest = JSON.parse(manifestBytes.toString()) as Manifest;
    expect(readFileSync(join(bk, "manifest.cid"), "utf8").trim()).toBe(made.cid);
    expect(made.cid).toMatch(/^baga/); // CIDv1, json codec
    expect(manifest.realmVersion).toBe(JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")).version);
    expect(manifest.natsServer.version).toMatch(/^2\./);
    const names = manifest.streams.map((s) => s.name);
    // the realm's stream first (its checkpoints name the others' sequences), then the event streams, then KV
    expect(names.slice(0, 5)).toEqual(["REALM_REALM", "REALM_DNS", "REALM_IDENTITY", "REALM_PKI", "REALM_SECRETS"]);
    expect(names).toEqual(expect.arrayContaining(["KV_realm_identity_credentials", "KV_realm_identity_oidc_keys", "KV_realm_dns_outcomes"]));
    expect(manifest.skippedStreams.map((s) => s.name)).toEqual(expect.arrayContaining(["KV_realm_snapshots_dns", "KV_realm_identity_outcome_secrets", "OBJ_realm_dns_uploads"]));
    for (const s of manifest.streams.filter((x) => x.name.startsWith("REALM_") && x.name !== "REALM_SECRETS")) expect(s.messages).toBeGreaterThan(0);
    // every file the backup holds is in the manifest with its size and digest (and nothing else is there)
    const listed = new Set(manifest.files.map((f) => f.path));
    for (const [p, bytes] of allFiles(bk)) {
      const rel = p.slice(bk.length + 1);
      if (rel === "manifest.json" || rel === "manifest.cid") continue;
      expect(listed.has(rel), rel).toBe(true);
      const f = manifest.files.find((x) => x.path === rel)!;
      expect(f.size).toBe(bytes.length);
      expect(f.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(statSync(p).mode & 0o077).toBe(0);
    }
    expect(manifest.files.map((f) => f.restoreTo)).toEqual(expect.arrayContaining(["trust/trust.json", "trust/checkpoints.json", "operator/operator.json", "operator/operator-identity.bundle.json"]));
    expect(manifest.sealedFiles.map((f) => f.restoreTo)).toEqual(expect.arrayContaining(["operator/seal.key", "trust/keys/dns.pem"]));
    // The PKI's intermediate key is sealed in KV (realm_pki_keys): it travels in that bucket's snapshot.
    expect(manifest.streams.map((s) => s.name)).toContain("KV_realm_pki_keys");
    expect(manifest.skippedFiles.map((f) => f.path)).toEqual(expect.arrayContaining(["operator/operator-passphrase", "operator/admin.creds", "operator/identities/", "nats/"]));
    // no secret in clear outside the stream snapshots (whose content is the realm's own store: public events, sealed KV values)
    const secrets = [
      ["seal key", readFileSync(join(data, "operator", "seal.key"), "utf8").trim()],
      ["event key", readFileSync(join(data, "trust", "keys", "dns.pem"), "utf8").split("\n")[1]!],
      ["operator passphrase", readFileSync(join(data, "operator", "operator-passphrase"), "utf8").trim()],
      ["admin API key", admin],
      ["ana's API key", anaKey],
      ["backup passphrase", "a long backup passphrase"],
      ["alice's seed", /SU[A-Z0-9]{56}/.exec(readFileSync(aliceCreds, "utf8"))![0]],
      ["admin creds seed", /SU[A-Z0-9]{56}/.exec(readFileSync(join(data, "operator", "admin.creds"), "utf8"))![0]],
      ...readdirSync(join(data, "operator", "keys")).map((k) => [`nkey ${k}`, readFileSync(join(data, "operator", "keys", k), "utf8").trim()]),
    ] as const;
    for (const [p, bytes] of allFiles(bk).filter(([p]) => !p.includes("/streams/"))) {
      const text = bytes.toString("latin1");
      for (const [what, secret] of secrets) expect(text.includes(secret), `${what} in ${p}`).toBe(false);
    }
    for (const [what, secret] of secrets) expect(backup.stdout + backup.stderr, what).not.toContain(secret);

    await stop(realm);

    // --- a stopped realm is backed up too (its nats-server started by the backup itself); nothing moved
    const cold = JSON.parse((await ok(["backup", join(work, "bk-cold"), "--passphrase-file", passFile, "--data-dir", data], {})).stdout) as typeof made;
    expect(cold.mode).toBe("cold");
    for (const s of made.streams) expect(cold.streams.find((c) => c.name === s.name)!.lastSeq).toBeGreaterThanOrEqual(s.lastSeq);
    expect(existsSync(join(data, "realm.lock"))).toBe(false);

    // --- tampered: one byte of one file changed; refused naming it, exit 11, nothing written
    const bad = join(work, "bk-bad");
    cpSync(bk, bad, { recursive: true });
    const victim = join(bad, "streams", "REALM_DNS.tar.s2");
    const bytes = readFileSync(victim);
    const at = Math.floor(bytes.length / 2);
    bytes.writeUInt8(bytes.readUInt8(at) ^ 0x01, at);
    writeFileSync(victim, bytes);
    const target = join(work, "restored-bad");
    const refused = await runRealm(["restore", bad, "--data-dir", target, "--passphrase-file", passFile]);
    expect(refused.code).toBe(EXIT_CODES.INTEGRITY);
    expect(lastError(refused.stderr)).toMatch(/^error: INTEGRITY: streams\/REALM_DNS\.tar\.s2 does not match its SHA-256 in the manifest/);
    expect(existsSync(target)).toBe(false);
    // a manifest rewritten to fit an altered file fails its MAC (and an empty target stays empty)
    const forged = JSON.parse(readFileSync(join(bad, "manifest.json"), "utf8")) as Manifest;
    const { createHash } = await import("node:crypto");
    forged.files.find((f) => f.path === "streams/REALM_DNS.tar.s2")!.sha256 = createHash("sha256").update(bytes).digest("hex");
    writeFileSync(join(bad, "manifest.json"), JSON.stringify(forged, null, 2) + "\n");
    rmSync(join(bad, "manifest.cid"));
    mkdirSync(target);
    const forgedRun = await runRealm(["restore", bad, "--data-dir", target, "--passphrase-file", passFile]);
    expect(forgedRun.code).toBe(EXIT_CODES.INTEGRITY);
    expect(lastError(forgedRun.stderr)).toMatch(/^error: INTEGRITY: manifest\.json was altered: its MAC/);
    expect(readdirSync(target)).toEqual([]);
    // a wrong passphrase opens nothing; another CID than the one printed is refused
    const wrongPass = join(work, "wrong");
    writeFileSync(wrongPass, "not the backup passphrase\n");
    const wrong = await runRealm(["restore", bk, "--data-dir", target, "--passphrase-file", wrongPass]);
    expect(wrong.code).toBe(EXIT_CODES.UNAUTHORIZED);
    expect(lastError(wrong.stderr)).toMatch(/^error: UNAUTHORIZED: secrets\.sealed\.json does not open with this passphrase/);
    const otherCid = await runRealm(["restore", bk, "--data-dir", target, "--passphrase-file", passFile, "--cid", cold.cid]);
    expect(otherCid.code).toBe(EXIT_CODES.INTEGRITY);
    expect(readdirSync(target)).toEqual([]);
    // a non-empty data dir is refused without --force
    const busy = await runRealm(["restore", bk, "--data-dir", data, "--passphrase-file", passFile]);
    expect(busy.code).toBe(EXIT_CODES.ALREADY_EXISTS);
    expect(lastError(busy.stderr)).toMatch(/^error: ALREADY_EXISTS: data dir .* is not empty/);

    // --force replaces what a data dir holds
    writeFileSync(join(target, "junk"), "left from before");
    expect((await ok(["restore", bk, "--data-dir", target, "--passphrase-file", passFile, "--force"], {})).stderr).toContain("--force: removing what");
    expect(existsSync(join(target, "junk"))).toBe(false);
    expect(readFileSync(join(target, "trust", "trust.json"))).toEqual(readFileSync(join(data, "trust", "trust.json")));

    // --- restored into a new data dir, then served
    const data2 = join(work, "restored");
    const t1 = Date.now();
    const restored = await ok(["restore", bk, "--data-dir", data2, "--passphrase-file", passFile, "--cid", made.cid], {});
    const restoreMs = Date.now() - t1;
    const r = JSON.parse(restored.stdout) as { streams: { name: string; messages: number; lastSeq: number }[] };
    for (const s of manifest.streams) expect(r.streams.find((x) => x.name === s.name)).toEqual({ name: s.name, messages: s.messages, lastSeq: s.lastSeq });
    expect(statSync(join(data2, "operator", "seal.key")).mode & 0o777).toBe(0o600);
    expect(existsSync(join(data2, "operator", "operator-passphrase"))).toBe(false);
    expect(existsSync(join(data2, "realm.lock"))).toBe(false);
    for (const [what, secret] of secrets) expect(restored.stdout + restored.stderr, what).not.toContain(secret);

    const again = await up(data2);
    expect(again.stdout()).not.toContain("create the first admin");
    // DNS answers the zone
    expect(dig(again.ports.dns, "web1.lab.example")).toBe("192.0.2.80");
    expect(spawnSync("dig", ["+short", "-p", String(again.ports.dns), "@127.0.0.1", "lab.example", "TXT"], { encoding: "utf8" }).stdout.trim()).toBe('"backed-up"');
    // OCSP says the certificate is good
    const ocsp = await opensslAsync(["ocsp", "-issuer", join(work, "ops.crt"), "-cert", join(work, "web1.lab.example.crt"), "-url", `http://127.0.0.1:${again.ports.http}/pki/ocsp`, "-CAfile", join(work, "root", "root-ca.crt")]);
    expect(ocsp.out).toContain("Response verify OK");
    expect(ocsp.out).toContain("web1.lab.example.crt: good");
    // the NATS user's creds connect to the restored realm's nats-server, and messages flow in its account
    const alice = await connect({ servers: `nats://127.0.0.1:${again.ports.nats}`, authenticator: credsAuthenticator(readFileSync(aliceCreds)), reconnect: false });
    const sub = alice.subscribe("hello", { max: 1 });
    alice.publish("hello", "from before the backup");
    for await (const m of sub) expect(m.string()).toBe("from before the backup");
    await alice.close();
    // the API keys authenticate (ana's within her role), and writes go on from the restored chains
    const zones = await fetch(`http://127.0.0.1:${again.ports.http}/api/dns/zones`, { headers: { authorization: `Bearer ${anaKey}` } });
    expect(zones.status).toBe(200);
    expect(JSON.stringify(await zones.json())).toContain("lab.example.");
    const env2 = { ...again.env, REALM_TOKEN: anaKey };
    await ok(["host", "add", "web2.lab.example", "--ip", "192.0.2.81"], env2);
    expect(dig(again.ports.dns, "web2.lab.example")).toBe("192.0.2.81");
    const denied = await runRealm(["account", "create", "other"], env2);
    expect(denied.code).toBe(EXIT_CODES.FORBIDDEN);
    // every event verifies, and the auditor's checkpoints from before the backup match
    const audit = await runRealm(["audit", "verify"], { ...again.env, REALM_TOKEN: admin });
    expect(audit.code).toBe(0);
    expect(audit.stdout).toMatch(/^ok {6}dns: \d+ events in \d+ aggregates verified, checkpoint seq \d+ matched$/m);
    expect(audit.stdout).toMatch(/^ok {6}pki: \d+ events/m);
    expect(audit.stdout).toMatch(/^ok {6}identity: \d+ events/m);
    expect(audit.stdout).not.toContain("BROKEN");
    expect((await runRealm(["audit", "quarantine"], { ...again.env, REALM_TOKEN: admin })).stdout).toContain("nothing quarantined");
    await stop(again);
    process.stderr.write(`backup.test: backup ${backupMs} ms (${made.bytes} bytes), restore ${restoreMs} ms\n`);
  }, 240_000);
});
