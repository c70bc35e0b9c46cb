import { DeliverPolicy, type ConsumerMessages } from "@nats-io/jetstream";
import { RealmError } from "./errors.js";
import type { EventEnvelope } from "./envelope.js";
import { ChainVerifier, type ChainHead, type EventProblem, type ProblemReason } from "./chain.js";
import { CHECKPOINT_CONTEXT, digestVersionOf, latestCheckpoint, MAX_CHECKPOINT_PROBLEMS, STREAM_DIGEST_VERSION, StreamDigest, type CheckpointData } from "./checkpoint.js";
import type { EventStore } from "./store.js";
import { CommandIndex } from "./command-index.js";
import { answers } from "./nats-reachable.js";
import { LagTracker } from "./projection-lag.js";
import { ProjectionSnapshots, type ProjectionImage, type SnapshotCodec, type SnapshotInfo, type SnapshotOptions } from "./projection-snapshot.js";

/** A named fold over a context's events. `apply` may mutate the state it is given (read models are maps). */
export interface ProjectionDefinition<S> {
  name: string;
  /** Bump when `apply` changes meaning: the read model is then rebuilt from zero. */
  version: number;
  initial(): S;
  apply(state: S, event: EventEnvelope, seq: number): S;
  /**
   * How the read model goes into a snapshot and back (projection-snapshot.ts). With it a projection starts
   * from its newest verified snapshot and reads only the tail; `version` is part of the snapshot's name.
   */
  snapshot?: SnapshotCodec<S>;
}

/** `recovering`: its consumer was lost (NATS or JetStream gone, consumer deleted, stuck) and is being made again. */
export type ProjectionStatus = "idle" | "catching-up" | "live" | "recovering" | "stopped" | "failed";

/** Where a projection reports what it quarantines (a pino logger fits). */
export interface ProblemLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  info?(obj: object, msg: string): void;
}

export interface ProjectionOptions {
  log?: ProblemLog | undefined;
  /** Trust the stream's latest verified checkpoint for the prefix it covers (see checkpoint.ts). Default true. */
  checkpoints?: boolean;
  /** Catching up at start gives up after this long with UNAVAILABLE. Default $REALM_START_TIMEOUT_MS or 120 s. */
  startTimeoutMs?: number;
  /** `waitFor` gives up after this long with UNAVAILABLE. Default 30 s. */
  waitTimeoutMs?: number;
  /**
   * Index event ids (hence command ids) for a WriteModel on this projection (write-model.ts); `recent` is
   * how many the index keeps exactly (default 200,000; older ones answer "maybe").
   */
  indexCommands?: boolean | { recent: number };
  /**
   * Snapshots of a definition that has a `snapshot` codec: on by default (start from the newest one that
   * verifies; take one every so often, and at stop, when this process holds the owner's key); `false` off.
   */
  snapshots?: false | SnapshotOptions;
  /**
   * How often a live projection compares itself with its stream's last sequence (default
   * $REALM_PROJECTION_WATCH_MS or 5 s), and after how long behind without applying it recreates its consumer
   * (default three times that).
   */
  watchMs?: number;
}

/** A stored message a projection did not apply, and why. */
export interface QuarantinedEvent extends EventProblem {
  projection: string;
  at: string;
}

const MAX_KEPT = 1000;

/**
 * Runs a projection with an ordered consumer, recording the last sequence it saw. Every message is verified
 * (ChainVerifier) before it is applied; one that does not verify, or that `apply` throws on, is logged with
 * stream, sequence and reason, quarantined (kept in `quarantined`, counted in `quarantinedTotal`), and
 * skipped: the projection goes on and reports itself degraded, so one bad message never stops a context.
 *
 * At start a verified checkpoint of the stream lets the prefix it covers skip signature checks; the stream
 * digest must then match at the checkpoint's head, or the projection starts over verifying every event.
 */
export class Projection<S> {
  state: S;
  lastSeq = 0;
  status: ProjectionStatus = "idle";
  failure: RealmError | undefined;
  readonly quarantined: QuarantinedEvent[] = [];
  quarantinedTotal = 0;
  /** Void fork branches skipped (see audit.ts): not quarantined. */
  voidForks = 0;
  /** Messages seen, and the stream digest over them (what a checkpoint of this stream records). */
  messages = 0;
  digest = new StreamDigest();
  /** Messages read from the stream and folded since the last reset (not those a snapshot stood for). */
  read = 0;
  /** The snapshot this projection went on from, if any. */
  resumedFrom: SnapshotInfo | undefined;
  /** Verification problems (not `apply` failures) up to `lastSeq`, as a checkpoint lists them. */
  readonly problems: { seq: number; reason: ProblemReason }[] = [];
  problemsComplete = true;
  private chain: ChainVerifier;
  /** Event ids seen (their command ids are what a resent command is recognised by); with `indexCommands`. */
  commands: CommandIndex | undefined;
  private headCid: string | null = null;
  private checkpoint: { data: CheckpointData; skip: Map<number, ProblemReason> } | undefined;
  /** CIDs and seals of the prefix a checkpoint vouches for, remembered as verified once its digest matched. */
  private vouchedCids: string[] = [];
  private vouchedSeals: string[] = [];
  private consumer: ConsumerMessages | undefined;
  private stopped = false;
  readonly snapshots: ProjectionSnapshots<S> | undefined;
  /** Set while a snapshot is being encoded: ingestion waits for it (the state must not change under it). */
  private hold: Promise<void> | undefined;
  /** How far behind the stream this projection is (observeStream feeds it). */
  readonly lagTracker = new LagTracker();
  private observing: Promise<void> | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  /** Set by the watchdog: the current consumer is stuck; the follow loop makes a new one. */
  private renewing = false;
  private wake: (() => void) | undefined;
  private waiters: { seq: number; resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];

  constructor(
    readonly store: EventStore,
    readonly def: ProjectionDefinition<S>,
    private readonly opts: ProjectionOptions = {},
  ) {
    this.state = def.initial();
    this.chain = store.chainVerifier();
    this.commands = this.newCommandIndex();
    if (def.snapshot && opts.snapshots !== false) this.snapshots = ProjectionSnapshots.for(store, def, def.snapshot, opts.snapshots ?? {}, opts.log);
  }

  private newCommandIndex(): CommandIndex | undefined {
    const o = this.opts.indexCommands;
    return o ? new CommandIndex(typeof o === "object" ? o.recent : undefined) : undefined;
  }

  /** True when some stored message was quarantined (the host's /readyz says degraded). */
  get degraded(): boolean {
    return this.quarantinedTotal > 0;
  }

  /** The verified head of an aggregate as this projection has seen it. */
  headOf(aggregate: { type: string; id: string }): ChainHead | undefined {
    return this.chain.headOf(aggregate);
  }

  /** What a checkpoint of this stream at `lastSeq` says. */
  checkpointData(at = new Date()): CheckpointData {
    return { stream: this.store.stream, seq: this.lastSeq, digest: this.digest.hex, digestVersion: STREAM_DIGEST_VERSION, headCid: this.headCid, messages: this.messages, quarantined: [...this.problems], complete: this.problemsComplete, at: at.toISOString() };
  }

  private quarantine(p: EventProblem, verification: boolean): void {
    if (p.reason === "fork") {
      // A void fork branch (audit.ts voidForks): skipped like a problem, so a checkpoint lists it, but not
      // quarantined: its writer was told CONFLICT and decided again on the first branch.
      this.voidForks++;
      if (verification) {
        if (this.problems.length < MAX_CHECKPOINT_PROBLEMS) this.problems.push({ seq: p.seq, reason: p.reason });
        else this.problemsComplete = false;
      }
      this.opts.log?.info?.({ projection: this.def.name, stream: p.stream, seq: p.seq, eventId: p.eventId, aggregate: p.aggregate }, `void fork branch skipped: ${p.message}`);
      return;
    }
    this.quarantinedTotal++;
    const q: QuarantinedEvent = { ...p, projection: this.def.name, at: new Date().toISOString() };
    if (this.quarantined.length < MAX_KEPT) this.quarantined.push(q);
    if (verification) {
      if (this.problems.length < MAX_CHECKPOINT_PROBLEMS) this.problems.push({ seq: p.seq, reason: p.reason });
      else this.problemsComplete = false;
    }
    this.opts.log?.warn({ projection: this.def.name, stream: p.stream, seq: p.seq, reason: p.reason, eventId: p.eventId, eventType: p.eventType, aggregate: p.aggregate }, `quarantined ${p.message}`);
  }

  /** A prefix the checkpoint vouched for differs from what this projection read: start over, verifying all. */
  private mismatch(message: string): "restart" {
    const cp = this.checkpoint!.data;
    this.opts.log?.error({ projection: this.def.name, stream: this.store.stream, checkpointSeq: cp.seq }, `stream ${this.store.stream} differs from its checkpoint: ${message}; verifying every event`);
    this.reset();
    this.quarantine({ stream: this.store.stream, seq: cp.seq, subject: "", reason: "checkpoint-mismatch", message: `${this.store.stream}: ${message} (checkpoint of ${cp.at} at seq ${cp.seq})` }, false);
    return "restart";
  }

  private reset(): void {
    this.state = this.def.initial();
    this.lastSeq = 0;
    this.messages = 0;
    this.digest.reset();
    this.chain = this.store.chainVerifier();
    this.commands = this.newCommandIndex();
    this.headCid = null;
    this.checkpoint = undefined;
    this.vouchedCids = [];
    this.vouchedSeals = [];
    this.problems.length = 0;
    this.problemsComplete = true;
    this.quarantined.length = 0;
    this.quarantinedTotal = 0;
    this.voidForks = 0;
    this.read = 0;
    this.resumedFrom = undefined;
  }

  /** Goes on from the newest snapshot that verifies (only before anything was read); else stays at zero. */
  private async resume(): Promise<void> {
    if (!this.snapshots || this.lastSeq > 0) return;
    const o = this.opts.indexCommands;
    const loaded = await this.snapshots.load(o ? { recent: typeof o === "object" ? o.recent : undefined } : undefined).catch((err: unknown) => {
      this.opts.log?.warn({ projection: this.def.name, stream: this.store.stream, err: err instanceof Error ? err.message : String(err) }, `projection ${this.def.name}: no snapshot could be read; reading ${this.store.stream} from the start`);
      return undefined;
    });
    if (!loaded) return;
    const { image, info } = loaded;
    this.state = image.state;
    this.lastSeq = image.seq;
    this.messages = image.messages;
    this.headCid = image.headCid;
    this.digest = image.digest;
    this.chain = this.store.chainVerifier(image.heads);
    this.commands = image.commands;
    for (const p of image.problems) this.problems.push(p);
    this.problemsComplete = image.problemsComplete;
    for (const q of image.quarantined) this.quarantined.push(q as QuarantinedEvent);
    this.quarantinedTotal = image.quarantinedTotal;
    this.resumedFrom = info;
    this.opts.log?.info?.({ projection: this.def.name, stream: this.store.stream, seq: info.seq, slot: info.slot, bytes: info.bytes, ms: Math.round(info.ms) }, `projection ${this.def.name} goes on from its snapshot at ${this.store.stream} seq ${info.seq}`);
  }

  /** What a snapshot takes (by reference: taken while ingestion is held); none while a checkpoint's prefix is unconfirmed. */
  private image(): ProjectionImage<S> | undefined {
    if (this.checkpoint || this.status === "failed") return undefined;
    return { state: this.state, seq: this.lastSeq, headCid: this.headCid, messages: this.messages, digest: this.digest, heads: this.chain.heads, commands: this.commands, problems: this.problems, problemsComplete: this.problemsComplete, quarantined: this.quarantined, quarantinedTotal: this.quarantinedTotal };
  }

  /**
   * Takes a snapshot now (resolves once it is stored); undefined when this projection keeps none, this process
   * does not hold the owner's key, or there is nothing to take (nothing read, or a checkpoint's prefix is open).
   */
  snapshot(): Promise<SnapshotInfo | undefined> {
    if (!this.snapshots || this.lastSeq === 0) return Promise.resolve(undefined);
    return this.snapshots.take(
      () => this.image(),
      (h) => (this.hold = h),
    );
  }

  /** Verifies (or, under a checkpoint, follows) and applies one stored message. The one path for every read. */
  ingest(seq: number, subject: string, data: Uint8Array): "ok" | "restart" {
    const cp = this.checkpoint;
    if (cp && seq > cp.data.seq) return this.mismatch(`the message at seq ${cp.data.seq} is missing`);
    this.digest.update(seq, data);
    this.messages++;
    this.read++;
    let event: EventEnvelope | undefined;
    if (cp) {
      const skipped = cp.skip.get(seq);
      if (skipped) {
        this.quarantine({ stream: this.store.stream, seq, subject, reason: skipped, message: `${this.store.stream} seq ${seq}: ${skipped} (found by the auditor, listed in its checkpoint)` }, true);
      } else {
        event = this.chain.follow(seq, data);
        if (!event) return this.mismatch(`seq ${seq} is not an event, but the checkpoint vouches for it`);
        this.vouchedCids.push(event.cid);
        this.vouchedSeals.push(event.signer + event.sig);
      }
    } else {
      const r = this.chain.verify(seq, subject, data);
      if ("problem" in r) this.quarantine(r.problem, true);
      else event = r.event;
    }
    this.headCid = event?.cid ?? null;
    if (event) this.commands?.add(event.id, seq, `${event.aggregate.type}/${event.aggregate.id}`);
    if (event) {
      try {
        this.state = this.def.apply(this.state, event, seq);
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        this.quarantine({ stream: this.store.stream, seq, subject, reason: "unapplicable", message: `${this.store.stream} seq ${seq} event ${event.id} (${event.type}): projection ${this.def.name} v${this.def.version} cannot apply it: ${reason}`, eventId: event.id, eventType: event.type, aggregate: event.aggregate }, false);
      }
    }
    this.lastSeq = seq;
    if (cp && seq === cp.data.seq) {
      if (this.digest.hex !== cp.data.digest) return this.mismatch(`the digest at seq ${seq} is ${this.digest.hex}, the checkpoint says ${cp.data.digest}`);
      const v = this.store.trust.verifier;
      for (let i = 0; i < this.vouchedCids.length; i++) v.remember(this.vouchedCids[i]!, this.vouchedSeals[i]!);
      this.vouchedCids = [];
      this.vouchedSeals = [];
      this.checkpoint = undefined;
    }
    return "ok";
  }

  /**
   * Takes the stream's latest verified checkpoint as the trusted prefix beyond where the projection is (only
   * before anything was read: at zero, or at a snapshot). A checkpoint of another digest definition is not
   * used (its digest cannot be compared); one at the snapshot's own seq must agree with it.
   */
  private async useCheckpoint(): Promise<void> {
    if (this.opts.checkpoints === false || this.read > 0 || this.store.context === CHECKPOINT_CONTEXT) return;
    const cp = await latestCheckpoint(this.store.jsm, this.store.trust.verifier, this.store.context);
    if (!cp) return;
    if ("problem" in cp) {
      this.quarantine({ stream: this.store.stream, seq: 0, subject: "", reason: "checkpoint-mismatch", message: `the latest checkpoint of ${this.store.stream} does not verify: ${cp.problem}` }, false);
      return;
    }
    if (!cp.data.complete || digestVersionOf(cp.data) !== STREAM_DIGEST_VERSION || cp.data.seq < this.lastSeq) return;
    if (cp.data.seq === this.lastSeq) {
      if (this.digest.hex === cp.data.digest) return;
      this.opts.log?.warn({ projection: this.def.name, stream: this.store.stream, seq: cp.data.seq }, `snapshot of ${this.def.name} at ${this.store.stream} seq ${cp.data.seq} ignored: its digest is not the checkpoint's`);
      this.reset();
    }
    this.checkpoint = { data: cp.data, skip: new Map(cp.data.quarantined.map((q) => [q.seq, q.reason])) };
  }

  /** Reads every message up to the current end of the stream into a fresh state. */
  async rebuild(): Promise<{ events: number; ms: number }> {
    const started = performance.now();
    this.reset();
    await this.resume();
    await this.useCheckpoint();
    for (let again = true; again; ) {
      again = false;
      for await (const m of this.store.read({ fromSeq: this.lastSeq + 1 })) {
        if (this.ingest(m.seq, m.subject, m.data) === "restart") {
          again = true;
          break;
        }
      }
      if (!again && this.checkpoint) again = this.mismatch(`the stream ends at seq ${this.lastSeq}, before the checkpoint's seq ${this.checkpoint.data.seq}`) === "restart";
    }
    return { events: this.messages, ms: performance.now() - started };
  }

  /** Stored messages after `lastSeq` (deleted ones not counted). */
  private async remaining(): Promise<number> {
    const info = await this.store.jsm.streams.info(this.store.stream, { deleted_details: true });
    const s = info.state;
    if (s.messages === 0 || s.last_seq <= this.lastSeq) return 0;
    const from = Math.max(this.lastSeq + 1, s.first_seq);
    const deleted = (s.deleted ?? []).filter((d) => d >= from && d <= s.last_seq).length;
    return s.last_seq - from + 1 - deleted;
  }

  /**
   * Catches up to the end of the stream, then follows it live. Resolves once caught up; rejects with
   * UNAVAILABLE naming the stream and how far it got when that takes longer than `startTimeoutMs`.
   */
  async start(): Promise<void> {
    this.status = "catching-up";
    this.stopped = false;
    await this.resume();
    await this.useCheckpoint();
    let caughtUp!: () => void;
    let failed!: (err: RealmError) => void;
    const ready = new Promise<void>((resolve, reject) => {
      caughtUp = resolve;
      failed = reject;
    });
    if ((await this.remaining()) === 0) {
      if (this.checkpoint) this.mismatch(`the stream ends at seq ${this.lastSeq}, before the checkpoint's seq ${this.checkpoint.data.seq}`);
      if ((await this.remaining()) === 0) caughtUp();
    }
    void this.follow(caughtUp, failed);
    const timeoutMs = this.opts.startTimeoutMs ?? Number(process.env.REALM_START_TIMEOUT_MS ?? 120_000);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RealmError("UNAVAILABLE", `projection ${this.def.name} did not catch up with stream ${this.store.stream} within ${Math.round(timeoutMs / 1000)} s (applied up to seq ${this.lastSeq})`)), timeoutMs);
    });
    try {
      await Promise.race([ready, timeout]);
    } catch (err) {
      await this.stop();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    if (this.status === "catching-up") this.status = "live";
    this.startWatchdog();
    this.snapshots?.schedule(
      () => ({ seq: this.lastSeq, live: this.status === "live" }),
      () => this.snapshot(),
    );
  }

  /**
   * Follows the stream from `lastSeq + 1` for as long as the projection runs. A consumer that is lost (its
   * iterator ends or throws: NATS or JetStream gone, the consumer deleted, a stream leader re-elected, or
   * the watchdog found it stuck) is made again from the last applied sequence, with a log line on each
   * transition; only a closed connection (it never comes back) fails the projection.
   */
  private async follow(caughtUp: () => void, failed: (err: RealmError) => void): Promise<void> {
    let attempt = 0;
    let lostSince = 0;
    while (!this.stopped) {
      let why = "its consumer ended";
      try {
        const consumer = await this.store.js.consumers.get(this.store.stream, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.lastSeq + 1 });
        if (this.stopped) return;
        const messages = await consumer.consume({ max_messages: 1024 });
        this.consumer = messages;
        this.renewing = false;
        if (this.status === "recovering") {
          this.status = "live";
          this.opts.log?.info?.({ projection: this.def.name, stream: this.store.stream, seq: this.lastSeq, downMs: Date.now() - lostSince, attempts: attempt }, `projection ${this.def.name} recovered: following ${this.store.stream} again from seq ${this.lastSeq + 1}`);
        }
        attempt = 0;
        let restart = false;
        let yielded = performance.now();
        for await (const m of messages) {
          if (this.stopped) break;
          if (m.seq <= this.lastSeq) continue;
          // A long catch-up is CPU work between messages that arrive as microtasks: give timers and I/O
          // (the HTTP server, the start timeout) a turn every 50 ms.
          if (performance.now() - yielded > 50) {
            await new Promise((r) => setImmediate(r));
            yielded = performance.now();
          }
          if (this.hold) {
            await this.hold;
            if (this.stopped) break;
          }
          if (this.ingest(m.seq, m.subject, m.data) === "restart") {
            restart = true;
            break;
          }
          if (m.info.pending === 0 && this.checkpoint) {
            this.mismatch(`the stream ends at seq ${this.lastSeq}, before the checkpoint's seq ${this.checkpoint.data.seq}`);
            restart = true;
            break;
          }
          if (m.info.pending === 0) caughtUp();
          this.release();
        }
        await messages.close().catch(() => undefined);
        if (restart || this.stopped) continue;
        if (this.renewing) why = "it applied nothing while behind its stream";
      } catch (err) {
        if (this.stopped) break;
        why = err instanceof Error ? err.message : String(err);
        if (this.store.nc.isClosed()) {
          this.status = "failed";
          this.failure = new RealmError("UNAVAILABLE", `projection ${this.def.name} lost stream ${this.store.stream}: the NATS connection is closed (${why})`);
          await this.consumer?.close().catch(() => undefined);
          this.opts.log?.error({ projection: this.def.name, stream: this.store.stream, seq: this.lastSeq }, this.failure.message);
          failed(this.failure);
          for (const w of this.waiters.splice(0)) {
            clearTimeout(w.timer);
            w.reject(this.failure);
          }
          return;
        }
      }
      if (this.stopped) break;
      if (this.status !== "recovering") {
        lostSince = Date.now();
        if (this.status === "live") this.status = "recovering";
        this.opts.log?.warn({ projection: this.def.name, stream: this.store.stream, seq: this.lastSeq, reason: why }, `projection ${this.def.name} lost its consumer on ${this.store.stream} (${why}); recreating it from seq ${this.lastSeq + 1}`);
      }
      attempt++;
      await this.pause(Math.min(5_000, 250 * 2 ** Math.min(attempt, 5)));
    }
    if (this.status !== "failed") this.status = "stopped";
  }

  /** Waits `ms`, or less when the projection is stopped meanwhile (stop wakes it). */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /**
   * Asks the stream's last sequence (at most once per `maxAgeMs`, bounded by `timeoutMs`) and records how far
   * behind this projection is. A failed ask leaves the last observation as it was.
   */
  observeStream(maxAgeMs = 1_000, timeoutMs = 1_500): Promise<void> {
    if (Date.now() - this.lagTracker.observedAt < maxAgeMs) return Promise.resolve();
    this.observing ??= this.store
      .lastSequenceWithin(timeoutMs)
      .then((last) => this.lagTracker.observe(last, this.lastSeq))
      .catch(() => undefined)
      .finally(() => (this.observing = undefined));
    return this.observing;
  }

  /** Applied sequence, the stream's last (as last observed), the lag, and how long it has been behind. */
  lag(now = Date.now()): { applied: number; streamLast: number | null; lag: number | null; behindMs: number } {
    return { applied: this.lastSeq, streamLast: this.lagTracker.streamLast ?? null, lag: this.lagTracker.lag(this.lastSeq) ?? null, behindMs: this.lagTracker.behindMs(this.lastSeq, now) };
  }

  /**
   * Every `watchMs` while live: a projection behind its stream that applied nothing for 3 x `watchMs` has a
   * stuck consumer; make a new one.
   */
  private startWatchdog(): void {
    const every = this.opts.watchMs ?? Number(process.env.REALM_PROJECTION_WATCH_MS ?? 5_000);
    let progress = { seq: this.lastSeq, at: Date.now() };
    this.watchdog = setInterval(() => {
      if (this.stopped || this.status !== "live" || this.renewing || this.hold) return;
      if (this.lastSeq !== progress.seq) progress = { seq: this.lastSeq, at: Date.now() };
      void this.observeStream(0).then(() => {
        const behind = this.lagTracker.behindMs(this.lastSeq);
        // Behind and not moving: a long catch-up that applies events is left alone.
        if (behind < 3 * every || Date.now() - progress.at < 3 * every || this.status !== "live" || this.renewing) return;
        this.renewing = true;
        this.opts.log?.warn({ projection: this.def.name, stream: this.store.stream, seq: this.lastSeq, streamLast: this.lagTracker.streamLast, behindMs: behind }, `projection ${this.def.name} applied nothing of ${this.store.stream} for ${Math.round(behind / 1000)} s while behind (at seq ${this.lastSeq} of ${this.lagTracker.streamLast}); recreating its consumer`);
        void this.consumer?.close().catch(() => undefined);
      });
    }, every);
    this.watchdog.unref();
  }

  private release(): void {
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.seq <= this.lastSeq) {
        clearTimeout(w.timer);
        w.resolve();
      } else still.push(w);
    }
    this.waiters = still;
  }

  /** Resolves when the projection has seen stream sequence `seq` (read-your-writes after a command). */
  waitFor(seq: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (seq <= this.lastSeq) return Promise.resolve();
    const timeoutMs = this.opts.waitTimeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        reject(new RealmError("UNAVAILABLE", `projection ${this.def.name} has not reached seq ${seq} of ${this.store.stream} after ${Math.round(timeoutMs / 1000)} s (at ${this.lastSeq})`));
      }, timeoutMs);
      timer.unref();
      this.waiters.push({ seq, resolve, reject, timer });
    });
  }

  /** Stops following; a projection that was live takes a last snapshot when it moved and NATS answers. */
  async stop(): Promise<void> {
    const wasLive = this.status === "live";
    this.stopped = true;
    clearInterval(this.watchdog);
    this.wake?.();
    this.status = "stopped";
    await this.consumer?.close().catch(() => undefined);
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new RealmError("UNAVAILABLE", `projection ${this.def.name} stopped`));
    }
    const s = this.snapshots;
    if (!s) return;
    await s.unschedule();
    if (!wasLive || !s.writable || this.lastSeq <= s.lastSeq) return;
    if (!(await answers(this.store.nc, 2_000))) {
      this.opts.log?.warn({ projection: this.def.name, stream: this.store.stream }, `projection ${this.def.name}: NATS unreachable at stop; no last snapshot`);
      return;
    }
    await this.snapshot().catch((err: unknown) => this.opts.log?.error({ projection: this.def.name, stream: this.store.stream, err: err instanceof Error ? err.message : String(err) }, `projection ${this.def.name}: last snapshot failed`));
  }
}
