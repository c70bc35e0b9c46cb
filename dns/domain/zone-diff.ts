import { DnsEvents, rrKey, type DnsRecord, type RecordChangeData, type RecordSetChangedData, type ZoneState } from "./zone.js";

/**
 * What one zone event changes in the records a secondary holds (RFC 1995's deleted and added RRs of one
 * serial step), decided on the state before the event:
 * - `{ deleted, added }` for a record change (the SOA not included: the step's two SOAs frame it);
 * - "reset" when the event replaces the zone (create, delete, import): no step a secondary could apply
 *   incrementally, so the history before it is of no use (IXFR answers the whole zone);
 * - null when the event changes no record and no serial (an import's staging, the zone's secondaries).
 */
export type ZoneEventDiff = { deleted: DnsRecord[]; added: DnsRecord[] } | "reset" | null;

export function zoneEventDiff(before: ZoneState, type: string, raw: unknown): ZoneEventDiff {
  switch (type) {
    case DnsEvents.ZoneSoaChanged:
      return { deleted: [], added: [] };
    case DnsEvents.RecordAdded: {
      const d = raw as RecordChangeData;
      const cur = before.rrsets.get(rrKey(d.name, d.type));
      return { deleted: [], added: [{ name: cur?.name ?? d.name, type: d.type, ttl: cur?.ttl ?? d.ttl, data: d.data }] };
    }
    case DnsEvents.RecordRemoved: {
      const d = raw as RecordChangeData;
      const cur = before.rrsets.get(rrKey(d.name, d.type));
      if (!cur?.data.includes(d.data)) return { deleted: [], added: [] };
      return { deleted: [{ name: cur.name, type: d.type, ttl: cur.ttl, data: d.data }], added: [] };
    }
    case DnsEvents.RecordSetChanged: {
      const d = raw as RecordSetChangedData;
      const cur = before.rrsets.get(rrKey(d.name, d.type));
      const old = cur?.data ?? [];
      const name = cur?.name ?? d.name;
      // A TTL change replaces the whole RRset (an IXFR deletion matches records without their TTL).
      const ttlChanged = cur !== undefined && d.data.length > 0 && cur.ttl !== d.ttl;
      const gone = ttlChanged ? old : old.filter((x) => !d.data.includes(x));
      const fresh = ttlChanged ? d.data : d.data.filter((x) => !old.includes(x));
      return {
        deleted: gone.map((data) => ({ name, type: d.type, ttl: cur!.ttl, data })),
        added: fresh.map((data) => ({ name, type: d.type, ttl: d.ttl, data })),
      };
    }
    case DnsEvents.ZoneCreated:
    case DnsEvents.ZoneDeleted:
    case DnsEvents.ZoneImported:
    case DnsEvents.ZoneImportCommitted:
      return "reset";
    default:
      return null;
  }
}

/** The zone's SOA record at its serial (as AXFR and queries write it), or null for a zone that does not exist. */
export function soaRecord(s: ZoneState): DnsRecord | null {
  if (!s.soa) return null;
  const soa = s.soa;
  return { name: s.zone, type: "SOA", ttl: soa.ttl, data: `${soa.mname} ${soa.rname} ${s.serial} ${soa.refresh} ${soa.retry} ${soa.expire} ${soa.minimum}` };
}

/** One serial step of a zone: its SOA before and after, and the records deleted and added between them. */
export interface ZoneStep {
  from: number;
  to: number;
  fromSoa: DnsRecord;
  toSoa: DnsRecord;
  deleted: DnsRecord[];
  added: DnsRecord[];
}

/** The step between two versions of a zone, record set against record set (for zones the realm derives whole, as its catalog). */
export function diffStates(before: ZoneState, after: ZoneState): ZoneStep | null {
  const fromSoa = soaRecord(before);
  const toSoa = soaRecord(after);
  if (!fromSoa || !toSoa || before.serial === after.serial) return null;
  const flat = (s: ZoneState) => {
    const m = new Map<string, DnsRecord>();
    for (const set of s.rrsets.values()) for (const data of set.data) m.set(`${rrKey(set.name, set.type)} ${set.ttl} ${data}`, { name: set.name, type: set.type, ttl: set.ttl, data });
    return m;
  };
  const a = flat(before);
  const b = flat(after);
  return {
    from: before.serial,
    to: after.serial,
    fromSoa,
    toSoa,
    deleted: [...a].filter(([k]) => !b.has(k)).map(([, r]) => r),
    added: [...b].filter(([k]) => !a.has(k)).map(([, r]) => r),
  };
}
