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
import { eventIdFor, sealWithJson, type EventEnvelope } from "./envelope.js";
import { Headers, eventSubject, eventsWildcard, streamName, assertToken } from "./subjects.js";

export interface AggregateRef {
  type: string;
  id: string;
}

/** An event a decision produced, before the store gives it an envelope. */
export interface NewEvent<D = unknown> {
  type: string;
  data: D;
}

/** Who asked, and which command caused the events (DESIGN.md correlation/causation rules). */
export interface CommandMeta {
  commandId: string;
  actor: string;
  /** Defaults to the command id (a root command). */
  correlationId?: string;
  /** Defaults to the command id. */
  causationId?: string;
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

export interface EventStoreOptions {
  /** R1 on a single server, R3 in a cluster. */
  replicas?: number;
  /** `CIM-Source` header: which service wrote the event. */
  source?: string;
  /** Dedupe window for Nats-Msg-Id, ms. */
  duplicateWindowMs?: number;
}

export const EMPTY_POSITION: AggregatePosition = { version: 0, lastSeq: 0, lastCid: null };

/**
 * One context's event store: a file-backed JetStream stream `REALM_<CONTEXT>` over
 * `realm.<context>.events.>`. Appends are optimistic (`Nats-Expected-Last-Subject-Sequence` on the
 * aggregate's subject) and idempotent (`Nats-Msg-Id` = event id).
 */
export class EventStore {
  readonly stream: string;
  private readonly source: string;

  private constructor(
    readonly context: string,
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    opts: EventStoreOptions,
  ) {
    this.stream = streamName(context);
    this.source = opts.source ?? `cim-realm/${context}`;
  }

  static async open(nc: NatsConnection, context: string, opts: EventStoreOptions = {}): Promise<EventStore> {
    assertToken(context, "context");
    const jsm = await jetstreamManager(nc);
    const store = new EventStore(context, nc, jetstream(nc), jsm, opts);
    await store.ensureStream(opts);
    return store;
  }

  private async ensureStream(opts: EventStoreOptions): Promise<void> {
    const config = {
      name: this.stream,
      subjects: [eventsWildcard(this.context)],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      num_replicas: opts.replicas ?? 1,
      duplicate_window: (opts.duplicateWindowMs ?? 120_000) * 1_000_000,
      allow_direct: true,
      // Events are the record: never aged out.
      max_age: 0,
    };
    try {
      await this.jsm.streams.info(this.stream);
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === 10059 /* stream not found */) {
        await this.jsm.streams.add(config);
        return;
      }
      throw err;
    }
  }

  subjectOf(ref: AggregateRef): string {
    return eventSubject(this.context, ref.type, ref.id);
  }

  /** The position of an aggregate without reading its events (one request). */
  async position(ref: AggregateRef): Promise<AggregatePosition> {
    const last = await this.jsm.streams.getMessage(this.stream, { last_by_subj: this.subjectOf(ref) });
    if (!last) return EMPTY_POSITION;
    const e = last.json<EventEnvelope>();
    return { version: e.version, lastSeq: last.seq, lastCid: e.cid };
  }

  /** Every event of one aggregate, in order. */
  async load(ref: AggregateRef): Promise<AggregateHistory> {
    const subject = this.subjectOf(ref);
    const last = await this.jsm.streams.getMessage(this.stream, { last_by_subj: subject });
    if (!last) return { ...EMPTY_POSITION, events: [] };
    const events: EventEnvelope[] = [];
    for await (const { event } of this.read({ filter: subject, untilSeq: last.seq })) events.push(event);
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
    const correlationId = meta.correlationId ?? meta.commandId;
    const causationId = meta.causationId ?? meta.commandId;
    for (let i = 0; i < events.length; i++) {
      const ev = events[i]!;
      const { envelope, json } = sealWithJson({
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
      });
      const h = natsHeaders();
      h.set(Headers.EventType, envelope.type);
      h.set(Headers.CorrelationId, envelope.correlationId);
      h.set(Headers.CausationId, envelope.causationId);
      h.set(Headers.Timestamp, envelope.occurredAt);
      h.set(Headers.Source, this.source);
      h.set(Headers.AggregateType, ref.type);
      h.set(Headers.AggregateId, ref.id);
      try {
        const ack = await this.js.publish(subject, json, {
          msgID: envelope.id,
          expect: { lastSubjectSequence: lastSeq },
          headers: h,
        });
        if (ack.duplicate) {
          // The same event id is already stored: a retry of this command raced ahead of us. Report a
          // conflict so the caller loads and answers from what is stored, instead of claiming a new write.
          throw conflict(`aggregate ${ref.type}/${ref.id} already holds the events of command ${meta.commandId}`, { aggregate: ref, duplicate: true, written: stored.length });
        }
        lastSeq = ack.seq;
      } catch (err) {
        if (err instanceof RealmError) throw err;
        if (err instanceof JetStreamApiError && (err.code === 10071 || err.code === 10164)) {
          throw conflict(`aggregate ${ref.type}/${ref.id} was changed by another writer (expected version ${version})`, {
            aggregate: ref,
            expectedVersion: version,
            written: stored.length,
          });
        }
        throw err;
      }
      version = envelope.version;
      lastCid = envelope.cid;
      stored.push(envelope);
    }
    return { events: stored, position: { version, lastSeq, lastCid } };
  }

  /** The stream's last sequence (0 when empty). */
  async lastSequence(): Promise<number> {
    const info = await this.jsm.streams.info(this.stream);
    return info.state.last_seq;
  }

  /**
   * Reads stored events in stream order with an ordered consumer, from `fromSeq` up to the end as it is
   * when the read starts (or `untilSeq`).
   */
  async *read(opts: { fromSeq?: number; untilSeq?: number; filter?: string } = {}): AsyncGenerator<StoredEvent> {
    const fromSeq = Math.max(1, opts.fromSeq ?? 1);
    const untilSeq = opts.untilSeq ?? (await this.lastSequence());
    if (untilSeq < fromSeq) return;
    for await (const m of readMessages(this.js, this.stream, { fromSeq, untilSeq, filter: opts.filter })) {
      yield { seq: m.seq, event: parseEvent(m) };
    }
  }
}

/** Parses a stored event; a message that is not an envelope is an integrity failure naming its sequence. */
export function parseEvent(m: { seq: number; data: Uint8Array }): EventEnvelope {
  try {
    const e = JSON.parse(new TextDecoder().decode(m.data)) as EventEnvelope;
    if (typeof e !== "object" || e === null || typeof e.id !== "string" || typeof e.type !== "string") throw new Error("not an envelope");
    return e;
  } catch {
    throw new RealmError("INTEGRITY", `stream message ${m.seq} is not an event envelope`, { seq: m.seq });
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
