import { readFileSync } from "node:fs";
import type { Endpoint } from "../../services/host/context.js";
import type { IdentityCore } from "../core.js";
import { startDirectoryServer, type DirectoryServer, type DirectoryServerOptions } from "./server.js";

/**
 * The read-only LDAP directory as an identity-context extension (`IdentityOptions.extensions`): it starts
 * with the context, reads the context's projection and stops with it. One query, `ldapDirectory`, says where
 * it listens.
 */
export function ldapDirectory(opts: DirectoryServerOptions): (core: IdentityCore) => Promise<{ endpoints: Endpoint[]; stop: () => Promise<void> }> {
  return async (core) => {
    const server: DirectoryServer = await startDirectoryServer(core, opts, core.log.child({ component: "ldap-directory" }));
    const endpoints: Endpoint[] = [
      {
        kind: "query",
        name: "ldapDirectory",
        description: "Where the realm's read-only LDAP directory listens, and its base DN",
        input: { type: "object", additionalProperties: false, properties: {} },
        async handle() {
          return { url: server.url, baseDn: opts.baseDn ?? "dc=realm", anonymous: opts.allowAnonymous === true };
        },
      },
    ];
    return { endpoints, stop: () => server.stop() };
  };
}

/**
 * Options from the environment (`realm up`): REALM_LDAP_PORT turns the directory on; REALM_LDAP_HOST,
 * REALM_LDAP_BASE_DN, REALM_LDAP_UID_BASE, REALM_LDAP_GID_BASE, REALM_LDAP_ANONYMOUS=1 tune it, and
 * REALM_LDAPS_KEY + REALM_LDAPS_CERT (PEM files) make it LDAPS.
 */
export function ldapDirectoryFromEnv(env: NodeJS.ProcessEnv = process.env): DirectoryServerOptions | undefined {
  const port = env.REALM_LDAP_PORT;
  if (port === undefined || port === "") return undefined;
  const n = Number(port);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`REALM_LDAP_PORT must be a port number: ${port}`);
  const key = env.REALM_LDAPS_KEY;
  const cert = env.REALM_LDAPS_CERT;
  if ((key && !cert) || (cert && !key)) throw new Error("REALM_LDAPS_KEY and REALM_LDAPS_CERT go together (PEM files of the directory's key and certificate chain)");
  const num = (v: string | undefined) => (v === undefined || v === "" ? undefined : Number(v));
  return {
    port: n,
    host: env.REALM_LDAP_HOST || undefined,
    baseDn: env.REALM_LDAP_BASE_DN || undefined,
    uidBase: num(env.REALM_LDAP_UID_BASE),
    gidBase: num(env.REALM_LDAP_GID_BASE),
    allowAnonymous: env.REALM_LDAP_ANONYMOUS === "1",
    ...(key && cert ? { tls: { key: readFileSync(key, "utf8"), cert: readFileSync(cert, "utf8") } } : {}),
  };
}
