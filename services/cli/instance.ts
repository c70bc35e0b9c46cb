import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, normalize, relative, sep } from "node:path";
import { RealmError } from "../kernel/errors.js";
import { trustExists } from "../kernel/trust-files.js";
import { openBundle, sealBundle, type SealedBundle } from "../../identity/nats/keystore.js";
import type { OperatorState } from "../../identity/nats/bootstrap.js";
import { holdsOperator, realmPaths } from "./operator-setup.js";

/**
 * `realm instance export` / `join`: what a second instance of a realm needs to be the same realm: the
 * operator (its state, account and signing keys, the sealed identity bundle), the trust document with the
 * writers' event keys, and the seal key, as one file sealed with a passphrase (keystore.ts `sealBundle`:
 * scrypt + AES-256-GCM). Left out: the realm identities' creds (each instance issues its own), the local
 * nats-server's resolver dir, a generated operator passphrase (it belongs offline), the auditor's
 * checkpoint record (each instance keeps its own).
 */
export const INSTANCE_FORMAT = "cim-realm-instance/1";

interface InstanceFile {
  path: string;
  mode: number;
  data: string;
}

interface InstanceBundle {
  format: typeof INSTANCE_FORMAT;
  sealed: SealedBundle;
}

const LEFT_OUT = new Set(["operator/identities", "operator/admin.creds", "operator/jwt", "operator/operator-passphrase", "trust/checkpoints.json", "trust/root-passphrase"]);
const MIN_PASSPHRASE = 12;

export function instancePassphrase(env: NodeJS.ProcessEnv = process.env): string {
  const p = env.REALM_BUNDLE_PASSPHRASE;
  if (!p) throw new RealmError("VALIDATION", "set REALM_BUNDLE_PASSPHRASE to the instance bundle's passphrase");
  if (p.length < MIN_PASSPHRASE) throw new RealmError("VALIDATION", `REALM_BUNDLE_PASSPHRASE must be at least ${MIN_PASSPHRASE} characters`);
  return p;
}

function collect(root: string, sub: string, out: InstanceFile[]): void {
  const dir = join(root, sub);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const rel = `${sub}/${e.name}`;
    if (LEFT_OUT.has(rel)) continue;
    if (e.isDirectory()) collect(root, rel, out);
    else if (e.isFile()) out.push({ path: rel, mode: statSync(join(root, rel)).mode & 0o777, data: readFileSync(join(root, rel)).toString("base64") });
  }
}

/** Seals the data dir's operator, trust and seal key into `out` (0600; refused when it exists). */
export function exportInstance(dataDir: string, out: string, passphrase: string): { files: number; operator?: string } {
  const paths = realmPaths(dataDir);
  if (!trustExists(paths.trust)) throw new RealmError("NOT_FOUND", `${paths.data} holds no realm trust (${paths.trust}): start the realm there first`);
  if (!existsSync(paths.sealKey)) throw new RealmError("NOT_FOUND", `${paths.data} holds no seal key (${paths.sealKey}): start the realm there first`);
  if (existsSync(out)) throw new RealmError("ALREADY_EXISTS", `${out} exists: give a new file`);
  const files: InstanceFile[] = [];
  collect(paths.data, "operator", files);
  collect(paths.data, "trust", files);
  const operator = holdsOperator(paths) ? (JSON.parse(readFileSync(join(paths.operator, "operator.json"), "utf8")) as OperatorState).operatorPublicKey : undefined;
  const sealed = sealBundle(operator ?? INSTANCE_FORMAT, JSON.stringify(files), passphrase);
  writeFileSync(out, JSON.stringify({ format: INSTANCE_FORMAT, sealed } satisfies InstanceBundle, null, 2) + "\n", { mode: 0o600, flag: "wx" });
  return { files: files.length, ...(operator ? { operator } : {}) };
}

/** Writes a bundle's files into a new data dir (files 0600, dirs 0700); refuses a non-empty one. */
export function joinInstance(bundleFile: string, dataDir: string, passphrase: string): { files: number; operator?: string } {
  const paths = realmPaths(dataDir);
  if (existsSync(paths.data) && readdirSync(paths.data).length > 0) throw new RealmError("VALIDATION", `--data ${paths.data} is not empty: join into a new data dir`);
  let bundle: InstanceBundle;
  try {
    bundle = JSON.parse(readFileSync(bundleFile, "utf8")) as InstanceBundle;
  } catch (err) {
    throw new RealmError("MALFORMED", `${bundleFile} is not an instance bundle: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (bundle?.format !== INSTANCE_FORMAT || !bundle.sealed) throw new RealmError("MALFORMED", `${bundleFile} is not an instance bundle (format ${INSTANCE_FORMAT})`);
  const files = JSON.parse(openBundle(bundle.sealed, passphrase)) as InstanceFile[];
  for (const f of files) {
    const p = normalize(f.path);
    if (p.startsWith("..") || p.startsWith(sep) || !/^(operator|trust)\//.test(p.split(sep).join("/"))) throw new RealmError("INTEGRITY", `instance bundle names a file outside operator/ and trust/: ${JSON.stringify(f.path)}`);
  }
  mkdirSync(paths.data, { recursive: true, mode: 0o700 });
  for (const f of files) {
    const target = join(paths.data, f.path);
    if (relative(paths.data, target).startsWith("..")) throw new RealmError("INTEGRITY", `instance bundle path escapes the data dir: ${f.path}`);
    mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
    writeFileSync(target, Buffer.from(f.data, "base64"), { mode: 0o600, flag: "wx" });
    chmodSync(target, 0o600);
  }
  return { files: files.length, ...(bundle.sealed.publicKey !== INSTANCE_FORMAT ? { operator: bundle.sealed.publicKey } : {}) };
}
