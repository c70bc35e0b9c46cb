import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import type { Authenticator, ConnectionOptions, NatsConnection } from "@nats-io/nats-core";
import { nkeyFromSeed } from "../../identity/nats/jwt-encode.js";
import { RealmError } from "../kernel/errors.js";
import { inboxPrefixOf } from "../host/creds.js";
import { activeContext } from "./active-context.js";
import { DEFAULT_NATS_URL } from "./config.js";

export { DEFAULT_NATS_URL };

/**
 * Reconnect policy of every long-lived realm connection: never give up (the default gives up after 10
 * attempts, ~25 s, and leaves a closed connection behind a process that still looks up), retry every
 * second, and fail the first connect at once instead of waiting for a server that is not there.
 */
export const reconnectOptions = {
  maxReconnectAttempts: -1,
  reconnectTimeWait: 1_000,
  waitOnFirstConnect: false,
} as const satisfies Partial<ConnectionOptions>;


/** Connects as one of the realm's identities: its creds are read at every (re)connect, its inbox is its own. */
export async function connectAs(servers: string | string[], credsFile: string, name: string): Promise<NatsConnection> {
  const inboxPrefix = inboxPrefixOf(readFileSync(credsFile));
  return connect({
    servers: serverList(servers),
    name,
    noAsyncTraces: true,
    ...reconnectOptions,
    authenticator: credsAuthenticator(() => readFileSync(credsFile)),
    ...(inboxPrefix ? { inboxPrefix } : {}),
  });
}

/**
 * credsAuthenticator's answer to the server's nonce (user JWT, public nkey, signature), signed with
 * node:crypto Ed25519 instead of @nats-io/nkeys' pure-JS signing: ~25 ms less per CLI call (a cold
 * process signs once). The creds are parsed as nats.js does; anything unreadable falls back to it.
 */
export function nodeCredsAuthenticator(creds: Uint8Array): Authenticator {
  const text = new TextDecoder().decode(creds);
  const blocks = [...text.matchAll(/-{3,}[^\n]*-{3,}\n\s*(\S+)\s*\n\s*-{3,}[^\n]*-{3,}/g)].map((m) => m[1]!);
  const [jwt, seed] = blocks;
  let key: ReturnType<typeof nkeyFromSeed> | undefined;
  try {
    key = jwt && seed ? nkeyFromSeed(seed, { cache: false }) : undefined;
  } catch {
    key = undefined;
  }
  if (!key || !jwt) return credsAuthenticator(creds);
  const k = key;
  return (nonce?: string) => ({ jwt, nkey: k.publicKey, sig: nonce ? Buffer.from(k.sign(new TextEncoder().encode(nonce))).toString("base64") : "" });
}

/** The servers of a `--nats` value: one URL, or several separated by commas (a cluster). nats.js given the
 * comma-joined string as one entry dials only its last URL, so a client could not fail over to the others. */
export const serverList = (urls: string | string[]): string[] => (Array.isArray(urls) ? urls : urls.split(",").map((s) => s.trim()).filter(Boolean));

/** Where `realm up` writes the local operator's creds (commands and queries only), the CLI's default. */
export const operatorCredsFile = (dataDir: string) => resolve(join(dataDir, "operator", "admin.creds"));

/**
 * Where the CLI finds the realm's NATS and its creds: --nats / $REALM_NATS_URL, else the configuration
 * context's `nats`, else nats://127.0.0.1:4222; creds from --creds / $REALM_NATS_CREDS, else the context's
 * `creds`, else the local operator's creds of a realm started with `realm up` (in $REALM_DATA, which wins
 * over the context's creds as every variable wins over the file, else the context's `data`, else ./data),
 * when that file exists.
 */
export function realmEndpoint(opts: { nats?: string | undefined; creds?: string | undefined } = {}): { servers: string; local: string; credsFile: string | undefined } {
  const ctx = activeContext();
  const servers = opts.nats ?? process.env.REALM_NATS_URL ?? ctx?.nats ?? DEFAULT_NATS_URL;
  const local = operatorCredsFile(process.env.REALM_DATA ?? ctx?.data ?? "./data");
  const found = existsSync(local) ? local : undefined;
  const credsFile = opts.creds ?? process.env.REALM_NATS_CREDS ?? (process.env.REALM_DATA ? (found ?? ctx?.creds) : (ctx?.creds ?? found));
  return { servers, local, credsFile };
}

/**
 * Connects the CLI to the realm's NATS (realmEndpoint says where, with which creds). Never a service
 * identity's creds. The inbox prefix is the one the creds may subscribe to (`_INBOX_<user>`).
 */
export async function connectRealm(opts: { nats?: string; creds?: string; name?: string } = {}): Promise<NatsConnection> {
  const { servers, local, credsFile } = realmEndpoint(opts);
  let creds: Uint8Array | undefined;
  if (credsFile) {
    try {
      creds = readFileSync(credsFile);
    } catch {
      throw new RealmError("VALIDATION", `cannot read the NATS creds file ${credsFile} (--creds, REALM_NATS_CREDS, the context's creds, or ${local} written by \`realm up\`)`);
    }
  }
  const inboxPrefix = creds ? inboxPrefixOf(creds) : undefined;
  try {
    return await connect({
      servers: serverList(servers),
      name: opts.name ?? "realm-cli",
      ...reconnectOptions,
      ...(creds ? { authenticator: nodeCredsAuthenticator(creds) } : {}),
      ...(inboxPrefix ? { inboxPrefix } : {}),
    });
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    // No creds found is its own problem (the usual one outside the realm's directory): say which file was
    // looked for and how to point at another, rather than suggest the realm is down.
    const noCreds = credsFile
      ? ""
      : `no NATS creds file: looked for ${local} (the local operator's creds, which \`realm up\` writes into <data dir>/operator/admin.creds); point at it with --creds <file>, REALM_NATS_CREDS=<file> or REALM_DATA=<data dir>`;
    if (!credsFile && /authori[sz]ation|authentication/i.test(why)) throw new RealmError("UNAUTHORIZED", `the realm's NATS at ${servers} refused a connection without creds: ${noCreds}`);
    throw new RealmError("UNAVAILABLE", `cannot reach the realm's NATS at ${servers}: ${why} (is \`realm up\` running? set --nats or REALM_NATS_URL; ${credsFile ? `creds ${credsFile}` : noCreds})`);
  }
}
