import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createAccount, createOperator, createUser, encodeOperator } from "@nats-io/jwt";
import type { OperatorPart } from "../../services/nats/config.js";
import { accountDecider, type AccountState } from "./domain/account.js";
import { JETSTREAM_UNLIMITED, validateLimits } from "./domain/validation.js";
import { credsFile, seedOf, signAccount, signUser, kpFromSeed, validateAccountJwt, validateUserJwt } from "./jwt.js";
import { KeyStore, sealBundle, type SealedBundle } from "./keystore.js";

/** What `bootstrapOperator` leaves in `<dir>/operator.json` (public material only). */
export interface OperatorState {
  operatorName: string;
  operatorPublicKey: string;
  operatorJwt: string;
  operatorSigningKey: string;
  system: { name: string; publicKey: string; signingKey: string; jwt: string };
  realm: { name: string; publicKey: string; signingKey: string; jwt: string };
}

export interface Bootstrap {
  /** Give this to `new NatsSupervisor({ operator })`. */
  operator: OperatorPart;
  state: OperatorState;
  /** Creds of a system-account user (pushes claims); also in `<dir>/sys.creds`. */
  systemCreds: string;
  /** Creds the realm's own services connect with (realm account, JetStream on); also in `<dir>/realm-service.creds`. */
  serviceCreds: string;
  /** Set only on first init when no passphrase was given: shown once, needed to open the ceremony bundle. */
  generatedPassphrase?: string;
  /** Path of the encrypted operator identity bundle. */
  bundleFile: string;
}

export const SYSTEM_ACCOUNT = "SYS";
export const REALM_ACCOUNT = "realm";

export function systemAccountState(publicKey: string, signingKey: string): AccountState {
  return accountDecider.evolve(accountDecider.initialState(SYSTEM_ACCOUNT), {
    type: "NatsAccountCreated", data: { name: SYSTEM_ACCOUNT, publicKey, signingKeys: [signingKey], limits: validateLimits({}), description: "system account", system: true },
  } as never);
}

export function realmAccountState(publicKey: string, signingKey: string): AccountState {
  return accountDecider.evolve(accountDecider.initialState(REALM_ACCOUNT), {
    type: "NatsAccountCreated", data: { name: REALM_ACCOUNT, publicKey, signingKeys: [signingKey], limits: validateLimits(JETSTREAM_UNLIMITED), description: "the realm's own services", system: false },
  } as never);
}

/**
 * `realm init` on a laptop: makes the operator identity key (sealed in `<dir>/operator-identity.bundle.json`
 * with scrypt + AES-256-GCM; used once here to sign the operator JWT, never stored in clear), an online
 * operator signing key, the system account `SYS` and the realm account `realm`, a system user and a realm
 * service user. Idempotent: a second call on the same dir returns what the first made (no new keys).
 */
export async function bootstrapOperator(dir: string, passphrase?: string, opts: { operatorName?: string } = {}): Promise<Bootstrap> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stateFile = join(dir, "operator.json");
  const bundleFile = join(dir, "operator-identity.bundle.json");
  const resolverDir = join(dir, "jwt");
  if (existsSync(stateFile)) {
    const state = JSON.parse(readFileSync(stateFile, "utf8")) as OperatorState;
    return {
      state, bundleFile,
      operator: operatorPart(state, resolverDir),
      systemCreds: readFileSync(join(dir, "sys.creds"), "utf8"),
      serviceCreds: readFileSync(join(dir, "realm-service.creds"), "utf8"),
    };
  }
  const keys = new KeyStore(dir);
  const generated = passphrase ? undefined : randomBytes(18).toString("base64url");
  const operatorName = opts.operatorName ?? "cim-realm";
  const opId = createOperator();
  const opPub = opId.getPublicKey();
  const opSk = createOperator();
  const sys = createAccount();
  const sysSk = createAccount();
  const realm = createAccount();
  const realmSk = createAccount();
  const sealed: SealedBundle = sealBundle(opId.getPublicKey(), seedOf(opId), passphrase ?? generated!);
  writeFileSync(bundleFile, JSON.stringify(sealed, null, 2), { mode: 0o600 });
  keys.put(opSk.getPublicKey(), seedOf(opSk));
  for (const k of [sys, sysSk, realm, realmSk]) keys.put(k.getPublicKey(), seedOf(k));
  const operatorJwt = await encodeOperator(operatorName, opId, { signing_keys: [opSk.getPublicKey()], system_account: sys.getPublicKey() } as never);
  opId.clear(); // the identity seed now exists only inside the sealed bundle
  const signer = { operatorPublicKey: opPub, signingKey: opSk };
  const sysState = systemAccountState(sys.getPublicKey(), sysSk.getPublicKey());
  const realmState = realmAccountState(realm.getPublicKey(), realmSk.getPublicKey());
  const resolve = { accountKey: (n: string) => n };
  const sysJwt = await signAccount(sysState, signer, resolve);
  const realmJwt = await signAccount(realmState, signer, resolve);
  const trust = { operatorJwt };
  validateAccountJwt(sysJwt, trust);
  validateAccountJwt(realmJwt, trust);
  const mkUser = async (name: string, acct: string, sk: string, accountJwt: string) => {
    const u = createUser();
    const now = Math.floor(Date.now() / 1000);
    const jwt = await signUser({ account: acct, name, kind: "service" }, u.getPublicKey(), acct, kpFromSeed(keys.seed(sk)), now, now + 365 * 86400);
    validateUserJwt(jwt, accountJwt, trust);
    return credsFile(jwt, seedOf(u));
  };
  const systemCreds = await mkUser("realm-sys", sys.getPublicKey(), sysSk.getPublicKey(), sysJwt);
  const serviceCreds = await mkUser("realm-services", realm.getPublicKey(), realmSk.getPublicKey(), realmJwt);
  writeFileSync(join(dir, "sys.creds"), systemCreds, { mode: 0o600 });
  writeFileSync(join(dir, "realm-service.creds"), serviceCreds, { mode: 0o600 });
  const state: OperatorState = {
    operatorName, operatorPublicKey: opPub, operatorJwt, operatorSigningKey: opSk.getPublicKey(),
    system: { name: SYSTEM_ACCOUNT, publicKey: sys.getPublicKey(), signingKey: sysSk.getPublicKey(), jwt: sysJwt },
    realm: { name: REALM_ACCOUNT, publicKey: realm.getPublicKey(), signingKey: realmSk.getPublicKey(), jwt: realmJwt },
  };
  writeFileSync(stateFile, JSON.stringify(state, null, 2), { mode: 0o600 });
  return { state, bundleFile, operator: operatorPart(state, resolverDir), systemCreds, serviceCreds, ...(generated ? { generatedPassphrase: generated } : {}) };
}

export function operatorPart(state: OperatorState, resolverDir: string): OperatorPart {
  return {
    operatorJwt: state.operatorJwt, systemAccount: state.system.publicKey, resolverDir,
    preload: { [state.system.publicKey]: state.system.jwt, [state.realm.publicKey]: state.realm.jwt }, allowDelete: true,
  };
}
