import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createAccount, createOperator } from "@nats-io/jwt";
import type { OperatorPart } from "../../services/nats/config.js";
import { accountDecider, type AccountState } from "./domain/account.js";
import { JETSTREAM_UNLIMITED, validateLimits } from "./domain/validation.js";
import type { KeyPair } from "@nats-io/nkeys";
import type { RootSigner } from "../../services/kernel/trust.js";
import type { UserPermissions } from "./domain/validation.js";
import { kpFromSeed, nkeyFromSeed, seedOf, signAccount, signOperator, validateAccountJwt } from "./jwt.js";
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
  /** True when this call made the operator (first init). */
  created: boolean;
  /**
   * Set only on first init when no passphrase was given: the file (mode 0600) holding the generated
   * passphrase of the operator identity bundle. Move it offline; it is never printed.
   */
  generatedPassphraseFile?: string;
  /** Path of the encrypted operator identity bundle. */
  bundleFile: string;
}

/** A user of the realm account that names no permissions may do nothing (the account's default). */
export const NO_PERMISSIONS: UserPermissions = { pub: { allow: [], deny: [">"] }, sub: { allow: [], deny: [">"] } };

/** The operator identity key as the signer of the realm's trust document (nkeys sign Ed25519). */
export function operatorRootSigner(kp: KeyPair): RootSigner {
  return {
    publicKey: rawOfNkey(kp.getPublicKey()),
    nkey: kp.getPublicKey(),
    sign: (bytes) => kp.sign(bytes),
  };
}

/** The raw 32-byte Ed25519 key of a public nkey (prefix byte, key, CRC16; base32). */
export function rawOfNkey(nkey: string): Uint8Array {
  const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const ch of nkey) {
    value = ((value << 5) | B32.indexOf(ch)) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Uint8Array.from(out.slice(1, 33));
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
    type: "NatsAccountCreated", data: { name: REALM_ACCOUNT, publicKey, signingKeys: [signingKey], limits: validateLimits(JETSTREAM_UNLIMITED), description: "the realm's own services", system: false, defaultPermissions: NO_PERMISSIONS },
  } as never);
}

/**
 * `realm init` on a laptop: makes the operator identity key (sealed in `<dir>/operator-identity.bundle.json`
 * with scrypt + AES-256-GCM; used once here to sign the operator JWT, and handed to `onRootKey` to sign the
 * realm's trust document, never stored in clear), an online operator signing key, the system account `SYS`
 * and the realm account `realm` (whose users may do nothing unless their JWT says so). No user is made here:
 * the realm's own identities are issued with least privilege by realm-identities.ts. Idempotent: a second
 * call on the same dir returns what the first made (no new keys).
 */
export async function bootstrapOperator(dir: string, passphrase?: string, opts: { operatorName?: string; onRootKey?: (root: RootSigner) => void } = {}): Promise<Bootstrap> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stateFile = join(dir, "operator.json");
  const bundleFile = join(dir, "operator-identity.bundle.json");
  const resolverDir = join(dir, "jwt");
  if (existsSync(stateFile)) {
    const state = JSON.parse(readFileSync(stateFile, "utf8")) as OperatorState;
    return { state, bundleFile, created: false, operator: operatorPart(state, resolverDir) };
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
  const operatorJwt = signOperator(operatorName, nkeyFromSeed(seedOf(opId), { cache: false }), { signing_keys: [opSk.getPublicKey()], system_account: sys.getPublicKey() });
  opts.onRootKey?.(operatorRootSigner(opId));
  opId.clear(); // the identity seed now exists only inside the sealed bundle
  const signer = { operatorPublicKey: opPub, signingKey: kpFromSeed(seedOf(opSk)) };
  const sysState = systemAccountState(sys.getPublicKey(), sysSk.getPublicKey());
  const realmState = realmAccountState(realm.getPublicKey(), realmSk.getPublicKey());
  const resolve = { accountKey: (n: string) => n };
  const sysJwt = await signAccount(sysState, signer, resolve);
  const realmJwt = await signAccount(realmState, signer, resolve);
  const trust = { operatorJwt };
  validateAccountJwt(sysJwt, trust);
  validateAccountJwt(realmJwt, trust);
  const state: OperatorState = {
    operatorName, operatorPublicKey: opPub, operatorJwt, operatorSigningKey: opSk.getPublicKey(),
    system: { name: SYSTEM_ACCOUNT, publicKey: sys.getPublicKey(), signingKey: sysSk.getPublicKey(), jwt: sysJwt },
    realm: { name: REALM_ACCOUNT, publicKey: realm.getPublicKey(), signingKey: realmSk.getPublicKey(), jwt: realmJwt },
  };
  writeFileSync(stateFile, JSON.stringify(state, null, 2), { mode: 0o600 });
  let generatedPassphraseFile: string | undefined;
  if (generated) {
    generatedPassphraseFile = join(dir, "operator-passphrase");
    writeFileSync(generatedPassphraseFile, generated + "\n", { mode: 0o600 });
  }
  return { state, bundleFile, created: true, operator: operatorPart(state, resolverDir), ...(generatedPassphraseFile ? { generatedPassphraseFile } : {}) };
}

export function operatorPart(state: OperatorState, resolverDir: string): OperatorPart {
  return {
    operatorJwt: state.operatorJwt, systemAccount: state.system.publicKey, resolverDir,
    preload: { [state.system.publicKey]: state.system.jwt, [state.realm.publicKey]: state.realm.jwt }, allowDelete: true,
  };
}
