import { createHash } from "node:crypto";
import { absoluteName, lowerName } from "../domain/names.js";
import { rrKey, type ZoneState } from "../domain/zone.js";
import { diffStates } from "../domain/zone-diff.js";
import type { ZoneJournal } from "./journal.js";

/** The default name of the realm's catalog zone. */
export const DEFAULT_CATALOG = "catalog.realm.";

/** What the catalog is made from: the live zones and how many times a zone came to exist or stopped existing. */
export interface ZoneList {
  zones: Map<string, ZoneState>;
  memberships: number;
}

/**
 * A member's unique id (RFC 9432 4.1: the `<unique-N>` label): 16 hex digits of the SHA-256 of its name, so
 * every realm instance and every worker names a member alike, and a member keeps its id while it exists.
 */
export const memberId = (zone: string) => createHash("sha256").update(lowerName(zone)).digest("hex").slice(0, 16);

/**
 * The realm's catalog zone (RFC 9432, schema version 2), derived from the zone list: SOA, the one NS
 * `invalid.`, `version TXT "2"`, and per realm zone a PTR `<id>.zones.<catalog>` -> the zone. Its serial is
 * 1 + the count of zone creations and deletions the dns-names projection has applied (so it goes up with
 * every change of the list, and every replica agrees); its TTLs are 0 (RFC 9432 4: a catalog is never a
 * cache's business).
 */
export function catalogState(name: string, list: ZoneList): ZoneState {
  const rrsets: ZoneState["rrsets"] = new Map();
  rrsets.set(rrKey(name, "NS"), { name, type: "NS", ttl: 0, data: ["invalid."] });
  rrsets.set(rrKey(`version.${name}`, "TXT"), { name: `version.${name}`, type: "TXT", ttl: 0, data: ['"2"'] });
  for (const zone of [...list.zones.keys()].sort()) {
    if (zone === name) continue;
    const owner = `${memberId(zone)}.zones.${name}`;
    rrsets.set(rrKey(owner, "PTR"), { name: owner, type: "PTR", ttl: 0, data: [zone] });
  }
  return {
    zone: name,
    exists: true,
    serial: list.memberships + 1,
    soa: { mname: "invalid.", rname: "invalid.", refresh: 3600, retry: 600, expire: 2_419_200, minimum: 0, ttl: 0 },
    rrsets,
  };
}

/**
 * The zones the DNS server answers for: the realm's zones plus its catalog zone (unless a zone of the realm
 * has the catalog's name: then that zone is served). The map is made again only when the zone list changed
 * (a zone created or deleted, or a projection restored anew), so a query costs two comparisons; each new
 * version of the catalog is recorded in the journal as a serial step (its IXFR), diffed against the last.
 */
export class ServedZones {
  private map: Map<string, ZoneState> | undefined;
  private source: Map<string, ZoneState> | undefined;
  private seen = -1;
  private last: ZoneState | undefined;
  readonly name: string | undefined;

  constructor(
    private readonly list: () => ZoneList,
    catalog: string | false | undefined,
    private readonly journal?: ZoneJournal,
  ) {
    this.name = catalog ? lowerName(absoluteName(catalog.endsWith(".") ? catalog : `${catalog}.`)) : undefined;
  }

  zones(): Map<string, ZoneState> {
    const l = this.list();
    if (!this.name) return l.zones;
    if (this.map && l.zones === this.source && l.memberships === this.seen) return this.map;
    const map = new Map(l.zones);
    if (!l.zones.has(this.name)) {
      const cat = catalogState(this.name, l);
      const step = this.last ? diffStates(this.last, cat) : null;
      if (step) this.journal?.record(this.name, step);
      else if (this.last?.serial !== cat.serial) this.journal?.record(this.name, "reset");
      this.last = cat;
      map.set(this.name, cat);
    }
    this.map = map;
    this.source = l.zones;
    this.seen = l.memberships;
    return map;
  }
}
