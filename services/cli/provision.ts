import type { NatsConnection } from "@nats-io/nats-core";
import { JetStreamApiError, jetstreamManager, StorageType, type JetStreamManager, type StreamConfig, type StreamInfo } from "@nats-io/jetstream";
import { RealmError } from "../kernel/errors.js";
import { Kvm } from "@nats-io/kv";
import { provisionEventStream } from "../kernel/store.js";
import { EVENT_CONTEXTS, REALM_BUCKETS, REALM_STREAMS } from "./identities.js";
import { provisionUploadsBucket } from "../../dns/uploads.js";
import { DNS_UPLOADS_STREAM } from "../../dns/contract.js";

/**
 * Makes the realm's streams and KV buckets before any context starts: every event stream with
 * `deny_delete`/`deny_purge` (and those flags added to a stream made before them), every bucket with its
 * options, each with `replicas` (moved to them when it exists with others). Run by `realm up` with a short-lived provisioning identity (the contexts' own identities may only
 * read stream info), or with the given creds against an external NATS.
 */
export async function provisionRealm(nc: NatsConnection, opts: { replicas?: number | undefined; mirrorOf?: string | undefined } = {}): Promise<void> {
  const jsm = await jetstreamManager(nc);
  if (opts.mirrorOf) return provisionSite(jsm, opts.mirrorOf);
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

/** The realm's streams (REALM_STREAMS) with what a copy of each must keep: a bucket's history and max age. */
function realmStreams(): { name: string; maxPerSubject?: number; maxAgeNs?: number }[] {
  return REALM_STREAMS.map((name) => {
    const b = REALM_BUCKETS.find((x) => `KV_${x.name}` === name);
    return { name, ...(b ? { maxPerSubject: b.opts.history, ...(b.opts.ttl ? { maxAgeNs: b.opts.ttl * 1_000_000 } : {}) } : {}) };
  });
}

/**
 * A site's streams (docs/ARCHITECTURE.md "Sites"): each a mirror of the hub's stream of the same name in the
 * hub's JetStream domain (`hubApi`, `$JS.<domain>.API`), read locally, written nowhere here (mirrors take
 * no subjects, so what the site's contexts publish travels the leaf link to the hub's streams). A stream
 * of that name that is not such a mirror is refused: this store holds a realm of its own.
 */
async function provisionSite(jsm: JetStreamManager, hubApi: string): Promise<void> {
  for (const s of realmStreams()) {
    let existing: StreamInfo | undefined;
    try {
      existing = await jsm.streams.info(s.name);
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === 10059 /* stream not found */)) throw err;
    }
    if (existing) {
      const m = existing.config.mirror;
      if (m?.name === s.name && m.external?.api === hubApi) continue;
      throw new RealmError("VALIDATION", `stream ${s.name} on this site's nats-server is not a mirror of the hub's (${hubApi}): the data dir's JetStream store holds a realm of its own; start the site on a new data dir`);
    }
    await jsm.streams.add({
      name: s.name,
      storage: StorageType.File,
      mirror: { name: s.name, external: { api: hubApi, deliver: "" } },
      // Direct gets answered by this copy, for this site; not mirror_direct, which would let it answer the
      // hub's own direct gets with a copy that may lag.
      allow_direct: true,
      deny_delete: true,
      deny_purge: s.name !== DNS_UPLOADS_STREAM,
      ...(s.maxPerSubject ? { max_msgs_per_subject: s.maxPerSubject } : {}),
      ...(s.maxAgeNs ? { max_age: s.maxAgeNs } : {}),
    } as Partial<StreamConfig> & { name: string });
  }
}
