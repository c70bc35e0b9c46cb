import { parseEnvelope, type ChainHead, type ProblemReason } from "./chain.js";
import { CommandIndex } from "./command-index.js";
import { RealmError } from "./errors.js";
import type { EventStore } from "./store.js";
import { chunkHash, RecordChunker, recordsOf } from "./snapshot-records.js";
import { signManifest, SNAPSHOT_FORMAT, SNAPSHOT_FORMAT_VERSION, verifyManifest, type SnapshotManifest } from "./snapshot-manifest.js";
import { isSnapshotKeyToken, SNAPSHOT_SLOTS, SnapshotStore, type SnapshotSlot } from "./snapshot-store.js";
import { STREAM_DIGEST_VERSION, StreamDigest, type DigestResumePoint } from "./stream-digest.js";

/**
 * Snapshots of a projection: its read model at a stream sequence with everything the kernel needs to go on
 * as if it had read the prefix (chain heads, command index, quarantine, message count, head CID, stream
 * digest), so a start reads only the tail.
 *
 * Trust: a snapshot is as good as the key that signed it. Only the owner context's key may (the trust
 * document says which keys are whose; snapshot-manifest.ts); on load the manifest must verify, be about this
 * projection and version and stream, the stream's message at `seq` must carry `headCid` (one direct get),
 * the stream digest must come out the same when the open segment is re-read from the stream, and every
 * chunk must hash as the manifest says. Anything else and the snapshot is ignored (logged): the projection
 * rebuilds from zero, or from the other slot's snapshot.
 *
 * Taking one: the projection's ingestion is held while the state is encoded (in slices of a few ms, so the
 * event loop still answers queries on the unchanging state; commands that wait for the projection wait that
 * long), chunks are uploaded as they fill, and the hold ends when the last record is encoded; the manifest is
 * written once every chunk is stored. Read models are mutated in place by `apply`, so a consistent copy
 * would cost as much as the encoding itself; encoding at the held position costs it once.
 */

/** How a projection definition writes its read model into a snapshot and reads it back. */
export interface SnapshotCodec<S> {
  /** The state as JSON values (Maps and Sets as arrays), one at a time: never one giant string. */
  encode(state: S): Iterable<unknown>;
  /** The state from the values `encode` gave, in the same order. */
  decode(records: Iterable<unknown>): S;
  /** The context whose identity keeps (bucket) and signs this projection's snapshots. Default: the stream's. */
  owner?: string;
}

export interface SnapshotOptions {
  /** Take a snapshot once the projection moved this many messages since the last. Default 100,000. */
  everyMessages?: number;
  /** ... or when it moved at all and the last is this old. Default 10 minutes. */
  intervalMs?: number;
  /** How often that is looked at. Default 5 s. */
  checkMs?: number;
  /** Body chunk size (at most the server's max_payload less headers). Default 512 KiB. */
  chunkBytes?: number;
}

/** What the kernel holds of a projection at a position, besides the read model. */
export interface ProjectionImage<S> {
  state: S;
  seq: number;
  headCid: string | null;
  messages: number;
  digest: StreamDigest;
  heads: Map<string, ChainHead>;
  commands: CommandIndex | undefined;
  problems: { seq: number; reason: ProblemReason }[];
  problemsComplete: boolean;
  quarantined: unknown[];
  quarantinedTotal: number;
}

/** What a snapshot written or loaded was (for logs, metrics and tests). */
export interface SnapshotInfo {
  slot: string;
  seq: number;
  messages: number;
  records: number;
  bytes: number;
  chunks: number;
  takenAt: string;
  /** Loading: fetching, checking and decoding; writing: how long ingestion was held, and the whole write. */
  ms: number;
  holdMs?: number;
}

interface Log {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  info?(obj: object, msg: string): void;
}

const STATE_MARKER = "state";
const SLICE_MS = 8;
const IN_FLIGHT = 8;

const yieldTurn = () => new Promise<void>((r) => setImmediate(r));

class SnapshotRejected extends RealmError {
  constructor(reason: string) {
    super("INTEGRITY", reason);
  }
}

export class ProjectionSnapshots<S> {
  readonly owner: string;
  readonly prefix: string;
  private bucket: Promise<SnapshotStore | undefined> | undefined;
  /** The slot of the newest snapshot known good (loaded or written); the next one goes into the other. */
  private current: SnapshotSlot | undefined;
  /** Position and time of the last snapshot loaded or written. */
  lastSeq = 0;
  private lastAt = Date.now();
  private busy: Promise<SnapshotInfo | undefined> | undefined;
  private timer: NodeJS.Timeout | undefined;
  last: SnapshotInfo | undefined;

  private constructor(
    private readonly store: EventStore,
    private readonly projection: { name: string; version: number },
    private readonly codec: SnapshotCodec<S>,
    private readonly opts: SnapshotOptions,
    private readonly log: Log | undefined,
  ) {
    this.owner = codec.owner ?? store.context;
    this.prefix = `${store.stream}.${projection.name}.v${projection.version}.f${SNAPSHOT_FORMAT_VERSION}`;
  }

  /** Snapshots for a projection, or undefined when its name cannot be a key (logged once). */
  static for<S>(store: EventStore, projection: { name: string; version: number }, codec: SnapshotCodec<S>, opts: SnapshotOptions, log: Log | undefined): ProjectionSnapshots<S> | undefined {
    if (!isSnapshotKeyToken(projection.name) || !Number.isSafeInteger(projection.version)) {
      log?.warn({ projection: projection.name }, `projection ${projection.name}: its name is not a snapshot key token ([A-Za-z0-9_-]); no snapshots`);
      return undefined;
    }
    return new ProjectionSnapshots(store, projection, codec, opts, log);
  }

  /** True when this process may write this projection's snapshots (it holds the owner's key). */
  get writable(): boolean {
    return this.store.trust.hasSigner(this.owner);
  }

  private open(): Promise<SnapshotStore | undefined> {
    this.bucket ??= SnapshotStore.open(this.store.nc, this.owner, { create: this.writable }).catch((err: unknown) => {
      this.bucket = undefined;
      this.log?.warn({ projection: this.projection.name, owner: this.owner, err: err instanceof Error ? err.message : String(err) }, `projection ${this.projection.name}: snapshot bucket of ${this.owner} not reachable; no snapshots this time`);
      return undefined;
    });
    return this.bucket;
  }

  private where(m?: { slot: string; seq: number }): object {
    return { projection: this.projection.name, version: this.projection.version, stream: this.store.stream, owner: this.owner, ...(m ? { slot: m.slot, seq: m.seq } : {}) };
  }

  // ---- loading -------------------------------------------------------------------------------------------

  /**
   * The newest snapshot that checks out, as an image to go on from; undefined when there is none (the
   * projection then reads from zero). `commands`: the projection indexes command ids, and the snapshot must
   * carry that index (else a resent command could be taken for a new one).
   */
  async load(commands: { recent: number | undefined } | undefined): Promise<{ image: ProjectionImage<S>; info: SnapshotInfo } | undefined> {
    const started = performance.now();
    const bucket = await this.open();
    if (!bucket) return undefined;
    const found: SnapshotManifest[] = [];
    for (const slot of SNAPSHOT_SLOTS) {
      const bytes = await bucket.manifest(this.prefix, slot);
      if (!bytes) continue;
      const m = verifyManifest(bytes, { projection: this.projection.name, version: this.projection.version, stream: this.store.stream, owner: this.owner }, this.store.trust.verifier);
      if (typeof m === "string") this.log?.warn(this.where({ slot, seq: 0 }), `snapshot of ${this.projection.name} in slot ${slot} ignored: ${m}`);
      else if (m.slot !== slot) this.log?.warn(this.where(m), `snapshot of ${this.projection.name} in slot ${slot} ignored: it names slot ${m.slot}`);
      else found.push(m);
    }
    found.sort((a, b) => b.seq - a.seq);
    for (const m of found) {
      try {
        const image = await this.restore(bucket, m, commands);
        const info: SnapshotInfo = { slot: m.slot, seq: m.seq, messages: m.messages, records: m.records, bytes: m.bytes, chunks: m.chunks.length, takenAt: m.takenAt, ms: performance.now() - started };
        this.current = m.slot as SnapshotSlot;
        this.lastSeq = m.seq;
        this.lastAt = Date.now();
        this.last = info;
        return { image, info };
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        this.log?.warn(this.where(m), `snapshot of ${this.projection.name} at ${this.store.stream} seq ${m.seq} ignored: ${reason}`);
      }
    }
    return undefined;
  }

  private async restore(bucket: SnapshotStore, m: SnapshotManifest, commands: { recent: number | undefined } | undefined): Promise<ProjectionImage<S>> {
    const at = await this.store.jsm.direct.getMessage(this.store.stream, { seq: m.seq }).catch(() => null);
    if (!at || at.seq !== m.seq) throw new SnapshotRejected(`the stream has no message at seq ${m.seq}`);
    if (m.headCid !== null) {
      const e = parseEnvelope(at.data);
      const cid = typeof e === "string" ? null : e.cid;
      if (cid !== m.headCid) throw new SnapshotRejected(`the stream's message at seq ${m.seq} is ${cid ?? "no event"}, the snapshot is bound to ${m.headCid}`);
    }
    const digest = this.resumeDigest(m.digest);
    let reached = 0;
    for await (const msg of this.store.read({ fromSeq: m.digest.afterSeq + 1, untilSeq: m.seq })) {
      digest.update(msg.seq, msg.data);
      reached = msg.seq;
    }
    if (reached !== m.seq || digest.hex !== m.digest.hex) throw new SnapshotRejected(`the stream's digest at seq ${m.seq} is not the snapshot's: the stream differs from what the snapshot was taken of`);
    const chunks = await this.fetchChunks(bucket, m);
    return this.decode(m, chunks, digest, commands);
  }

  private resumeDigest(d: SnapshotManifest["digest"]): StreamDigest {
    const p: DigestResumePoint = { chain: d.chain, afterSeq: d.afterSeq };
    try {
      const digest = new StreamDigest();
      digest.resumeAt(p);
      return digest;
    } catch {
      throw new SnapshotRejected("its digest resume point is malformed");
    }
  }

  private async fetchChunks(bucket: SnapshotStore, m: SnapshotManifest): Promise<Uint8Array[]> {
    const out: Uint8Array[] = new Array<Uint8Array>(m.chunks.length);
    let next = 0;
    const worker = async () => {
      for (let n = next++; n < m.chunks.length; n = next++) {
        const c = await bucket.chunk(this.prefix, m.slot as SnapshotSlot, n);
        if (!c) throw new SnapshotRejected(`chunk ${n} of ${m.chunks.length} is missing`);
        if (chunkHash(c) !== m.chunks[n]) throw new SnapshotRejected(`chunk ${n} does not hash as its manifest says`);
        out[n] = c;
      }
    };
    await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, m.chunks.length) }, worker));
    return out;
  }

  private decode(m: SnapshotManifest, chunks: Uint8Array[], digest: StreamDigest, commands: { recent: number | undefined } | undefined): ProjectionImage<S> {
    const heads = new Map<string, ChainHead>();
    const index = commands ? new CommandIndex(commands.recent) : undefined;
    const keys: string[] = [];
    const image: Omit<ProjectionImage<S>, "state"> = { seq: m.seq, headCid: m.headCid, messages: m.messages, digest, heads, commands: index, problems: [], problemsComplete: true, quarantined: [], quarantinedTotal: 0 };
    const records = recordsOf(chunks)[Symbol.iterator]();
    let indexed = false;
    let count = 0;
    try {
      for (let r = records.next(); ; r = records.next()) {
        if (r.done) throw new SnapshotRejected("its body has no state section");
        count++;
        const rec = r.value;
        if (rec === STATE_MARKER) break;
        if (!Array.isArray(rec)) throw new SnapshotRejected(`record ${count} is not a kernel record`);
        switch (rec[0]) {
          case "head":
            heads.set(rec[1] as string, { version: rec[2] as number, cid: rec[3] as string, seq: rec[4] as number, prev: rec[5] as string | null });
            break;
          case "problem":
            image.problems.push({ seq: rec[1] as number, reason: rec[2] as ProblemReason });
            break;
          case "quarantined":
            image.quarantined.push(rec[1]);
            break;
          case "totals":
            image.problemsComplete = rec[1] === true;
            image.quarantinedTotal = rec[2] as number;
            break;
          default:
            if (rec[0] === "filters") indexed = true;
            if (index && !index.restore(rec, keys)) throw new SnapshotRejected(`record ${count} (${String(rec[0])}) is not a kernel record`);
        }
      }
      if (index && !indexed) throw new SnapshotRejected("it carries no command index, and this projection keeps one");
      const rest = function* (): Generator<unknown> {
        for (let r = records.next(); !r.done; r = records.next()) {
          count++;
          yield r.value;
        }
      };
      const state = this.codec.decode(rest());
      if (!records.next().done) throw new SnapshotRejected("the projection's decode left records unread");
      if (count !== m.records) throw new SnapshotRejected(`its body holds ${count} records, its manifest says ${m.records}`);
      return { ...image, state };
    } catch (err) {
      if (err instanceof SnapshotRejected) throw err;
      throw new SnapshotRejected(`its body does not decode (${err instanceof Error ? err.message : String(err)})`);
    }
  }

  // ---- writing -------------------------------------------------------------------------------------------

  /**
   * Takes a snapshot of the image `capture` returns, holding ingestion (through `hold`) while it is encoded.
   * One at a time: a call while one runs gets that one. Undefined when this process may not write them.
   */
  take(capture: () => ProjectionImage<S> | undefined, hold: (released: Promise<void> | undefined) => void): Promise<SnapshotInfo | undefined> {
    if (this.busy) return this.busy;
    if (!this.writable) return Promise.resolve(undefined);
    const run = this.write(capture, hold).finally(() => (this.busy = undefined));
    this.busy = run;
    return run;
  }

  private async write(capture: () => ProjectionImage<S> | undefined, hold: (released: Promise<void> | undefined) => void): Promise<SnapshotInfo | undefined> {
    const started = performance.now();
    const bucket = await this.open();
    if (!bucket) return undefined;
    const slot = await this.nextSlot(bucket);
    const before = await bucket.manifest(this.prefix, slot);
    const oldChunks = before ? chunkCountOf(before) : 0;
    const maxPayload = this.store.nc.info?.max_payload ?? 1_048_576;
    const chunkBytes = Math.max(1024, Math.min(this.opts.chunkBytes ?? 512 * 1024, maxPayload - 16 * 1024));
    const hashes: string[] = [];
    const inFlight: Promise<void>[] = [];
    let failure: unknown;
    const chunker = new RecordChunker(chunkBytes, (chunk) => {
      const n = hashes.length;
      hashes.push(chunkHash(chunk));
      inFlight.push(bucket.putChunk(this.prefix, slot, n, chunk).catch((err: unknown) => void (failure ??= err)));
    });
    let release!: () => void;
    hold(new Promise<void>((r) => (release = r)));
    const holdStarted = performance.now();
    let image: ProjectionImage<S> | undefined;
    let digest: SnapshotManifest["digest"];
    let holdMs: number;
    try {
      image = capture();
      if (!image) return undefined;
      // The digest goes on once ingestion resumes: take its value at the held position now.
      digest = { version: STREAM_DIGEST_VERSION, hex: image.digest.hex, ...image.digest.resumePoint };
      // The older slot is invalidated only now that there is something to put in it.
      await bucket.clear(this.prefix, slot);
      let sliceStart = performance.now();
      for (const rec of this.kernelRecords(image)) {
        chunker.push(rec);
        if ((chunker.records & 255) === 0 && performance.now() - sliceStart > SLICE_MS) {
          while (inFlight.length > IN_FLIGHT) await inFlight.shift();
          await yieldTurn();
          sliceStart = performance.now();
        }
      }
      chunker.push(STATE_MARKER);
      for (const rec of this.codec.encode(image.state)) {
        chunker.push(rec);
        if ((chunker.records & 255) === 0 && performance.now() - sliceStart > SLICE_MS) {
          // Bound what waits for upload (memory), then give the event loop a turn.
          while (inFlight.length > IN_FLIGHT) await inFlight.shift();
          await yieldTurn();
          sliceStart = performance.now();
        }
      }
      chunker.end();
    } finally {
      holdMs = performance.now() - holdStarted;
      hold(undefined);
      release();
    }
    await Promise.all(inFlight);
    if (failure) throw failure;
    if (oldChunks > hashes.length) await bucket.dropChunks(this.prefix, slot, hashes.length, oldChunks);
    const takenAt = new Date().toISOString();
    const manifest = signManifest(
      {
        format: SNAPSHOT_FORMAT,
        projection: this.projection.name,
        version: this.projection.version,
        stream: this.store.stream,
        owner: this.owner,
        slot,
        seq: image.seq,
        headCid: image.headCid,
        messages: image.messages,
        digest,
        chunks: hashes,
        bytes: chunker.bytes,
        records: chunker.records,
        takenAt,
      },
      this.store.trust.signer(this.owner),
    );
    await bucket.putManifest(this.prefix, slot, Buffer.from(JSON.stringify(manifest), "utf8"));
    this.current = slot;
    this.lastSeq = image.seq;
    this.lastAt = Date.now();
    const info: SnapshotInfo = { slot, seq: image.seq, messages: image.messages, records: chunker.records, bytes: chunker.bytes, chunks: hashes.length, takenAt, ms: performance.now() - started, holdMs };
    this.last = info;
    this.log?.info?.({ ...this.where(manifest), records: info.records, bytes: info.bytes, chunks: info.chunks, holdMs: Math.round(holdMs), ms: Math.round(info.ms) }, `snapshot of ${this.projection.name} written at ${this.store.stream} seq ${image.seq}`);
    return info;
  }

  /** The kernel's part of a snapshot body, before the read model. */
  private *kernelRecords(image: ProjectionImage<S>): Generator<unknown> {
    yield ["totals", image.problemsComplete, image.quarantinedTotal];
    for (const p of image.problems) yield ["problem", p.seq, p.reason];
    for (const q of image.quarantined) yield ["quarantined", q];
    for (const [key, h] of image.heads) yield ["head", key, h.version, h.cid, h.seq, h.prev];
    if (image.commands) yield* image.commands.records();
  }

  /** The slot not holding the newest snapshot (when nothing is known, the one with the older or no manifest). */
  private async nextSlot(bucket: SnapshotStore): Promise<SnapshotSlot> {
    if (this.current) return this.current === "a" ? "b" : "a";
    const seqs = await Promise.all(SNAPSHOT_SLOTS.map(async (s) => seqOf(await bucket.manifest(this.prefix, s))));
    return seqs[0]! <= seqs[1]! ? "a" : "b";
  }

  // ---- when ----------------------------------------------------------------------------------------------

  /** Looks every `checkMs` whether a snapshot is due (moved `everyMessages`, or moved and `intervalMs` old). */
  schedule(position: () => { seq: number; live: boolean }, take: () => Promise<unknown>): void {
    if (this.timer || !this.writable) return;
    const every = this.opts.everyMessages ?? 100_000;
    const interval = this.opts.intervalMs ?? 600_000;
    this.timer = setInterval(() => {
      const p = position();
      const moved = p.seq - this.lastSeq;
      if (!p.live || this.busy || moved <= 0) return;
      if (moved >= every || Date.now() - this.lastAt >= interval) {
        take().catch((err: unknown) => this.log?.error({ ...this.where(), err: err instanceof Error ? err.message : String(err) }, `snapshot of ${this.projection.name} failed`));
      }
    }, this.opts.checkMs ?? 5_000);
    this.timer.unref();
  }

  /** Stops looking; waits for a snapshot under way. */
  async unschedule(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.busy?.catch(() => undefined);
  }
}

/** The seq a stored manifest names, unverified (0 when unreadable): only to pick the slot to overwrite. */
function seqOf(bytes: Uint8Array | undefined): number {
  if (!bytes) return 0;
  try {
    const seq = (JSON.parse(Buffer.from(bytes).toString("utf8")) as { seq?: unknown }).seq;
    return typeof seq === "number" ? seq : 0;
  } catch {
    return 0;
  }
}

function chunkCountOf(bytes: Uint8Array): number {
  try {
    const chunks = (JSON.parse(Buffer.from(bytes).toString("utf8")) as { chunks?: unknown }).chunks;
    return Array.isArray(chunks) ? chunks.length : 0;
  } catch {
    return 0;
  }
}
