/**
 * `realm restore <dir> --data-dir <new>`: checks a backup of `realm backup` whole (every file's size and
 * SHA-256, the manifest's CID if given, the sealed key files open with the passphrase, the manifest's MAC)
 * before anything is written; then lays out the data dir, starts the realm's own nats-server on it and
 * gives each stream its snapshot back (`$JS.API.STREAM.RESTORE`: the same sequences, timestamps, headers
 * and config), checks each restored stream's message count and last sequence against the manifest, and
 * stops the server. `realm up --data <new>` then serves the same realm.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { dirname, isAbsolute, join, normalize, resolve, sep } from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import { RealmError } from "../kernel/errors.js";
import { openBundle, type SealedBundle } from "../../identity/nats/keystore.js";
import { inboxOf } from "../../identity/nats/realm-identities.js";
import { operatorPart, type OperatorState } from "../../identity/nats/bootstrap.js";
import type { UserPermissions } from "../../identity/nats/domain/validation.js";
import { NatsSupervisor } from "../nats/supervisor.js";
import { acquireDataDirLock, type DataDirLock } from "./lock.js";
import {
  BACKUP_FORMAT, CHUNK_SIZE, SECRETS_FILE, SECRETS_FORMAT, connectMinted, dataPaths, manifestCid, manifestMacOk, secretsLabel, throttled,
  type Manifest, type SecretsPayload, type StreamState,
} from "./backup.js";

export const RESTORE_USER = "realm-restore";

/** The short-lived identity that restores the streams: restore requests and their chunks, stream info; nothing else. */
export function restorePermissions(user: string): UserPermissions {
  return {
    pub: { allow: ["$JS.API.INFO", "$JS.API.STREAM.INFO.*", "$JS.API.STREAM.RESTORE.*", "$JS.SNAPSHOT.RESTORE.>"], deny: [] },
    sub: { allow: [`${inboxOf(user)}.>`], deny: [] },
  };
}

const integrity = (message: string) => new RealmError("INTEGRITY", message);

/** A path of the manifest, inside `base` (no absolute path, no `..`), or INTEGRITY. */
function inside(base: string, rel: unknown, what: string): string {
  if (typeof rel !== "string" || rel === "" || isAbsolute(rel) || rel.includes("\\") || rel.split("/").some((p) => p === ".." || p === "." || p === "")) throw integrity(`manifest.json: ${what} ${JSON.stringify(rel)} is not a plain relative path`);
  const p = normalize(join(base, ...rel.split("/")));
  if (!p.startsWith(base + sep)) throw integrity(`manifest.json: ${what} ${JSON.stringify(rel)} leaves its directory`);
  return p;
}

/** SHA-256 and size of a file, read in pieces (stream snapshots can be large). */
function digestOf(file: string): { size: number; sha256: string } {
  const h = createHash("sha256");
  const fd = openSync(file, "r");
  const buf = Buffer.alloc(1 << 20);
  let size = 0;
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) {
      h.update(buf.subarray(0, n));
      size += n;
    }
  } finally {
    closeSync(fd);
  }
  return { size, sha256: h.digest("hex") };
}

export interface VerifiedBackup {
  dir: string;
  manifest: Manifest;
  cid: string;
  secrets: SecretsPayload;
}

/**
 * Everything `realm restore` checks before it writes: the manifest is one of ours (and has the CID given),
 * every file it lists is there with its size and SHA-256 (the first that is not is named), the sealed key
 * files open with the passphrase and hash as listed, and the manifest's MAC holds under the passphrase
 * (so a manifest rewritten to match altered files is refused too). Throws INTEGRITY (exit 11), or
 * UNAUTHORIZED for a wrong passphrase.
 */
export function verifyBackup(dirArg: string, passphrase: string, expectCid?: string): VerifiedBackup {
  const dir = resolve(dirArg);
  const mf = join(dir, "manifest.json");
  if (!existsSync(mf)) throw new RealmError("NOT_FOUND", `${dir} holds no manifest.json: not a backup of realm backup`);
  const bytes = readFileSync(mf);
  const cid = manifestCid(bytes);
  if (expectCid && expectCid !== cid) throw integrity(`manifest.json has CID ${cid}, not ${expectCid}: the backup is not the one expected`);
  const recorded = existsSync(join(dir, "manifest.cid")) ? readFileSync(join(dir, "manifest.cid"), "utf8").trim() : undefined;
  if (recorded !== undefined && recorded !== cid) throw integrity(`manifest.json was altered: its CID is ${cid}, manifest.cid says ${recorded}`);
  let m: Manifest;
  try {
    m = JSON.parse(bytes.toString("utf8")) as Manifest;
  } catch {
    throw integrity("manifest.json is not JSON: the backup is damaged");
  }
  if (m?.format !== BACKUP_FORMAT) throw integrity(`manifest.json is not a ${BACKUP_FORMAT} manifest (format ${JSON.stringify(m?.format)})`);
  if (!Array.isArray(m.files) || !Array.isArray(m.streams) || !Array.isArray(m.sealedFiles)) throw integrity("manifest.json lacks its file or stream lists");
  for (const f of m.files) {
    const p = inside(dir, f.path, "file");
    if (!existsSync(p)) throw integrity(`${f.path} is missing from the backup`);
    const d = digestOf(p);
    if (d.size !== f.size) throw integrity(`${f.path} has ${d.size} bytes, the manifest says ${f.size}: the backup was altered or damaged`);
    if (d.sha256 !== f.sha256) throw integrity(`${f.path} does not match its SHA-256 in the manifest: the backup was altered or damaged`);
    if (f.restoreTo !== undefined) inside(dir, f.restoreTo, "target");
  }
  for (const s of m.streams) {
    if (!/^[A-Za-z0-9_-]+$/.test(s.name)) throw integrity(`manifest.json: stream name ${JSON.stringify(s.name)}`);
    for (const p of [s.file, s.info]) if (!m.files.some((f) => f.path === p && f.kind === "stream")) throw integrity(`manifest.json: ${p} of stream ${s.name} is not among its files`);
  }
  if (!m.files.some((f) => f.path === SECRETS_FILE && f.kind === "secrets")) throw integrity(`manifest.json does not list ${SECRETS_FILE}`);
  // The sealed key files open only with the passphrase (AES-GCM: a changed byte does not open either).
  let bundle: SealedBundle;
  try {
    bundle = JSON.parse(readFileSync(join(dir, SECRETS_FILE), "utf8")) as SealedBundle;
  } catch {
    throw integrity(`${SECRETS_FILE} is not JSON: the backup is damaged`);
  }
  if (bundle?.publicKey !== secretsLabel(m.operator?.publicKey ?? "")) throw integrity(`${SECRETS_FILE} was sealed for another realm than the manifest names`);
  let secrets: SecretsPayload;
  try {
    secrets = JSON.parse(openBundle(bundle, passphrase)) as SecretsPayload;
  } catch (err) {
    if (err instanceof RealmError && err.code === "UNAUTHORIZED") throw new RealmError("UNAUTHORIZED", `${SECRETS_FILE} does not open with this passphrase: give the backup passphrase it was made with`);
    throw integrity(`${SECRETS_FILE} is damaged: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!manifestMacOk(m, passphrase)) throw integrity("manifest.json was altered: its MAC does not hold under the backup passphrase");
  if (secrets.format !== SECRETS_FORMAT) throw integrity(`${SECRETS_FILE} is not ${SECRETS_FORMAT}`);
  for (const want of m.sealedFiles) {
    const got = secrets.files.find((f) => f.restoreTo === want.restoreTo);
    inside(dir, want.restoreTo, "target");
    if (!got || Buffer.from(got.data, "base64").length !== want.size) throw integrity(`${SECRETS_FILE}: ${want.restoreTo} does not match the manifest`);
  }
  if (secrets.files.length !== m.sealedFiles.length) throw integrity(`${SECRETS_FILE} holds files the manifest does not list`);
  return { dir, manifest: m, cid, secrets };
}

/**
 * One stream back from its snapshot (nats-server 2.9 `$JS.API.STREAM.RESTORE`): the request with the
 * config and state the snapshot came with answers a subject to send the chunks to, each acknowledged; an
 * empty message ends it and is answered with the restored stream's info (or an error).
 */
async function restoreStream(nc: NatsConnection, name: string, info: { config: unknown; state: StreamState }, file: string, progress: (line: string) => void): Promise<StreamState> {
  const r = (await nc.request(`$JS.API.STREAM.RESTORE.${name}`, JSON.stringify(info), { timeout: 60_000 })).json<{ deliver_subject?: string; error?: { description: string } }>();
  if (r.error || !r.deliver_subject) throw new RealmError("UNAVAILABLE", `restore of ${name} refused by nats-server: ${r.error?.description ?? "no deliver subject"}`);
  const fd = openSync(file, "r");
  const buf = Buffer.alloc(CHUNK_SIZE);
  const tick = throttled(progress);
  let sent = 0;
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) {
      const ack = await nc.request(r.deliver_subject, buf.subarray(0, n), { timeout: 60_000 });
      if (ack.data.length) throw new RealmError("UNAVAILABLE", `restore of ${name}: nats-server said ${ack.string().slice(0, 200)}`);
      sent += n;
      tick(() => `  ${name}: ${(sent / 1048576).toFixed(1)} MiB sent`);
    }
  } finally {
    closeSync(fd);
  }
  const done = (await nc.request(r.deliver_subject, new Uint8Array(0), { timeout: 10 * 60_000 })).json<{ error?: { description: string }; state?: StreamState }>();
  if (done.error || !done.state) throw new RealmError("UNAVAILABLE", `restore of ${name} failed in nats-server: ${done.error?.description ?? "no stream info"}`);
  return done.state;
}

export interface RestoreOptions {
  dir: string;
  dataDir: string;
  passphrase: string;
  force?: boolean;
  expectCid?: string | undefined;
  progress: (line: string) => void;
}

export interface RestoreResult {
  dataDir: string;
  cid: string;
  streams: { name: string; messages: number; lastSeq: number }[];
  files: number;
}

export async function runRestore(o: RestoreOptions): Promise<RestoreResult> {
  o.progress(`verifying ${resolve(o.dir)} (every file's SHA-256, the sealed key files, the manifest's MAC) ...`);
  const b = verifyBackup(o.dir, o.passphrase, o.expectCid);
  const paths = dataPaths(o.dataDir);
  if (resolve(b.dir) === paths.data || paths.data.startsWith(b.dir + sep)) throw new RealmError("VALIDATION", `the data dir ${paths.data} cannot be inside the backup ${b.dir}`);
  const existed = existsSync(paths.data);
  if (existed && !statSync(paths.data).isDirectory()) throw new RealmError("ALREADY_EXISTS", `${paths.data} exists and is not a directory`);
  const present = existed ? readdirSync(paths.data) : [];
  if (present.length && !o.force) throw new RealmError("ALREADY_EXISTS", `data dir ${paths.data} is not empty (${present.length} entries): restore into a new one, or give --force to replace what it holds`);
  o.progress(`backup ${b.cid} verified: ${b.manifest.files.length} files, ${b.manifest.streams.length} streams, made ${b.manifest.createdAt} by cim-realm ${b.manifest.realmVersion}`);

  // The lock keeps a `realm up` off the data dir while it is laid out (and refuses a data dir in use).
  mkdirSync(paths.data, { recursive: true, mode: 0o700 });
  let lock: DataDirLock | undefined;
  let nats: NatsSupervisor | undefined;
  let nc: NatsConnection | undefined;
  let wrote = false;
  try {
    lock = acquireDataDirLock(paths.data);
    if (present.length) {
      o.progress(`--force: removing what ${paths.data} held`);
      for (const e of readdirSync(paths.data)) if (e !== "realm.lock") rmSync(join(paths.data, e), { recursive: true, force: true });
    }
    wrote = true;
    const put = (rel: string, data: Buffer, mode: number) => {
      const dest = inside(paths.data, rel, "target");
      mkdirSync(dirname(dest), { recursive: true, mode: 0o700 });
      writeFileSync(dest, data, { mode: mode & 0o777, flag: "wx" });
    };
    let files = 0;
    for (const f of b.manifest.files) {
      if (f.restoreTo === undefined) continue;
      put(f.restoreTo, readFileSync(join(b.dir, ...f.path.split("/"))), f.mode ?? 0o600);
      files++;
    }
    for (const f of b.secrets.files) {
      put(f.restoreTo, Buffer.from(f.data, "base64"), f.mode);
      files++;
    }
    b.secrets.files.length = 0;

    const state = JSON.parse(readFileSync(join(paths.operator, "operator.json"), "utf8")) as OperatorState;
    if (state.operatorPublicKey !== b.manifest.operator.publicKey) throw integrity("operator.json names another operator than the manifest");
    nats = new NatsSupervisor({ dataDir: paths.nats, port: 0, operator: operatorPart(state, join(paths.operator, "jwt")), maxRestarts: 0, warn: o.progress });
    o.progress(`starting the realm's nats-server on the new data dir (JetStream in ${nats.storeDir})`);
    await nats.start();
    nc = await connectMinted(nats.url, paths.operator, state, RESTORE_USER, restorePermissions(RESTORE_USER), 6 * 3600);
    const streams: RestoreResult["streams"] = [];
    for (const s of b.manifest.streams) {
      const started = Date.now();
      o.progress(`restoring ${s.name} (${s.messages} messages, last seq ${s.lastSeq}) ...`);
      const info = JSON.parse(readFileSync(join(b.dir, ...s.info.split("/")), "utf8")) as { config: unknown; state: StreamState };
      const got = await restoreStream(nc, s.name, info, join(b.dir, ...s.file.split("/")), o.progress);
      if (got.messages !== s.messages || got.last_seq !== s.lastSeq || (s.messages > 0 && got.first_seq !== s.firstSeq)) {
        throw integrity(`${s.name} restored with ${got.messages} messages (seq ${got.first_seq}-${got.last_seq}), the backup holds ${s.messages} (seq ${s.firstSeq}-${s.lastSeq})`);
      }
      streams.push({ name: s.name, messages: got.messages, lastSeq: got.last_seq });
      o.progress(`  ${s.name}: ${got.messages} messages, last seq ${got.last_seq} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
    await nc.close();
    nc = undefined;
    await nats.stop();
    nats = undefined;
    return { dataDir: paths.data, cid: b.cid, streams, files };
  } catch (err) {
    await nc?.close().catch(() => undefined);
    await nats?.stop().catch(() => undefined);
    nats = undefined;
    // A restore that failed half-way leaves no half realm behind: what it laid out goes again.
    if (wrote) {
      for (const e of readdirSync(paths.data)) if (e !== "realm.lock") rmSync(join(paths.data, e), { recursive: true, force: true });
      o.progress(`restore failed: removed what it had written to ${paths.data}`);
    }
    throw err;
  } finally {
    await nats?.stop();
    lock?.release();
  }
}
