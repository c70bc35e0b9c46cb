import type { EventEnvelope, ProjectionDefinition } from "../services/kernel/index.js";
import { applyZoneEvent, zoneDecider, type ZoneState } from "./domain/zone.js";
import { applySubjectEvent, emptySubjects, type SubjectRegistry } from "./domain/subjects.js";
import { applyObjectEvent, emptyObjects, type ObjectRegistry } from "./domain/objects.js";

/** The name domain's read model: every zone, the subject namespaces and the named objects, in memory. */
export interface NameModel {
  zones: Map<string, ZoneState>;
  /** Deleted zones (their last serial: a zone created again goes on counting from it, as secondaries expect). */
  deletedZones: Map<string, ZoneState>;
  subjects: SubjectRegistry;
  objects: ObjectRegistry;
}

/**
 * The `dns-names` projection over REALM_DNS. `onZoneChanged` runs after each zone event is applied (the DNS
 * server drops its cached answers and re-indexes that zone).
 */
export function nameProjection(onZoneChanged: (zone: string) => void = () => undefined): ProjectionDefinition<NameModel> {
  return {
    name: "dns-names",
    version: 1,
    initial: () => ({ zones: new Map(), deletedZones: new Map(), subjects: emptySubjects(), objects: emptyObjects() }),
    apply(state, event: EventEnvelope) {
      switch (event.aggregate.type) {
        case zoneDecider.aggregateType: {
          const zone = event.aggregate.id;
          const cur = zoneOf(state, zone);
          const next = applyZoneEvent(cur, event.type, event.data);
          if (next.exists) {
            state.zones.set(zone, next);
            state.deletedZones.delete(zone);
          } else {
            state.zones.delete(zone);
            state.deletedZones.set(zone, next);
          }
          onZoneChanged(zone);
          break;
        }
        case "namespace":
          applySubjectEvent(state.subjects, event);
          break;
        case "object":
          applyObjectEvent(state.objects, event);
          break;
      }
      return state;
    },
  };
}

/** A zone as the decider sees it: live, deleted (with its serial), or never created. */
export function zoneOf(m: NameModel, zone: string): ZoneState {
  return m.zones.get(zone) ?? m.deletedZones.get(zone) ?? zoneDecider.initialState(zone);
}
