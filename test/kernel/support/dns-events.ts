import type { BulkAppend } from "./bulk-append.js";

/**
 * Synthetic name-domain events for a big REALM_DNS: `zones` zones (one lane each), each created with a
 * ZoneCreated and then filled with one RecordAdded per event (an A record at a new name), as the zone
 * decider would have decided them. Folded by the dns-names projection into `events - zones` RRsets.
 */
export function dnsRecordEvents(events: number, zones: number): Omit<BulkAppend, "onProgress"> {
  const zoneName = (lane: number) => `z${lane}.scale.example.`;
  const soa = (zone: string) => ({ mname: `ns1.${zone}`, rname: `hostmaster.${zone}`, refresh: 3600, retry: 900, expire: 1_209_600, minimum: 300, ttl: 3600 });
  return {
    events,
    lanes: zones,
    actor: "scale",
    aggregate: (lane) => ({ type: "zone", id: zoneName(lane) }),
    event(lane, n) {
      const zone = zoneName(lane);
      if (n === 0) return { type: "ZoneCreated", data: { zone, serial: 1, soa: soa(zone), ns: [`ns1.${zone}`] } };
      return { type: "RecordAdded", data: { name: `h${n}.${zone}`, type: "A", ttl: 300, data: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`, serial: n + 1 } };
    },
  };
}
