import { CID } from "multiformats/cid";
import type { Decider, EventEnvelope, NewEvent } from "../../services/kernel/index.js";
import { invalid, notFound } from "../../services/kernel/errors.js";

/** A named stored object and its content identifier (CIDv1, any codec, sha2-256 multihash to verify). */
export interface NamedObject {
  name: string;
  cid: string;
  size?: number;
  mediaType?: string;
}

export interface ObjectRegistry {
  objects: Map<string, NamedObject>;
}
export const emptyObjects = (): ObjectRegistry => ({ objects: new Map() });

export const ObjectEvents = { ObjectRegistered: "ObjectRegistered", ObjectRemoved: "ObjectRemoved" } as const;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$/;

/** Parses a CID string and insists on version 1 (a v0 CID is offered its v1 form in the error). */
export function parseCidV1(text: string): CID {
  let cid: CID;
  try {
    cid = CID.parse(text);
  } catch {
    throw invalid(`${JSON.stringify(text)} is not a CID`);
  }
  if (cid.version !== 1) throw invalid(`CID ${text} is version 0; register its CIDv1 ${cid.toV1().toString()}`);
  return cid;
}

export type ObjectCommand = { type: "register"; cid: string; size?: number; mediaType?: string } | { type: "remove" };

/** One aggregate per object name; registering again points the name at a new CID (history stays in events). */
export const objectDecider: Decider<NamedObject | null, ObjectCommand> = {
  aggregateType: "object",
  initialState: () => null,
  decide(s, c): NewEvent[] {
    if (c.type === "remove") {
      if (!s) throw notFound("object is not registered");
      return [{ type: ObjectEvents.ObjectRemoved, data: { name: s.name } }];
    }
    const cid = parseCidV1(c.cid).toString();
    if (s && s.cid === cid) return [];
    return [{ type: ObjectEvents.ObjectRegistered, data: { cid, ...(c.size !== undefined ? { size: c.size } : {}), ...(c.mediaType ? { mediaType: c.mediaType } : {}) } }];
  },
  evolve(_s, e) {
    if (e.type === ObjectEvents.ObjectRemoved) return null;
    return { name: e.aggregate.id, ...(e.data as Omit<NamedObject, "name">) };
  },
};

export function assertObjectName(name: string): string {
  if (!NAME.test(name) || name.includes("..")) throw invalid(`object name ${JSON.stringify(name)} must be 1..255 of letters, digits, '.', '_', '-', '/'`);
  return name;
}

export function applyObjectEvent(r: ObjectRegistry, e: EventEnvelope): void {
  const next = objectDecider.evolve(r.objects.get(e.aggregate.id) ?? null, e);
  if (next) r.objects.set(e.aggregate.id, next);
  else r.objects.delete(e.aggregate.id);
}
