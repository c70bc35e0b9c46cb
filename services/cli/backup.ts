/**
 * `realm backup <dir>`: a backup of a realm that `realm restore` can lay out into a new data dir.
 *
 * What it holds (README "Backup and restore"):
 * - `streams/<STREAM>.tar.s2` and `streams/<STREAM>.json`: nats-server's own snapshot of each stream that is
 *   state (`$JS.API.STREAM.SNAPSHOT`, the stream's store files with its config, sequences, timestamps and
 *   headers exactly as stored), and the config and state the server reported with it.
 * - `files/...`: the data dir's public and already sealed files, byte for byte (the trust document, the
 *   auditor's checkpoints, operator.json, the account JWTs of the resolver, the sealed operator bundle).
 * - `secrets.sealed.json`: the data dir's key files that are plain (mode 0600) on disk and needed to run the
 *   realm (seal key, event-signing keys, NATS account keys, the PKI's intermediate keys), sealed together
 *   with the backup passphrase (scrypt + AES-256-GCM, as the operator bundle is). Nothing secret is in clear.
 * - `manifest.json`: every file with its size and SHA-256, every stream with its message count and
 *   sequences, what was left out and why, the realm's version; authenticated by an HMAC-SHA256 under a key
 *   derived from the backup passphrase. `manifest.cid` holds its CID (CIDv1, json codec, sha2-256).
 *
 * Why stream snapshots and not a copy of every message: a snapshot keeps every sequence number (the
 * auditor's checkpoints, its stream digest over `seq | length | data`, the projection snapshots and the
 * append's `Nats-Expected-Last-Subject-Sequence` all name sequences; KV buckets have gaps where keys were
 * overwritten), the stored timestamps and the stream's config (`deny_delete`/`deny_purge`), which a
 * republish cannot; and nats-server checks every message's checksum while it takes it (`jsck`).
 */
import { createHash, createHmac, randomBytes, scryptSync, timingSafeEqual } from "node:crypto";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { RealmError } from "../kernel/errors.js";
import { cidOfBytes } from "../../dns/cid.js";
import { operatorPart, type OperatorState } from "../../identity/nats/bootstrap.js";
import { sealBundle } from "../../identity/nats/keystore.js";
import { inboxOf, mintCreds } from "../../identity/nats/realm-identities.js";
import type { UserPermissions } from "../../identity/nats/domain/validation.js";
import { NatsSupervisor } from "../nats/supervisor.js";
import { acquireDataDirLock, type DataDirLock } from "./lock.js";

export const BACKUP_FORMAT = "cim-realm-backup/1";
export const SECRETS_FORMAT = "cim-realm-backup-secrets/1";
export const SECRETS_FILE = "secrets.sealed.json";
/** Snapshot and restore chunks: well under nats-server's default max_payload (1 MiB). */
export const CHUNK_SIZE = 256 * 1024;
/** multicodec `json`: the manifest's CID is that of its bytes as JSON. */
const JSON_CODEC = 0x0200;
const SCRYPT = { N: 1 << 15, r: 8, p: 1 } as const;
const MIN_PASSPHRASE = 12;

export type FileKind = "public" | "sealed" | "stream" | "secrets";

export interface ManifestFile {
  /** Path inside the backup (`/`-separated). */
  path: string;
  size: number;
  sha256: string;
  kind: FileKind;
  /** For files of the data dir: where `realm restore` puts it, relative to the data dir, and its mode. */
  restoreTo?: string;
  mode?: number;
}

export interface ManifestStream {
  name: string;
  kind: "events" | "kv" | "other";
  /** The snapshot (`streams/<name>.tar.s2`) and the config and state nats-server gave with it. */
  file: string;
  info: string;
  messages: number;
  firstSeq: number;
  lastSeq: number;
  bytes: number;
}

export interface Manifest {
  format: typeof BACKUP_FORMAT;
  realmVersion: string;
  createdAt: string;
  /** hot: the realm ran (each stream is consistent; they were taken one after another, checkpoints first). cold: nothing wrote meanwhile. */
  mode: "hot" | "cold";
  natsServer: { version: string };
  operator: { name: string; publicKey: string; realmAccount: string };
  streams: ManifestStream[];
  skippedStreams: { name: string; why: string }[];
  files: ManifestFile[];
  skippedFiles: { path: string; why: string }[];
  /** The secret files inside secrets.sealed.json: where each goes and its size, never its content or a digest of it (AES-GCM authenticates them). */
  sealedFiles: { restoreTo: string; size: number }[];
  auth: { alg: "hmac-sha256"; kdf: { name: "scrypt"; N: number; r: number; p: number; salt: string }; hmac?: string };
}

/** What secrets.sealed.json holds once opened (in memory only). */
export interface SecretsPayload {
  format: typeof SECRETS_FORMAT;
  files: { restoreTo: string; mode: number; data: string }[];
}

/**
 * The data dir's files, what each is and whether it goes into the backup. Checked in order; a file no rule
 * names is left out with a warning (it may hold anything).
 */
const FILE_RULES: { re: RegExp; kind: "public" | "sealed" | "secret" | "skip"; why?: string; dir?: string }[] = [
  { re: /^realm\.lock$/, kind: "skip", why: "the running realm's lock" },
  { re: /^nats\//, kind: "skip", dir: "nats/", why: "nats-server's config, log and ports are rewritten at start; its JetStream store is in the stream snapshots" },
  { re: /\.tmp$/, kind: "skip", why: "a file being written" },
  { re: /^operator\/operator-passphrase$/, kind: "skip", why: "the generated passphrase of the operator bundle: it must live offline, never beside the bundle" },
  { re: /^trust\/root-passphrase$/, kind: "skip", why: "the generated passphrase of the trust root bundle: it must live offline, never beside the bundle" },
  { re: /^operator\/admin\.creds$/, kind: "skip", why: "the local operator's creds: realm up issues them anew from the account keys" },
  { re: /^operator\/identities\//, kind: "skip", dir: "operator/identities/", why: "the realm identities' creds: realm up issues them anew from the account keys" },
  { re: /^trust\/trust\.json$/, kind: "public" },
  { re: /^trust\/checkpoints\.json$/, kind: "public" },
  { re: /^operator\/operator\.json$/, kind: "public" },
  { re: /^operator\/jwt\/[A-Z0-9]+\.jwt$/, kind: "public" },
  { re: /^operator\/operator-identity\.bundle\.json$/, kind: "sealed" },
  { re: /^trust\/root\.bundle\.json$/, kind: "sealed" },
  { re: /^operator\/seal\.key$/, kind: "secret" },
  { re: /^operator\/keys\/[A-Z0-9]+\.nk$/, kind: "secret" },
  { re: /^trust\/keys\/[a-z0-9-]+\.pem$/, kind: "secret" },
  { re: /^pki\/keys\/[0-9a-f]{64}\.key\.pem$/, kind: "secret" },
];

/** Streams that are caches or in transit: rebuilt or recreated by `realm up`, not state. */
function skippedStreamReason(name: string): string | undefined {
  if (/^KV_realm_snapshots_/.test(name)) return "projection snapshots: a cache, each projection rebuilds from its stream (the auditor's checkpoints spare the signature checks); pass --with-snapshots to keep them";
  if (/^KV_realm_[a-z]+_outcome_secrets$/.test(name)) return "the outcome journal's secret fields (generated keys and creds, sealed) kept 24 h for replays: a backup should not carry them; a replay after restore names them withheld";
  if (/^OBJ_realm_dns_uploads$/.test(name)) return "zone files in transit (1 h max age, purged once imported): an imported zone is in REALM_DNS";
  return undefined;
}

/** The order streams are taken in: the auditor's stream first, so no checkpoint names a sequence past a stream's snapshot; events before the KV buckets they explain. */
function streamRank(name: string): number {
  if (name === "REALM_REALM") return 0;
  if (name.startsWith("REALM_")) return 1;
  if (name.startsWith("KV_")) return 2;
  return 3;
}

/**
 * The parts of the data dir layout (services/cli/runtime.ts `realmPaths`, README "Files") a backup reads and
 * a restore writes; not imported from runtime.ts, which loads the whole realm.
 */
export const dataPaths = (dataDir: string) => {
  const data = resolve(dataDir);
  return { data, operator: join(data, "operator"), trust: join(data, "trust"), nats: join(data, "nats") };
};

export const streamKind = (name: string): ManifestStream["kind"] => (name.startsWith("REALM_") ? "events" : name.startsWith("KV_") ? "kv" : "other");

/** The version of cim-realm (package.json), from source or from dist/. */
export function realmVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const f = join(dir, "package.json");
    if (existsSync(f)) {
      const p = JSON.parse(readFileSync(f, "utf8")) as { name?: string; version?: string };
      if (p.name === "cim-realm" && p.version) return p.version;
    }
    dir = dirname(dir);
  }
  return "unknown";
}

export const sha256Hex = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

/** The backup passphrase: the file's first line, else $REALM_BACKUP_PASSPHRASE; at least 12 characters. */
export function backupPassphrase(file: string | undefined): string {
  let p: string | undefined;
  if (file) {
    try {
      p = readFileSync(file, "utf8").split(/\r?\n/)[0];
    } catch (err) {
      throw new RealmError("VALIDATION", `cannot read the backup passphrase file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  } else p = process.env.REALM_BACKUP_PASSPHRASE;
  if (!p) throw new RealmError("VALIDATION", "give the backup passphrase: --passphrase-file <file> or REALM_BACKUP_PASSPHRASE (the key files in the backup are sealed with it)");
  if (p.length < MIN_PASSPHRASE) throw new RealmError("VALIDATION", `the backup passphrase must have at least ${MIN_PASSPHRASE} characters`);
  return p;
}

/** The manifest's MAC key: scrypt of the passphrase with the manifest's salt. */
export const macKey = (passphrase: string, kdf: Manifest["auth"]["kdf"]): Buffer =>
  scryptSync(passphrase, Buffer.from(kdf.salt, "base64"), 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 64 * 1024 * 1024 });

/** The bytes the MAC covers: the manifest as written, without `auth.hmac`. */
export const macInput = (m: Manifest): string => JSON.stringify({ ...m, auth: { alg: m.auth.alg, kdf: m.auth.kdf } });

export function manifestMacOk(m: Manifest, passphrase: string): boolean {
  if (typeof m.auth?.hmac !== "string") return false;
  const want = createHmac("sha256", macKey(passphrase, m.auth.kdf)).update(macInput(m)).digest();
  const got = Buffer.from(m.auth.hmac, "base64");
  return got.length === want.length && timingSafeEqual(got, want);
}

/** The manifest's CID: CIDv1, codec json, sha2-256 of manifest.json's bytes. */
export const manifestCid = (bytes: Uint8Array): string => cidOfBytes(bytes, JSON_CODEC);

/** The label the secrets bundle is sealed under (its AES-GCM associated data). */
export const secretsLabel = (operatorPublicKey: string) => `cim-realm-backup:${operatorPublicKey}`;

/** The short-lived identity that takes the snapshots: stream names and info, snapshots and their acks; nothing else. */
export function backupPermissions(user: string): UserPermissions {
  return {
    pub: { allow: ["$JS.API.INFO", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.INFO.*", "$JS.API.STREAM.SNAPSHOT.*", "$JS.SNAPSHOT.ACK.>"], deny: [] },
    sub: { allow: [`${inboxOf(user)}.>`], deny: [] },
  };
}

export const BACKUP_USER = "realm-backup";

/** Connects with freshly minted creds (in memory only) of one of the realm's short-lived identities. */
export async function connectMinted(url: string, operatorDir: string, state: OperatorState, name: string, permissions: UserPermissions, seconds: number): Promise<NatsConnection> {
  const c = await mintCreds(operatorDir, state, { name, account: "realm", permissions, kind: "service" }, seconds);
  try {
    return await connect({ servers: url, name, noAsyncTraces: true, inboxPrefix: inboxOf(name), authenticator: credsAuthenticator(new TextEncoder().encode(c.creds)), maxReconnectAttempts: 5 });
  } catch (err) {
    throw new RealmError("UNAVAILABLE", `cannot reach the realm's nats-server at ${url}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

interface JsApiError {
  error?: { code: number; err_code?: number; description: string };
}

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

/** A progress line at most every 2 s while a stream's chunks flow. */
export function throttled(progress: (line: string) => void): (line: () => string) => void {
  let last = Date.now();
  return (line) => {
    const now = Date.now();
    if (now - last < 2_000) return;
    last = now;
    progress(line());
  };
}

/**
 * One stream's snapshot into `file` (`$JS.API.STREAM.SNAPSHOT`, nats-server 2.9): the server sends chunks to
 * our inbox, each with a reply subject we acknowledge (its flow control), and ends with an empty message
 * whose status is 204 (done) or 408 (the server gave up). Consumers are left out: the realm's readers
 * make their own (ordered, ephemeral) at start.
 */
export async function snapshotStream(nc: NatsConnection, name: string, file: string, progress: (line: string) => void): Promise<{ config: unknown; state: StreamState; size: number; sha256: string }> {
  const deliver = `${inboxOf(BACKUP_USER)}.snapshot.${randomBytes(8).toString("hex")}`;
  const sub = nc.subscribe(deliver);
  const fd = openSync(file, "wx", 0o600);
  const hash = createHash("sha256");
  let size = 0;
  let chunks = 0;
  const tick = throttled(progress);
  let idle: NodeJS.Timeout | undefined;
  let timedOut = false;
  const arm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      timedOut = true;
      sub.unsubscribe();
    }, 60_000);
  };
  try {
    const reply = await nc.request(`$JS.API.STREAM.SNAPSHOT.${name}`, JSON.stringify({ deliver_subject: deliver, no_consumers: true, chunk_size: CHUNK_SIZE, jsck: true }), { timeout: 60_000 });
    const r = reply.json<JsApiError & { config: unknown; state: StreamState }>();
    if (r.error) throw new RealmError(r.error.code === 404 ? "NOT_FOUND" : "UNAVAILABLE", `snapshot of ${name} refused by nats-server: ${r.error.description}`);
    arm();
    let ended = false;
    for await (const m of sub) {
      arm();
      if (m.data.length === 0) {
        const code = m.headers?.code ?? 0;
        if (code !== 0 && code !== 204) throw new RealmError("UNAVAILABLE", `snapshot of ${name} stopped by nats-server: ${code} ${m.headers?.description ?? ""}`.trim());
        ended = true;
        break;
      }
      writeSync(fd, m.data);
      hash.update(m.data);
      size += m.data.length;
      chunks++;
      if (m.reply) m.respond();
      tick(() => `  ${name}: ${mib(size)} (${chunks} chunks)`);
    }
    if (!ended) throw new RealmError("UNAVAILABLE", `snapshot of ${name}: ${timedOut ? "no chunk from nats-server for 60 s" : "the subscription ended early"}`);
    return { config: r.config, state: r.state, size, sha256: hash.digest("hex") };
  } finally {
    clearTimeout(idle);
    sub.unsubscribe();
    closeSync(fd);
  }
}

export interface StreamState {
  messages: number;
  bytes: number;
  first_seq: number;
  last_seq: number;
  [k: string]: unknown;
}

/** Every file under `dir`, `/`-separated and relative to it; a directory in `prune` (relative) stands for all it holds. */
function walk(dir: string, base = dir, prune: string[] = []): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    const rel = relative(base, p).split(sep).join("/");
    if (e.isDirectory() && prune.includes(rel)) out.push(`${rel}/`);
    else if (e.isDirectory()) out.push(...walk(p, base, prune));
    else if (e.isFile()) out.push(relative(base, p).split(sep).join("/"));
  }
  return out.sort();
}

/** The running realm's nats-server: `--nats`, else the ports file its supervisor keeps in the data dir. */
function runningNatsUrl(natsDir: string, explicit: string | undefined): string {
  if (explicit) return explicit;
  const ports = join(natsDir, "ports");
  const f = existsSync(ports) ? readdirSync(ports).find((n) => n.endsWith(".ports")) : undefined;
  if (!f) throw new RealmError("UNAVAILABLE", `the realm runs (its data dir is locked) but ${ports} names no nats-server: give --nats <url>`);
  const urls = (JSON.parse(readFileSync(join(ports, f), "utf8")) as { nats?: string[] }).nats ?? [];
  if (!urls[0]) throw new RealmError("UNAVAILABLE", `${join(ports, f)} names no client URL: give --nats <url>`);
  return urls[0];
}

export interface BackupOptions {
  dir: string;
  dataDir: string;
  passphrase: string;
  natsUrl?: string | undefined;
  withSnapshots?: boolean;
  progress: (line: string) => void;
}

export interface BackupResult {
  dir: string;
  cid: string;
  mode: "hot" | "cold";
  streams: { name: string; messages: number; lastSeq: number; bytes: number }[];
  files: number;
  bytes: number;
  skippedStreams: string[];
  skippedFiles: string[];
}

/** An empty (or new) directory made private: the backup's layout goes in, nothing else is touched. */
function freshDir(dir: string): void {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new RealmError("ALREADY_EXISTS", `${dir} exists and is not a directory`);
    if (readdirSync(dir).length) throw new RealmError("ALREADY_EXISTS", `${dir} is not empty: back up into a new or empty directory`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

export async function runBackup(o: BackupOptions): Promise<BackupResult> {
  const paths = dataPaths(o.dataDir);
  const stateFile = join(paths.operator, "operator.json");
  if (!existsSync(stateFile)) throw new RealmError("NOT_FOUND", `no ${stateFile}: ${paths.data} is not the data dir of a realm with a local nats-server (a realm on an external NATS is backed up with that NATS's own tools)`);
  const state = JSON.parse(readFileSync(stateFile, "utf8")) as OperatorState;
  const dir = resolve(o.dir);
  if (dir === paths.data || dir.startsWith(paths.data + sep)) throw new RealmError("VALIDATION", `the backup cannot go inside the data dir ${paths.data}`);
  freshDir(dir);
  try {
    return await takeBackup(o, paths, state, dir);
  } catch (err) {
    // No half backup is left behind (the directory was empty or new): restore would refuse it anyway.
    for (const e of readdirSync(dir)) rmSync(join(dir, e), { recursive: true, force: true });
    throw err;
  }
}

async function takeBackup(o: BackupOptions, paths: ReturnType<typeof dataPaths>, state: OperatorState, dir: string): Promise<BackupResult> {
  mkdirSync(join(dir, "files"), { mode: 0o700 });
  mkdirSync(join(dir, "streams"), { mode: 0o700 });

  // Hot when a realm holds the data dir (we read its nats-server); cold otherwise: we hold the lock and run
  // the realm's nats-server ourselves, so nothing writes while the backup is taken.
  let lock: DataDirLock | undefined;
  let nats: NatsSupervisor | undefined;
  let mode: "hot" | "cold";
  let url: string;
  try {
    lock = acquireDataDirLock(paths.data);
    mode = "cold";
  } catch (err) {
    if (!(err instanceof RealmError) || err.code !== "CONFLICT") throw err;
    mode = "hot";
  }
  let nc: NatsConnection | undefined;
  try {
    if (lock) {
      nats = new NatsSupervisor({ dataDir: paths.nats, port: 0, operator: operatorPart(state, join(paths.operator, "jwt")), maxRestarts: 0, warn: o.progress });
      o.progress(`the realm is not running: starting its nats-server (JetStream in ${nats.storeDir}) for the backup`);
      await nats.start();
      url = nats.url;
    } else url = runningNatsUrl(paths.nats, o.natsUrl);
    o.progress(`${mode} backup of ${paths.data} (nats ${url}) into ${dir}`);

    // The data dir's files first: the auditor's checkpoint record is then no newer than REALM_REALM.
    const files: ManifestFile[] = [];
    const skippedFiles: Manifest["skippedFiles"] = [];
    const secrets: SecretsPayload["files"] = [];
    const sealedFiles: Manifest["sealedFiles"] = [];
    for (const rel of walk(paths.data, paths.data, ["nats"])) {
      const rule = FILE_RULES.find((r) => r.re.test(rel));
      if (!rule || rule.kind === "skip") {
        const why = rule?.why ?? "not a file cim-realm knows: not backed up";
        // A skipped directory is named once (nats/, operator/identities/), a file by its path.
        const path = rule?.dir ?? rel;
        if (!skippedFiles.some((f) => f.path === path)) skippedFiles.push({ path, why });
        if (!rule) o.progress(`warning: ${rel} in the data dir is not a file cim-realm knows: left out of the backup`);
        continue;
      }
      const src = join(paths.data, ...rel.split("/"));
      const bytes = readFileSync(src);
      const mode = statSync(src).mode & 0o777;
      if (rule.kind === "secret") {
        secrets.push({ restoreTo: rel, mode, data: bytes.toString("base64") });
        sealedFiles.push({ restoreTo: rel, size: bytes.length });
        continue;
      }
      const path = `files/${rel}`;
      const dest = join(dir, ...path.split("/"));
      mkdirSync(dirname(dest), { recursive: true, mode: 0o700 });
      writeFileSync(dest, bytes, { mode: 0o600, flag: "wx" });
      files.push({ path, size: bytes.length, sha256: sha256Hex(bytes), kind: rule.kind, restoreTo: rel, mode });
    }
    if (!sealedFiles.some((f) => f.restoreTo === "operator/seal.key")) o.progress("warning: no operator/seal.key in the data dir (REALM_SEAL_KEY?): the backup does not hold the seal key; the restored realm needs the same one to open what it keeps in KV");
    const sealed = Buffer.from(JSON.stringify(sealBundle(secretsLabel(state.operatorPublicKey), JSON.stringify({ format: SECRETS_FORMAT, files: secrets } satisfies SecretsPayload), o.passphrase), null, 2) + "\n");
    secrets.length = 0;
    writeFileSync(join(dir, SECRETS_FILE), sealed, { mode: 0o600, flag: "wx" });
    files.push({ path: SECRETS_FILE, size: sealed.length, sha256: sha256Hex(sealed), kind: "secrets" });

    nc = await connectMinted(url, paths.operator, state, BACKUP_USER, backupPermissions(BACKUP_USER), 6 * 3600);
    const version = nc.info?.version ?? "unknown";
    const names: string[] = [];
    // $JS.API.STREAM.NAMES pages by 1024; the realm has a few dozen.
    for (let offset = 0; ; ) {
      const r = (await nc.request("$JS.API.STREAM.NAMES", JSON.stringify({ offset }), { timeout: 30_000 })).json<JsApiError & { streams: string[] | null; total: number; limit: number }>();
      if (r.error) throw new RealmError("UNAVAILABLE", `listing the realm's streams: ${r.error.description}`);
      names.push(...(r.streams ?? []));
      offset += (r.streams ?? []).length;
      if (!r.streams?.length || offset >= r.total) break;
    }
    names.sort((a, b) => streamRank(a) - streamRank(b) || a.localeCompare(b));
    const streams: ManifestStream[] = [];
    const skippedStreams: Manifest["skippedStreams"] = [];
    for (const name of names) {
      const why = o.withSnapshots && name.startsWith("KV_realm_snapshots_") ? undefined : skippedStreamReason(name);
      if (why) {
        skippedStreams.push({ name, why });
        continue;
      }
      const file = `streams/${name}.tar.s2`;
      const info = `streams/${name}.json`;
      const started = Date.now();
      o.progress(`snapshot of ${name} ...`);
      const s = await snapshotStream(nc, name, join(dir, ...file.split("/")), o.progress);
      const infoBytes = Buffer.from(JSON.stringify({ config: s.config, state: s.state }, null, 2) + "\n");
      writeFileSync(join(dir, ...info.split("/")), infoBytes, { mode: 0o600, flag: "wx" });
      files.push({ path: file, size: s.size, sha256: s.sha256, kind: "stream" }, { path: info, size: infoBytes.length, sha256: sha256Hex(infoBytes), kind: "stream" });
      streams.push({ name, kind: streamKind(name), file, info, messages: s.state.messages, firstSeq: s.state.first_seq, lastSeq: s.state.last_seq, bytes: s.state.bytes });
      o.progress(`  ${name}: ${s.state.messages} messages, last seq ${s.state.last_seq}, ${mib(s.size)} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
    for (const s of skippedStreams) o.progress(`left out ${s.name}: ${s.why.split(":")[0]}`);

    const salt = randomBytes(16).toString("base64");
    const unsigned: Manifest = {
      format: BACKUP_FORMAT,
      realmVersion: realmVersion(),
      createdAt: new Date().toISOString(),
      mode,
      natsServer: { version },
      operator: { name: state.operatorName, publicKey: state.operatorPublicKey, realmAccount: state.realm.publicKey },
      streams,
      skippedStreams,
      files,
      skippedFiles,
      sealedFiles,
      auth: { alg: "hmac-sha256", kdf: { name: "scrypt", ...SCRYPT, salt } },
    };
    const hmac = createHmac("sha256", macKey(o.passphrase, unsigned.auth.kdf)).update(macInput(unsigned)).digest("base64");
    const manifest: Manifest = { ...unsigned, auth: { ...unsigned.auth, hmac } };
    const bytes = Buffer.from(JSON.stringify(manifest, null, 2) + "\n");
    const cid = manifestCid(bytes);
    writeFileSync(join(dir, "manifest.json"), bytes, { mode: 0o600, flag: "wx" });
    writeFileSync(join(dir, "manifest.cid"), cid + "\n", { mode: 0o600, flag: "wx" });
    return {
      dir,
      cid,
      mode,
      streams: streams.map((s) => ({ name: s.name, messages: s.messages, lastSeq: s.lastSeq, bytes: s.bytes })),
      files: files.length + 2,
      bytes: files.reduce((n, f) => n + f.size, 0) + bytes.length,
      skippedStreams: skippedStreams.map((s) => s.name),
      skippedFiles: skippedFiles.map((s) => s.path),
    };
  } finally {
    await nc?.close().catch(() => undefined);
    await nats?.stop();
    lock?.release();
  }
}

