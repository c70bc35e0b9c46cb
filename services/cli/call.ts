import { Option, type Command } from "commander";
import { callRealm } from "../host/client.js";
import { connectRealm } from "./connection.js";

/** The flags every verb that talks to a running realm takes. */
export interface ConnectionFlags {
  nats?: string;
  creds?: string;
  token?: string;
}

/** Adds --nats, --creds and --token (each also from the environment) to a command. */
export const withConnectionOptions = (c: Command): Command =>
  c
    .addOption(new Option("--nats <url>", "NATS server of the realm").env("REALM_NATS_URL"))
    .addOption(new Option("--creds <file>", "NATS creds file").env("REALM_NATS_CREDS"))
    .addOption(new Option("--token <credential>", "API key or access token for the admin API").env("REALM_TOKEN"));

/** Calls `realm.<context>.<kind>.<name>` on the realm with the flags' connection and credential. */
export async function callContext(o: ConnectionFlags, context: string, kind: "commands" | "queries", name: string, input: object, timeoutMs = 60_000): Promise<Record<string, unknown>> {
  const nc = await connectRealm({ ...(o.nats ? { nats: o.nats } : {}), ...(o.creds ? { creds: o.creds } : {}), name: `realm-cli ${context}` });
  try {
    return await callRealm(nc, `realm.${context}.${kind}.${name}`, input, { ...(o.token ? { authorization: `Bearer ${o.token}` } : {}), timeoutMs });
  } finally {
    await nc.close();
  }
}
