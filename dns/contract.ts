/**
 * What other contexts may rely on from the name domain: its subjects, event types and reply shapes.
 * (PKI derives name constraints from the realm's zones; identity derives NATS permissions from subject owners.)
 */
export const DNS_CONTEXT = "dns";
export const DNS_STREAM = "REALM_DNS";
/**
 * The Object Store bucket a master file too big for one NATS message travels through: the operator's CLI
 * puts it there, `zone.import` names it (`upload`), the dns context reads and deletes it (uploads.ts).
 */
export const DNS_UPLOADS_BUCKET = "realm_dns_uploads";
/** The KV bucket of TSIG key secrets, sealed (dns/tsig-secrets.ts): the dns context alone reads and writes it. */
export const DNS_TSIG_BUCKET = "realm_dns_tsig";
/** The KV bucket of the zones' DNSSEC private keys, sealed (dns/dnssec/key-store.ts): the dns context alone reads and writes it. */
export const DNS_DNSSEC_BUCKET = "realm_dns_dnssec";
/** The JetStream stream behind that bucket (Object Store names it `OBJ_<bucket>`). */
export const DNS_UPLOADS_STREAM = `OBJ_${DNS_UPLOADS_BUCKET}`;

export const DnsSubjects = {
  zones: "realm.dns.queries.zones",
  records: "realm.dns.queries.records",
  zonefile: "realm.dns.queries.zonefile",
  subjectOwner: "realm.dns.queries.subject-owner",
  subjects: "realm.dns.queries.subjects",
  cid: "realm.dns.queries.cid",
  recordAdd: "realm.dns.commands.record.add",
  zoneImport: "realm.dns.commands.zone.import",
  hostAdd: "realm.dns.commands.host.add",
  subjectRegister: "realm.dns.commands.subject.register",
  cidRegister: "realm.dns.commands.cid.register",
  /** Events of one zone: `realm.dns.events.zone.<encodeToken(zone)>`; all of them: `realm.dns.events.>`. */
  events: "realm.dns.events.>",
} as const;

export const DnsEventTypes = {
  ZoneCreated: "ZoneCreated",
  ZoneSoaChanged: "ZoneSoaChanged",
  ZoneDeleted: "ZoneDeleted",
  /** Legacy (one event with every record); new imports are Started, Chunk x N, Committed. */
  ZoneImported: "ZoneImported",
  ZoneImportStarted: "ZoneImportStarted",
  ZoneImportChunk: "ZoneImportChunk",
  /** The zone now holds the import (a zone created by an import exists from here on). */
  ZoneImportCommitted: "ZoneImportCommitted",
  RecordAdded: "RecordAdded",
  RecordRemoved: "RecordRemoved",
  RecordSetChanged: "RecordSetChanged",
  /** The zone's secondaries (NOTIFY targets, `{ secondaries: [{ host, port }] }`); no serial step. */
  ZoneSecondariesSet: "ZoneSecondariesSet",
  NamespaceRegistered: "NamespaceRegistered",
  NamespaceReleased: "NamespaceReleased",
  ObjectRegistered: "ObjectRegistered",
  ObjectRemoved: "ObjectRemoved",
  CloudflareMirrorApplied: "CloudflareMirrorApplied",
} as const;

/** Reply of `zones`: absolute zone names (trailing dot) with their SOA serial. */
export interface ZonesReply {
  zones: { zone: string; serial: number; records: number; secondaries?: string[] }[];
}

/** Reply of `subject-owner` (NOT_FOUND when no namespace matches). */
export interface SubjectOwnerReply {
  subject: string;
  owner: string;
  namespace: string;
}

/** Payload of NamespaceRegistered. */
export interface NamespaceRegisteredData {
  pattern: string;
  owner: string;
  description?: string;
}

/** Reply of `cid`. */
export interface CidReply {
  name: string;
  cid: string;
  size?: number;
  mediaType?: string;
}
