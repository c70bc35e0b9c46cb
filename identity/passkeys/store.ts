import { createHash } from "node:crypto";
import type { NatsConnection } from "@nats-io/nats-core";
import type { KV } from "@nats-io/kv";
import { openBucket } from "../../services/kernel/buckets.js";
import { CAS_HISTORY, KvGuard } from "../../services/kernel/kv-guard.js";

/** What a challenge was issued for: the WebAuthn ceremony, and who or which sign-in it is bound to. */
export type ChallengePurpose =
  /** Registration of a new passkey by a signed-in person. */
  | { kind: "register"; principal: string }
  /** Passkey as the first factor on the sign-in page of interaction `uid` (usernameless when no principal). */
  | { kind: "login"; uid: string; principal?: string }
  /** Passkey after the password of `principal` was right, on interaction `uid`. */
  | { kind: "second-factor"; uid: string; principal: string };

export interface ChallengeRecord {
  purpose: ChallengePurpose;
  expiresAt: string;
}

export const CHALLENGES_BUCKET = "realm_identity_passkey_challenges";
export const COUNTERS_BUCKET = "realm_identity_passkey_counters";
/** How long a challenge can be answered (WebAuthn's recommended ceremony timeout is 5 minutes). */
export const CHALLENGE_TTL_MS = 5 * 60_000;

const hashKey = (kind: string, v: string) => `${kind}.${createHash("sha256").update(v).digest("base64url")}`;
const USED = "used";

/**
 * The two things about passkeys that are not events, both in JetStream KV so every replica sees them:
 *
 * - Challenges (`realm_identity_passkey_challenges`, max age 5 minutes): one record per challenge, keyed by
 *   the SHA-256 of the challenge, with its purpose and binding. A challenge is used once: it is consumed
 *   with a compare-and-set (kv-guard.ts) to a `used` marker before the response is checked, so two answers
 *   to one challenge (a replay, two replicas) cannot both pass; the bucket's max age drops records for good.
 *   A challenge is random and public (the browser gets it), so the values are not sealed.
 * - Signature counters (`realm_identity_passkey_counters`): the last counter each credential reported, keyed
 *   by the SHA-256 of the credential id, raised with a compare-and-set (a clone racing the real
 *   authenticator on two replicas cannot both move it).
 */
export class PasskeyStore {
  private constructor(
    private readonly challenges: KV,
    private readonly challengeGuard: KvGuard,
    private readonly counters: KV,
    private readonly counterGuard: KvGuard,
  ) {}

  static async open(nc: NatsConnection, replicas: number): Promise<PasskeyStore> {
    const challenges = await openBucket(nc, CHALLENGES_BUCKET, { history: CAS_HISTORY, replicas, ttl: CHALLENGE_TTL_MS });
    const counters = await openBucket(nc, COUNTERS_BUCKET, { history: CAS_HISTORY, replicas });
    return new PasskeyStore(challenges, new KvGuard(nc, challenges, CHALLENGES_BUCKET), counters, new KvGuard(nc, counters, COUNTERS_BUCKET));
  }

  async issue(challenge: string, purpose: ChallengePurpose, now = new Date()): Promise<void> {
    const rec: ChallengeRecord = { purpose, expiresAt: new Date(now.getTime() + CHALLENGE_TTL_MS).toISOString() };
    await this.challenges.put(hashKey("c", challenge), JSON.stringify(rec));
  }

  /** The record of `challenge`, consumed; undefined when unknown, used already, expired, or lost a race. */
  async consume(challenge: string, now = new Date()): Promise<ChallengeRecord | undefined> {
    const key = hashKey("c", challenge);
    const e = await this.challenges.get(key);
    if (!e || e.operation !== "PUT" || e.string() === USED) return undefined;
    try {
      await this.challengeGuard.putIfRevision(key, USED, e.revision);
    } catch {
      return undefined;
    }
    const rec = JSON.parse(e.string()) as ChallengeRecord;
    return Date.parse(rec.expiresAt) > now.getTime() ? rec : undefined;
  }

  /** The last counter seen for a credential, with the revision to raise it from (0: none kept yet). */
  async counter(credentialId: string): Promise<{ value: number; revision: number } | undefined> {
    const e = await this.counters.get(hashKey("k", credentialId));
    if (!e || e.operation !== "PUT") return e ? { value: 0, revision: e.revision } : undefined;
    return { value: Number(e.string()), revision: e.revision };
  }

  /** Raises the counter from the revision read; false when another sign-in moved it first. */
  async raiseCounter(credentialId: string, value: number, revision: number): Promise<boolean> {
    try {
      await this.counterGuard.putIfRevision(hashKey("k", credentialId), String(value), revision);
      return true;
    } catch {
      return false;
    }
  }
}
