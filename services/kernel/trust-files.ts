import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RealmError } from "./errors.js";
import { EventSigningKey, RealmTrust, signTrustDocument, type RootSigner, type TrustDocument } from "./trust.js";

/**
 * The trust directory of a realm (`<data>/trust`, mode 0700): `trust.json`, the signed trust document
 * (public), and `keys/<writer>.pem`, each context's event-signing key (PKCS#8, mode 0600). The root key that
 * signed the document is not here.
 */
export const trustFile = (dir: string) => join(dir, "trust.json");

export function trustExists(dir: string): boolean {
  return existsSync(trustFile(dir));
}

/** Makes a key per writer, signs the document with `root` and writes both. Refuses to overwrite a trust. */
export function createTrust(dir: string, realm: string, writers: { name: string; subjects: string[] }[], root: RootSigner): RealmTrust {
  if (trustExists(dir)) throw new RealmError("ALREADY_EXISTS", `a trust document exists in ${dir}`);
  mkdirSync(join(dir, "keys"), { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const keyed = writers.map((w) => ({ ...w, key: EventSigningKey.generate(w.name) }));
  for (const w of keyed) writeFileSync(join(dir, "keys", `${w.name}.pem`), w.key.toPem(), { mode: 0o600 });
  const doc = signTrustDocument(realm, keyed, root);
  writeFileSync(trustFile(dir), JSON.stringify(doc, null, 2) + "\n", { mode: 0o644 });
  return new RealmTrust(doc, new Map(keyed.map((w) => [w.name, w.key])));
}

/** Reads the document and every key file present; the document must verify (and match `pinnedRoot` if given). */
export function loadTrust(dir: string, opts: { pinnedRoot?: string | undefined; withKeys?: boolean } = {}): RealmTrust {
  if (!trustExists(dir)) throw new RealmError("UNAVAILABLE", `no trust document in ${dir}: the realm has not been bootstrapped here`);
  let doc: TrustDocument;
  try {
    doc = JSON.parse(readFileSync(trustFile(dir), "utf8")) as TrustDocument;
  } catch {
    throw new RealmError("INTEGRITY", `${trustFile(dir)} is not JSON`);
  }
  const keys = new Map<string, EventSigningKey>();
  const keyDir = join(dir, "keys");
  if (opts.withKeys !== false && existsSync(keyDir)) {
    for (const f of readdirSync(keyDir).filter((x) => x.endsWith(".pem"))) {
      const writer = f.slice(0, -4);
      keys.set(writer, EventSigningKey.fromPem(writer, readFileSync(join(keyDir, f), "utf8")));
    }
  }
  return new RealmTrust(doc, keys, { pinnedRoot: opts.pinnedRoot });
}
