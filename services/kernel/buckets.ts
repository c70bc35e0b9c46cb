import type { NatsConnection } from "@nats-io/nats-core";
import { Kvm, type KV, type KvOptions } from "@nats-io/kv";

/**
 * Opens a realm KV bucket (made if missing and the connection may). On a site (docs/ARCHITECTURE.md
 * "Sites") every bucket is a mirror of the hub's bucket in the hub's JetStream domain: reads stay local
 * (so the site answers while the hub is away) and writes must reach the hub. nats.js sends a mirror's
 * writes to `<mirror's external API>.$KV.<bucket>.<key>`, which nats-server 2.9 does not route to the
 * origin; the origin's own `$KV.<bucket>.<key>` subjects are what the leaf link carries to the hub's
 * stream. So a mirrored bucket writes on those.
 */
export async function openBucket(nc: NatsConnection, name: string, opts: Partial<KvOptions> = {}): Promise<KV> {
  return editsToOrigin(await new Kvm(nc).create(name, opts));
}

/** Binds to a bucket that exists (no stream info beyond nats.js's own), writes routed as in openBucket. */
export async function bindBucket(nc: NatsConnection, name: string, opts: Partial<KvOptions> = {}): Promise<KV> {
  return editsToOrigin(await new Kvm(nc).open(name, opts));
}

function editsToOrigin(kv: KV): KV {
  // nats.js keeps the write prefix in a field its types do not show (kv.js initializePrefixes).
  const impl = kv as unknown as { prefix?: string; editPrefix?: string };
  if (impl.prefix && impl.editPrefix && impl.editPrefix !== impl.prefix && impl.editPrefix.endsWith(`.${impl.prefix}`)) impl.editPrefix = impl.prefix;
  return kv;
}
