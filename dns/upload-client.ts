import { createHash, randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { errors as natsErrors } from "@nats-io/nats-core";
import { jetstream } from "@nats-io/jetstream";
import { Objm, setSha256Backend } from "@nats-io/obj";
import { RealmError } from "../services/kernel/errors.js";
import { connectRealm } from "../services/cli/connection.js";
import { DNS_UPLOADS_BUCKET } from "./contract.js";

/** An upload the dns context can import: its name in the bucket and the file's SHA-256 (hex). */
export interface Upload {
  name: string;
  sha256: string;
  bytes: number;
}

/**
 * Puts a master file into the realm's uploads bucket (uploads.ts) for `zone.import` to name. The file is
 * streamed from disk in Object Store chunks (128 KiB) and hashed on the way; the object's name is the zone
 * and a random id, so two imports never share one. Needs NATS creds that may put into the bucket (the
 * local operator's do); others get FORBIDDEN with the HTTP route to use instead.
 */
export async function uploadZoneFile(conn: { nats?: string | undefined; creds?: string | undefined }, zone: string, file: string): Promise<Upload> {
  // The Object Store client hashes what it puts; its default is a JavaScript SHA-256, several times slower.
  setSha256Backend("native");
  const nc = await connectRealm({ ...(conn.nats ? { nats: conn.nats } : {}), ...(conn.creds ? { creds: conn.creds } : {}), name: "realm-cli dns upload" });
  try {
    // No JetStream account check ($JS.API.INFO): the operator's creds reach only this bucket's stream.
    const os = await new Objm(jetstream(nc, { checkAPI: false, timeout: 30_000 })).open(DNS_UPLOADS_BUCKET, false);
    const name = `${zone}/${randomUUID()}`;
    const hash = createHash("sha256");
    let bytes = 0;
    const pieces = createReadStream(file, { highWaterMark: 128 * 1024 })[Symbol.asyncIterator]();
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        const r = (await pieces.next()) as IteratorResult<Buffer>;
        if (r.done) return c.close();
        hash.update(r.value);
        bytes += r.value.length;
        c.enqueue(new Uint8Array(r.value.buffer, r.value.byteOffset, r.value.length));
      },
    });
    await os.put({ name, description: `master file for ${zone}` }, body);
    return { name, sha256: hash.digest("hex"), bytes };
  } catch (err) {
    throw asRealmError(err);
  } finally {
    await nc.close().catch(() => undefined);
  }
}

function asRealmError(err: unknown): unknown {
  if (err instanceof RealmError) return err;
  const text = err instanceof Error ? `${err.message} ${err.cause instanceof Error ? err.cause.message : ""}` : String(err);
  if (err instanceof natsErrors.PermissionViolationError || /permission/i.test(text)) {
    return new RealmError("FORBIDDEN", `these NATS creds may not put into the ${DNS_UPLOADS_BUCKET} bucket (the local operator's may); or send the file over HTTP: POST /api/dns/zones/{zone}/file`);
  }
  if (/stream not found|no responders/i.test(text)) return new RealmError("UNAVAILABLE", `the realm has no ${DNS_UPLOADS_BUCKET} bucket (realm up provisions it)`);
  return err;
}
