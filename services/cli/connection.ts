import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { RealmError } from "../kernel/errors.js";

export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

/** Where `realm up` keeps the creds its services connect with (operator mode, local nats-server). */
export const serviceCredsFile = (dataDir: string) => resolve(join(dataDir, "operator", "realm-service.creds"));

/**
 * Connects the CLI to the realm's NATS: --nats / $REALM_NATS_URL, creds from --creds / $REALM_NATS_CREDS,
 * else the service creds of a realm started here with `realm up` ($REALM_DATA or ./data).
 */
export async function connectRealm(opts: { nats?: string; creds?: string; name?: string } = {}): Promise<NatsConnection> {
  const servers = opts.nats ?? process.env.REALM_NATS_URL ?? DEFAULT_NATS_URL;
  const local = serviceCredsFile(process.env.REALM_DATA ?? "./data");
  const credsFile = opts.creds ?? process.env.REALM_NATS_CREDS ?? (existsSync(local) ? local : undefined);
  try {
    return await connect({
      servers,
      name: opts.name ?? "realm-cli",
      ...(credsFile ? { authenticator: credsAuthenticator(readFileSync(credsFile)) } : {}),
    });
  } catch (err) {
    throw new RealmError("UNAVAILABLE", `cannot reach the realm's NATS at ${servers}: ${err instanceof Error ? err.message : String(err)} (is \`realm up\` running? set --nats or REALM_NATS_URL)`);
  }
}
