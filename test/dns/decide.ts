import { seal, type EventEnvelope } from "../../services/kernel/index.js";
import { zoneDecider, type ZoneCommand, type ZoneState } from "../../dns/domain/zone.js";

/** Runs commands through the zone decider the way `execute` does, without a store (from `from`, else a new zone). */
export function apply(commands: ZoneCommand[], zone = "example.test.", from?: ZoneState): { state: ZoneState; events: EventEnvelope[] } {
  let state = from ?? zoneDecider.initialState(zone);
  const events: EventEnvelope[] = [];
  for (const c of commands) {
    for (const e of zoneDecider.decide(state, c)) {
      const env = seal({ id: `e${events.length}`, type: e.type, aggregate: { type: "zone", id: zone }, version: events.length + 1, occurredAt: "t", actor: "a", correlationId: "c", causationId: "c", data: e.data, prev: null });
      events.push(env);
      state = zoneDecider.evolve(state, env);
    }
  }
  return { state, events };
}
