import { isIPv4, isIPv6 } from "node:net";
import { commandMetaOf, type ContextDeps, type ContextFactory, type Endpoint, type RealmContext, type RequestContext } from "../services/host/context.js";
import { EventStore, Projection, WriteModel, type Decider } from "../services/kernel/index.js";
import { invalid, notFound, RealmError } from "../services/kernel/errors.js";
import { absoluteName, lowerName, parentName, readName, reverseName } from "./domain/names.js";
import { expandIPv6 } from "./domain/rdata.js";
import { nameRecords, readSecondaries, readType, recordCount, zoneBatchDecider, zoneDecider, zoneRecords, type RecordInput, type ZoneCommand, type ZoneState } from "./domain/zone.js";
import { exportZoneFile } from "./domain/zonefile.js";
import { UploadBucket } from "./uploads.js";
import { zoneImporter, type ZoneImportInput } from "./zone-import.js";
import { DEFAULT_IMPORT_MAX_BYTES, type ImportLimits } from "./zonefile-stream.js";
import { DNS_UPLOADS_BUCKET } from "./contract.js";
import { ownerOf, REGISTRY_ID, subjectDecider, assertSubject } from "./domain/subjects.js";
import { assertObjectName, objectDecider } from "./domain/objects.js";
import { verifyContent } from "./cid.js";
import { nameProjection, zoneOf, type NameModel } from "./projection.js";
import { Authority } from "./server/authority.js";
import { DnsServer } from "./server/server.js";
import { Forwarder, type ForwarderOptions } from "./server/forwarder.js";
import { startDnsWorkers, type DnsWorkers } from "./server/workers.js";
import { ZoneJournal, type JournalLimits } from "./server/journal.js";
import { DEFAULT_CATALOG, ServedZones } from "./server/catalog.js";
import type { NotifyRetry } from "./server/notify.js";
import type { RateLimitOptions } from "./server/rrl.js";
import dgram from "node:dgram";
import net from "node:net";
import { cloudflareEndpoints, type CloudflareConfig } from "./cloudflare/endpoints.js";
import type { Sealer } from "../services/kernel/seal.js";
import type { SecretEscrow } from "../secrets-client/contract.js";
import { TsigSecrets } from "./tsig-secrets.js";
import { tsigEndpoints } from "./tsig-endpoints.js";
import { answerUpdate, type BoundKey } from "./server/update.js";
import { zoneUpdateDecider } from "./domain/update.js";
import { tsigKeyDecider } from "./domain/tsig-keys.js";
import { dnssecDecider } from "./domain/dnssec.js";
import { dnssecEndpoints } from "./dnssec-endpoints.js";
import { DnssecKeyStore } from "./dnssec/key-store.js";
import { OnlineSigner } from "./dnssec/signer.js";
import { apexRecords, zoneKeys } from "./dnssec/zone-keys.js";
import { startDnssecTicker } from "./dnssec/ticker.js";

export interface DnsOptions {
  /** DNS listener; port 0 = a free one, `false` = no DNS server (API only). Default from REALM_DNS_PORT, else 5300. */
  dns?: {
    host?: string;
    port?: number;
    transferAllow?: string[];
    /** Told by NOTIFY of every zone's changes, the catalog's included (catalog consumers). Default $REALM_DNS_NOTIFY (`192.0.2.53,192.0.2.54:5300`). */
    notify?: { host: string; port: number }[];
    /**
     * The realm's catalog zone (RFC 9432) listing every zone: its name, or false for none. Default
     * $REALM_DNS_CATALOG (`off` for none), else `catalog.realm.`.
     */
    catalog?: string | false;
    /** Response rate limiting over UDP (server/rrl.ts); default $REALM_DNS_RRL (`rate=20,burst=40,slip=2,v4=24,v6=56`), else off. */
    rateLimit?: RateLimitOptions | false;
    /** Clients whose queries may be forwarded (addresses, CIDRs); default $REALM_DNS_RECURSION_ALLOW (comma list), else loopback. */
    recursionAllow?: string[];
    /** NOTIFY retransmission: first wait, longest wait, sends at most (server/notify.ts). */
    notifyRetry?: NotifyRetry;
    /** Worker processes sharing the port (0 = answer in this process). Needs natsUrl. Default $REALM_DNS_WORKERS or 0. */
    workers?: number;
    natsUrl?: string;
    natsCreds?: string;
  } | false;
  forward?: ForwarderOptions;
  cloudflare?: CloudflareConfig;
  replicas?: number;
  /** The realm's seal key: TSIG key secrets are kept sealed with it (without it, `tsig.create` is UNAVAILABLE and updates are refused). */
  sealer?: Sealer | undefined;
  /** Where a new TSIG key's secret goes instead of the reply (Vaultwarden). */
  escrow?: SecretEscrow | undefined;
  /** How many serial steps the IXFR journal keeps (server/journal.ts). */
  journal?: JournalLimits;
  /** How often the DNSSEC key schedule runs (key state changes, scheduled ZSK rollovers), ms. Default 30 s. */
  dnssecTickMs?: number;
  /** Bounds of `zone.import`: the master file's bytes (default 512 MiB) and records (default 2,000,000). */
  imports?: ImportLimits;
}

export interface DnsContext extends RealmContext {
  model(): NameModel;
  server: DnsServer | undefined;
  /** Set when the DNS server runs in worker processes. */
  workers: DnsWorkers | undefined;
  store: EventStore;
  projection: Projection<NameModel>;
}

const S = (props: Record<string, object>, required: string[] = []) => ({ type: "object", additionalProperties: false, required, properties: props });
const str = { type: "string", minLength: 1, maxLength: 1024 };
const ttl = { type: "integer", minimum: 0, maximum: 604_800 };
const secs = { type: "integer", minimum: 1, maximum: 2_147_483_647 };

export function createDnsContext(opts: DnsOptions = {}): (deps: ContextDeps) => Promise<DnsContext> {
  return async (deps) => {
    const store = await EventStore.open(deps.nc, "dns", { trust: deps.trust, replicas: opts.replicas });
    let server: DnsServer | undefined;
    const journal = new ZoneJournal(opts.journal);
    const dnsCfg = opts.dns === undefined ? { port: Number(process.env.REALM_DNS_PORT ?? 5300), host: process.env.REALM_DNS_HOST ?? "127.0.0.1" } : opts.dns;
    const catalog = dnsCfg ? (dnsCfg.catalog ?? catalogFromEnv(process.env.REALM_DNS_CATALOG)) : false;
    const notify = dnsCfg ? (dnsCfg.notify ?? (process.env.REALM_DNS_NOTIFY ? readSecondaries(process.env.REALM_DNS_NOTIFY.split(",")) : undefined)) : undefined;
    const rateLimit = dnsCfg ? (dnsCfg.rateLimit ?? rateLimitFromEnv(process.env.REALM_DNS_RRL)) : false;
    const recursionAllow = dnsCfg ? (dnsCfg.recursionAllow ?? (process.env.REALM_DNS_RECURSION_ALLOW ? readAllowList(process.env.REALM_DNS_RECURSION_ALLOW, "REALM_DNS_RECURSION_ALLOW") : undefined)) : undefined;
    let served: ServedZones | undefined;
    let signer: OnlineSigner | undefined;
    const projection = new Projection(
      store,
      nameProjection(
        (zone) => {
          signer?.invalidate(zone);
          server?.changed(zone);
        },
        { onStep: (zone, step) => journal.record(zone, step), onMembership: () => served?.name && server?.changed(served.name) },
      ),
      { log: deps.log, indexCommands: true },
    );
    const zones = (served = new ServedZones(() => projection.state, catalog, journal));
    // The uploads bucket of big master files: made here when missing and this identity may (development;
    // `realm up` provisions it). Without it `zone.import` still takes `text` and the HTTP upload route.
    // Opened once; a failure is forgotten, so the next import tries again.
    let uploads: Promise<UploadBucket> | undefined;
    const uploadBucket = (): Promise<UploadBucket> =>
      (uploads ??= UploadBucket.open(deps.nc, { replicas: opts.replicas }).catch((err: unknown) => {
        uploads = undefined;
        throw new RealmError("UNAVAILABLE", `the ${DNS_UPLOADS_BUCKET} bucket is not available: ${err instanceof Error ? err.message : String(err)}`);
      }));
    await uploadBucket().catch((err: unknown) => deps.log.warn({ bucket: DNS_UPLOADS_BUCKET, err: err instanceof Error ? err.message : String(err) }, "dns uploads bucket unavailable: zone.import takes text and the HTTP upload only"));
    const writes = new WriteModel(store, projection as Projection<unknown>);
    // A signed zone's apex serves its DNSKEY, NSEC3PARAM, CDS and CDNSKEY beside its records.
    const authority = new Authority(
      () => zones.zones(),
      (zone) => {
        const d = projection.state.dnssec.get(zone);
        return d?.enabled ? apexRecords(zone, d) : [];
      },
    );
    // Private DNSSEC keys are read before the projection goes live, so the first signed answer has them.
    const dnssecKeys = opts.sealer ? await DnssecKeyStore.open(deps.nc, opts.sealer, opts.replicas) : undefined;
    signer = new OnlineSigner(authority, (zone) => zoneKeys(zone, projection.state.dnssec.get(zone), dnssecKeys));
    await projection.start();
    const tsigSecrets = opts.sealer ? await TsigSecrets.open(deps.nc, opts.sealer, opts.replicas) : undefined;
    /** A live key with its secret, for the DNS server (null: unknown, revoked, or its secret is gone). */
    const boundKey = async (name: string): Promise<BoundKey | null> => {
      const k = projection.state.tsigKeys.get(name);
      if (!k || k.revoked || !tsigSecrets) return null;
      const secret = await tsigSecrets.get(k.name, k.fingerprint);
      if (!secret) return null;
      // Read again: a revocation may have landed while the secret was read.
      if (projection.state.tsigKeys.get(name)?.fingerprint !== k.fingerprint || projection.state.tsigKeys.get(name)?.revoked) return null;
      return { key: { name: k.name, algorithm: k.algorithm, secret }, principal: k.principal, zones: k.zones, names: k.names };
    };
    const update = (msg: Buffer) =>
      answerUpdate(msg, {
        key: boundKey,
        hasZone: (z) => projection.state.zones.has(z),
        async apply(zone, u, meta) {
          const r = await run(zoneUpdateDecider, zone, u, { commandId: meta.commandId, actor: meta.actor, correlationId: meta.commandId, causationId: meta.commandId });
          return { replayed: r.replayed };
        },
        onError: (err) => deps.log.error({ err: err instanceof Error ? err.message : String(err) }, "dns update failed"),
      });
    const forward = opts.forward ?? forwardFromEnv(process.env.REALM_DNS_FORWARD);
    let workers: DnsWorkers | undefined;
    const nWorkers = dnsCfg ? (dnsCfg.workers ?? Number(process.env.REALM_DNS_WORKERS ?? 0)) : 0;
    if (dnsCfg && nWorkers > 0) {
      if (!dnsCfg.natsUrl) throw invalid("DNS workers need the NATS url to follow the stream");
      const host = dnsCfg.host ?? "127.0.0.1";
      const port = dnsCfg.port || (await freeDnsPort(host));
      workers = await startDnsWorkers(nWorkers, { natsUrl: dnsCfg.natsUrl, natsCreds: dnsCfg.natsCreds, trust: deps.trust.doc, host, port, transferAllow: dnsCfg.transferAllow, notify, notifyRetry: dnsCfg.notifyRetry, journal: opts.journal, catalog, rateLimit });
      deps.log.info({ port, workers: workers.pids }, "dns server listening in worker processes");
    } else if (dnsCfg) {
      server = new DnsServer(authority, { ...dnsCfg, notify, rateLimit, recursionAllow, forwarder: forward ? new Forwarder(forward) : undefined, log: deps.log, update, tsigKey: boundKey, journal, dnssec: signer });
      await server.start();
      deps.log.info({ port: server.port }, "dns server listening");
    }

    /** Each aggregate's state as the projection holds it: what a command decides on (write-model.ts). */
    const views: Record<string, (id: string) => unknown> = {
      [zoneDecider.aggregateType]: (id) => zoneOf(projection.state, id),
      [subjectDecider.aggregateType]: () => projection.state.subjects,
      [objectDecider.aggregateType]: (id) => projection.state.objects.objects.get(id) ?? null,
      [mirrorDecider.aggregateType]: () => null,
      [tsigKeyDecider.aggregateType]: (id) => projection.state.tsigKeys.get(id) ?? null,
      [dnssecDecider.aggregateType]: (id) => projection.state.dnssec.get(id) ?? null,
    };
    /** Runs a command and waits until the projection (and so the DNS server) has applied its events. */
    function run<St, C>(decider: Decider<St, C>, id: string, cmd: C, ctx: Pick<RequestContext, "commandId" | "actor" | "correlationId" | "causationId">) {
      const view = views[decider.aggregateType] as ((id: string) => St) | undefined;
      if (!view) throw new RealmError("INTERNAL", `no view of ${decider.aggregateType} aggregates in the dns projection`);
      return writes.execute(decider, view, id, cmd, commandMetaOf(ctx));
    }

    /** A zone's name as given (with or without its trailing dot, any case): absolute, lower case (zone ids are). */
    const zoneName = (z: string) => lowerName(absoluteName(z.endsWith(".") ? z : `${z}.`));
    /**
     * The absolute name a CLI/API request names, read the one way every verb reads names (names.ts
     * readName): relative to the zone when one is given, else absolute.
     */
    const requestName = (name: string, zone?: string) => readName(name, zone ? zoneName(zone) : undefined);
    /** The closest zone of the realm that holds `name` (absolute). */
    function zoneFor(name: string, given?: string): string {
      if (given) return zoneName(given);
      const abs = lowerName(name);
      for (let n: string | null = abs; n; n = parentName(n)) if (projection.state.zones.has(n)) return n;
      throw notFound(`no zone of the realm holds ${name}`);
    }
    const zoneState = (zone: string): ZoneState => {
      const st = projection.state.zones.get(zone);
      if (!st) throw notFound(`zone ${zone} does not exist`);
      return st;
    };
    /** The absolute name a record request is about, as the handler reads it; undefined when it is not one (the handler says why). */
    const nameOf = (name: string, zone?: string): { kind: "name"; id: string } | undefined => {
      try {
        return { kind: "name", id: lowerName(requestName(name, zone)) };
      } catch {
        // A name the handler will refuse (ambiguous, say): authorized as the zone it names, so the caller hears why.
        try {
          return zone ? { kind: "name", id: zoneName(zone) } : undefined;
        } catch {
          return undefined;
        }
      }
    };
    /** shortHost for authorization: a name it cannot place stays as given (the handler then refuses it). */
    const shortHostSafe = (name: string): string => {
      try {
        return shortHost(name);
      } catch {
        return zoneName(name);
      }
    };
    /** `web1` alone: the realm's only forward zone holds it; `web1.example.com` is taken as absolute. */
    function shortHost(name: string): string {
      if (name.includes(".")) return readName(name, undefined);
      const forward = [...projection.state.zones.keys()].filter((z) => !z.endsWith(".arpa."));
      if (forward.length !== 1) throw invalid(`${name} is a short name and the realm has ${forward.length} forward zones: give the zone`);
      return readName(name, forward[0]);
    }
    const zoneReply = (st: ZoneState) => ({ zone: st.zone, serial: st.serial });
    const importZone = zoneImporter({
      run: (decider, zone, cmd, ctx) => run(decider, zone, cmd, ctx),
      uploads: uploadBucket,
      maxPayload: () => deps.nc.info?.max_payload,
      limits: opts.imports ?? {},
      derivedId,
      log: deps.log,
    });

    const endpoints: Endpoint[] = [
      {
        kind: "command",
        name: "zone.create",
        description: "Create a zone with its SOA and apex NS records",
        resource: (i: { zone: string }) => ({ kind: "name", id: zoneName(i.zone) }),
        input: S({ zone: str, ns: { type: "array", minItems: 1, items: str }, mname: str, rname: str, ttl, minimum: ttl, refresh: secs, retry: secs, expire: secs, serial: { type: "integer", minimum: 1 } }, ["zone", "ns"]),
        async handle(i: { zone: string; ns: string[]; mname?: string; rname?: string; ttl?: number; minimum?: number; refresh?: number; retry?: number; expire?: number; serial?: number }, ctx) {
          const zone = zoneName(i.zone);
          const cmd: ZoneCommand = { type: "create", ns: i.ns, soa: { mname: i.mname ?? i.ns[0]!, rname: i.rname ?? `hostmaster.${zone}`, ttl: i.ttl, minimum: i.minimum, refresh: i.refresh, retry: i.retry, expire: i.expire }, serial: i.serial };
          return zoneReply((await run(zoneDecider, zone, cmd, ctx)).state);
        },
      },
      {
        kind: "command",
        name: "zone.delete",
        description: "Delete a zone and all its records",
        resource: (i: { zone: string }) => ({ kind: "name", id: zoneName(i.zone) }),
        input: S({ zone: str }, ["zone"]),
        async handle(i: { zone: string }, ctx) {
          return zoneReply((await run(zoneDecider, zoneName(i.zone), { type: "delete" }, ctx)).state);
        },
      },
      {
        kind: "command",
        name: "zone.soa",
        description: "Change SOA fields (serial goes up)",
        resource: (i: { zone: string }) => ({ kind: "name", id: zoneName(i.zone) }),
        input: S({ zone: str, mname: str, rname: str, ttl, minimum: ttl, refresh: secs, retry: secs, expire: secs }, ["zone"]),
        async handle(i: { zone: string; [k: string]: unknown }, ctx) {
          const { zone, ...soa } = i;
          return zoneReply((await run(zoneDecider, zoneName(zone), { type: "updateSoa", soa }, ctx)).state);
        },
      },
      {
        kind: "command",
        name: "zone.secondaries",
        description:
          "Set the zone's secondaries: IP addresses (`192.0.2.1`, `192.0.2.1:5300`, `[2001:db8::1]:53`; port 53 when none) told by NOTIFY (RFC 1996) on every change of the zone, retransmitted until they answer. An empty list removes them. Transfers stay governed by the transfer allow-list and TSIG keys.",
        resource: (i: { zone: string }) => ({ kind: "name", id: zoneName(i.zone) }),
        input: S({ zone: str, secondaries: { type: "array", maxItems: 32, items: { type: "string", minLength: 1, maxLength: 64 } } }, ["zone", "secondaries"]),
        async handle(i: { zone: string; secondaries: string[] }, ctx) {
          const st = (await run(zoneDecider, zoneName(i.zone), { type: "secondaries", secondaries: i.secondaries }, ctx)).state;
          return { ...zoneReply(st), secondaries: (st.secondaries ?? []).map(secondaryText) };
        },
      },
      {
        kind: "command",
        name: "zone.import",
        description:
          "Replace a zone's records with an RFC 1035 master file: inline (`text`, small files), an object of the realm_dns_uploads bucket (`upload`, what `realm zone import` does for big ones), or the raw body of POST /api/dns/zones/{zone}/file. The whole file is parsed and checked before anything is appended; an error names its line.",
        resource: (i: { zone: string }) => ({ kind: "name", id: zoneName(i.zone) }),
        input: S({ zone: str, text: { type: "string", maxLength: 8_000_000 }, upload: { type: "string", minLength: 1, maxLength: 255 }, sha256: { type: "string", pattern: "^[0-9a-f]{64}$" } }, ["zone"]),
        upload: { path: "/zones/:zone/file", types: ["text/dns", "application/octet-stream"], limit: opts.imports?.maxBytes ?? DEFAULT_IMPORT_MAX_BYTES, description: "the master file as the request body (text/dns or application/octet-stream), streamed" },
        async handle(i: { zone: string } & ZoneImportInput, ctx) {
          return importZone(zoneName(i.zone), i, ctx);
        },
      },
      {
        kind: "query",
        name: "zonefile",
        description: "A zone as an RFC 1035 master file",
        resource: (i: { zone: string }) => ({ kind: "name", id: zoneName(i.zone) }),
        http: { method: "GET", path: "/zones/:zone/file" },
        input: S({ zone: str }, ["zone"]),
        async handle(i: { zone: string }) {
          return { zone: zoneName(i.zone), text: exportZoneFile(zoneState(zoneName(i.zone))) };
        },
      },
      {
        kind: "query",
        name: "zones",
        description: "Every zone with its serial and record count",
        filter: (r, can) => ({ ...r, zones: (r as { zones: { zone: string }[] }).zones.filter((z) => can({ kind: "name", id: z.zone })) }),
        input: S({}),
        async handle() {
          return { zones: [...projection.state.zones.values()].map((z) => ({ zone: z.zone, serial: z.serial, records: recordCount(z), ...(z.secondaries ? { secondaries: z.secondaries.map(secondaryText) } : {}) })) };
        },
      },
      {
        kind: "query",
        name: "records",
        description: "Records of a zone, optionally of one name and type",
        resource: (i: { zone: string }) => ({ kind: "name", id: zoneName(i.zone) }),
        http: { method: "GET", path: "/zones/:zone/records" },
        input: S({ zone: str, name: str, type: str }, ["zone"]),
        async handle(i: { zone: string; name?: string; type?: string }) {
          const zone = zoneName(i.zone);
          const name = i.name ? readName(i.name, zone) : undefined;
          const type = i.type ? readType(i.type) : undefined;
          // One name's records are looked up, not filtered out of the whole zone (which may hold millions).
          const records = name ? nameRecords(zoneState(zone), name) : zoneRecords(zoneState(zone));
          return { zone, records: type ? records.filter((r) => r.type === type) : records };
        },
      },
      {
        kind: "command",
        name: "record.add",
        description: "Add one record (zone found from the name when not given)",
        resource: (i: { name: string; zone?: string }) => nameOf(i.name, i.zone),
        input: S({ zone: str, name: str, type: str, ttl, data: str }, ["name", "type", "data"]),
        async handle(i: RecordInput & { zone?: string }, ctx) {
          const zone = zoneFor(requestName(i.name, i.zone), i.zone);
          return zoneReply((await run(zoneDecider, zone, { type: "add", record: i }, ctx)).state);
        },
      },
      {
        kind: "command",
        name: "record.remove",
        description: "Remove one record, or the whole RRset when data is absent",
        resource: (i: { name: string; zone?: string }) => nameOf(i.name, i.zone),
        input: S({ zone: str, name: str, type: str, data: str }, ["name", "type"]),
        async handle(i: { zone?: string; name: string; type: string; data?: string }, ctx) {
          const zone = zoneFor(requestName(i.name, i.zone), i.zone);
          return zoneReply((await run(zoneDecider, zone, { type: "remove", name: i.name, rtype: i.type, data: i.data }, ctx)).state);
        },
      },
      {
        kind: "command",
        name: "record.set",
        description: "Replace an RRset (empty data removes it)",
        resource: (i: { name: string; zone?: string }) => nameOf(i.name, i.zone),
        input: S({ zone: str, name: str, type: str, ttl, data: { type: "array", items: str } }, ["name", "type", "data"]),
        async handle(i: { zone?: string; name: string; type: string; ttl?: number; data: string[] }, ctx) {
          const zone = zoneFor(requestName(i.name, i.zone), i.zone);
          return zoneReply((await run(zoneDecider, zone, { type: "set", name: i.name, rtype: i.type, ttl: i.ttl, data: i.data }, ctx)).state);
        },
      },
      {
        kind: "command",
        name: "host.add",
        description: "Register a host: A/AAAA records, and PTR records in the reverse zones the realm has",
        // the host name, and the reverse names whose PTR it would write
        resource: (i: { name: string; zone?: string; ips: string[] }) => [{ kind: "name", id: lowerName(i.zone ? (nameOf(i.name, i.zone)?.id ?? zoneName(i.zone)) : shortHostSafe(i.name)) }, ...i.ips.filter((ip) => isIPv4(ip) || isIPv6(ip)).map((ip) => ({ kind: "name" as const, id: reverseName(ip, expandIPv6) }))],
        input: S({ name: str, zone: str, ips: { type: "array", minItems: 1, items: str }, ttl }, ["name", "ips"]),
        async handle(i: { name: string; zone?: string; ips: string[]; ttl?: number }, ctx) {
          const fqdn = i.zone || i.name.endsWith(".") ? requestName(i.name, i.zone) : shortHost(i.name);
          const zone = zoneFor(fqdn, i.zone);
          for (const ip of i.ips) if (!isIPv4(ip) && !isIPv6(ip)) throw invalid(`${ip} is not an IP address`);
          // Decide every change first (forward and reverse zones), so a refusal leaves nothing applied.
          const plans: { zone: string; cmds: ZoneCommand[] }[] = [];
          plans.push({ zone, cmds: i.ips.map((ip) => ({ type: "add", record: { name: fqdn, type: isIPv4(ip) ? "A" : "AAAA", ttl: i.ttl, data: ip } })) });
          const ptrs: string[] = [];
          for (const ip of i.ips) {
            const ptr = reverseName(ip, expandIPv6);
            let rz: string | null = null;
            for (let n: string | null = ptr; n; n = parentName(n)) if (projection.state.zones.has(n)) { rz = n; break; }
            if (!rz) continue;
            ptrs.push(ptr);
            const p = plans.find((x) => x.zone === rz) ?? (plans.push({ zone: rz, cmds: [] }), plans[plans.length - 1]!);
            p.cmds.push({ type: "add", record: { name: ptr, type: "PTR", ttl: i.ttl, data: fqdn } });
          }
          // Refusals show here, before anything is appended (each zone's commands decided as one change).
          for (const p of plans) zoneBatchDecider.decide(zoneOf(projection.state, p.zone), p.cmds);
          const applied: { zone: string; cmds: ZoneCommand[] }[] = [];
          for (const [n, p] of plans.entries()) {
            try {
              await run(zoneBatchDecider, p.zone, p.cmds, { ...ctx, commandId: n === 0 ? ctx.commandId : derivedId(ctx.commandId, n) });
              applied.push(p);
            } catch (err) {
              // A later zone refused (a writer changed it meanwhile): take back what the earlier zones got.
              for (const [k, a] of applied.entries()) {
                const undo = a.cmds.flatMap((c): ZoneCommand[] => (c.type === "add" ? [{ type: "remove", name: c.record.name, rtype: c.record.type, data: c.record.data }] : []));
                await run(zoneBatchDecider, a.zone, undo, { ...ctx, commandId: derivedId(ctx.commandId, 100 + k) }).catch(() => undefined);
              }
              throw err;
            }
          }
          return { name: fqdn, zone, ips: i.ips, ptr: ptrs };
        },
      },
      {
        kind: "command",
        name: "subject.register",
        description: "Register a NATS subject namespace (pattern) to an owner; overlapping another owner's namespace is refused",
        resource: (i: { pattern: string }) => ({ kind: "subject", id: i.pattern }),
        input: S({ pattern: str, owner: str, description: str }, ["pattern", "owner"]),
        async handle(i: { pattern: string; owner: string; description?: string }, ctx) {
          await run(subjectDecider, REGISTRY_ID, { type: "register", ...i }, ctx);
          return { pattern: i.pattern, owner: i.owner };
        },
      },
      {
        kind: "command",
        name: "subject.release",
        description: "Release a subject namespace",
        resource: (i: { pattern: string }) => ({ kind: "subject", id: i.pattern }),
        input: S({ pattern: str }, ["pattern"]),
        async handle(i: { pattern: string }, ctx) {
          await run(subjectDecider, REGISTRY_ID, { type: "release", pattern: i.pattern }, ctx);
          return { pattern: i.pattern };
        },
      },
      {
        kind: "query",
        name: "subject-owner",
        description: "Who owns a concrete subject (the most specific registered namespace matching it)",
        resource: (i: { subject: string }) => ({ kind: "subject", id: i.subject }),
        input: S({ subject: str }, ["subject"]),
        async handle(i: { subject: string }) {
          assertSubject(i.subject, false);
          const ns = ownerOf(projection.state.subjects, i.subject);
          if (!ns) throw notFound(`no namespace owns ${i.subject}`);
          return { subject: i.subject, owner: ns.owner, namespace: ns.pattern };
        },
      },
      {
        kind: "query",
        name: "subjects",
        description: "Every registered subject namespace",
        filter: (r, can) => ({ ...r, namespaces: (r as { namespaces: { pattern: string }[] }).namespaces.filter((n) => can({ kind: "subject", id: n.pattern })) }),
        input: S({}),
        async handle() {
          return { namespaces: [...projection.state.subjects.namespaces.values()] };
        },
      },
      {
        kind: "command",
        name: "cid.register",
        description: "Register (or repoint) a named object to a CIDv1; with `dnslink`, publish _dnslink TXT under that domain",
        // the object registry is realm-wide (unscoped bindings); with dnslink also the name it publishes under
        resource: (i: { dnslink?: string }) => (i.dnslink ? { kind: "name", id: `_dnslink.${zoneName(i.dnslink)}` } : undefined),
        input: S({ name: str, cid: str, size: { type: "integer", minimum: 0 }, mediaType: str, dnslink: str }, ["name", "cid"]),
        async handle(i: { name: string; cid: string; size?: number; mediaType?: string; dnslink?: string }, ctx) {
          assertObjectName(i.name);
          const r = await run(objectDecider, i.name, { type: "register", cid: i.cid, size: i.size, mediaType: i.mediaType }, ctx);
          let dnslink: string | undefined;
          if (i.dnslink) {
            dnslink = `_dnslink.${zoneName(i.dnslink)}`;
            const zone = zoneFor(dnslink);
            await run(zoneDecider, zone, { type: "set", name: dnslink, rtype: "TXT", data: [`"dnslink=/ipfs/${r.state!.cid}"`] }, { ...ctx, commandId: derivedId(ctx.commandId, 1) });
          }
          return { name: i.name, cid: r.state!.cid, ...(dnslink ? { dnslink } : {}) };
        },
      },
      {
        kind: "command",
        name: "cid.remove",
        description: "Remove a named object",
        input: S({ name: str }, ["name"]),
        async handle(i: { name: string }, ctx) {
          await run(objectDecider, assertObjectName(i.name), { type: "remove" }, ctx);
          return { name: i.name };
        },
      },
      {
        kind: "query",
        name: "cid",
        description: "The CID a name points at",
        input: S({ name: str }, ["name"]),
        async handle(i: { name: string }) {
          const o = projection.state.objects.objects.get(i.name);
          if (!o) throw notFound(`no object named ${i.name}`);
          return { ...o };
        },
      },
      {
        kind: "query",
        name: "cid-verify",
        description: "Verify content (base64) against a CID or a registered name",
        http: { method: "POST", path: "/cid-verify" },
        input: S({ name: str, cid: str, content: { type: "string", maxLength: 8_000_000 } }, ["content"]),
        async handle(i: { name?: string; cid?: string; content: string }) {
          const cid = i.cid ?? (i.name ? projection.state.objects.objects.get(i.name)?.cid : undefined);
          if (!cid) throw invalid("give a cid or the name of a registered object");
          return { cid, valid: verifyContent(cid, Buffer.from(i.content, "base64")) };
        },
      },
      ...tsigEndpoints({
        keys: () => projection.state.tsigKeys,
        zones: () => projection.state.zones,
        secrets: tsigSecrets,
        escrow: opts.escrow,
        run: (id, cmd, ctx) => run(tsigKeyDecider, id, cmd, ctx),
      }),
      ...dnssecEndpoints({
        states: () => projection.state.dnssec,
        zones: () => projection.state.zones,
        zoneName,
        keys: dnssecKeys,
        unsignedServer: workers ? "this realm answers DNS from worker processes, which hold no DNSSEC keys: a signed zone would be served unsigned (run the DNS server in process to sign)" : undefined,
        run: (zone, cmd, ctx) => run(dnssecDecider, zone, cmd, ctx),
      }),
      ...cloudflareEndpoints({
        zone: zoneState,
        zoneName,
        config: opts.cloudflare,
        async recordApplied(zone, summary, ctx) {
          await run(mirrorDecider, zone, summary, { ...ctx, commandId: derivedId(ctx.commandId, 1) });
        },
      }),
    ];

    const stopTicker = dnssecKeys
      ? startDnssecTicker(
          {
            states: () => projection.state.dnssec,
            zones: () => projection.state.zones,
            keys: dnssecKeys,
            run: (zone, cmd, ctx) => run(dnssecDecider, zone, cmd, ctx),
            bumpSerial: (zone, ctx) => run(zoneDecider, zone, { type: "updateSoa", soa: {} }, ctx),
            log: deps.log,
          },
          opts.dnssecTickMs ?? 30_000,
        )
      : undefined;

    return {
      name: "dns",
      endpoints,
      model: () => projection.state,
      server,
      workers,
      store,
      projection,
      projections: () => [projection as Projection<unknown>],
      ready: () => projection.status === "live",
      metrics: () => {
        const s = server?.stats;
        const lines = [`# TYPE realm_dns_zones gauge`, `realm_dns_zones ${projection.state.zones.size}`];
        if (s) for (const [k, v] of Object.entries(s)) lines.push(`# TYPE realm_dns_${k}_total counter`, `realm_dns_${k}_total ${v}`);
        return lines;
      },
      async stop() {
        stopTicker?.();
        await server?.stop();
        await workers?.stop();
        await projection.stop();
      },
    };
  };
}

/** `REALM_DNS_FORWARD=9.9.9.9,1.1.1.1:53` -> upstreams (port 53 by default); unset = no forwarding. */
function forwardFromEnv(text: string | undefined): ForwarderOptions | undefined {
  if (!text) return undefined;
  const upstreams = text.split(",").map((s) => s.trim()).filter(Boolean).map((s) => {
    const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(s.includes(".") && s.split(":").length === 2 ? s : s.includes("]") ? s : `[${s}]`);
    return { host: m?.[1] ?? s, port: Number(m?.[2] ?? 53) };
  });
  return { upstreams };
}

/** A port free for both TCP and UDP on `host`. */
async function freeDnsPort(host: string): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((res) => {
      const s = net.createServer().listen(0, host, () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => res(p));
      });
    });
    const udp = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
    const ok = await new Promise<boolean>((res) => {
      udp.once("error", () => res(false));
      udp.bind(port, host, () => res(true));
    });
    await new Promise<void>((r) => (ok ? udp.close(() => r()) : r()));
    if (ok) return port;
  }
}

/** A command id for the n-th aggregate a command touches (UUIDv7 shape kept: last 4 hex digits replaced). */
function derivedId(commandId: string, n: number): string {
  return `${commandId.slice(0, -4)}${((parseInt(commandId.slice(-4), 16) + n) & 0xffff).toString(16).padStart(4, "0")}`;
}

/** The log of Cloudflare mirror runs of a zone: one event per apply (counts only, never the token). */
const mirrorDecider: Decider<null, Record<string, unknown>> = {
  aggregateType: "mirror",
  initialState: () => null,
  decide: (_s, summary) => [{ type: "CloudflareMirrorApplied", data: summary }],
  evolve: (s) => s,
};

export const dnsContext: ContextFactory = createDnsContext();

/** A secondary as the CLI and the API write it: `host:port`, `[v6]:port`. */
function secondaryText(t: { host: string; port: number }): string {
  return t.host.includes(":") ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`;
}

/** REALM_DNS_CATALOG: a zone name, `off` (or `false`, `none`) for no catalog; unset: `catalog.realm.`. */
function catalogFromEnv(v: string | undefined): string | false {
  if (v === undefined || v.trim() === "") return DEFAULT_CATALOG;
  if (/^(off|false|none|no)$/i.test(v.trim())) return false;
  return lowerName(absoluteName(v.trim().endsWith(".") ? v.trim() : `${v.trim()}.`));
}

/**
 * REALM_DNS_RRL: `on` (the defaults: 20/s per /24 or /56, burst 20, slip 2), `off`, or settings
 * `rate=20,burst=40,slip=2,v4=24,v6=56` (any subset); unset: off. A bad setting is VALIDATION at start.
 */
export function rateLimitFromEnv(v: string | undefined): RateLimitOptions | false {
  const text = v?.trim() ?? "";
  if (text === "" || /^(off|false|no|none)$/i.test(text)) return false;
  if (/^(on|true|yes)$/i.test(text)) return {};
  const names: Record<string, keyof RateLimitOptions> = { rate: "rate", burst: "burst", slip: "slip", v4: "ipv4Prefix", v6: "ipv6Prefix", entries: "entries" };
  const out: Record<string, number> = {};
  for (const part of text.split(",")) {
    const [k, val] = part.split("=").map((x) => x.trim()) as [string, string | undefined];
    const key = names[k];
    const n = Number(val);
    if (!key || val === undefined || val === "" || !Number.isFinite(n) || n < 0) throw invalid(`REALM_DNS_RRL: ${JSON.stringify(part)} is not one of rate=, burst=, slip=, v4=, v6=, entries= with a number`);
    out[key] = n;
  }
  return out as RateLimitOptions;
}

/** A comma list of addresses and CIDRs (an ACL); VALIDATION naming the setting for anything else. */
function readAllowList(v: string, what: string): string[] {
  const list = v.split(",").map((x) => x.trim()).filter(Boolean);
  for (const a of list) {
    const [addr, bits] = a.split("/") as [string, string | undefined];
    const max = isIPv6(addr) ? 128 : isIPv4(addr) ? 32 : -1;
    if (max < 0 || (bits !== undefined && !(/^\d+$/.test(bits) && Number(bits) <= max))) throw invalid(`${what}: ${JSON.stringify(a)} is not an address or CIDR`);
  }
  return list;
}
