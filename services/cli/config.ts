/**
 * The `realm` command line's configuration: named contexts (which realm, how to reach it), like kubectl's
 * kubeconfig or nsc's stores. One YAML file, `$REALM_CONFIG`, else `$XDG_CONFIG_HOME/cim-realm/config.yaml`
 * (else `~/.config/cim-realm/config.yaml`), next to the `realm login` credentials file; written 0600 in a
 * 0700 directory. Parsed and validated here, once, into typed settings; a file that is not YAML or not a
 * realm configuration is an error that names the file and the line, never a stack trace.
 *
 * ```yaml
 * current-context: lab
 * contexts:
 *   lab:
 *     nats: nats://127.0.0.1:4222
 *     creds: ~/realm/data/operator/admin.creds
 *     url: http://127.0.0.1:8080
 *     data: ~/realm/data
 *     token-file: ~/.config/cim-realm/lab.token   # or token-env: LAB_TOKEN; an inline `token:` works too
 * ```
 *
 * Edits keep the file's comments and order (the yaml package's Document API).
 */
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import type { Document } from "yaml";
import { RealmError } from "../kernel/errors.js";
import { yaml } from "./format.js";

/** The NATS URL when neither a flag, REALM_NATS_URL nor a context names one (what `realm up` serves). */
export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

/** One named context: where its realm's NATS and HTTP API are, and which credentials to use. */
export interface ContextConfig {
  /** NATS URL of the realm (like --nats / REALM_NATS_URL). */
  nats?: string;
  /** NATS creds file (like --creds / REALM_NATS_CREDS). */
  creds?: string;
  /** The realm's HTTP API URL (like --realm-url / REALM_URL; the key of `realm login`'s stored token). */
  url?: string;
  /** The realm's data dir (like REALM_DATA): its operator creds are the default creds; `realm doctor` checks it. */
  data?: string;
  /** A file holding the API key or token (like --token / REALM_TOKEN). */
  tokenFile?: string;
  /** An environment variable holding the API key or token. */
  tokenEnv?: string;
  /** The API key inline: only if you put it there (the file is 0600). */
  token?: string;
}

export interface RealmConfig {
  currentContext?: string;
  contexts: Record<string, ContextConfig>;
}

/** The YAML keys of a context and their fields. */
const CONTEXT_KEYS: Record<string, keyof ContextConfig> = { nats: "nats", creds: "creds", url: "url", data: "data", "token-file": "tokenFile", "token-env": "tokenEnv", token: "token" };
export const CONTEXT_YAML_KEY = Object.fromEntries(Object.entries(CONTEXT_KEYS).map(([k, v]) => [v, k])) as Record<keyof ContextConfig, string>;
/** Fields that name files: `~/` is the home directory, a relative path is relative to the config file. */
const PATH_FIELDS: (keyof ContextConfig)[] = ["creds", "data", "tokenFile"];
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** `$REALM_CONFIG`, else `$XDG_CONFIG_HOME/cim-realm/config.yaml` (an absolute XDG_CONFIG_HOME only), else `~/.config/cim-realm/config.yaml`. */
export function configFile(env: NodeJS.ProcessEnv = process.env): string {
  if (env.REALM_CONFIG) return resolve(env.REALM_CONFIG);
  const xdg = env.XDG_CONFIG_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), ".config"), "cim-realm", "config.yaml");
}

export function checkContextName(name: string): string {
  if (!NAME.test(name)) throw new RealmError("VALIDATION", `a context name is letters, digits, '.', '_' and '-' (at most 63), not ${JSON.stringify(name)}`);
  return name;
}

/** A loaded configuration: the typed settings, and the document they came from (for edits that keep comments). */
export interface LoadedConfig {
  file: string;
  exists: boolean;
  config: RealmConfig;
  doc: Document;
  /** The file's permission bits (0 when it does not exist). */
  mode: number;
}

const errCode = (err: unknown) => (err as NodeJS.ErrnoException).code;

/** A configuration with no context, to be written to `file`. */
export const emptyConfig = (file: string): LoadedConfig => ({ file, exists: false, config: { contexts: {} }, doc: new (yaml().Document)({ contexts: {} }), mode: 0 });

function refuseOpenToken(file: string, mode: number, config: RealmConfig): void {
  if (mode & 0o077 && Object.values(config.contexts).some((c) => c.token))
    throw new RealmError("VALIDATION", `${file} holds a token and others may read it (mode ${mode.toString(8)}): chmod 600 ${file}, and replace the token if others had access`);
}

/**
 * The validated settings of a file, kept beside it (`.config.yaml.cache.json`, 0600) for as long as the file
 * is unchanged (same inode, size, mtime and ctime): a verb that only reads its context does without loading
 * the YAML parser (~30 ms). An edit by hand changes the stamp, and the file is parsed again.
 */
interface ConfigCache {
  v: 1;
  stamp: string;
  config: RealmConfig;
}
const cacheFileOf = (file: string) => join(dirname(file), `.${basename(file)}.cache.json`);
const stampOf = (st: { ino: number; size: number; mtimeMs: number; ctimeMs: number }) => `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;

function writeCache(file: string, stamp: string, config: RealmConfig): void {
  const cache = cacheFileOf(file);
  const tmp = `${cache}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify({ v: 1, stamp, config } satisfies ConfigCache), { mode: 0o600, flag: "wx" });
    renameSync(tmp, cache);
  } catch {
    // a cache is an optimization: a read-only config dir just parses every time
    try {
      unlinkSync(tmp);
    } catch {
      // never made
    }
  }
}

/** The settings of the configuration file, validated (from the cache when the file has not changed); a missing file has none. */
export function readConfig(file = configFile()): { file: string; exists: boolean; config: RealmConfig; mode: number } {
  let st;
  try {
    st = statSync(file);
  } catch (err) {
    if (errCode(err) === "ENOENT") return { file, exists: false, config: { contexts: {} }, mode: 0 };
    throw new RealmError("VALIDATION", `cannot read the realm configuration ${file}: ${errCode(err) ?? String(err)}`);
  }
  const mode = st.mode & 0o777;
  try {
    const cache = JSON.parse(readFileSync(cacheFileOf(file), "utf8")) as ConfigCache;
    if (cache.v === 1 && cache.stamp === stampOf(st) && statSync(cacheFileOf(file)).uid === st.uid) {
      refuseOpenToken(file, mode, cache.config);
      return { file, exists: true, config: cache.config, mode };
    }
  } catch (err) {
    if (err instanceof RealmError) throw err;
    // no cache, or an unreadable one: parse the file
  }
  const loaded = loadConfig(file);
  return { file, exists: loaded.exists, config: loaded.config, mode: loaded.mode };
}

/** Reads and validates the configuration file with its YAML document (for edits); a missing file is an empty configuration. */
export function loadConfig(file = configFile()): LoadedConfig {
  let text: string;
  let st;
  try {
    st = statSync(file);
    text = readFileSync(file, "utf8");
  } catch (err) {
    if (errCode(err) === "ENOENT") return emptyConfig(file);
    throw new RealmError("VALIDATION", `cannot read the realm configuration ${file}: ${errCode(err) ?? String(err)}`);
  }
  const mode = st.mode & 0o777;
  const config = parseConfig(text, file);
  refuseOpenToken(file, mode, config.config);
  writeCache(file, stampOf(st), config.config);
  return { ...config, file, exists: true, mode };
}

/** Parses the text of a configuration file (named `file` in errors). */
export function parseConfig(text: string, file: string): { config: RealmConfig; doc: Document } {
  const Y = yaml();
  const lines = new Y.LineCounter();
  const doc = Y.parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const lineOf = (node: unknown): number => {
    const range = (node as { range?: [number, number, number] } | null)?.range;
    return range ? lines.linePos(range[0]).line : 1;
  };
  const first = doc.errors[0];
  if (first) {
    // (an error at the end of the text, like an unclosed bracket, is on its last line)
    const line = Math.max(1, Math.min(lines.linePos(first.pos[0]).line, text.trimEnd().split("\n").length));
    throw new RealmError("MALFORMED", `${file}:${line}: not valid YAML: ${first.message.split("\n")[0]}`);
  }
  const fail = (node: unknown, message: string): never => {
    throw new RealmError("VALIDATION", `${file}:${lineOf(node)}: ${message} (realm configuration: \`realm context --help\`)`);
  };
  const root = doc.contents;
  const config: RealmConfig = { contexts: {} };
  if (root === null || (Y.isScalar(root) && (root.value === null || root.value === ""))) return { config, doc };
  if (!Y.isMap(root)) return fail(root, "the file must be a mapping with current-context and contexts");
  for (const pair of root.items) {
    const key = Y.isScalar(pair.key) ? String(pair.key.value) : "";
    if (key === "current-context") {
      if (!Y.isScalar(pair.value) || typeof pair.value.value !== "string") return fail(pair.value ?? pair.key, "current-context must be a context name");
      config.currentContext = pair.value.value;
    } else if (key === "contexts") {
      if (pair.value === null || (Y.isScalar(pair.value) && pair.value.value === null)) continue;
      if (!Y.isMap(pair.value)) return fail(pair.value, "contexts must be a mapping of names to contexts");
      for (const c of pair.value.items) {
        const name = Y.isScalar(c.key) ? String(c.key.value) : "";
        if (!NAME.test(name)) fail(c.key, `context name ${JSON.stringify(name)}: letters, digits, '.', '_' and '-'`);
        if (!Y.isMap(c.value)) return fail(c.value ?? c.key, `context ${name} must be a mapping (nats, creds, url, data, token-file, token-env, token)`);
        const ctx: ContextConfig = {};
        for (const f of c.value.items) {
          const k = Y.isScalar(f.key) ? String(f.key.value) : "";
          const field = CONTEXT_KEYS[k];
          if (!field) return fail(f.key, `unknown key ${JSON.stringify(k)} in context ${name} (known: ${Object.keys(CONTEXT_KEYS).join(", ")})`);
          if (!Y.isScalar(f.value) || typeof f.value.value !== "string" || f.value.value === "") return fail(f.value ?? f.key, `${k} of context ${name} must be a non-empty string`);
          ctx[field] = f.value.value;
        }
        if (ctx.nats && !/^(nats|tls|ws|wss):\/\/\S+$/.test(ctx.nats)) fail(c.value.get("nats", true), `nats of context ${name} must be a nats://, tls://, ws:// or wss:// URL`);
        if (ctx.url && !URL.canParse(ctx.url)) fail(c.value.get("url", true), `url of context ${name} must be a URL (http://127.0.0.1:8080)`);
        if ([ctx.token, ctx.tokenFile, ctx.tokenEnv].filter(Boolean).length > 1) fail(c.value, `context ${name}: give one of token, token-file, token-env`);
        config.contexts[name] = ctx;
      }
    } else return fail(pair.key, `unknown key ${JSON.stringify(key)} (known: current-context, contexts)`);
  }
  if (config.currentContext && !config.contexts[config.currentContext]) fail(root.get("current-context", true), `current-context ${config.currentContext} is not among the contexts (${Object.keys(config.contexts).join(", ") || "none"})`);
  return { config, doc };
}

/** A path field of a context as an absolute path: `~/x` under the home directory, `x` next to the config file. */
export function contextPath(file: string, p: string): string {
  if (p === "~" || p.startsWith("~/")) return join(homedir(), p.slice(1));
  return resolve(dirname(file), p);
}

/** A context with its path fields made absolute. */
export function resolvedContext(file: string, c: ContextConfig): ContextConfig {
  const out = { ...c };
  for (const f of PATH_FIELDS) if (out[f]) out[f] = contextPath(file, out[f]!);
  return out;
}

const HEADER = `The realm command line's contexts (realm context add|use|list|show|remove; realm --help).
Keys of a context: nats, creds, url, data, token-file, token-env, token. Flags and REALM_* variables win.
Keep secrets out of this file: point at them (creds, token-file, token-env).`;

/**
 * Writes the document 0600 (its directory 0700) through a temp file renamed over the file, after checking
 * it with the rules every read applies (a bad URL given to `realm context add` is refused before it is written).
 */
export function saveConfig(loaded: LoadedConfig): void {
  const { file, doc } = loaded;
  if (!doc.commentBefore) doc.commentBefore = HEADER.split("\n").map((l) => ` ${l}`).join("\n");
  parseConfig(doc.toString({ lineWidth: 0 }), file);
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.config.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    writeFileSync(tmp, doc.toString({ lineWidth: 0 }), { mode: 0o600, flag: "wx" });
    chmodSync(tmp, 0o600);
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // renamed already, or never made
    }
    throw new RealmError("UNAVAILABLE", `cannot write ${file}: ${errCode(err) ?? String(err)}`);
  }
}

/** Sets (or with undefined removes) a context in the document and the typed config. */
export function putContext(loaded: LoadedConfig, name: string, c: ContextConfig | undefined): void {
  if (!loaded.doc.has("contexts") || !yaml().isMap(loaded.doc.get("contexts"))) loaded.doc.set("contexts", loaded.doc.createNode({}));
  if (c) {
    const node: Record<string, string> = {};
    for (const [field, v] of Object.entries(c) as [keyof ContextConfig, string | undefined][]) if (v) node[CONTEXT_YAML_KEY[field]] = v;
    loaded.doc.setIn(["contexts", name], loaded.doc.createNode(node));
    loaded.config.contexts[name] = c;
  } else {
    loaded.doc.deleteIn(["contexts", name]);
    delete loaded.config.contexts[name];
  }
}

export function setCurrentContext(loaded: LoadedConfig, name: string | undefined): void {
  if (name) loaded.doc.set("current-context", name);
  else loaded.doc.delete("current-context");
  loaded.config.currentContext = name;
}
