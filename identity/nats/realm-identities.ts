import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { credsClaims } from "../../services/host/creds.js";
import { RealmError } from "../../services/kernel/errors.js";
import type { OperatorState } from "./bootstrap.js";
import type { UserPermissions } from "./domain/validation.js";
import { credsFile, kpFromSeed, newUserKey, permsClaim, seedOf, signUser, validateUserJwt } from "./jwt.js";
import { KeyStore } from "./keystore.js";

/**
 * Creds of the realm's own identities (its services, its local operator, its provisioning step), signed
 * with the realm (or SYS) account's signing key and carrying exactly the permissions asked for. Files live
 * in `<operator dir>/identities/<name>.creds` (mode 0600, dir 0700); a file is kept while its permissions
 * are still the ones asked for and more than a third of its lifetime remains, else it is issued anew.
 */
export interface IdentitySpec {
  name: string;
  account: "realm" | "SYS";
  permissions: UserPermissions;
  /** Lifetime; default 30 days. */
  days?: number;
  kind?: "service" | "person";
}

export interface IssuedIdentity {
  name: string;
  account: string;
  file: string;
  publicKey: string;
  expiresAt: number;
  /** True when this call issued a new key (else the file on disk was kept). */
  issued: boolean;
}

/** The inbox prefix of a realm identity: it may subscribe to `_INBOX_<name>.>` and nothing else of that kind. */
export const inboxOf = (user: string) => `_INBOX_${user}`;

/**
 * An operator of the realm (a person or automation using the CLI, or the API over NATS): sends commands
 * and queries and pings services, and reads only its own inbox. No JetStream API, no KV, no event
 * subjects, no subscription to command subjects: what it may do beyond that is the API's authorization.
 */
export function operatorPermissions(user: string): UserPermissions {
  return {
    pub: { allow: ["realm.*.commands.>", "realm.*.queries.>", "$SRV.PING", "$SRV.PING.>", "$SRV.INFO", "$SRV.INFO.>", "$SRV.STATS", "$SRV.STATS.>"], deny: [] },
    sub: { allow: [`${inboxOf(user)}.>`], deny: [] },
  };
}

export const identitiesDir = (operatorDir: string) => join(operatorDir, "identities");
export const identityCredsFile = (operatorDir: string, name: string) => join(identitiesDir(operatorDir), `${name}.creds`);

const accountOf = (state: OperatorState, account: "realm" | "SYS") => (account === "SYS" ? state.system : state.realm);

/** Signs a user JWT for `spec` valid for `seconds` and returns its creds (nothing written). */
export async function mintCreds(operatorDir: string, state: OperatorState, spec: IdentitySpec, seconds: number): Promise<{ creds: string; publicKey: string; expiresAt: number }> {
  const acct = accountOf(state, spec.account);
  const keys = new KeyStore(operatorDir);
  const u = newUserKey();
  const now = Math.floor(Date.now() / 1000);
  const expiresAt = now + seconds;
  const jwt = await signUser({ account: acct.name, name: spec.name, kind: spec.kind ?? "service", permissions: spec.permissions }, u.getPublicKey(), acct.publicKey, kpFromSeed(keys.seed(acct.signingKey)), now, expiresAt);
  validateUserJwt(jwt, acct.jwt, { operatorJwt: state.operatorJwt });
  return { creds: credsFile(jwt, seedOf(u)), publicKey: u.getPublicKey(), expiresAt };
}

const sameClaim = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** Issues (or keeps) the creds file of one realm identity. */
export async function issueIdentity(operatorDir: string, state: OperatorState, spec: IdentitySpec): Promise<IssuedIdentity> {
  mkdirSync(identitiesDir(operatorDir), { recursive: true, mode: 0o700 });
  const file = identityCredsFile(operatorDir, spec.name);
  const days = spec.days ?? 30;
  const want = permsClaim(spec.permissions);
  if (existsSync(file)) {
    const c = credsClaims(readFileSync(file, "utf8"));
    const now = Math.floor(Date.now() / 1000);
    const fresh = c?.exp !== undefined && c.exp - now > (days * 86400) / 3;
    const same = c && sameClaim(c.nats.pub, want.pub) && sameClaim(c.nats.sub, want.sub) && sameClaim(c.nats.resp, want.resp);
    const issuer = (c as { iss?: string } | undefined)?.iss;
    if (c && fresh && same && issuer === accountOf(state, spec.account).signingKey) return { name: spec.name, account: spec.account, file, publicKey: c.sub, expiresAt: c.exp!, issued: false };
  }
  const m = await mintCreds(operatorDir, state, spec, days * 86400);
  writeFileSync(file, m.creds, { mode: 0o600 });
  return { name: spec.name, account: spec.account, file, publicKey: m.publicKey, expiresAt: m.expiresAt, issued: true };
}

/** The creds of an identity issued earlier, or a clear error. */
export function readIdentityCreds(operatorDir: string, name: string): string {
  const file = identityCredsFile(operatorDir, name);
  if (!existsSync(file)) throw new RealmError("UNAVAILABLE", `no creds for the realm identity ${name} in ${identitiesDir(operatorDir)}: start the realm with \`realm up\``);
  return readFileSync(file, "utf8");
}
