import { headers as natsHeaders, type NatsConnection } from "@nats-io/nats-core";
import {
  jetstream,
  jetstreamManager,
  JetStreamApiError,
  DeliverPolicy,
  RetentionPolicy,
  StorageType,
  DiscardPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import { conflict, invalid, RealmError } from "./errors.js";
import { canonicalEnvelope, cidOfCanonical, eventIdFor, sealedEnvelope, type EventEnvelope } from "./envelope.js";
import { BatchSealer } from "./seal-batch.js";
import { AckedPublisher, JetStreamRefusal } from "./acked-publish.js";
import { ChainVerifier, type ChainHead, type EventProblem } from "./chain.js";
import { Headers, eventSubject, eventsWildcard, streamName, assertToken } from "./subjects.js";
import type { RealmTrust } from "./trust.js";

export interface AggregateRef {
  type: string;
  id: string;
}

/** An event a decision produced, before the store gives it an envelope. */
export interface NewEvent<D = unknown> {
  type: string;
  data: D;
}

/** Why the request that caused an event was allowed: recorded in the event (covered by its CID). */
export interface EventAuthz {
  permission: string;
  /** The role binding that allowed it, and its role. */
  binding?: string | undefined;
  role?: string | undefined;
  /** How the caller authenticated: `apikey:<id>` or `token:<client>`. */
  via?: string | undefined;
  /** `insecure-no-auth`: the realm ran without authentication when this was recorded. */
  mode?: "insecure-no-auth" | undefined;
}

/** Who asked, and which command caused the events (DESIGN.md correlation/causation rules). */
export interface CommandMeta {
  commandId: string;
  actor: string;
  /** Defaults to the command id (a root command). */
  correlationId?: string;
  /** Defaults to the command id. */
  causationId?: string;
  authz?: EventAuthz | undefined;
}

/** What the store knows of an aggregate's position: enough to append after it. */
export interface AggregatePosition {
  version: number;
  /** Stream sequence of the aggregate's last event, 0 when it has none. */
  lastSeq: number;
  lastCid: string | null;
}

export interface AggregateHistory extends AggregatePosition {
  events: EventEnvelope[];
}

export interface StoredEvent {
  seq: number;
  event: EventEnvelope;
}

/** A stream message as stored, before verification. */
export interface StoredMessage {
  seq: number;
  subject: string;
  data: Uint8Array;
}

export interface EventStoreOptions {
  /** The realm's trust: every read verifies against it, every append is sealed with the writer's key. */
  trust: RealmTrust;
  /** Whose key seals appends (a name in the trust document). Default: the context. */
  writer?: string;
  /** R1 on a single server, R3 in a cluster. */
  replicas?: number;
  /** Dedupe window for Nats-Msg-Id, ms. */
  duplicateWindowMs?: number;
}

export const EMPTY_POSITION: AggregatePosition = { version: 0, lastSeq: 0, lastCid: null };

/**
 * The configuration of a context's event stream. Events are the record: never aged out, and the server
 * refuses to delete or purge any of them (`deny_delete`, `deny_purge`; nats-server does not let a stream
 * update turn either off again).
 */
export function eventStreamConfig(context: string, opts: { replicas?: number | undefined; duplicateWindowMs?: number | undefined } = {}) {
  return {
    name: streamName(context),
    subjects: [eventsWildcard(context)],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    num_replicas: opts.replicas ?? 1,
    duplicate_window: (opts.duplicateWindowMs ?? 120_000) * 1_000_000,
    allow_direct: true,
    max_age: 0,
    deny_delete: true,
    deny_purge: true,
  };
}

/**
 * Makes sure a context's stream exists with its record-keeping guarantees: creates it if missing, turns on
 * `deny_delete`/`deny_purge` on a stream made before they were set (a one-way change), and gives it the
 * replicas asked for (nats-server moves an existing stream to them; unset keeps what it has). Needs the
 * provisioning identity's stream rights; the contexts' own identities only read stream info.
 */
export async function provisionEventStream(jsm: JetStreamManager, context: string, opts: { replicas?: number | undefined; duplicateWindowMs?: number | undefined } = {}): Promise<void> {
  const config = eventStreamConfig(context, opts);
  let info;
  try {
    info = await jsm.streams.info(config.name);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === 10059 /* stream not found */) {
      await jsm.streams.add(config);
      return;
    }
    throw err;
  }
  const replicas = opts.replicas ?? info.config.num_replicas;
  if (!info.config.deny_delete || !info.config.deny_purge || info.config.num_replicas !== replicas) {
    await jsm.streams.update(config.name, { ...info.config, deny_delete: true, deny_purge: true, num_replicas: replicas });
  }
}

/**
 * The sequence of the first message on `subject` after `afterSeq` in `stream`, asked of the stream's leader
 * (MSG.GET, not a direct get a lagging replica may answer); 0 when there is none. What the fork checks of
 * appends and of KV compare-and-sets read. An unanswered ask is UNAVAILABLE, naming `what` was being checked.
 */
export async function firstOnSubjectAfter(jsm: JetStreamManager, stream: string, subject: string, afterSeq: number, what: string, withinMs = 10_000): Promise<number> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      // MSG.GET takes next_by_subj since nats-server 2.9; the client's type omits it.
      const m = await jsm.streams.getMessage(stream, { seq: afterSeq + 1, next_by_subj: subject } as { seq: number });
      return m?.seq ?? 0;
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === 10037 /* no message found */) return 0;
      // A stream electing a leader drops requests unanswered: ask again (a read) until the deadline, so the
      // check finds the new leader soon after its election (nats-server 2.9 elects after 4 to 9 s without a
      // leader, hence the 10 s budget: the message is stored, and confirming it beats "may or may not").
      // Give this a manager with a short timeout.
      if (err instanceof Error && /timeout/i.test(`${err.name} ${err.message}`) && Date.now() < deadline) continue;
      throw new RealmError("UNAVAILABLE", `could not check ${what} against concurrent writers: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

/**
 * A manager whose requests wait `timeoutMs` (default a second): for the fork checks (firstOnSubjectAfter asks
 * again until its deadline) and the readiness probes, which must answer during an outage. JetStream is known
 * to be there already, so it does not ask the API first.
 */
export const checkManager = (nc: NatsConnection, timeoutMs = 1_000): Promise<JetStreamManager> => jetstreamManager(nc, { timeout: timeoutMs, checkAPI: false });

/** nats-server fixed concurrent expected-sequence appends on replicated streams in 2.9.21 (nats-server#4320). */
export const FORK_SAFE_SERVER = [2, 9, 21] as const;

/** True when a stream of `replicas` on the server `nc` is connected to may fork under concurrent appends. */
export function forkProne(nc: NatsConnection, replicas: number | undefined): boolean {
  if ((replicas ?? 1) <= 1) return false;
  const v = /^v?(\d+)\.(\d+)\.(\d+)/.exec(nc.info?.version ?? "");
  if (!v) return true; // unknown version: check
  const [maj, min, pat] = [Number(v[1]), Number(v[2]), Number(v[3])];
  const [fm, fn, fp] = FORK_SAFE_SERVER;
  return maj !== fm ? maj < fm : min !== fn ? min < fn : pat < fp;
}

/**
 * One context's event store: a file-backed JetStream stream `REALM_<CONTEXT>` over
 * `realm.<context>.events.>`. Appends are sealed with the writer's key, optimistic
 * (`Nats-Expected-Last-Subject-Sequence` on the aggregate's subject) and idempotent (`Nats-Msg-Id` = event
 * id); reads verify every event against the realm's trust document.
 */
export class EventStore {
  readonly stream: string;
  readonly trust: RealmTrust;
  private readonly writer: string;
  private sealer: BatchSealer | undefined;
  private readonly publisher: AckedPublisher;
  /**
   * On a replicated stream of a nats-server before 2.9.21, two appends with the same expected subject
   * sequence can both be stored (nats-server#4320): each append then checks that its event is the first on
   * its subject after the position it expected, and answers CONFLICT when it is not (see append).
   */
  private forkGuard = false;
  /** On a site, the hub's JetStream API this stream mirrors (appends travel the leaf link to the hub). */
  private hubApi: string | undefined;
  /** Events whose stored copy lost a fork: a retry publishes them under another Nats-Msg-Id (bounded). */
  private readonly forkLosses = new Map<string, number>();

  private constructor(
    readonly context: string,
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    opts: EventStoreOptions,
  ) {
    this.stream = streamName(context);
    this.trust = opts.trust;
    this.writer = opts.writer ?? context;
    this.publisher = new AckedPublisher(nc);
  }

  /**
   * Opens a context's store. The stream is created (or given its deny flags) when the connection may do so;
   * in operator mode the realm's provisioning step has done it and this only reads the stream's info.
   */
  static async open(nc: NatsConnection, context: string, opts: EventStoreOptions): Promise<EventStore> {
    assertToken(context, "context");
    const jsm = await jetstreamManager(nc);
    const store = new EventStore(context, nc, jetstream(nc), jsm, opts);
    await store.ensureStream(opts);
    return store;
  }

  private async ensureStream(opts: EventStoreOptions): Promise<void> {
    try {
      const info = await this.jsm.streams.info(this.stream);
      this.forkGuard = forkProne(this.nc, info.config.num_replicas);
      this.hubApi = info.config.mirror?.external?.api || undefined;
      if (info.config.deny_delete && info.config.deny_purge) return;
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === 10059 /* stream not found */)) throw err;
    }
    try {
      await provisionEventStream(this.jsm, this.context, opts);
      this.forkGuard = forkProne(this.nc, (await this.jsm.streams.info(this.stream)).config.num_replicas);
    } catch (err) {
      throw new RealmError("UNAVAILABLE", `stream ${this.stream} is missing or allows deletes, and this identity may not provision it (${err instanceof Error ? err.message : String(err)})`);
    }
  }

  subjectOf(ref: AggregateRef): string {
    return eventSubject(this.context, ref.type, ref.id);
  }

  /** Signatures made and events sealed by this store (a batch of sealed events shares one signature). */
  get sealStats(): { signatures: number; sealed: number } {
    return { signatures: this.sealer?.signatures ?? 0, sealed: this.sealer?.sealed ?? 0 };
  }

  /** A verifier of this store's stream (one per read: it keeps the chain heads of what it has seen, or is given). */
  chainVerifier(heads?: Map<string, ChainHead>): ChainVerifier {
    return new ChainVerifier(this.context, this.stream, this.trust.verifier, heads);
  }

  /** The stream sequence of the last message on an aggregate's subject (0 when it has none): one request. */
  async tailSeq(ref: AggregateRef): Promise<number> {
    const last = await this.jsm.streams.getMessage(this.stream, { last_by_subj: this.subjectOf(ref) }).catch(() => null);
    return last?.seq ?? 0;
  }

  /**
   * The events one command appended to an aggregate, from the stream sequence of its first (they are
   * contiguous on the subject), verified on their own: direct gets, no consumer.
   */
  async commandEvents(ref: AggregateRef, firstSeq: number, commandId: string): Promise<StoredEvent[]> {
    const subject = this.subjectOf(ref);
    const verifier = this.chainVerifier();
    const out: StoredEvent[] = [];
    let m = await this.jsm.streams.getMessage(this.stream, { seq: firstSeq }).catch(() => null);
    for (let n = 0; m && m.subject === subject; n++) {
      const r = verifier.verify(m.seq, m.subject, m.data, { chain: false });
      if (!("event" in r) || r.event.id !== eventIdFor(commandId, n)) break;
      out.push({ seq: m.seq, event: r.event });
      m = await this.jsm.direct.getMessage(this.stream, { seq: m.seq + 1, next_by_subj: subject }).catch(() => null);
    }
    return out;
  }

  /** Where an aggregate's verified chain ends, and its subject's last stream sequence. */
  async position(ref: AggregateRef): Promise<AggregatePosition> {
    const { version, lastSeq, lastCid } = await this.load(ref);
    return { version, lastSeq, lastCid };
  }

  /**
   * Every event of one aggregate that verifies, in order. A stored message that does not verify (altered,
   * unsigned, signed by another context, off its chain) is left out and reported through `onProblem`; the
   * position still names the subject's last stream sequence, so the next append is ordered after it.
   */
  async load(ref: AggregateRef, onProblem?: (p: EventProblem) => void): Promise<AggregateHistory> {
    const subject = this.subjectOf(ref);
    const last = await this.jsm.streams.getMessage(this.stream, { last_by_subj: subject });
    if (!last) return { ...EMPTY_POSITION, events: [] };
    const chain = this.chainVerifier();
    const events: EventEnvelope[] = [];
    for await (const m of this.read({ filter: subject, untilSeq: last.seq })) {
      const r = chain.verify(m.seq, m.subject, m.data);
      if ("event" in r) events.push(r.event);
      else onProblem?.(r.problem);
    }
    const tail = events[events.length - 1];
    return { events, version: tail?.version ?? 0, lastSeq: last.seq, lastCid: tail?.cid ?? null };
  }

  /**
   * Appends the events one command produced to one aggregate, after `expected`. A writer that
   * appended first makes this fail with CONFLICT and nothing of this call is stored.
   */
  async append(ref: AggregateRef, expected: AggregatePosition, events: NewEvent[], meta: CommandMeta): Promise<{ events: EventEnvelope[]; position: AggregatePosition }> {
    if (events.length === 0) return { events: [], position: expected };
    assertToken(ref.type, "aggregate type");
    if (ref.id.length === 0) throw invalid("aggregate id must not be empty");
    const subject = this.subjectOf(ref);
    const stored: EventEnvelope[] = [];
    let { version, lastSeq, lastCid } = expected;
    const occurredAt = new Date().toISOString();
    this.sealer ??= new BatchSealer(this.trust.signer(this.writer));
    const sealer = this.sealer;
    const correlationId = meta.correlationId ?? meta.commandId;
    const causationId = meta.causationId ?? meta.commandId;
    for (let i = 0; i < events.length; i++) {
      const ev = events[i]!;
      const unsealed = {
        id: eventIdFor(meta.commandId, i),
        type: ev.type,
        aggregate: { type: ref.type, id: ref.id },
        version: version + 1,
        occurredAt,
        actor: meta.actor,
        correlationId,
        causationId,
        data: ev.data,
        prev: lastCid,
        ...(meta.authz ? { authz: meta.authz } : {}),
      };
      const canonical = canonicalEnvelope(unsealed);
      const cid = cidOfCanonical(canonical);
      const seal = await sealer.seal(cid);
      // This process made the seal: its own readers (the context's projection, a command's load) need not
      // verify it again. They still recompute the CID from the stored bytes, so a stored message that is not
      // this event fails as before; only the signature and Merkle proof check is answered from the cache.
      this.trust.verifier.remember(cid, seal.kid + seal.sig);
      const { envelope, json } = sealedEnvelope(unsealed, canonical, cid, seal);
      const h = natsHeaders();
      const lost = this.forkLosses.get(envelope.id);
      h.set(Headers.MsgId, lost ? `${envelope.id}.${lost}` : envelope.id);
      h.set(Headers.ExpectedLastSubjectSequence, String(lastSeq));
      try {
        const ack = await this.publisher.publish(subject, json, h);
        if (ack.duplicate) {
          // The same event id is already stored: a retry of this command raced ahead of us. Report a
          // conflict so the caller loads and answers from what is stored, instead of claiming a new write.
          throw conflict(`aggregate ${ref.type}/${ref.id} already holds the events of command ${meta.commandId}`, { aggregate: ref, duplicate: true, written: stored.length });
        }
        if (this.forkGuard && (await this.firstOnSubjectAfter(subject, lastSeq)) !== ack.seq) {
          // Another writer's event after the same position was stored first: readers follow that one and
          // skip this one (a void fork branch, audit.ts). Decide again on the first; a retry of this event
          // needs another message id, or the server would answer it with this void copy.
          if (this.forkLosses.size >= 10_000) this.forkLosses.clear();
          this.forkLosses.set(envelope.id, (lost ?? 0) + 1);
          throw conflict(`aggregate ${ref.type}/${ref.id} was changed by another writer at the same time (expected version ${version}); this event is void`, { aggregate: ref, expectedVersion: version, written: stored.length, fork: true });
        }
        lastSeq = ack.seq;
      } catch (err) {
        if (err instanceof RealmError && err.code === "UNAVAILABLE" && this.hubApi) throw new RealmError("UNAVAILABLE", `this site's hub (${this.hubApi}) did not take the event: a site writes to the hub, so commands wait for the link to the hub (${err.message})`);
        if (err instanceof RealmError) throw err;
        if (err instanceof JetStreamRefusal && (err.errCode === 10071 || err.errCode === 10164)) {
          throw conflict(`aggregate ${ref.type}/${ref.id} was changed by another writer (expected version ${version})`, {
            aggregate: ref,
            expectedVersion: version,
            written: stored.length,
          });
        }
        if (err instanceof JetStreamRefusal && err.code === 503) throw new RealmError("UNAVAILABLE", `JetStream is not answering for ${this.stream}`);
        throw err;
      }
      version = envelope.version;
      lastCid = envelope.cid;
      stored.push(envelope);
    }
    return { events: stored, position: { version, lastSeq, lastCid } };
  }

  /**
   * The sequence of the first message on `subject` after `afterSeq`, asked of the stream's leader (a direct
   * get may be answered by a replica that has not applied it yet); 0 when there is none. An unanswered ask is
   * UNAVAILABLE: the append's outcome is then unknown to the caller, as after a lost acknowledgement.
   */
  private async firstOnSubjectAfter(subject: string, afterSeq: number): Promise<number> {
    return firstOnSubjectAfter(await this.managerWithin(1_000), this.stream, subject, afterSeq, `the append to ${subject}`);
  }

  /** True when appends to this store check for forks (a replicated stream on a nats-server that needs it). */
  get checksForks(): boolean {
    return this.forkGuard;
  }

  /** Managers with short request timeouts (checkManager), one per timeout asked for. */
  private readonly shortManagers = new Map<number, Promise<JetStreamManager>>();

  private managerWithin(timeoutMs: number): Promise<JetStreamManager> {
    let m = this.shortManagers.get(timeoutMs);
    if (!m) this.shortManagers.set(timeoutMs, (m = checkManager(this.nc, timeoutMs)));
    return m;
  }

  /**
   * The stream's last sequence, asked with a short timeout of its own (readiness and projection watchdogs:
   * an outage must answer within it, not after the client's default request timeout).
   */
  async lastSequenceWithin(timeoutMs: number): Promise<number> {
    const info = await (await this.managerWithin(timeoutMs)).streams.info(this.stream);
    return info.state.last_seq;
  }

  /** The stream's last sequence (0 when empty). */
  async lastSequence(): Promise<number> {
    const info = await this.jsm.streams.info(this.stream);
    return info.state.last_seq;
  }

  /**
   * Reads stored messages in stream order with an ordered consumer, from `fromSeq` up to the end as it is
   * when the read starts (or `untilSeq`), unverified. `filter` is one aggregate's subject (no wildcards).
   */
  async *read(opts: { fromSeq?: number; untilSeq?: number; filter?: string } = {}): AsyncGenerator<StoredMessage> {
    const fromSeq = Math.max(1, opts.fromSeq ?? 1);
    let untilSeq = opts.untilSeq ?? (await this.lastSequence());
    if (opts.filter) {
      // A filtered consumer delivers nothing when nothing matches: read only up to the last match, if any.
      const last = await this.jsm.streams.getMessage(this.stream, { last_by_subj: opts.filter }).catch(() => null);
      if (!last) return;
      untilSeq = Math.min(untilSeq, last.seq);
    }
    if (untilSeq < fromSeq) return;
    for await (const m of readMessages(this.js, this.stream, { fromSeq, untilSeq, filter: opts.filter })) {
      yield { seq: m.seq, subject: m.subject, data: m.data };
    }
  }

  /**
   * The events of the stream (or of one aggregate's subject) that verify, from the start; messages that do
   * not are reported through `onProblem` and skipped.
   */
  async *readEvents(opts: { filter?: string; untilSeq?: number } = {}, onProblem?: (p: EventProblem) => void): AsyncGenerator<StoredEvent> {
    const chain = this.chainVerifier();
    for await (const m of this.read(opts)) {
      const r = chain.verify(m.seq, m.subject, m.data);
      if ("event" in r) yield { seq: m.seq, event: r.event };
      else onProblem?.(r.problem);
    }
  }
}

/**
 * Ordered-consumer read of a sequence range. Stops at `untilSeq` or when nothing is pending (the range
 * may end in deleted messages).
 */
export async function* readMessages(
  js: JetStreamClient,
  stream: string,
  opts: { fromSeq: number; untilSeq: number; filter?: string | undefined },
): AsyncGenerator<JsMsg> {
  const consumer = await js.consumers.get(stream, {
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: opts.fromSeq,
    ...(opts.filter ? { filter_subjects: opts.filter } : {}),
  });
  const messages = await consumer.consume({ max_messages: 1024 });
  try {
    for await (const m of messages) {
      if (m.seq > opts.untilSeq) break;
      yield m;
      if (m.seq >= opts.untilSeq || m.info.pending === 0) break;
    }
  } finally {
    await messages.close().catch(() => undefined);
  }
}
