import { eventIdFor, type EventEnvelope } from "./envelope.js";
import { EMPTY_POSITION, type AggregateRef, type CommandMeta, type EventStore, type NewEvent, type AggregatePosition } from "./store.js";
import { conflict, RealmError } from "./errors.js";

/**
 * The pure core of an aggregate: `decide` turns a command and the current state into new events (or throws
 * a RealmError), `evolve` folds one stored event into the state. No I/O in either.
 */
export interface Decider<S, C> {
  readonly aggregateType: string;
  initialState(id: string): S;
  decide(state: S, command: C): NewEvent[];
  evolve(state: S, event: EventEnvelope): S;
}

export function fold<S, C>(decider: Decider<S, C>, id: string, events: Iterable<EventEnvelope>): S {
  let state = decider.initialState(id);
  for (const e of events) state = decider.evolve(state, e);
  return state;
}

export interface Execution<S> {
  state: S;
  events: EventEnvelope[];
  position: AggregatePosition;
  /** True when this command id had already been applied: nothing new was appended. */
  replayed: boolean;
}

/**
 * Load -> decide -> append for one aggregate. A command whose id already caused events of this aggregate
 * is answered from those events (idempotent retries); a concurrent writer makes it fail with CONFLICT.
 */
export async function execute<S, C>(store: EventStore, decider: Decider<S, C>, id: string, command: C, meta: CommandMeta, opts: { replayOnly?: boolean } = {}): Promise<Execution<S>> {
  const ref: AggregateRef = { type: decider.aggregateType, id };
  const history = await store.load(ref);
  const state = fold(decider, id, history.events);
  const earlier = eventsOfCommand(history.events, meta.commandId);
  if (earlier.length > 0) return { state, events: assertSameActor(earlier, meta), position: history, replayed: true };
  // Only asked whether this command ran before (the write model's check of an old command id).
  if (opts.replayOnly) return { state, events: [], position: history, replayed: false };
  const decided = decider.decide(state, command);
  const { events, position } = await store.append(ref, history, decided, meta);
  let next = state;
  for (const e of events) next = decider.evolve(next, e);
  return { state: next, events, position, replayed: false };
}

/**
 * A resent command is answered from its events only for the actor that sent it first: a command id is in
 * every reader's view of the stream (event ids derive from it), so anyone else sending it again is refused,
 * in words that tell nothing about the first command.
 */
export function assertSameActor(events: EventEnvelope[], meta: CommandMeta): EventEnvelope[] {
  if (events.some((e) => e.actor !== meta.actor)) throw conflict(`command id ${meta.commandId} was used for another request: send a new command id for a new request`);
  return events;
}

/** The events a command id already produced (their ids are derived from it, see eventIdFor). */
function eventsOfCommand(events: EventEnvelope[], commandId: string): EventEnvelope[] {
  const first = eventIdFor(commandId, 0);
  const start = events.findIndex((e) => e.id === first);
  if (start < 0) return [];
  const out: EventEnvelope[] = [];
  for (let i = start, n = 0; i < events.length && events[i]!.id === eventIdFor(commandId, n); i++, n++) out.push(events[i]!);
  return out;
}

/**
 * `execute` for an aggregate the caller expects to be new (its id freshly derived, e.g. a certificate
 * serial): decides on the initial state and appends expecting no earlier event, saving the load. If the
 * aggregate exists after all (a retry, another replica) the append is refused and this falls back to
 * `execute`, which answers a retry from its events or decides again on the real state.
 */
export async function executeNew<S, C>(store: EventStore, decider: Decider<S, C>, id: string, command: C, meta: CommandMeta): Promise<Execution<S>> {
  const ref: AggregateRef = { type: decider.aggregateType, id };
  const state = decider.initialState(id);
  const decided = decider.decide(state, command);
  try {
    const { events, position } = await store.append(ref, EMPTY_POSITION, decided, meta);
    let next = state;
    for (const e of events) next = decider.evolve(next, e);
    return { state: next, events, position, replayed: false };
  } catch (err) {
    if (err instanceof RealmError && err.code === "CONFLICT") return execute(store, decider, id, command, meta);
    throw err;
  }
}
