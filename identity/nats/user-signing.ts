import type { UserSpec } from "./domain/user.js";
import { credsFile, newNkey, nkeyFromSeed, userJwt } from "./jwt.js";
import type { Signer } from "./jwt-encode.js";

/** A new user's key, JWT and creds file: what user.create and user.createMany hand out. */
export interface SignedUser {
  publicKey: string;
  jwt: string;
  creds: string;
  expiresAt: number;
}

/** Users of one account to sign at one time `iat`, each with the (public) signing key that signs it. */
export interface UserSigningJob {
  accountPublicKey: string;
  iat: number;
  users: { spec: UserSpec; signerKey: string; expiresAt: number }[];
  /** The seeds of the signing keys named (public key -> seed), when the job is signed away from the key store. */
  seeds?: Record<string, string>;
}

/**
 * Makes each user's key (node:crypto Ed25519) and signs its JWT with its signing key. Pure but for the
 * random keys: it runs in the service's thread or in a signing worker (signing-pool.ts), which gets the
 * signing keys' seeds in `job.seeds`.
 */
export function signUsers(job: UserSigningJob, signer: (publicKey: string) => Signer = (k) => seedSigner(job, k)): SignedUser[] {
  return job.users.map((u) => {
    const key = newNkey("U");
    const jwt = userJwt(u.spec, key.publicKey, job.accountPublicKey, signer(u.signerKey), job.iat, u.expiresAt);
    return { publicKey: key.publicKey, jwt, creds: credsFile(jwt, key.seed), expiresAt: u.expiresAt };
  });
}

function seedSigner(job: UserSigningJob, publicKey: string): Signer {
  const seed = job.seeds?.[publicKey];
  if (!seed) throw new Error(`no seed for signing key ${publicKey}`);
  return nkeyFromSeed(seed);
}
