import { CREDENTIALS_BUCKET } from "../../identity/credentials.js";
import { KEYS_BUCKET } from "../../identity/oidc/keys.js";
import { OIDC_BUCKET, OIDC_BUCKET_MAX_AGE_MS } from "../../identity/oidc/kv-adapter.js";
import type { UserPermissions } from "../../identity/nats/domain/validation.js";
import { inboxOf } from "../../identity/nats/realm-identities.js";

export { inboxOf, operatorPermissions } from "../../identity/nats/realm-identities.js";
import { eventsWildcard, streamName } from "../kernel/subjects.js";

/**
 * The realm's own NATS identities and what each may do: one table from which `realm up` issues each
 * identity's user JWT (NATS permissions, enforced by nats-server) and the trust document lists each
 * writer's event subjects (enforced by every reader's signature check). Nothing here is granted by
 * default: a subject or JetStream API call not derived from this table is refused by the server.
 */

/** The contexts that keep an event stream (REALM_<CONTEXT>). */
export const EVENT_CONTEXTS = ["identity", "dns", "pki", "secrets", "realm"] as const;

/** KV buckets of the realm and the options they are made with (the identity context owns all three). */
export const REALM_BUCKETS: { name: string; owner: string; opts: { history: number; ttl?: number } }[] = [
  { name: CREDENTIALS_BUCKET, owner: "identity", opts: { history: 1 } },
  { name: OIDC_BUCKET, owner: "identity", opts: { history: 1, ttl: OIDC_BUCKET_MAX_AGE_MS } },
  { name: KEYS_BUCKET, owner: "identity", opts: { history: 1 } },
];

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
  /** Anything else (the claims pusher's `$SYS` requests). */
  extra?: { pub: string[] };
}

export const REALM_IDENTITIES: RealmIdentity[] = [
  { name: "realm-identity", account: "realm", role: "identity context and NATS accounts", writes: "identity", serves: ["identity"], reads: [], buckets: REALM_BUCKETS.filter((b) => b.owner === "identity").map((b) => b.name) },
  { name: "realm-dns", account: "realm", role: "dns context", writes: "dns", serves: ["dns"], reads: [], buckets: [] },
  { name: "realm-dns-reader", account: "realm", role: "DNS worker processes (read the name domain's events)", serves: [], reads: ["dns"], buckets: [] },
  { name: "realm-pki", account: "realm", role: "pki context (reads the zones the realm owns)", writes: "pki", serves: ["pki"], reads: ["dns"], buckets: [] },
  { name: "realm-secrets", account: "realm", role: "secrets context (records escrows)", writes: "secrets", serves: ["secrets"], reads: [], buckets: [] },
  { name: "realm-system", account: "realm", role: "realm context: auditor (checkpoints), audit, trust", writes: "realm", serves: ["realm"], reads: EVENT_CONTEXTS.filter((c) => c !== "realm"), buckets: [] },
  { name: "realm-sys", account: "SYS", role: "pushes account JWTs to the resolver", serves: [], reads: [], buckets: [], extra: { pub: ["$SYS.REQ.CLAIMS.UPDATE", "$SYS.REQ.CLAIMS.DELETE", "$SYS.REQ.SERVER.PING", "$SYS.REQ.SERVER.PING.>"] } },
];

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

/** The NATS permissions of a realm identity. */
export function permissionsOf(id: RealmIdentity): UserPermissions {
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
      for (const s of streamReader(`KV_${b}`)) pub.add(s);
    }
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
  const streams = [...EVENT_CONTEXTS.map(streamName), ...REALM_BUCKETS.map((b) => `KV_${b.name}`)];
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
