import { createHash } from "node:crypto";
import type { NatsConnection } from "@nats-io/nats-core";
import { DeliverPolicy, JetStreamApiError, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { Base64UrlPaddedCodec, Objm, StorageType } from "@nats-io/obj";
import { invalid, notFound, RealmError } from "../services/kernel/errors.js";
import { DNS_UPLOADS_BUCKET, DNS_UPLOADS_STREAM } from "./contract.js";

/**
 * The JetStream Object Store bucket master files travel through when they are too big for one NATS message:
 * the CLI puts a file there (`realm zone import`), `zone.import` names it (`upload`), the dns context reads
 * it, imports it and deletes it. Objects live an hour at most (a file nobody imported is dropped), the
 * bucket holds at most 2 GiB.
 *
 * The dns context reads with a pull consumer and deletes by purging, both on the bucket's stream only: its
 * NATS identity may do nothing else with it (no push consumers, no publishing into the bucket).
 */
export const UPLOADS_TTL_MS = 60 * 60_000;
export const UPLOADS_MAX_BYTES = 2 * 1024 ** 3;
/** The stream behind the bucket (what the permission table names). */

/** The bucket's options (Object Store `ttl` is in nanoseconds). */
export function uploadsBucketOptions(replicas = 1) {
  return { description: "master files on their way into zone.import (deleted once imported)", storage: StorageType.File, ttl: UPLOADS_TTL_MS * 1_000_000, max_bytes: UPLOADS_MAX_BYTES, replicas };
}

/** Creates the bucket when missing (`realm up`'s provisioning, or a context whose identity may create streams). */
export async function provisionUploadsBucket(nc: NatsConnection, opts: { replicas?: number | undefined } = {}): Promise<void> {
  await new Objm(nc).create(DNS_UPLOADS_BUCKET, uploadsBucketOptions(opts.replicas));
}

/** What the Object Store records of an object (its metadata message). */
interface ObjectMeta {
  name: string;
  nuid: string;
  size: number;
  chunks: number;
  digest: string;
  deleted?: boolean;
}

export class UploadBucket {
  private constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
  ) {}

  /**
   * The bucket, made first if it is missing and this connection may make it (development; `realm up`
   * provisions it). Only stream info is asked when it exists, so a least-privilege identity asks nothing
   * it may not.
   */
  static async open(nc: NatsConnection, opts: { replicas?: number | undefined } = {}): Promise<UploadBucket> {
    const jsm = await jetstreamManager(nc, { checkAPI: false });
    try {
      await jsm.streams.info(DNS_UPLOADS_STREAM);
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === 10059 /* stream not found */)) throw err;
      await provisionUploadsBucket(nc, opts);
    }
    return new UploadBucket(jetstream(nc, { checkAPI: false }), jsm);
  }

  private metaSubject(name: string): string {
    return `$O.${DNS_UPLOADS_BUCKET}.M.${Base64UrlPaddedCodec.encode(name)}`;
  }

  private async meta(name: string): Promise<{ meta: ObjectMeta; seq: number } | null> {
    const m = await this.jsm.streams.getMessage(DNS_UPLOADS_STREAM, { last_by_subj: this.metaSubject(name) });
    if (!m) return null;
    const meta = m.json<ObjectMeta>();
    return meta.deleted ? null : { meta, seq: m.seq };
  }

  /**
   * The bytes of upload `name` in order, read with a pull consumer a few chunks at a time (memory stays
   * bounded whatever the size). After the last chunk the whole is checked against the digest the uploader
   * recorded: a short or altered object throws INTEGRITY, so nothing read from it gets appended.
   */
  async *read(name: string, maxBytes: number): AsyncGenerator<Uint8Array> {
    const found = await this.meta(name);
    if (!found) throw notFound(`no upload named ${name} in the ${DNS_UPLOADS_BUCKET} bucket (not finished, already imported, or older than ${UPLOADS_TTL_MS / 60_000} minutes)`);
    const { meta, seq } = found;
    if (meta.size > maxBytes) throw invalid(`upload ${name} is ${meta.size} bytes, more than the ${maxBytes} a zone import takes`);
    const hash = createHash("sha256");
    let chunks = 0;
    let bytes = 0;
    if (meta.chunks > 0) {
      const consumer = await this.js.consumers.get(DNS_UPLOADS_STREAM, { filter_subjects: `$O.${DNS_UPLOADS_BUCKET}.C.${meta.nuid}`, deliver_policy: DeliverPolicy.All });
      const messages = await consumer.consume({ max_messages: 8 });
      try {
        for await (const m of messages) {
          // The chunks precede their metadata message; anything after it is not this object's.
          if (m.seq > seq) break;
          chunks++;
          bytes += m.data.length;
          hash.update(m.data);
          yield m.data;
          if (chunks === meta.chunks || m.info.pending === 0) break;
        }
      } finally {
        await messages.close().catch(() => undefined);
      }
    }
    const digest = `SHA-256=${hash.digest("base64").replace(/\+/g, "-").replace(/\//g, "_")}`;
    if (chunks !== meta.chunks || bytes !== meta.size || digest !== meta.digest) {
      throw new RealmError("INTEGRITY", `upload ${name} does not match what its uploader recorded (${chunks}/${meta.chunks} chunks, ${bytes}/${meta.size} bytes${digest !== meta.digest ? ", digest differs" : ""})`);
    }
  }

  /** Deletes upload `name` (its chunks and its metadata); nothing when it is gone already. */
  async remove(name: string): Promise<void> {
    const found = await this.meta(name);
    if (!found) return;
    await this.jsm.streams.purge(DNS_UPLOADS_STREAM, { filter: `$O.${DNS_UPLOADS_BUCKET}.C.${found.meta.nuid}` });
    await this.jsm.streams.purge(DNS_UPLOADS_STREAM, { filter: this.metaSubject(name) });
  }
}
