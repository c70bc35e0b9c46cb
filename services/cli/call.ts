import { Option, type Command } from "commander";
import type { NatsConnection } from "@nats-io/nats-core";
import { RealmError } from "../kernel/errors.js";
import { CredentialsStore, DEFAULT_REALM_URL, realmUrlOf } from "./credentials-store.js";
import { storedAccessToken } from "./oidc-client.js";
import { note } from "./output.js";
import { activeContext } from "./active-context.js";

/** The flags every verb that talks to a running realm takes. */
export interface ConnectionFlags {
  nats?: string;
  creds?: string;
  token?: string;
  /** The realm's HTTP URL whose stored `realm login` token is used when no token is given. */
  realmUrl?: string;
}

/** Adds --nats, --creds and --token (each also from the environment) to a command. */
export const withNatsOptions = (c: Command): Command =>
  c
    .addOption(new Option("--nats <url>", "NATS server of the realm").env("REALM_NATS_URL"))
    .addOption(new Option("--creds <file>", "NATS creds file").env("REALM_NATS_CREDS"))
    .addOption(new Option("--token <credential>", "API key or access token for the admin API (default: the token `realm login` stored for the realm)").env("REALM_TOKEN"));

/** The option naming the realm's HTTP URL (`--realm-url` on verbs, where `--url` may mean something else; `--url` on login/logout/whoami). */
export const realmUrlOption = (flags = "--realm-url <url>", description = `the realm's HTTP URL; without --token, the access token \`realm login\` stored for it is used (default ${DEFAULT_REALM_URL})`): Option =>
  new Option(flags, description).env("REALM_URL");

/** Adds --nats, --creds, --token and --realm-url (each also from the environment) to a command. */
export const withConnectionOptions = (c: Command): Command => withNatsOptions(c).addOption(realmUrlOption());

/**
 * Calls `realm.<context>.<kind>.<name>` on the realm with the flags' connection and credential: --token /
 * REALM_TOKEN, else the configuration context's token (services/cli/config.ts), else the access token
 * `realm login` stored for the realm URL (--realm-url / REALM_URL, else the context's url, default
 * http://127.0.0.1:8080), refreshed first when it expires within a minute. Without any the call goes out
 * without a credential; an UNAUTHORIZED answer then says how to sign in.
 */
export async function callContext(o: ConnectionFlags, context: string, kind: "commands" | "queries", name: string, input: object, timeoutMs = 60_000, via?: NatsConnection): Promise<Record<string, unknown>> {
  // Flags and REALM_* variables (folded into `o` by commander) win; the configuration context fills the rest.
  const ctx = activeContext();
  const given = o.token || ctx?.token?.();
  const realmUrl = given ? undefined : realmUrlOf(o.realmUrl ?? ctx?.url);
  const token = given || (await storedAccessToken(realmUrl!, new CredentialsStore(), note));
  // The NATS client loads with the first call, not with the command line (`realm --help` does without it).
  const [{ connectRealm }, { callRealm }] = await Promise.all([import("./connection.js"), import("../host/client.js")]);
  // A verb that also talks NATS itself gives its connection (kept open); otherwise one for this call.
  const nc = via ?? (await connectRealm({ ...(o.nats ? { nats: o.nats } : {}), ...(o.creds ? { creds: o.creds } : {}), name: `realm-cli ${context}` }));
  try {
    return await callRealm(nc, `realm.${context}.${kind}.${name}`, input, { ...(token ? { authorization: `Bearer ${token}` } : {}), timeoutMs });
  } catch (err) {
    if (realmUrl && err instanceof RealmError && err.code === "UNAUTHORIZED") {
      throw new RealmError("UNAUTHORIZED", `${err.message}; sign in with \`realm login --url ${realmUrl}\` (or give an API key with --token / REALM_TOKEN)`, err.details);
    }
    throw err;
  } finally {
    if (!via) await nc.close();
  }
}
