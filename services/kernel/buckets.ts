import type { NatsConnection } from "@nats-io/nats-core";
import { Kvm, type KV, type KvOptions } from "@nats-io/kv";

/**
 * The realm's KV buckets, opened in one place. On a site (docs/ARCHITECTURE.md "Sites") every bucket is a
 * mirror of the hub's bucket in the hub's JetStream domain: nats.js then reads the local copy and writes on
 * `$JS.<hub domain>.API.$KV.<bucket>.<key>`, which crosses the leaf link (`$KV.>` itself may not: nats-server
 * denies it between JetStream domains) and which the hub's realm account maps back to `$KV.>`
 * (`hubKvMappings`).
 */
export async function openBucket(nc: NatsConnection, name: string, opts: Partial<KvOptions> = {}): Promise<KV> {
  return new Kvm(nc).create(name, opts);
}

/** Binds to a bucket that exists (no stream info beyond nats.js's own). */
export async function bindBucket(nc: NatsConnection, name: string, opts: Partial<KvOptions> = {}): Promise<KV> {
  return new Kvm(nc).open(name, opts);
}

/** The subject a put of `key` is published on: the bucket's own, or on a site the hub's through its domain. */
export function writeSubject(kv: KV, key: string): string {
  // nats.js computes it (prefixes for mirrors and domains) in a method its types do not show (kv.js subjectForKey).
  return (kv as unknown as { subjectForKey(k: string, edit: boolean): string }).subjectForKey(key, true);
}

/**
 * The realm account's subject mappings on a hub: a site's bucket writes arrive on the hub's domain API
 * prefix and are stored in the hub's buckets. nats-server 2.9.10 does not map them itself (later servers
 * do), and an account JWT's mapping may not end in a wildcard: one mapping per key depth (a key of up to
 * `maxKeyTokens` dot-separated tokens; the realm's deepest has 4).
 */
export function hubKvMappings(hubDomain: string, maxKeyTokens = 8): { source: string; destination: string }[] {
  return Array.from({ length: maxKeyTokens }, (_, k) => {
    const n = k + 2; // the bucket, then the key's tokens
    const wild = Array.from({ length: n }, () => "*").join(".");
    const dest = Array.from({ length: n }, (_, i) => `{{wildcard(${i + 1})}}`).join(".");
    return { source: `$JS.${hubDomain}.API.$KV.${wild}`, destination: `$KV.${dest}` };
  });
}

/** True for the source of one of `hubKvMappings` (any hub domain): what a site's resolver must not apply. */
export const isHubKvMapping = (source: string): boolean => /^\$JS\.[^.]+\.API\.\$KV\./.test(source);
