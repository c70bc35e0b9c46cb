import { DeliverPolicy, type ConsumerMessages } from "@nats-io/jetstream";
import { RealmError } from "./errors.js";
import type { EventEnvelope } from "./envelope.js";
import { parseEvent, type EventStore } from "./store.js";

/** A named fold over a context's events. `apply` may mutate the state it is given (read models are maps). */
export interface ProjectionDefinition<S> {
  name: string;
  /** Bump when `apply` changes meaning: the read model is then rebuilt from zero. */
  version: number;
  initial(): S;
  apply(state: S, event: EventEnvelope, seq: number): S;
}

export type ProjectionStatus = "idle" | "catching-up" | "live" | "stopped" | "failed";

/**
 * Runs a projection live with an ordered consumer, recording the last sequence it applied. A projection
 * that cannot apply an event stops, keeps its state as of the event before, and says which event and why.
 */
export class Projection<S> {
  state: S;
  lastSeq = 0;
  status: ProjectionStatus = "idle";
  failure: RealmError | undefined;
  private messages: ConsumerMessages | undefined;
  private waiters: { seq: number; resolve: () => void; reject: (e: Error) => void }[] = [];

  constructor(
    readonly store: EventStore,
    readonly def: ProjectionDefinition<S>,
  ) {
    this.state = def.initial();
  }

  /** Applies one stored event; public so that a rebuild and the live loop share one code path. */
  applyStored(seq: number, event: EventEnvelope): void {
    try {
      this.state = this.def.apply(this.state, event, seq);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new RealmError("PROJECTION", `projection ${this.def.name} v${this.def.version} cannot apply event ${event.id} (${event.type}) at sequence ${seq}: ${reason}`, {
        projection: this.def.name,
        seq,
        eventId: event.id,
        eventType: event.type,
      });
    }
    this.lastSeq = seq;
  }

  /** Reads every event up to the current end of the stream into a fresh state. */
  async rebuild(): Promise<{ events: number; ms: number }> {
    const started = performance.now();
    this.state = this.def.initial();
    this.lastSeq = 0;
    let events = 0;
    for await (const { seq, event } of this.store.read()) {
      this.applyStored(seq, event);
      events++;
    }
    return { events, ms: performance.now() - started };
  }

  /** Catches up to the end of the stream, then follows it live. Resolves once caught up. */
  async start(): Promise<void> {
    this.status = "catching-up";
    const end = await this.store.lastSequence();
    const consumer = await this.store.js.consumers.get(this.store.stream, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: this.lastSeq + 1,
    });
    this.messages = await consumer.consume({ max_messages: 1024 });
    const caughtUp = this.waitFor(end);
    void this.follow(this.messages);
    await caughtUp;
    if (this.status === "catching-up") this.status = "live";
  }

  private async follow(messages: ConsumerMessages): Promise<void> {
    try {
      for await (const m of messages) {
        if (m.seq <= this.lastSeq) continue;
        this.applyStored(m.seq, parseEvent(m));
        this.release();
      }
      if (this.status !== "failed") this.status = "stopped";
    } catch (err) {
      this.status = "failed";
      this.failure = err instanceof RealmError ? err : new RealmError("PROJECTION", `projection ${this.def.name} stopped: ${String(err)}`);
      await messages.close().catch(() => undefined);
      for (const w of this.waiters.splice(0)) w.reject(this.failure);
    }
  }

  private release(): void {
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) (w.seq <= this.lastSeq ? w.resolve() : still.push(w));
    this.waiters = still;
  }

  /** Resolves when the projection has applied stream sequence `seq` (read-your-writes after a command). */
  waitFor(seq: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (seq <= this.lastSeq) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ seq, resolve, reject }));
  }

  async stop(): Promise<void> {
    this.status = "stopped";
    await this.messages?.close().catch(() => undefined);
    for (const w of this.waiters.splice(0)) w.reject(new RealmError("UNAVAILABLE", `projection ${this.def.name} stopped`));
  }
}
