import type { NatsConnection } from "@nats-io/nats-core";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { provisionEventStream } from "../kernel/store.js";
import { EVENT_CONTEXTS, REALM_BUCKETS } from "./identities.js";
import { provisionUploadsBucket } from "../../dns/uploads.js";
import { DNS_UPLOADS_STREAM } from "../../dns/contract.js";

/**
 * Makes the realm's streams and KV buckets before any context starts: every event stream with
 * `deny_delete`/`deny_purge` (and those flags added to a stream made before them), every bucket with its
 * options, each with `replicas` (moved to them when it exists with others). Run by `realm up` with a short-lived provisioning identity (the contexts' own identities may only
 * read stream info), or with the given creds against an external NATS.
 */
export async function provisionRealm(nc: NatsConnection, opts: { replicas?: number | undefined } = {}): Promise<void> {
  const jsm = await jetstreamManager(nc);
  for (const c of EVENT_CONTEXTS) await provisionEventStream(jsm, c, opts);
  const kvm = new Kvm(nc);
  for (const b of REALM_BUCKETS) {
    await kvm.create(b.name, { ...b.opts, replicas: opts.replicas ?? 1 });
    await ensureReplicas(jsm, `KV_${b.name}`, opts.replicas, b.opts.history);
  }
  await provisionUploadsBucket(nc, opts);
  await ensureReplicas(jsm, DNS_UPLOADS_STREAM, opts.replicas);
}

/** A bucket made before `--replicas` changed keeps its replicas until told: move it (nats-server copies the data). */
async function ensureReplicas(jsm: JetStreamManager, stream: string, replicas: number | undefined, history?: number): Promise<void> {
  const info = await jsm.streams.info(stream);
  const want = { num_replicas: replicas ?? info.config.num_replicas, max_msgs_per_subject: history ?? info.config.max_msgs_per_subject };
  if (info.config.num_replicas !== want.num_replicas || info.config.max_msgs_per_subject !== want.max_msgs_per_subject) await jsm.streams.update(stream, { ...info.config, ...want });
}
