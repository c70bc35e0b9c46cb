import type { Decider, NewEvent } from "../../services/kernel/index.js";
import { RealmError } from "../../services/kernel/errors.js";
import { inZone, lowerName, sameName } from "./names.js";
import type { RecordType } from "./rdata.js";
import { nameRecords, rrKey, zoneBatchDecider, zoneDecider, type ZoneCommand, type ZoneState } from "./zone.js";

/**
 * RFC 2136 dynamic update, decided on the zone aggregate: the prerequisites checked and the update section
 * applied on the zone as it is, all in one decision, so an update is wholly applied (one append of the same
 * events the API's record commands make) or not at all. Pure: wire decoding and TSIG are the server's.
 */

/** RCODEs an update is answered with (RFC 2136 2.2). */
export const UpdateRcode = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, YXDOMAIN: 6, YXRRSET: 7, NXRRSET: 8, NOTAUTH: 9, NOTZONE: 10 } as const;

/** A refusal with the RCODE that says why (VALIDATION for the realm's own record rules, which answer REFUSED). */
export class UpdateRefused extends RealmError {
  constructor(
    readonly rcode: number,
    message: string,
  ) {
    super(rcode === UpdateRcode.REFUSED ? "FORBIDDEN" : "VALIDATION", message, { rcode });
  }
}

/** A prerequisite (RFC 2136 2.4), names absolute; `data` canonical. */
export type Prerequisite =
  | { kind: "nameInUse"; name: string }
  | { kind: "nameNotInUse"; name: string }
  | { kind: "rrsetExists"; name: string; type: RecordType }
  | { kind: "rrsetNotExists"; name: string; type: RecordType }
  /** Value-dependent: the RRset holds exactly these records (all of one name and type gathered). */
  | { kind: "rrsetEquals"; name: string; type: RecordType; data: string[] };

/** An update operation (RFC 2136 2.5); `type` "ANY" only for deleteName. Data canonical (the realm's form). */
export type UpdateOp =
  | { kind: "add"; name: string; type: RecordType; ttl: number; data: string }
  | { kind: "deleteRRset"; name: string; type: RecordType }
  | { kind: "deleteName"; name: string }
  | { kind: "deleteRR"; name: string; type: RecordType; data: string }
  /** An SOA in the update section: its fields replace the zone's when its serial is higher (the realm keeps counting its own serial). */
  | { kind: "soa"; name: string; mname: string; rname: string; serial: number; refresh: number; retry: number; expire: number; minimum: number; ttl: number };

export interface ZoneUpdate {
  type: "update";
  prerequisites: Prerequisite[];
  updates: UpdateOp[];
}

type Set_ = { name: string; type: RecordType; ttl: number; data: string[] };

/** The RRsets at a name of the zone, as the update has changed them so far. */
class Scratch {
  readonly changed = new Map<string, Set_ | null>();
  constructor(readonly s: ZoneState) {}

  get(name: string, type: RecordType): Set_ | undefined {
    const k = rrKey(name, type);
    if (this.changed.has(k)) return this.changed.get(k) ?? undefined;
    return this.s.rrsets.get(k);
  }

  put(name: string, type: RecordType, set: Set_ | null): void {
    this.changed.set(rrKey(name, type), set && set.data.length > 0 ? set : null);
  }

  /** Types with records at a name (the apex's SOA included). */
  types(name: string): RecordType[] {
    const out = new Set<RecordType>();
    for (const r of nameRecords(this.s, name)) out.add(r.type);
    const prefix = `${lowerName(name)} `;
    for (const [k, v] of this.changed) {
      if (!k.startsWith(prefix)) continue;
      const t = k.slice(prefix.length) as RecordType;
      if (v) out.add(t);
      else out.delete(t);
    }
    return [...out];
  }
}

function checkPrerequisites(s: ZoneState, pre: Prerequisite[]): void {
  const sc = new Scratch(s);
  const equals = new Map<string, { name: string; type: RecordType; data: string[] }>();
  for (const p of pre) {
    if (!inZone(p.name, s.zone)) throw new UpdateRefused(UpdateRcode.NOTZONE, `${p.name} is not in zone ${s.zone}`);
    switch (p.kind) {
      case "nameInUse":
        if (sc.types(p.name).length === 0) throw new UpdateRefused(UpdateRcode.NXDOMAIN, `${p.name} has no records`);
        break;
      case "nameNotInUse":
        if (sc.types(p.name).length > 0) throw new UpdateRefused(UpdateRcode.YXDOMAIN, `${p.name} has records`);
        break;
      case "rrsetExists":
        if (!sc.types(p.name).includes(p.type)) throw new UpdateRefused(UpdateRcode.NXRRSET, `${p.name} has no ${p.type} records`);
        break;
      case "rrsetNotExists":
        if (sc.types(p.name).includes(p.type)) throw new UpdateRefused(UpdateRcode.YXRRSET, `${p.name} has ${p.type} records`);
        break;
      case "rrsetEquals": {
        const k = rrKey(p.name, p.type);
        const e = equals.get(k) ?? { name: p.name, type: p.type, data: [] };
        e.data.push(...p.data);
        equals.set(k, e);
        break;
      }
    }
  }
  for (const e of equals.values()) {
    const cur = e.type === "SOA" ? nameRecords(s, e.name).filter((r) => r.type === "SOA").map((r) => r.data) : (sc.get(e.name, e.type)?.data ?? []);
    const want = new Set(e.data);
    if (cur.length !== want.size || !cur.every((d) => want.has(d))) throw new UpdateRefused(UpdateRcode.NXRRSET, `${e.name} ${e.type} is not the RRset the prerequisite names`);
  }
}

/** RFC 2136 3.4.2: applies the update section on a scratch of the zone, with its rules for the apex and CNAMEs. */
function applyUpdates(s: ZoneState, ops: UpdateOp[]): { sc: Scratch; soa?: Extract<UpdateOp, { kind: "soa" }> } {
  const sc = new Scratch(s);
  let soa: Extract<UpdateOp, { kind: "soa" }> | undefined;
  for (const op of ops) {
    if (!inZone(op.name, s.zone)) throw new UpdateRefused(UpdateRcode.NOTZONE, `${op.name} is not in zone ${s.zone}`);
    const apex = sameName(op.name, s.zone);
    switch (op.kind) {
      case "soa":
        if (!apex) throw new UpdateRefused(UpdateRcode.REFUSED, `an SOA belongs at the apex of ${s.zone}`);
        // Ignored unless its serial is higher (RFC 2136 3.4.2.2).
        if (op.serial > (soa?.serial ?? s.serial)) soa = op;
        break;
      case "add": {
        const types = sc.types(op.name);
        // A CNAME beside other data, or other data beside a CNAME, is ignored (RFC 2136 3.4.2.2).
        if (op.type === "CNAME" && types.some((t) => t !== "CNAME")) break;
        if (op.type !== "CNAME" && types.includes("CNAME")) break;
        const cur = sc.get(op.name, op.type);
        if (op.type === "CNAME" && cur) {
          sc.put(op.name, op.type, { ...cur, ttl: op.ttl, data: [op.data] });
          break;
        }
        if (cur?.data.includes(op.data)) {
          if (cur.ttl !== op.ttl) sc.put(op.name, op.type, { ...cur, ttl: op.ttl });
          break;
        }
        // One TTL per RRset (RFC 2181 5.2): the added record's TTL becomes the RRset's.
        sc.put(op.name, op.type, cur ? { ...cur, ttl: op.ttl, data: [...cur.data, op.data] } : { name: op.name, type: op.type, ttl: op.ttl, data: [op.data] });
        break;
      }
      case "deleteRRset":
        if (apex && (op.type === "SOA" || op.type === "NS")) break;
        if (op.type === "SOA") break;
        sc.put(op.name, op.type, null);
        break;
      case "deleteName":
        for (const t of sc.types(op.name)) if (!(apex && (t === "SOA" || t === "NS")) && t !== "SOA") sc.put(op.name, t, null);
        break;
      case "deleteRR": {
        if (op.type === "SOA") break;
        const cur = sc.get(op.name, op.type);
        if (!cur?.data.includes(op.data)) break;
        const left = cur.data.filter((d) => d !== op.data);
        // The last apex NS stays (RFC 2136 3.4.2.4).
        if (apex && op.type === "NS" && left.length === 0) break;
        sc.put(op.name, op.type, { ...cur, data: left });
        break;
      }
    }
  }
  return soa ? { sc, soa } : { sc };
}

/**
 * The zone commands that take the zone to the updated RRsets, as the API would have written them: records
 * added one by one (`add`), removed one by one or as a whole RRset (`remove`), an RRset whose TTL changed
 * replaced (`set`). Removals first, so an update that swaps an A for a CNAME passes the CNAME rule.
 */
function commandsOf(s: ZoneState, sc: Scratch): ZoneCommand[] {
  const removes: ZoneCommand[] = [];
  const others: ZoneCommand[] = [];
  for (const [k, next] of sc.changed) {
    const before = s.rrsets.get(k);
    const name = next?.name ?? before?.name;
    const type = next?.type ?? before?.type;
    if (!name || !type) continue;
    const was = before?.data ?? [];
    const now = next?.data ?? [];
    const added = now.filter((d) => !was.includes(d));
    const removed = was.filter((d) => !now.includes(d));
    const ttlChanged = before && next && before.ttl !== next.ttl;
    if (!next) {
      if (before) removes.push({ type: "remove", name, rtype: type });
    } else if (ttlChanged) others.push({ type: "set", name, rtype: type, ttl: next.ttl, data: now });
    else {
      for (const d of removed) removes.push({ type: "remove", name, rtype: type, data: d });
      for (const d of added) others.push({ type: "add", record: before ? { name, type, data: d } : { name, type, ttl: next.ttl, data: d } });
    }
  }
  return [...removes, ...others];
}

/** The zone aggregate's decider for dynamic updates: prerequisites, then the update section, one decision. */
export const zoneUpdateDecider: Decider<ZoneState, ZoneUpdate> = {
  aggregateType: zoneDecider.aggregateType,
  initialState: zoneDecider.initialState,
  decide(s, u): NewEvent[] {
    if (!s.exists) throw new UpdateRefused(UpdateRcode.NOTAUTH, `the realm is not authoritative for ${s.zone}`);
    checkPrerequisites(s, u.prerequisites);
    const { sc, soa } = applyUpdates(s, u.updates);
    const cmds = commandsOf(s, sc);
    if (soa) cmds.push({ type: "updateSoa", soa: { mname: soa.mname, rname: soa.rname, refresh: soa.refresh, retry: soa.retry, expire: soa.expire, minimum: soa.minimum, ttl: soa.ttl } });
    if (cmds.length === 0) return [];
    try {
      return zoneBatchDecider.decide(s, cmds);
    } catch (err) {
      // The realm's own record rules (the API's): the update is refused as a whole.
      if (err instanceof RealmError && !(err instanceof UpdateRefused)) throw new UpdateRefused(UpdateRcode.REFUSED, err.message);
      throw err;
    }
  },
  evolve: zoneDecider.evolve,
};
