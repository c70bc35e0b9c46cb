import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { JetStreamApiError, type JetStreamManager } from "@nats-io/jetstream";
import { RealmError } from "./errors.js";
import { checkManager, firstOnSubjectAfter, forkProne } from "./store.js";

/**
 * Compare-and-set on a KV key that holds on every server the realm runs on: `put` with the expected
 * revision (0: the key has no entry), and on a replicated bucket of a nats-server before 2.9.21, a check that
 * this write is the first on its key after that revision. Those servers store two concurrent writes that
 * expect the same revision (nats-server#4320); without the check both writers would be told they won, and
 * the one-time uses built on this (an OIDC code redeemed, a TOTP step accepted) would happen twice.
 * The later writer gets CONFLICT; readers of the key see the last write, as always in a KV.
 */
/**
 * Revisions per key a bucket with guarded compare-and-sets keeps: the check reads the first write after the
 * expected revision, which a bucket keeping one revision per key would already have dropped for the later
 * write (two winners on 2.9.10 R3 with history 1). Four covers a few concurrent writers of one key.
 */
export const CAS_HISTORY = 4;

export class KvGuard {
  private prone: Promise<boolean> | undefined;
  private jsm: Promise<JetStreamManager> | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly kv: KV,
    readonly bucket: string,
  ) {}

  async putIfRevision(key: string, value: Uint8Array | string, previous: number): Promise<number> {
    let rev: number;
    try {
      rev = await this.kv.put(key, value, { previousSeq: previous });
    } catch (err) {
      if (err instanceof JetStreamApiError && (err.code === 10071 || err.code === 10164)) throw new RealmError("CONFLICT", `${this.bucket}: ${key} changed since revision ${previous}`);
      throw err;
    }
    if (!(await (this.prone ??= this.isProne()))) return rev;
    const jsm = await (this.jsm ??= checkManager(this.nc));
    const first = await firstOnSubjectAfter(jsm, `KV_${this.bucket}`, `$KV.${this.bucket}.${key}`, previous, `${this.bucket}: the write of ${key}`);
    if (first !== rev) throw new RealmError("CONFLICT", `${this.bucket}: ${key} was written by another writer at the same time (nats-server#4320)`);
    return rev;
  }

  private async isProne(): Promise<boolean> {
    const status = await this.kv.status();
    const prone = forkProne(this.nc, status.replicas);
    if (prone && status.history < 2) throw new RealmError("UNAVAILABLE", `${this.bucket} keeps one revision per key: on this replicated bucket of nats-server before 2.9.21 a compare-and-set cannot be checked; let realm up provision it (history ${CAS_HISTORY})`);
    return prone;
  }
}
