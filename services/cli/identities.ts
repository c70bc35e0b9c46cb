import { CAS_HISTORY } from "../kernel/kv-guard.js";
import { PKI_KEYS_BUCKET } from "../../pki/contract.js";
import { CREDENTIALS_BUCKET } from "../../identity/credentials.js";
import { KEYS_BUCKET } from "../../identity/oidc/keys.js";
import { NATS_KEYS_BUCKET } from "../../identity/nats/shared-keys.js";
import { OIDC_BUCKET, OIDC_BUCKET_MAX_AGE_MS } from "../../identity/oidc/kv-adapter.js";
import { CHALLENGE_TTL_MS, CHALLENGES_BUCKET, COUNTERS_BUCKET } from "../../identity/passkeys/store.js";
import type { UserPermissions } from "../../identity/nats/domain/validation.js";
import { inboxOf, operatorPermissions as operatorApiPermissions } from "../../identity/nats/realm-identities.js";
import { DNS_DNSSEC_BUCKET, DNS_TSIG_BUCKET, DNS_UPLOADS_BUCKET, DNS_UPLOADS_STREAM } from "../../dns/contract.js";

export { inboxOf } from "../../identity/nats/realm-identities.js";
import { eventsWildcard, streamName } from "../kernel/subjects.js";
import { snapshotBucket } from "../kernel/snapshot-store.js";
import { outcomeBuckets } from "../host/outcomes.js";

/**
 * The realm's own NATS identities and what each may do: one table from which `realm up` issues each
 * identity's user JWT (NATS permissions, enforced by nats-server) and the trust document lists each
 * writer's event subjects (enforced by every reader's signature check). Nothing here is granted by
 * default: a subject or JetStream API call not derived from this table is refused by the server.
 */

/** The contexts that keep an event stream (REALM_<CONTEXT>). */
export const EVENT_CONTEXTS = ["identity", "dns", "pki", "secrets", "realm"] as const;

/**
 * KV buckets of the realm, the options they are made with, and the one context whose identity reads and
 * writes each: the identity context's credentials, OIDC artefacts and keys, and every context's outcome
 * journal (services/host/outcomes.ts).
 */
export const REALM_BUCKETS: { name: string; owner: string; opts: { history: number; ttl?: number } }[] = [
  // Compare-and-set buckets keep a few revisions per key (services/kernel/kv-guard.ts CAS_HISTORY).
  { name: CREDENTIALS_BUCKET, owner: "identity", opts: { history: CAS_HISTORY } },
  { name: OIDC_BUCKET, owner: "identity", opts: { history: CAS_HISTORY, ttl: OIDC_BUCKET_MAX_AGE_MS } },
  { name: KEYS_BUCKET, owner: "identity", opts: { history: CAS_HISTORY } },
  // WebAuthn challenges (single use, 5 minutes) and passkey signature counters (identity/passkeys/store.ts).
  { name: CHALLENGES_BUCKET, owner: "identity", opts: { history: CAS_HISTORY, ttl: CHALLENGE_TTL_MS } },
  { name: COUNTERS_BUCKET, owner: "identity", opts: { history: CAS_HISTORY } },
  // The NATS account and signing-key seeds made online, sealed, for every instance (identity/nats/shared-keys.ts).
  { name: NATS_KEYS_BUCKET, owner: "identity", opts: { history: 1 } },
  // The PKI's online intermediate keys, sealed (pki/keystore.ts): every PKI instance reads and adds them.
  { name: PKI_KEYS_BUCKET, owner: "pki", opts: { history: 1 } },
  // TSIG key secrets, sealed (dns/tsig-secrets.ts): the dns context alone; DNS workers never see them.
  { name: DNS_TSIG_BUCKET, owner: "dns", opts: { history: 1 } },
  // The zones' DNSSEC private keys, sealed (dns/dnssec/key-store.ts): the dns context alone.
  { name: DNS_DNSSEC_BUCKET, owner: "dns", opts: { history: 1 } },
  ...EVENT_CONTEXTS.flatMap((c) => outcomeBuckets(c).map((b) => ({ ...b, owner: c }))),
  // Each context's projection snapshots (services/kernel/snapshot-store.ts): only its own identity writes
  // them (and signs them with its event key: the bucket's rights keep others from filling or wiping it).
  ...EVENT_CONTEXTS.map((c) => ({ name: snapshotBucket(c), owner: c, opts: { history: 1 } })),
];
const bucketsOf = (context: string) => REALM_BUCKETS.filter((b) => b.owner === context).map((b) => b.name);

export interface RealmIdentity {
  /** User name in its account, also the creds file name and the inbox prefix `_INBOX_<name>`. */
  name: string;
  account: "realm" | "SYS";
  /** What it is for, in the words `realm identities` prints. */
  role: string;
  /** The context whose events it appends and signs (a writer of the trust document). */
  writes?: (typeof EVENT_CONTEXTS)[number];
  /** Contexts whose command and query subjects it serves (micro-service endpoints, queue group `realm`). */
  serves: string[];
  /** Other contexts' streams it reads (consumers, direct gets; never publishes to them). */
  reads: string[];
  /** KV buckets it reads and writes. */
  buckets: string[];
  /** KV buckets it only reads (another context's projection snapshots, for a projection it runs too). */
  readsBuckets?: string[];
  /** Anything else (the claims pusher's `$SYS` requests). */
  extra?: { pub: string[] };
}

/**
 * The Object Store bucket big master files travel through (dns/uploads.ts): the local operator puts into it
 * (its chunk and metadata subjects; the client looks up a name first), the dns context reads it (a pull
 * consumer) and purges what it imported. Nobody else touches it.
 */
const UPLOADS_PUT = [`$O.${DNS_UPLOADS_BUCKET}.C.>`, `$O.${DNS_UPLOADS_BUCKET}.M.>`, `$JS.API.STREAM.MSG.GET.${DNS_UPLOADS_STREAM}`];
const uploadsConsumer = (): string[] => [...streamReader(DNS_UPLOADS_STREAM), `$JS.API.STREAM.PURGE.${DNS_UPLOADS_STREAM}`];

/** The local operator (the CLI): the API's commands and queries, and putting master files into the uploads bucket. */
export function operatorPermissions(user: string): UserPermissions {
  const p = operatorApiPermissions(user);
  return { ...p, pub: { deny: p.pub?.deny ?? [], allow: [...(p.pub?.allow ?? []), ...UPLOADS_PUT] } };
}

export const REALM_IDENTITIES: RealmIdentity[] = [
  { name: "realm-identity", account: "realm", role: "identity context and NATS accounts", writes: "identity", serves: ["identity"], reads: [], buckets: bucketsOf("identity") },
  { name: "realm-dns", account: "realm", role: "dns context", writes: "dns", serves: ["dns"], reads: [], buckets: bucketsOf("dns"), extra: { pub: uploadsConsumer() } },
  // DNS workers run the dns-names projection: they start from the DNS context's snapshots and write none.
  { name: "realm-dns-reader", account: "realm", role: "DNS worker processes (read the name domain's events)", serves: [], reads: ["dns"], buckets: [], readsBuckets: [snapshotBucket("dns")] },
  { name: "realm-pki", account: "realm", role: "pki context (reads the zones the realm owns, and principals and groups for SSH certificates)", writes: "pki", serves: ["pki"], reads: ["dns", "identity"], buckets: bucketsOf("pki") },
  { name: "realm-secrets", account: "realm", role: "secrets context (records escrows)", writes: "secrets", serves: ["secrets"], reads: [], buckets: bucketsOf("secrets") },
  { name: "realm-system", account: "realm", role: "realm context: auditor (checkpoints), audit, trust", writes: "realm", serves: ["realm"], reads: EVENT_CONTEXTS.filter((c) => c !== "realm"), buckets: bucketsOf("realm") },
  { name: "realm-sys", account: "SYS", role: "pushes account JWTs to the resolver", serves: [], reads: [], buckets: [], extra: { pub: ["$SYS.REQ.CLAIMS.UPDATE", "$SYS.REQ.CLAIMS.DELETE", "$SYS.REQ.SERVER.PING", "$SYS.REQ.SERVER.PING.>"] } },
];

/** Every stream of the realm: the event streams, the KV buckets' streams, the uploads Object Store's. */
export const REALM_STREAMS: readonly string[] = [...EVENT_CONTEXTS.map(streamName), ...REALM_BUCKETS.map((b) => `KV_${b.name}`), DNS_UPLOADS_STREAM];

/** The trust document's writers: each context with a stream, and the event subjects it may sign. */
export const REALM_WRITERS = EVENT_CONTEXTS.map((c) => ({ name: c, subjects: [eventsWildcard(c)] }));

/**
 * JetStream API subjects that read one stream: info, direct and indexed gets, and its consumers
 * (`CONSUMER.<op>.<stream>[.…]`: create, info, delete, list of this stream only; `MSG.NEXT` to pull).
 */
function streamReader(stream: string): string[] {
  const api = "$JS.API";
  return [`${api}.STREAM.INFO.${stream}`, `${api}.STREAM.MSG.GET.${stream}`, `${api}.DIRECT.GET.${stream}`, `${api}.DIRECT.GET.${stream}.>`, `${api}.CONSUMER.*.${stream}`, `${api}.CONSUMER.*.${stream}.>`, `${api}.CONSUMER.MSG.NEXT.${stream}.>`];
}

/** Reply permission of a service: one answer per request it received, within 15 minutes (long imports). */
const SERVICE_RESPONSES = { max: 1, ttlMs: 15 * 60_000 };

/**
 * The NATS permissions of a realm identity. On a site (`hubDomain`, docs/ARCHITECTURE.md "Sites") its bucket writes go to
 * the hub through the hub's domain API prefix (services/kernel/buckets.ts), so it may publish there too,
 * for its own buckets only.
 */
export function permissionsOf(id: RealmIdentity, opts: { hubDomain?: string | undefined } = {}): UserPermissions {
  const pub = new Set<string>();
  const sub = new Set<string>([`${inboxOf(id.name)}.>`]);
  if (id.account === "realm") {
    pub.add("$JS.API.INFO");
    if (id.writes) {
      pub.add(eventsWildcard(id.writes));
      for (const s of streamReader(streamName(id.writes))) pub.add(s);
    }
    for (const c of id.reads) for (const s of streamReader(streamName(c))) pub.add(s);
    // Every realm service reads the auditor's checkpoint of its own stream (a verified prefix at start).
    if (id.writes || id.reads.length) for (const s of streamReader(streamName("realm"))) pub.add(s);
    for (const b of id.buckets) {
      pub.add(`$KV.${b}.>`);
      if (opts.hubDomain) pub.add(`$JS.${opts.hubDomain}.API.$KV.${b}.>`);
      for (const s of streamReader(`KV_${b}`)) pub.add(s);
    }
    for (const b of id.readsBuckets ?? []) for (const s of streamReader(`KV_${b}`)) pub.add(s);
    if (id.writes === "realm") {
      // The auditor finds the realm's streams by listing them (configs and state, no messages).
      pub.add("$JS.API.STREAM.LIST");
      pub.add("$JS.API.STREAM.NAMES");
    }
    for (const c of id.serves) {
      sub.add(`realm.${c}.commands.>`);
      sub.add(`realm.${c}.queries.>`);
    }
    if (id.serves.length) for (const s of ["$SRV.PING", "$SRV.PING.>", "$SRV.INFO", "$SRV.INFO.>", "$SRV.STATS", "$SRV.STATS.>"]) sub.add(s);
  }
  for (const s of id.extra?.pub ?? []) pub.add(s);
  return {
    pub: { allow: [...pub].sort(), deny: [] },
    sub: { allow: [...sub].sort(), deny: [] },
    ...(id.serves.length ? { resp: SERVICE_RESPONSES } : {}),
  };
}

/** `realm up`'s short-lived provisioning identity: makes the realm's streams and buckets, nothing else. */
export function provisionerPermissions(user: string): UserPermissions {
  const streams = REALM_STREAMS;
  return {
    pub: { allow: ["$JS.API.INFO", ...streams.flatMap((s) => [`$JS.API.STREAM.INFO.${s}`, `$JS.API.STREAM.CREATE.${s}`, `$JS.API.STREAM.UPDATE.${s}`])], deny: [] },
    sub: { allow: [`${inboxOf(user)}.>`], deny: [] },
  };
}

/**
 * Break-glass maintenance: the whole JetStream API of the realm account, including stream deletion. No
 * running service holds it; `realm maintenance creds` issues it for an hour, behind the operator passphrase.
 * Even it cannot delete or purge single events: the streams deny that, and nats-server never lifts it.
 */
export function maintenancePermissions(user: string): UserPermissions {
  return { pub: { allow: ["$JS.API.>"], deny: [] }, sub: { allow: [`${inboxOf(user)}.>`], deny: [] } };
}
