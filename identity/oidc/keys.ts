import { randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/nats-core";
import { Kvm, KvWatchInclude, type KV } from "@nats-io/kv";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from "jose";

/**
 * The OIDC signing keys and cookie keys, shared by every realm replica through the KV bucket
 * `realm_identity_oidc_keys` (private material: never in the event stream). `rotate` puts a new RS256 key
 * first (it signs from then on) and keeps the two previous ones in the JWKS so tokens they signed still verify.
 */
export const KEYS_BUCKET = "realm_identity_oidc_keys";
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
  private constructor(
    private readonly kv: KV,
    public material: KeyMaterial,
    private revision: number,
  ) {}

  static async open(nc: NatsConnection, replicas = 1): Promise<OidcKeys> {
    const kv = await new Kvm(nc).create(KEYS_BUCKET, { history: 1, replicas });
    for (;;) {
      const e = await kv.get("current");
      if (e && e.operation === "PUT") return new OidcKeys(kv, e.json<KeyMaterial>(), e.revision);
      const material: KeyMaterial = { jwks: { keys: [await newSigningKey()] }, cookieKeys: [randomBytes(32).toString("base64url")], rotatedAt: new Date().toISOString() };
      try {
        const revision = await kv.create("current", JSON.stringify(material));
        return new OidcKeys(kv, material, revision);
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
    this.revision = await this.kv.update("current", JSON.stringify(material), this.revision);
    this.material = material;
    return material;
  }

  /** Follows rotations made by other replicas. */
  async watch(onChange: (m: KeyMaterial) => void): Promise<() => void> {
    const w = await this.kv.watch({ key: "current", include: KvWatchInclude.UpdatesOnly });
    void (async () => {
      for await (const e of w) {
        if (e.operation !== "PUT" || e.revision <= this.revision) continue;
        this.material = e.json<KeyMaterial>();
        this.revision = e.revision;
        onChange(this.material);
      }
    })();
    return () => w.stop();
  }
}
