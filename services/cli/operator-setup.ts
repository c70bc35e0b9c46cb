import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { RealmError } from "../kernel/errors.js";
import { createTrust, loadTrust, trustExists } from "../kernel/trust-files.js";
import type { RealmTrust } from "../kernel/trust.js";
import { REALM_IDENTITIES, REALM_WRITERS, operatorPermissions, permissionsOf } from "./identities.js";
import { bootstrapOperator, type Bootstrap } from "../../identity/nats/bootstrap.js";
import { identityCredsFile, issueIdentity, type IssuedIdentity } from "../../identity/nats/realm-identities.js";

/**
 * The realm's data dir and its operator: the layout, the one rule for "holds an operator", and making the
 * operator, trust and identities (what `realm up`, `realm nats server-config` and `realm instance` share;
 * light: no context, host or HTTP server loads with it).
 */

/** The data dir layout `realm up` keeps (README "Files"). */
export const realmPaths = (dataDir: string) => {
  const d = resolve(dataDir);
  return {
    data: d,
    operator: join(d, "operator"),
    trust: join(d, "trust"),
    nats: join(d, "nats"),
    sealKey: join(d, "operator", "seal.key"),
    /** The local operator's creds: what the CLI connects with. */
    operatorCreds: join(d, "operator", "admin.creds"),
    checkpoints: join(d, "trust", "checkpoints.json"),
  };
};

/**
 * The one rule for "this data dir holds an operator": `<data>/operator/operator.json` exists (written by
 * `realm up` without --nats, `realm nats server-config` or `realm instance join`). Then `realm up --nats`
 * runs in operator mode against the external cluster (identities issued from this operator); else it uses
 * the given --creds for every context.
 */
export const holdsOperator = (paths: ReturnType<typeof realmPaths>): boolean => existsSync(join(paths.operator, "operator.json"));

/** The name of the local operator's NATS user (inbox `_INBOX_admin`). */
export const LOCAL_OPERATOR = "admin";

/** Refuses a data dir made before the realm protected itself (all-powerful service creds, unsigned events). */
export function refuseLegacy(paths: ReturnType<typeof realmPaths>): void {
  const legacyCreds = join(paths.operator, "realm-service.creds");
  if (existsSync(legacyCreds) || (existsSync(join(paths.operator, "operator.json")) && !trustExists(paths.trust))) {
    throw new RealmError(
      "VALIDATION",
      `data dir ${paths.data} was made by an earlier cim-realm: its service creds (${legacyCreds}) have every right over the realm account and its events are unsigned. Start the realm on a new data dir (--data), or move this one away.`,
    );
  }
}

/**
 * Operator mode, before nats-server starts: the operator (made on first start; its identity key then also
 * signs the realm's trust document and leaves memory), the trust with its event keys, and the creds of
 * every realm identity (each context, the DNS workers, the claims pusher, the local operator).
 */
export async function establishOperator(paths: ReturnType<typeof realmPaths>, passphrase: string | undefined, opts: { hubDomain?: string | undefined } = {}): Promise<{ operator: Bootstrap; trust: RealmTrust; issued: IssuedIdentity[] }> {
  const operator = await bootstrapOperator(paths.operator, passphrase, {
    onRootKey: (root) => {
      createTrust(paths.trust, "cim-realm", REALM_WRITERS, root);
    },
  });
  const trust = loadTrust(paths.trust, { pinnedRoot: operator.state.operatorPublicKey });
  const issued: IssuedIdentity[] = [];
  for (const id of REALM_IDENTITIES) issued.push(await issueIdentity(paths.operator, operator.state, { name: id.name, account: id.account, permissions: permissionsOf(id, opts) }));
  issued.push(await issueIdentity(paths.operator, operator.state, { name: LOCAL_OPERATOR, account: "realm", permissions: operatorPermissions(LOCAL_OPERATOR), days: 90, kind: "person" }));
  writeFileSync(paths.operatorCreds, readFileSync(identityCredsFile(paths.operator, LOCAL_OPERATOR)), { mode: 0o600 });
  return { operator, trust, issued };
}
