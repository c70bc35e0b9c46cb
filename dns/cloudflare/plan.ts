import { tokenize, type RecordType } from "../domain/rdata.js";
import type { DnsRecord } from "../domain/zone.js";
import type { CfRecord, CfRecordBody } from "./client.js";

/**
 * The pure half of the Cloudflare mirror: what the zone wants on Cloudflare, and the diff against what is
 * there. Ownership works like external-dns: for every (name, type) the realm manages, a TXT record at
 * `_realm-<type>.<name>` says `heritage=cim-realm,cim-realm/owner=<owner>`. Records without that marker
 * were made by someone else and are never updated or deleted (a clash is reported, not resolved).
 */
export interface MirrorSettings {
  /** Identifies this realm among several writing to one Cloudflare zone. */
  owner: string;
  /** Names (absolute) whose A/AAAA/CNAME records go through Cloudflare's proxy. */
  proxied?: string[];
  /** TTL 1 ("automatic") for every record instead of the realm's TTLs. */
  autoTtl?: boolean;
}

export interface PlanChange {
  action: "create" | "update" | "delete";
  record: CfRecordBody;
  id?: string;
  /** Why: "missing", "ttl 300 -> 60", "no longer in the zone", "ownership marker". */
  reason: string;
}

export interface MirrorPlan {
  zone: string;
  changes: PlanChange[];
  /** (name, type) the zone wants but someone else owns on Cloudflare: left alone. */
  conflicts: { name: string; type: string; reason: string }[];
  unchanged: number;
}

const MIRRORED: ReadonlySet<RecordType> = new Set(["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "NS", "PTR", "HTTPS", "SVCB", "TLSA"]);
const PROXIABLE = new Set(["A", "AAAA", "CNAME"]);
const bare = (n: string) => (n.endsWith(".") ? n.slice(0, -1) : n);

export const markerName = (name: string, type: string) => `_realm-${type.toLowerCase()}.${bare(name)}`;
export const markerContent = (owner: string) => `"heritage=cim-realm,cim-realm/owner=${owner}"`;

/** The Cloudflare body of one realm record. */
export function toCloudflare(r: DnsRecord, s: MirrorSettings): CfRecordBody {
  const proxied = PROXIABLE.has(r.type) && (s.proxied ?? []).includes(r.name);
  const ttl = proxied || s.autoTtl ? 1 : Math.max(60, Math.min(86_400, r.ttl));
  const base = { type: r.type, name: bare(r.name), ttl, ...(PROXIABLE.has(r.type) ? { proxied } : {}) };
  const f = r.data.split(" ");
  switch (r.type) {
    case "A":
    case "AAAA":
      return { ...base, content: r.data };
    case "CNAME":
    case "NS":
    case "PTR":
      return { ...base, content: bare(r.data) };
    case "MX":
      return { ...base, content: bare(f[1]!), priority: Number(f[0]) };
    case "TXT":
      return { ...base, content: r.data };
    case "SRV":
      return { ...base, data: { priority: Number(f[0]), weight: Number(f[1]), port: Number(f[2]), target: bare(f[3]!) } };
    case "CAA": {
      const t = tokenize(r.data);
      return { ...base, data: { flags: Number(t[0]!.text), tag: t[1]!.text, value: t[2]!.text } };
    }
    case "TLSA":
      return { ...base, data: { usage: Number(f[0]), selector: Number(f[1]), matching_type: Number(f[2]), certificate: f[3] } };
    case "HTTPS":
    case "SVCB":
      return { ...base, data: { priority: Number(f[0]), target: f[1] === "." ? "." : bare(f[1]!), value: f.slice(2).join(" ") } };
    default:
      return { ...base, content: r.data };
  }
}

const sortedJson = (o: Record<string, unknown>) => JSON.stringify(Object.keys(o).sort().map((k) => [k, o[k]]));

/** What makes two records the same record (TTL and proxied are attributes that an update changes). */
export function identity(r: CfRecordBody): string {
  const value = r.data && Object.keys(r.data).length > 0 ? sortedJson(r.data) : (r.content ?? "");
  return `${r.type} ${r.name.toLowerCase()} ${r.priority ?? ""} ${value}`;
}

export function planMirror(zone: string, records: DnsRecord[], existing: CfRecord[], s: MirrorSettings): MirrorPlan {
  const key = (name: string, type: string) => `${type} ${bare(name).toLowerCase()}`;
  const plan: MirrorPlan = { zone, changes: [], conflicts: [], unchanged: 0 };
  const existingBy = new Map<string, CfRecord[]>();
  for (const r of existing) existingBy.set(key(r.name, r.type), [...(existingBy.get(key(r.name, r.type)) ?? []), r]);
  const marker = markerContent(s.owner);
  const stripQuotes = (c: string | undefined) => (c ?? "").replace(/^"|"$/g, "");
  const markerOf = (name: string, type: string) => (existingBy.get(key(markerName(name, type), "TXT")) ?? []).find((r) => stripQuotes(r.content) === stripQuotes(marker));
  const wanted = new Map<string, CfRecordBody[]>();
  for (const r of records) {
    if (!MIRRORED.has(r.type) || (r.type === "NS" && r.name.toLowerCase() === zone)) continue;
    const body = toCloudflare(r, s);
    wanted.set(key(r.name, r.type), [...(wanted.get(key(r.name, r.type)) ?? []), body]);
  }
  for (const [k, bodies] of wanted) {
    const { type, name } = bodies[0]!;
    const have = existingBy.get(k) ?? [];
    const owned = markerOf(name, type);
    if (have.length > 0 && !owned) {
      plan.conflicts.push({ name, type, reason: "records exist on Cloudflare without this realm's ownership marker: left alone" });
      continue;
    }
    if (!owned) plan.changes.push({ action: "create", record: { type: "TXT", name: markerName(name, type), content: marker, ttl: 1 }, reason: "ownership marker" });
    const haveBy = new Map(have.map((r) => [identity(r), r]));
    for (const b of bodies) {
      const cur = haveBy.get(identity(b));
      if (!cur) plan.changes.push({ action: "create", record: b, reason: "missing" });
      else {
        haveBy.delete(identity(b));
        const reasons = [cur.ttl !== b.ttl ? `ttl ${cur.ttl} -> ${b.ttl}` : "", b.proxied !== undefined && Boolean(cur.proxied) !== b.proxied ? `proxied ${Boolean(cur.proxied)} -> ${b.proxied}` : ""].filter(Boolean);
        if (reasons.length > 0) plan.changes.push({ action: "update", id: cur.id, record: b, reason: reasons.join(", ") });
        else plan.unchanged++;
      }
    }
    for (const extra of haveBy.values()) plan.changes.push({ action: "delete", id: extra.id, record: strip(extra), reason: "no longer in the zone" });
  }
  // Owned (name, type) the zone no longer has: delete the records, then the marker.
  for (const r of existing) {
    if (r.type !== "TXT" || !r.name.startsWith("_realm-") || stripQuotes(r.content) !== stripQuotes(marker)) continue;
    const m = /^_realm-([a-z0-9]+)\.(.+)$/.exec(r.name);
    if (!m) continue;
    const type = m[1]!.toUpperCase();
    if (wanted.has(key(m[2]!, type))) continue;
    for (const gone of existingBy.get(key(m[2]!, type)) ?? []) plan.changes.push({ action: "delete", id: gone.id, record: strip(gone), reason: "no longer in the zone" });
    plan.changes.push({ action: "delete", id: r.id, record: strip(r), reason: "ownership marker of a removed record set" });
  }
  return plan;
}

function strip(r: CfRecord): CfRecordBody {
  const { id: _id, ...rest } = r;
  return rest;
}
