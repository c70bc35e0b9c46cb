import type { KV } from "@nats-io/kv";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Adapter, AdapterPayload } from "oidc-provider";

/**
 * oidc-provider adapter over the JetStream KV bucket `realm_identity_oidc`, so every realm replica can
 * serve every step of a flow (a code issued by one, redeemed at another). Entries carry their own expiry
 * (`exp`, epoch seconds) checked on every read; the bucket's max age (the longest TTL) lets the server drop
 * them for good. nats-server 2.9 has no per-message TTL, hence the field.
 *
 * Keys: `<Model>.<id>`, `uid.<uid>` and `usercode.<code>` (lookups), `grant.<grantId>.<Model>.<id>` (what
 * revokeByGrantId deletes). Ids are base64url-encoded: KV keys allow [-/_=.A-Za-z0-9] only.
 */
export const OIDC_BUCKET = "realm_identity_oidc";
export const OIDC_BUCKET_MAX_AGE_MS = 15 * 24 * 3600_000;

const enc = (s: string) => Buffer.from(s, "utf8").toString("base64url");

interface Stored {
  payload: AdapterPayload;
  exp: number | null;
}

export async function openOidcBucket(nc: NatsConnection, replicas = 1): Promise<KV> {
  return new Kvm(nc).create(OIDC_BUCKET, { history: 1, replicas, ttl: OIDC_BUCKET_MAX_AGE_MS });
}

/** Client metadata comes from the directory (clients registered by command), never from this bucket. */
export type ClientSource = (id: string) => AdapterPayload | undefined;

export function kvAdapter(kv: KV, clients: ClientSource): new (name: string) => Adapter {
  const now = () => Math.floor(Date.now() / 1000);

  async function read(key: string): Promise<{ stored: Stored; revision: number } | undefined> {
    const e = await kv.get(key);
    if (!e || e.operation !== "PUT") return undefined;
    const stored = e.json<Stored>();
    if (stored.exp !== null && stored.exp <= now()) return undefined;
    return { stored, revision: e.revision };
  }

  return class KvAdapter implements Adapter {
    constructor(private readonly name: string) {}

    private key(id: string): string {
      return `${this.name}.${enc(id)}`;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      const exp = expiresIn ? now() + expiresIn : null;
      const key = this.key(id);
      await kv.put(key, JSON.stringify({ payload, exp } satisfies Stored));
      const index = JSON.stringify({ payload: { id } as AdapterPayload, exp } satisfies Stored);
      if (payload.grantId) await kv.put(`grant.${enc(payload.grantId)}.${key}`, index);
      if (payload.uid) await kv.put(`uid.${enc(payload.uid)}`, index);
      if (payload.userCode) await kv.put(`usercode.${enc(payload.userCode)}`, index);
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.name === "Client") return clients(id);
      return (await read(this.key(id)))?.stored.payload;
    }

    private async findVia(indexKey: string): Promise<AdapterPayload | undefined> {
      const ix = await read(indexKey);
      const id = ix?.stored.payload.id;
      return typeof id === "string" ? this.find(id) : undefined;
    }

    findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return this.findVia(`uid.${enc(uid)}`);
    }

    findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return this.findVia(`usercode.${enc(userCode)}`);
    }

    /** Compare-and-set on the revision read: two replicas redeeming one code cannot both succeed. */
    async consume(id: string): Promise<void> {
      const key = this.key(id);
      const r = await read(key);
      if (!r) return;
      r.stored.payload.consumed = now();
      await kv.update(key, JSON.stringify(r.stored), r.revision);
    }

    async destroy(id: string): Promise<void> {
      await kv.delete(this.key(id));
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      const prefix = `grant.${enc(grantId)}`;
      const keys = await kv.keys(`${prefix}.>`);
      const doomed: string[] = [];
      for await (const k of keys) doomed.push(k);
      for (const k of doomed) {
        await kv.delete(k.slice(prefix.length + 1));
        await kv.delete(k);
      }
    }
  };
}
