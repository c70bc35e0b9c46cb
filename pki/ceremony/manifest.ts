import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { cidOf } from "../../services/kernel/envelope.js";
import { RealmError } from "../../services/kernel/errors.js";
import { sha256Hex } from "../x509/der.js";

export const MANIFEST = "manifest.json";
export const MANIFEST_CID = "manifest.cid";

/** SHA-256 and size of every file of a ceremony directory; its CID (CIDv1 json/sha2-256 of the canonical JSON) names the whole output. */
export interface Manifest {
  format: "cim-realm/ceremony-manifest/v1";
  updatedAt: string;
  rootFingerprint: string;
  files: Record<string, { sha256: string; size: number }>;
}

function walk(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out.push(...walk(full, base));
    else out.push(relative(base, full).split(sep).join("/"));
  }
  return out;
}

/** Writes manifest.json and manifest.cid over every other file in `dir`; returns the CID. */
export function writeManifest(dir: string, rootFingerprint: string, now = new Date()): string {
  const files: Manifest["files"] = {};
  for (const f of walk(dir)) {
    if (f === MANIFEST || f === MANIFEST_CID) continue;
    const data = readFileSync(join(dir, f));
    files[f] = { sha256: sha256Hex(data), size: data.length };
  }
  const manifest: Manifest = { format: "cim-realm/ceremony-manifest/v1", updatedAt: now.toISOString(), rootFingerprint, files };
  const cid = cidOf(manifest);
  writeFileSync(join(dir, MANIFEST), JSON.stringify(manifest, null, 2) + "\n");
  writeFileSync(join(dir, MANIFEST_CID), cid + "\n");
  return cid;
}

export interface ManifestCheck {
  ok: boolean;
  cid: string;
  problems: string[];
}

/** Checks every listed file's hash, unlisted files, and that manifest.cid names manifest.json. */
export function checkManifest(dir: string): ManifestCheck {
  const path = join(dir, MANIFEST);
  if (!existsSync(path)) throw new RealmError("NOT_FOUND", `${dir} holds no ceremony manifest (run realm ceremony init first)`);
  const manifest = JSON.parse(readFileSync(path, "utf8")) as Manifest;
  const cid = cidOf(manifest);
  const problems: string[] = [];
  const stated = existsSync(join(dir, MANIFEST_CID)) ? readFileSync(join(dir, MANIFEST_CID), "utf8").trim() : "";
  if (stated !== cid) problems.push(`manifest.cid says ${stated || "(missing)"} but manifest.json hashes to ${cid}`);
  const present = new Set(walk(dir).filter((f) => f !== MANIFEST && f !== MANIFEST_CID));
  for (const [f, want] of Object.entries(manifest.files)) {
    if (!present.has(f)) {
      problems.push(`${f} is missing`);
      continue;
    }
    present.delete(f);
    if (sha256Hex(readFileSync(join(dir, f))) !== want.sha256) problems.push(`${f} does not match its SHA-256 in the manifest`);
  }
  for (const f of present) problems.push(`${f} is not in the manifest`);
  return { ok: problems.length === 0, cid, problems };
}

/** Throws INTEGRITY unless the directory matches its manifest. */
export function assertManifest(dir: string): string {
  const r = checkManifest(dir);
  if (!r.ok) throw new RealmError("INTEGRITY", `ceremony directory ${dir} does not match its manifest: ${r.problems.join("; ")}`, { problems: r.problems });
  return r.cid;
}
