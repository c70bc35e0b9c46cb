import type { Decider, NewEvent } from "../../services/kernel/index.js";
import { invalid } from "../../services/kernel/index.js";
import { dataOf, ev } from "../domain/common.js";

/**
 * POSIX numbers of the directory's people (uidNumber) and groups (gidNumber): one aggregate
 * (`posix/ids`) holds the whole allocation, so two replicas cannot hand out one number twice (optimistic
 * concurrency on a single stream position). A number is allocated once, the first time the LDAP directory
 * serves the person or group, from a configurable base, upward, and never reused: `nextUid`/`nextGid` only
 * grow, and a name keeps its number for good (even if the principal is later disabled).
 */
export interface PosixIdsState {
  id: string;
  exists: boolean;
  nextUid: number;
  nextGid: number;
  uids: Record<string, number>;
  gids: Record<string, number>;
}

export const POSIX_AGGREGATE = "posix";
export const POSIX_ID = "ids";
export const PosixEvents = { Allocated: "PosixIdAllocated" } as const;

export interface PosixAllocatedData {
  kind: "uid" | "gid";
  /** The principal (uid) or group (gid) id. */
  name: string;
  number: number;
}

export type PosixCommand = { type: "allocate"; uids: string[]; gids: string[]; uidBase: number; gidBase: number };

const MAX_ID = 2 ** 31 - 2;

export const posixDecider: Decider<PosixIdsState, PosixCommand> = {
  aggregateType: POSIX_AGGREGATE,
  initialState: (id) => ({ id, exists: false, nextUid: 0, nextGid: 0, uids: {}, gids: {} }),
  decide(s, c): NewEvent[] {
    for (const b of [c.uidBase, c.gidBase]) if (!Number.isInteger(b) || b < 1 || b > MAX_ID) throw invalid(`a POSIX id base must be an integer in 1..${MAX_ID}: ${b}`);
    const out: NewEvent[] = [];
    let nextUid = Math.max(s.nextUid, c.uidBase);
    for (const name of [...new Set(c.uids)].sort()) {
      if (s.uids[name] !== undefined) continue;
      if (nextUid > MAX_ID) throw invalid("the uidNumber range is used up");
      out.push(ev<PosixAllocatedData>(PosixEvents.Allocated, { kind: "uid", name, number: nextUid++ }));
    }
    let nextGid = Math.max(s.nextGid, c.gidBase);
    for (const name of [...new Set(c.gids)].sort()) {
      if (s.gids[name] !== undefined) continue;
      if (nextGid > MAX_ID) throw invalid("the gidNumber range is used up");
      out.push(ev<PosixAllocatedData>(PosixEvents.Allocated, { kind: "gid", name, number: nextGid++ }));
    }
    return out;
  },
  evolve(s, e) {
    if (e.type !== PosixEvents.Allocated) return s;
    const d = dataOf<PosixAllocatedData>(e);
    if (d.kind === "uid") return { ...s, exists: true, uids: { ...s.uids, [d.name]: d.number }, nextUid: Math.max(s.nextUid, d.number + 1) };
    return { ...s, exists: true, gids: { ...s.gids, [d.name]: d.number }, nextGid: Math.max(s.nextGid, d.number + 1) };
  },
};
