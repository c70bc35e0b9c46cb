/**
 * The kinds of result the `realm` verbs print, and for each what its table shows, what identifies it
 * (`-o name` prints `<name>/<id>`) and what `-q` prints (the secret it carries, else the identifier). A verb
 * names its kind in printResult(result, kind); a result of no kind gets generic columns.
 */
type Item = Record<string, unknown>;

export interface KindSpec {
  /** The kind in `-o name` output (`zone/lab.example.`). */
  name: string;
  /** What "no items" says (`no zones`). */
  plural?: string;
  /** The key of the list in a list result (`{zones: [...]}`). */
  list?: string;
  /** The key of the item in a single result (`{principal: {...}}`). */
  item?: string;
  /** The item's identifier: a dotted path, or a function of the item. */
  id?: string | ((item: Item) => unknown);
  /** The table's columns: header and dotted path. */
  columns?: [string, string][];
  /** The field `-q` prints instead of the identifier (a secret, or the one value a script wants). */
  quiet?: string;
}

const s = (name: string, spec: Omit<KindSpec, "name">): KindSpec => ({ name, ...spec });

export const KINDS = {
  zone: s("zone", { plural: "zones", list: "zones", id: "zone", columns: [["ZONE", "zone"], ["SERIAL", "serial"], ["RECORDS", "records"]] }),
  record: s("record", { plural: "records", list: "records", id: (r) => `${String(r.name)}/${String(r.type)}`, columns: [["NAME", "name"], ["TYPE", "type"], ["TTL", "ttl"], ["DATA", "data"]] }),
  host: s("host", { id: "name", columns: [["NAME", "name"], ["ZONE", "zone"], ["IPS", "ips"], ["PTR", "ptr"]] }),
  namespace: s("namespace", { plural: "namespaces", list: "namespaces", id: "pattern", columns: [["PATTERN", "pattern"], ["OWNER", "owner"], ["DESCRIPTION", "description"]] }),
  cid: s("cid", { id: (c) => c.name ?? c.cid, quiet: "cid", columns: [["NAME", "name"], ["CID", "cid"], ["DNSLINK", "dnslink"]] }),
  // `-q` on create prints the secret alone (shown once: for a script that stores it straight away).
  tsig: s("tsig", { plural: "keys", list: "keys", id: "name", quiet: "secret", columns: [["NAME", "name"], ["ALGORITHM", "algorithm"], ["PRINCIPAL", "principal"], ["ZONES", "zones"], ["NAMES", "names"], ["FINGERPRINT", "fingerprint"], ["REVOKED", "revoked"]] }),
  // A signed zone's keys (public halves): `-q` prints the DS for the parent.
  dnssec: s("dnssec", { plural: "keys", list: "keys", id: "zone", quiet: "ds", columns: [["ID", "id"], ["ROLE", "role"], ["TAG", "tag"], ["ALGORITHM", "algorithm"], ["STATE", "state"], ["PUBLISHED", "publishedAt"], ["ACTIVE", "activeAt"], ["RETIRED", "retiredAt"]] }),
  principal: s("principal", { plural: "principals", list: "principals", item: "principal", id: "id", columns: [["ID", "id"], ["KIND", "kind"], ["NAME", "displayName"], ["DISABLED", "disabled"], ["SOURCE", "source"]] }),
  organization: s("organization", { plural: "organizations", item: "organization", id: "id" }),
  group: s("group", { plural: "groups", list: "groups", item: "group", id: "id", columns: [["ID", "id"], ["NAME", "displayName"], ["MEMBERS", "members"], ["SOURCE", "source.kind"]] }),
  role: s("role", { plural: "roles", list: "roles", item: "role", id: "id", columns: [["ID", "id"], ["PERMISSIONS", "permissions"], ["SELF", "self"], ["DESCRIPTION", "description"]] }),
  binding: s("binding", {
    plural: "bindings",
    list: "policies",
    item: "policy",
    id: "id",
    columns: [["ID", "id"], ["ROLE", "role"], ["SUBJECT KIND", "subject.kind"], ["SUBJECT", "subject.id"], ["SCOPE", "scope"], ["REVOKED", "revoked"]],
  }),
  apikey: s("apikey", { plural: "API keys", list: "apiKeys", item: "apiKey", id: (k) => k.id ?? k.apiKeyId, quiet: "key", columns: [["ID", "id"], ["OWNER", "owner"], ["LABEL", "label"], ["ROLES", "roles"], ["EXPIRES", "expiresAt"], ["REVOKED", "revoked"]] }),
  client: s("client", { plural: "clients", list: "clients", item: "client", id: "id", quiet: "clientSecret", columns: [["ID", "id"], ["NAME", "displayName"], ["PUBLIC", "public"], ["TRUSTED", "trusted"], ["GRANTS", "grantTypes"], ["DISABLED", "disabled"]] }),
  directory: s("directory", { plural: "directories", list: "directories", item: "directory", id: "id", columns: [["ID", "id"], ["URL", "url"], ["USERS", "usersBase"], ["INTERVAL", "syncIntervalSeconds"], ["LAST SYNC", "lastSyncAt"]] }),
  event: s("event", { plural: "entries", list: "entries", id: "seq", columns: [["SEQ", "seq"], ["AT", "at"], ["ACTOR", "actor"], ["TYPE", "type"], ["AGGREGATE TYPE", "aggregate.type"], ["AGGREGATE", "aggregate.id"]] }),
  whoami: s("principal", { item: "principal", id: "id" }),
  totp: s("totp", { quiet: "otpauthUri" }),
  account: s("account", { plural: "accounts", list: "accounts", id: "name", columns: [["NAME", "name"], ["PUBLIC KEY", "publicKey"], ["SYSTEM", "system"], ["DELETED", "deleted"], ["SIGNING KEYS", "signingKeys"]] }),
  signingkey: s("signingkey", { id: (k) => k.key ?? k.publicKey }),
  user: s("user", {
    plural: "users",
    list: "users",
    id: (u) => `${String(u.account)}/${String(u.name ?? u.user)}`,
    quiet: "creds",
    columns: [["ACCOUNT", "account"], ["NAME", "name"], ["KIND", "kind"], ["PUBLIC KEY", "publicKey"], ["ISSUED", "issuedAt"], ["EXPIRES", "expiresAt"], ["REVOKED", "revoked"]],
  }),
  certificate: s("certificate", {
    plural: "certificates",
    list: "certificates",
    id: "serial",
    columns: [["SERIAL", "serial"], ["COMMON NAME", "commonName"], ["ISSUER", "issuer"], ["PROFILE", "profile"], ["STATUS", "status"], ["NOT AFTER", "notAfter"]],
  }),
  crl: s("crl", { id: "issuer", quiet: "crlPem" }),
  issuer: s("issuer", { plural: "issuers", list: "issuers", id: "issuer", columns: [["ISSUER", "issuer"], ["INTERMEDIATE", "intermediate.serial"], ["NOT AFTER", "intermediate.notAfter"], ["PERMITTED", "intermediate.permittedDns"], ["PENDING CSR", "pending.keySpec"]] }),
  expiring: s("expiring", { plural: "nothing expiring", list: "expiring", id: (e) => `${String(e.kind)}/${String(e.serial)}`, columns: [["KIND", "kind"], ["ISSUER", "issuer"], ["SERIAL", "serial"], ["NAME", "name"], ["NOT AFTER", "notAfter"]] }),
  "ssh-ca": s("ssh-ca", { plural: "SSH CAs", list: "cas", id: "issuer", columns: [["ISSUER", "issuer"], ["KEY", "keySpec"], ["FINGERPRINT", "fingerprint"], ["CREATED", "createdAt"]] }),
  "ssh-certificate": s("ssh-certificate", { plural: "SSH certificates", list: "certificates", id: "serial", columns: [["SERIAL", "serial"], ["KIND", "kind"], ["KEY ID", "keyId"], ["PRINCIPALS", "principals"], ["ISSUER", "issuer"], ["STATUS", "status"], ["VALID BEFORE", "validBefore"]] }),
  acme: s("acme", { id: "issuer", columns: [["ISSUER", "issuer"], ["ENABLED", "acme.enabled"], ["EAB", "acme.externalAccountRequired"], ["DIRECTORY", "directory"]] }),
  "acme-account": s("acme-account", { plural: "ACME accounts", list: "accounts", id: "id", columns: [["ID", "id"], ["STATUS", "status"], ["CONTACT", "contact"], ["ORDERS", "orders"], ["PRINCIPAL", "eab.principal"]] }),
  "acme-eab": s("acme-eab", { plural: "EAB keys", list: "keys", id: "keyId", quiet: "hmacKey", columns: [["KEY ID", "keyId"], ["PRINCIPAL", "principal"], ["ACCOUNT", "account"], ["REVOKED", "revoked"]] }),
  "acme-order": s("acme-order", { plural: "ACME orders", list: "orders", id: "id", columns: [["ID", "id"], ["ACCOUNT", "account"], ["STATUS", "status"], ["NAMES", "identifiers"], ["CERTIFICATE", "certificate"]] }),
  ceremony: s("ceremony", { id: (c) => c.dir ?? c.certificate ?? c.crl }),
  secret: s("secret", { plural: "secrets", list: "secrets", id: (x) => x.itemId ?? pick2(x, "secretRef", "itemId"), quiet: "value", columns: [["PRINCIPAL", "principal"], ["NAME", "name"], ["ITEM", "itemId"], ["VERSION", "version"], ["AT", "escrowedAt"]] }),
  login: s("login", { id: "url" }),
  report: s("report", { plural: "reports", id: "context", columns: [["CONTEXT", "context"], ["OK", "ok"], ["EVENTS", "events"], ["AGGREGATES", "aggregates"], ["PROBLEMS", "problemCount"], ["CHECKPOINT", "checkpoint.seq"]] }),
  quarantined: s("quarantined", { plural: "quarantined messages", id: (q) => `${String(q.stream)}/${String(q.seq)}`, columns: [["STREAM", "stream"], ["SEQ", "seq"], ["REASON", "reason"], ["SEEN BY", "seenBy"], ["MESSAGE", "message"]] }),
  denial: s("denial", { plural: "refused requests", list: "denials", id: (d) => `${String(d.at)}/${String(d.principal)}`, columns: [["AT", "at"], ["PRINCIPAL", "principal"], ["PERMISSION", "permission"], ["TRANSPORT", "transport"], ["REASON", "reason"]] }),
  permission: s("permission", { plural: "permissions", list: "permissions", id: "permission", columns: [["PERMISSION", "permission"], ["KIND", "kind"], ["CONTEXT", "context"], ["SCOPED", "scoped"], ["DESCRIPTION", "description"]] }),
  checkpoint: s("checkpoint", { plural: "checkpoints", list: "checkpoints", id: (c) => `${String(c.stream)}/${String(c.seq)}`, columns: [["STREAM", "stream"], ["SEQ", "seq"], ["MESSAGES", "messages"], ["COMPLETE", "complete"], ["AT", "at"], ["HEAD CID", "headCid"]] }),
  context: s("context", { plural: "contexts (realm context add <name> ...)", list: "contexts", id: "name", columns: [["CURRENT", "current"], ["NAME", "name"], ["NATS", "nats"], ["CREDS", "creds"], ["URL", "url"], ["TOKEN", "token"]] }),
  check: s("check", { plural: "checks", list: "checks", id: "check", columns: [["CHECK", "check"], ["STATUS", "status"], ["DETAIL", "detail"], ["FIX", "fix"]] }),
} satisfies Record<string, KindSpec>;

export type Kind = keyof typeof KINDS;

function pick2(o: Item, a: string, b: string): unknown {
  const v = o[a];
  return typeof v === "object" && v !== null ? (v as Item)[b] : undefined;
}
