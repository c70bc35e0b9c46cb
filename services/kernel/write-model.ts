import { eventIdFor } from "./envelope.js";
import { conflict, RealmError } from "./errors.js";
import type { Decider, Execution } from "./decider.js";
import { assertSameActor, execute } from "./decider.js";
import type { Projection } from "./projection.js";
import { EMPTY_POSITION, type AggregatePosition, type AggregateRef, type CommandMeta, type EventStore } from "./store.js";

/**
 * The write side without history replay. A command decides on the aggregate's state as the context's
 * projection holds it (in memory, verified, live) and appends after the projection's head with
 * `Nats-Expected-Last-Subject-Sequence`; then it waits until the projection applied what it appended. Its
 * cost does not grow with the aggregate's history, and no consumer is made per command.
 *
 * - Commands on one aggregate run one at a time in this process (a queue per aggregate), so they never
 *   conflict with each other.
 * - A writer elsewhere that appended first makes the append fail; the model then reads the subject's last
 *   sequence (one direct get), waits until the projection has applied up to it, and decides again after a
 *   short random back-off, at most `retries` times (default 10) before answering CONFLICT.
 * - A resent command id is answered from the events it produced: the projection indexes event ids (which
 *   derive from command ids), so recognising one costs a map lookup; an id older than the exact part of
 *   that index is checked against the aggregate's history (rare).
 * - A command the decider refuses is refused only after the projection has caught up with the aggregate's
 *   tail (one direct get): a resend that reaches another instance before its projection saw the first
 *   attempt is then answered as a replay, not refused (ALREADY_EXISTS for a record it added itself).
 *
 * `view(id)` returns the state the projection holds for the aggregate (never modified here); a decider's
 * `decide` must not modify the state it is given.
 */
export class WriteModel {
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(
    readonly store: EventStore,
    readonly projection: Projection<unknown>,
    private readonly opts: { retries?: number } = {},
  ) {
    if (!projection.commands) throw new RealmError("INTERNAL", `projection ${projection.def.name} does not index command ids: create it with { indexCommands: true }`);
  }

  /** Runs `fn` after every earlier call for the same key (a promise chain per aggregate). */
  private serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.queues.set(key, tail);
    void tail.then(() => {
      if (this.queues.get(key) === tail) this.queues.delete(key);
    });
    return run;
  }

  execute<S, C>(decider: Decider<S, C>, view: (id: string) => S, id: string, command: C, meta: CommandMeta): Promise<Execution<S>> {
    const ref: AggregateRef = { type: decider.aggregateType, id };
    return this.serial(`${ref.type}/${ref.id}`, () => this.decideAndAppend(decider, view, ref, command, meta));
  }

  private async decideAndAppend<S, C>(decider: Decider<S, C>, view: (id: string) => S, ref: AggregateRef, command: C, meta: CommandMeta): Promise<Execution<S>> {
    const replay = await this.replayOf(decider, view, ref, meta);
    if (replay) return replay;
    let knownTail = 0;
    let caughtUp = false;
    const retries = this.opts.retries ?? 10;
    for (let attempt = 0; ; attempt++) {
      const head = this.projection.headOf(ref);
      const position: AggregatePosition = head ? { version: head.version, lastSeq: Math.max(head.seq, knownTail), lastCid: head.cid } : { ...EMPTY_POSITION, lastSeq: knownTail };
      let decided: ReturnType<typeof decider.decide>;
      try {
        decided = decider.decide(view(ref.id), command);
      } catch (err) {
        if (caughtUp) throw err;
        // Before refusing, catch up on this aggregate: the projection may lag the stream (another instance
        // appended moments ago, perhaps this very command, whose answer was lost and is being resent).
        caughtUp = true;
        knownTail = await this.store.tailSeq(ref);
        await this.projection.waitFor(knownTail);
        const again = await this.replayOf(decider, view, ref, meta);
        if (again) return again;
        continue;
      }
      try {
        const { events, position: after } = await this.store.append(ref, position, decided, meta);
        await this.projection.waitFor(after.lastSeq);
        return { state: view(ref.id), events, position: after, replayed: false };
      } catch (err) {
        if (!(err instanceof RealmError) || err.code !== "CONFLICT") throw err;
        const details = err.details as { duplicate?: boolean } | undefined;
        // The same event ids are stored already: a retry of this command raced ahead of it.
        if (details?.duplicate) {
          await this.projection.waitFor(await this.store.tailSeq(ref));
          const again = await this.replayOf(decider, view, ref, meta);
          if (again) return again;
        }
        if (attempt >= retries) throw conflict(`aggregate ${ref.type}/${ref.id} kept changing under ${retries + 1} attempts; try again`, { aggregate: ref });
        // Back off a random while (growing, at most ~50 ms) so two writers that keep colliding part ways.
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 ** attempt)));
        knownTail = await this.store.tailSeq(ref);
        await this.projection.waitFor(knownTail);
      }
    }
  }

  /** The earlier outcome of this command id on this aggregate, if it had one. */
  private async replayOf<S, C>(decider: Decider<S, C>, view: (id: string) => S, ref: AggregateRef, meta: CommandMeta): Promise<Execution<S> | undefined> {
    const first = eventIdFor(meta.commandId, 0);
    const hit = this.projection.commands!.lookup(first);
    if (hit === undefined) return undefined;
    if (hit === "maybe") {
      // Seen long ago (or a Bloom false positive): the aggregate's own history says.
      const r = await execute(this.store, decider, ref.id, undefined as never, meta, { replayOnly: true });
      return r.replayed ? { ...r, state: view(ref.id) } : undefined;
    }
    if (hit.key !== `${ref.type}/${ref.id}`) return undefined;
    const stored = await this.store.commandEvents(ref, hit.seq, meta.commandId);
    if (stored.length === 0) return undefined;
    const last = stored[stored.length - 1]!;
    await this.projection.waitFor(last.seq);
    return { state: view(ref.id), events: assertSameActor(stored.map((s) => s.event), meta), position: { version: last.event.version, lastSeq: last.seq, lastCid: last.event.cid }, replayed: true };
  }
}

