import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import type { NatsConnection } from "@nats-io/nats-core";
import { realmContexts } from "./audit-all.js";
import { CHECKPOINT_AGGREGATE, CHECKPOINT_CONTEXT, CheckpointEvents, checkpointSubject, type CheckpointData } from "./checkpoint.js";
import { newId } from "./envelope.js";
import { answers } from "./nats-reachable.js";
import { Projection, type ProblemLog, type QuarantinedEvent } from "./projection.js";
import type { SnapshotOptions } from "./projection-snapshot.js";
import { EventStore, type AggregatePosition } from "./store.js";
import type { RealmTrust } from "./trust.js";

export interface AuditorOptions {
  log?: ProblemLog | undefined;
  /** Checkpoint a stream that moved at most this often. Default 5 minutes. */
  intervalMs?: number;
  /** ... or as soon as it moved by this many messages. Default 10,000. */
  everyMessages?: number;
  /** Where the latest checkpoint of each stream is also kept, outside NATS (JSON). */
  recordFile?: string | undefined;
  /** Snapshots of the auditor's projections (projection-snapshot.ts); default on, `false` off. */
  snapshots?: false | SnapshotOptions;
}

/** Reads the auditor's local record of its latest checkpoints (stream -> checkpoint). */
export function readCheckpointRecord(file: string | undefined): Record<string, CheckpointData> {
  if (!file || !existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Record<string, CheckpointData>;
  } catch {
    return {};
  }
}

/**
 * The realm's auditor: follows every context stream with a verifying projection that keeps no read model,
 * and appends signed checkpoints (checkpoint.ts) to REALM_REALM when a stream has moved, every
 * `intervalMs` or `everyMessages`, and when it stops. It starts from its newest snapshot of each stream
 * (or from zero) and trusts the latest checkpoint beyond it, so a restart verifies only what came after.
 */
export class Auditor {
  private readonly followed = new Map<string, { projection: Projection<null>; ready: Promise<void>; position: AggregatePosition; checkpointed: CheckpointData | undefined; atMs: number }>();
  private timer: NodeJS.Timeout | undefined;
  private busy: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly nc: NatsConnection,
    private readonly trust: RealmTrust,
    private readonly store: EventStore,
    private readonly opts: AuditorOptions,
  ) {}

  static async start(nc: NatsConnection, trust: RealmTrust, opts: AuditorOptions = {}): Promise<Auditor> {
    const store = await EventStore.open(nc, CHECKPOINT_CONTEXT, { trust });
    const a = new Auditor(nc, trust, store, opts);
    await a.followNew();
    a.timer = setInterval(() => void a.tick(), 5_000);
    a.timer.unref();
    return a;
  }

  /**
   * Starts following streams that appeared since the last look. Catching up runs in the background (a
   * long stream with no checkpoint yet is verified event by event); checkpoints wait for it.
   */
  private async followNew(): Promise<void> {
    for (const context of await realmContexts(this.nc)) {
      if (context === CHECKPOINT_CONTEXT || this.followed.has(context)) continue;
      const store = await EventStore.open(this.nc, context, { trust: this.trust });
      // Keeps no read model; its snapshots (the realm's, signed by the realm key) carry the chain heads, the
      // problems and the stream digest, so a restart verifies only what came after the newest one.
      const projection = new Projection<null>(store, { name: `audit-${context}`, version: 1, initial: () => null, apply: (s) => s, snapshot: { owner: CHECKPOINT_CONTEXT, encode: () => [], decode: () => null } }, { log: this.opts.log, ...(this.opts.snapshots !== undefined ? { snapshots: this.opts.snapshots } : {}) });
      const position = await this.checkpointPosition(store.stream);
      const ready = projection.start();
      ready.catch((err: unknown) => this.opts.log?.error({ context, err: err instanceof Error ? err.message : String(err) }, "auditor: cannot follow stream"));
      this.followed.set(context, { projection, ready, position, checkpointed: undefined, atMs: Date.now() });
    }
  }

  /** Where the checkpoint chain of a stream ends: its verified tail (one read), else a full load. */
  private async checkpointPosition(stream: string): Promise<AggregatePosition> {
    const last = await this.store.jsm.streams.getMessage(this.store.stream, { last_by_subj: checkpointSubject(stream) }).catch(() => null);
    if (!last) return { version: 0, lastSeq: 0, lastCid: null };
    const r = this.store.chainVerifier().verify(last.seq, last.subject, last.data, { chain: false });
    if ("event" in r) return { version: r.event.version, lastSeq: last.seq, lastCid: r.event.cid };
    return this.store.position({ type: CHECKPOINT_AGGREGATE, id: stream });
  }

  private tick(): Promise<unknown> {
    const every = this.opts.everyMessages ?? 10_000;
    const interval = this.opts.intervalMs ?? 300_000;
    this.busy = this.busy.then(async () => {
      await this.followNew();
      for (const [context, f] of this.followed) {
        const moved = f.projection.lastSeq - (f.checkpointed?.seq ?? 0);
        if (moved > 0 && (moved >= every || Date.now() - f.atMs >= interval)) await this.write(context);
      }
    }).catch((err: unknown) => this.opts.log?.error({ err: err instanceof Error ? err.message : String(err) }, "auditor: checkpoint failed"));
    return this.busy;
  }

  private async write(context: string): Promise<CheckpointData | undefined> {
    const f = this.followed.get(context);
    if (!f) return undefined;
    await f.ready;
    if (f.projection.status !== "live" || f.projection.lastSeq === 0 || f.projection.lastSeq === f.checkpointed?.seq) return f.checkpointed;
    const data = f.projection.checkpointData();
    let r;
    try {
      r = await this.store.append({ type: CHECKPOINT_AGGREGATE, id: data.stream }, f.position, [{ type: CheckpointEvents.checkpointed, data }], { commandId: newId(), actor: "realm-auditor" });
    } catch (err) {
      // Another auditor (a second realm instance) checkpointed first: take its position for the next round.
      f.position = await this.checkpointPosition(data.stream);
      throw err;
    }
    f.position = r.position;
    f.checkpointed = data;
    f.atMs = Date.now();
    if (this.opts.recordFile) {
      const record = readCheckpointRecord(this.opts.recordFile);
      record[data.stream] = data;
      writeFileSync(`${this.opts.recordFile}.tmp`, JSON.stringify(record, null, 2) + "\n", { mode: 0o600 });
      renameSync(`${this.opts.recordFile}.tmp`, this.opts.recordFile);
    }
    return data;
  }

  /**
   * Checkpoints now every followed stream (or one) that moved since its last checkpoint, after the
   * projections have seen the streams' current end. Returns the checkpoints written or current.
   */
  async checkpoint(context?: string): Promise<CheckpointData[]> {
    const run = this.busy.then(async () => {
      await this.followNew();
      const out: CheckpointData[] = [];
      for (const [c, f] of this.followed) {
        if (context && c !== context) continue;
        await f.ready;
        await f.projection.waitFor(await f.projection.store.lastSequence());
        const d = await this.write(c);
        if (d) out.push(d);
      }
      return out;
    });
    this.busy = run.catch(() => undefined);
    return run;
  }

  /** Every message the auditor quarantined, across streams. */
  quarantined(): QuarantinedEvent[] {
    return [...this.followed.values()].flatMap((f) => f.projection.quarantined);
  }

  projections(): Projection<null>[] {
    return [...this.followed.values()].map((f) => f.projection);
  }

  /** Stops following; writes a last checkpoint of each stream that moved, unless NATS is not reachable. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.busy;
    const connected = !this.nc.isClosed() && (await answers(this.nc, 2_000));
    if (connected) for (const c of this.followed.keys()) await this.write(c).catch((err: unknown) => this.opts.log?.error({ context: c, err: err instanceof Error ? err.message : String(err) }, "auditor: final checkpoint failed"));
    else this.opts.log?.error({}, "auditor: NATS unreachable at stop; no final checkpoint (the last periodic one stands)");
    for (const f of this.followed.values()) await f.projection.stop();
  }
}
