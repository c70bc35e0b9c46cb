import { randomBytes } from "node:crypto";
import { openBucket } from "../../services/kernel/buckets.js";
import type { NatsConnection } from "@nats-io/nats-core";
import { KvWatchInclude, type KV, type KvEntry } from "@nats-io/kv";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from "jose";
import type { Sealer } from "../../services/kernel/seal.js";
import { CAS_HISTORY, KvGuard } from "../../services/kernel/kv-guard.js";
import { followKv, type KvFollowLog } from "../../services/kernel/kv-follow.js";

/**
 * The OIDC signing keys and cookie keys, shared by every realm replica through the KV bucket
 * `realm_identity_oidc_keys` (private material: never in the event stream). `rotate` puts a new RS256 key
 * first (it signs from then on) and keeps the two previous ones in the JWKS so tokens they signed still verify.
 * The one entry, `current`, is sealed (context `realm_identity_oidc_keys/current`): the private JWKs and
 * cookie keys are worthless to whoever reads the JetStream store without the realm's seal key.
 */
export const KEYS_BUCKET = "realm_identity_oidc_keys";
const KEY = "current";
const CONTEXT = `${KEYS_BUCKET}/${KEY}`;
const KEEP = 3;

export interface KeyMaterial {
  jwks: { keys: JWK[] };
  cookieKeys: string[];
  rotatedAt: string;
}

export async function newSigningKey(): Promise<JWK> {
  const { privateKey } = await generateKeyPair("RS256", { modulusLength: 2048, extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, alg: "RS256", use: "sig", kid: await calculateJwkThumbprint(jwk) };
}

export class OidcKeys {
  private readonly guard: KvGuard;

  private constructor(
    nc: NatsConnection,
    private readonly kv: KV,
    private readonly sealer: Sealer,
    public material: KeyMaterial,
    private revision: number,
  ) {
    this.guard = new KvGuard(nc, kv, KEYS_BUCKET);
  }

  /** Reads the keys, or makes the first ones; a key that does not open under `sealer` is INTEGRITY. */
  static async open(nc: NatsConnection, replicas: number, sealer: Sealer): Promise<OidcKeys> {
    const kv = await openBucket(nc, KEYS_BUCKET, { history: CAS_HISTORY, replicas });
    for (;;) {
      const e = await kv.get(KEY);
      if (e && e.operation === "PUT") return new OidcKeys(nc, kv, sealer, unseal(sealer, e), e.revision);
      const material: KeyMaterial = { jwks: { keys: [await newSigningKey()] }, cookieKeys: [randomBytes(32).toString("base64url")], rotatedAt: new Date().toISOString() };
      try {
        const revision = await new KvGuard(nc, kv, KEYS_BUCKET).putIfRevision(KEY, sealer.seal(JSON.stringify(material), CONTEXT), e?.revision ?? 0);
        return new OidcKeys(nc, kv, sealer, material, revision);
      } catch {
        // Another replica created them first: read theirs.
      }
    }
  }

  /** Public JWKs (what /jwks serves), newest first. */
  get publicKeys(): JWK[] {
    return this.material.jwks.keys.map(({ kty, n, e, kid, alg, use }) => ({ kty, n, e, kid, alg, use }));
  }

  async rotate(): Promise<KeyMaterial> {
    const key = await newSigningKey();
    const material: KeyMaterial = { ...this.material, jwks: { keys: [key, ...this.material.jwks.keys].slice(0, KEEP) }, rotatedAt: new Date().toISOString() };
    this.revision = await this.guard.putIfRevision(KEY, this.sealer.seal(JSON.stringify(material), CONTEXT), this.revision);
    this.material = material;
    return material;
  }

  /**
   * Follows rotations made by other replicas. An entry that does not open (written with another seal key)
   * is reported to `onError` and skipped: this replica keeps signing with the keys it has.
   */
  async watch(onChange: (m: KeyMaterial) => void, onError: (err: unknown) => void = () => undefined, log?: KvFollowLog): Promise<() => void> {
    // Reopened after an outage from the revision after the last one seen (followKv): a rotation made
    // meanwhile is not missed; the entry at this.revision is skipped below.
    return followKv(
      KEYS_BUCKET,
      (after) => this.kv.watch({ key: KEY, include: KvWatchInclude.UpdatesOnly, resumeFromRevision: (after ?? this.revision) + 1 }),
      (e) => {
        if (e.operation !== "PUT" || e.revision <= this.revision) return;
        try {
          this.material = unseal(this.sealer, e);
        } catch (err) {
          onError(err);
          return;
        }
        this.revision = e.revision;
        onChange(this.material);
      },
      log,
    );
  }
}

function unseal(sealer: Sealer, e: KvEntry): KeyMaterial {
  return JSON.parse(sealer.openString(e.string(), CONTEXT)) as KeyMaterial;
}
