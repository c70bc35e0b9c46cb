import { createHash, createHmac, generateKeyPair as generateKeyPairCb, randomBytes, type KeyObject } from "node:crypto";
import type { FastifyInstance } from "fastify";
import type { NatsConnection } from "@nats-io/nats-core";
import { commandMetaOf, type Endpoint, type RequestContext } from "../../services/host/context.js";
import type { Resource } from "../../services/host/authz.js";
import { executeNew, Projection, WriteModel, type Decider, type EventStore, type ProblemLog, type RealmTrust } from "../../services/kernel/index.js";
import { invalid, notFound, RealmError } from "../../services/kernel/errors.js";
import type { IssuerKeyStore } from "../keystore.js";
import { PkiRoutes } from "../contract.js";
import { assertIssuerId, type IssuerState } from "../domain/issuer.js";
import { publicKeySha256 } from "../keystore.js";
import { encodeSshCertificate, sshCertificateLine, type SshCertKind } from "./cert.js";
import { parseSshPublicKey, SSH_CA_KEY_SPECS, sshPublicKeyBlob, sshPublicKeyLine, type SshCaKeySpec } from "./keys.js";
import { encodeKrl } from "./krl.js";
import { followSshPeople, type SshPeople } from "./people.js";
import { sshProjection, sshCertView, type SshModel } from "./projection.js";
import {
  assertKeyId,
  normalSshPolicy,
  planHostCertificate,
  planUserCertificate,
  sshCaDecider,
  sshCertDecider,
  SSH_REVOCATION_REASONS,
  USER_EXTENSIONS,
  type CertPlan,
  type SshCaCommand,
  type SshCertCommand,
  type SshIssuedFacts,
  type SshPolicy,
} from "./domain.js";
import { promisify } from "node:util";

/** Public HTTP routes of the SSH CAs (no credential needed): sshd and ssh fetch these. */
export const SshRoutes = { krl: PkiRoutes.sshKrl, caKey: PkiRoutes.sshCaKey } as const;

const generate = promisify(generateKeyPairCb);
type Ctx = Pick<RequestContext, "commandId" | "actor" | "correlationId" | "causationId">;

export interface SshCaDeps {
  nc: NatsConnection;
  store: EventStore;
  keys: IssuerKeyStore;
  trust: RealmTrust;
  log: ProblemLog;
  replicas?: number | undefined;
  now: () => Date;
  publicUrl: string;
  /** The X.509 issuers (their allow-lists widen the names host certificates may carry). */
  issuers: () => Map<string, IssuerState>;
  ownedZones: () => Iterable<string>;
  /** Called before a refusal of a host name, to catch up on zones created a moment ago. */
  catchUpZones?: (() => Promise<void>) | undefined;
}

export interface SshCa {
  endpoints: Endpoint[];
  routes(app: FastifyInstance): Promise<void>;
  projections(): Projection<unknown>[];
  model(): SshModel;
  metrics(): string[];
  stop(): Promise<void>;
}

const S = (props: Record<string, object>, required: string[] = []) => ({ type: "object", additionalProperties: false, required, properties: props });
const str = { type: "string", minLength: 1, maxLength: 1024 };
const names = { type: "array", maxItems: 256, items: { type: "string", minLength: 1, maxLength: 253 } };
const pubKey = { type: "string", minLength: 1, maxLength: 16_384 };
const ISSUER_PATH = /^([a-z][a-z0-9-]{0,31})\.(krl|pub)$/;

/**
 * The SSH side of the PKI: an SSH CA per issuer (Ed25519 or ECDSA P-256; the private half sealed in
 * realm_pki_keys like the intermediates', only its public half in SshCaCreated), user and host certificates
 * (PROTOCOL.certkeys, signed here with node:crypto), revocation by serial or key id, and a KRL built from the
 * events and served at /pki/ssh/<issuer>.krl.
 */
export async function createSshCa(d: SshCaDeps): Promise<SshCa> {
  const projection = new Projection(d.store, sshProjection(), { log: d.log, indexCommands: true });
  const writes = new WriteModel(d.store, projection as Projection<unknown>);
  await projection.start();
  const people: SshPeople = await followSshPeople(d.nc, { trust: d.trust, log: d.log, replicas: d.replicas });
  const model = () => projection.state;
  const views: Record<string, (id: string) => unknown> = {
    [sshCaDecider.aggregateType]: (id) => model().cas.get(id) ?? sshCaDecider.initialState(id),
    [sshCertDecider.aggregateType]: (id) => model().certs.get(id) ?? sshCertDecider.initialState(id),
  };
  const run = <St, C>(decider: Decider<St, C>, id: string, cmd: C, ctx: Ctx) => writes.execute(decider, views[decider.aggregateType] as (id: string) => St, id, cmd, commandMetaOf(ctx));

  /** The CA a request names, or the realm's only one. */
  function caOf(id: string | undefined) {
    const all = [...model().cas.values()].filter((c) => c.exists);
    if (!id) {
      if (all.length === 1) return all[0]!;
      throw invalid(all.length === 0 ? "the realm has no SSH CA yet: realm ssh ca create <issuer>" : `the realm has ${all.length} SSH CAs (${all.map((c) => c.id).join(", ")}): name an issuer`);
    }
    const ca = model().cas.get(id);
    if (!ca?.exists) throw notFound(`issuer ${id} has no SSH CA (realm ssh ca create ${id})`);
    return ca;
  }
  const resourceOf = (id: string | undefined): Resource | undefined => {
    try {
      return { kind: "issuer", id: caOf(id).id };
    } catch {
      return id ? { kind: "issuer", id } : undefined;
    }
  };

  const signing = new Map<string, { key: KeyObject; blob: Buffer; serialKey: Buffer }>();
  async function signerOf(id: string) {
    const ca = caOf(id).ca!;
    const hit = signing.get(id);
    if (hit) return hit;
    await d.keys.wait(ca.keySha256);
    const key = d.keys.load(ca.keySha256);
    const entry = { key, blob: sshPublicKeyBlob(key), serialKey: createHash("sha256").update("cim-realm/pki/ssh-serial/v1").update(key.export({ format: "der", type: "pkcs8" })).digest() };
    signing.set(id, entry);
    return entry;
  }

  async function sign(kind: SshCertKind, issuerId: string | undefined, publicKey: string, plan: (policy: SshPolicy, issuer: string) => CertPlan | Promise<CertPlan>, keyIdOf: (p: CertPlan) => string, principal: string | undefined, ctx: Ctx) {
    const ca = caOf(issuerId);
    const subject = parseSshPublicKey(publicKey);
    const s = await signerOf(ca.id);
    // A serial per command id: a resent command is answered with the certificate it already made.
    const h = createHmac("sha256", s.serialKey).update(ctx.commandId).digest();
    h[0] = (h[0]! & 0x7f) | 0x01;
    const serial = h.readBigUInt64BE(0);
    const earlier = model().certs.get(serial.toString());
    if (earlier?.exists) return { ...replyOf(earlier), replayed: true };
    const p = await plan(ca.policy, ca.id);
    const keyId = keyIdOf(p);
    const blob = encodeSshCertificate({ kind, subject, serial, keyId, principals: p.principals, validAfter: p.validAfter, validBefore: p.validBefore, criticalOptions: p.criticalOptions, extensions: p.extensions, nonce: randomBytes(32) }, s.key, s.blob);
    const facts: SshIssuedFacts = {
      serial: serial.toString(),
      issuer: ca.id,
      caFingerprint: ca.ca!.fingerprint,
      kind,
      keyId,
      principals: p.principals,
      validAfter: new Date(p.validAfter * 1000).toISOString(),
      validBefore: new Date(p.validBefore * 1000).toISOString(),
      criticalOptions: p.criticalOptions,
      extensions: p.extensions,
      key: { type: subject.type, fingerprint: subject.fingerprint },
      ...(principal ? { principal } : {}),
      certificate: sshCertificateLine(blob, keyId),
    };
    const r = await executeNew(d.store, sshCertDecider, facts.serial, { type: "issue", facts } satisfies SshCertCommand, commandMetaOf(ctx));
    await projection.waitFor(r.position.lastSeq);
    return { ...replyOf(r.state), ...(r.replayed ? { replayed: true } : {}) };
  }

  /** The KRL of one CA, rebuilt when a revocation of it was applied. */
  const krls = new Map<string, { version: number; der: Buffer; at: Date }>();
  function krlOf(id: string) {
    const ca = caOf(id);
    const version = model().krlVersion.get(id) ?? 0;
    const hit = krls.get(id);
    if (hit && hit.version === version) return hit;
    const serials = [...(model().revokedSerials.get(id) ?? [])].map((x) => BigInt(x));
    const entry = {
      version,
      at: d.now(),
      der: encodeKrl({
        version: BigInt(version),
        generatedAt: d.now(),
        comment: `cim-realm SSH CA ${id}`,
        cas: [{ caKeyBlob: Buffer.from(ca.ca!.publicKey.split(" ")[1]!, "base64"), serials, keyIds: ca.revokedKeyIds.map((k) => k.keyId) }],
      }),
    };
    krls.set(id, entry);
    return entry;
  }

  function configOf(id: string, base: string) {
    const ca = caOf(id);
    const krlUrl = `${base}${SshRoutes.krl(id)}`;
    const owned = [...d.ownedZones()].map((z) => z.replace(/\.$/, ""));
    const hostPatterns = owned.length ? owned.map((z) => `*.${z},${z}`).join(",") : "*";
    return {
      issuer: id,
      caPublicKey: ca.ca!.publicKey,
      fingerprint: ca.ca!.fingerprint,
      krlUrl,
      sshd: [`TrustedUserCAKeys /etc/ssh/realm-${id}-user-ca.pub`, `RevokedKeys /etc/ssh/realm-${id}.krl`],
      /** ssh_config of clients: revoked host certificates are refused too. */
      ssh: [`RevokedHostKeys /etc/ssh/realm-${id}.krl`],
      knownHosts: `@cert-authority ${hostPatterns} ${ca.ca!.publicKey} realm-${id}`,
      files: { [`/etc/ssh/realm-${id}-user-ca.pub`]: `${ca.ca!.publicKey} realm-${id}`, [`/etc/ssh/realm-${id}.krl`]: `curl -fsS -o /etc/ssh/realm-${id}.krl ${krlUrl}` },
    };
  }

  const endpoints: Endpoint[] = [
    {
      kind: "command",
      name: "ssh-ca.create",
      description: "Make an issuer's SSH CA key (Ed25519 default, or ECDSA P-256); its private half is sealed like the intermediate keys",
      resource: (i: { issuer: string }) => ({ kind: "issuer", id: i.issuer }),
      input: S({ issuer: str, keySpec: { enum: SSH_CA_KEY_SPECS } }, ["issuer"]),
      async handle(i: { issuer: string; keySpec?: SshCaKeySpec }, ctx) {
        const id = assertIssuerId(i.issuer);
        const prior = model().cas.get(id);
        if (prior?.exists) {
          // A resent create is answered with the CA it made; another create is refused (ALREADY_EXISTS): no key made.
          const r = await run(sshCaDecider, id, { type: "create", ca: prior.ca! } satisfies SshCaCommand, ctx);
          return { issuer: id, publicKey: r.state.ca!.publicKey, fingerprint: r.state.ca!.fingerprint, keySpec: r.state.ca!.keySpec, replayed: true };
        }
        const spec = i.keySpec ?? "ed25519";
        const pair = spec === "ed25519" ? await generate("ed25519") : await generate("ec", { namedCurve: "P-256" });
        const keySha256 = publicKeySha256(pair.publicKey);
        const facts = { keySpec: spec, publicKey: sshPublicKeyLine(pair.publicKey), fingerprint: parseSshPublicKey(sshPublicKeyLine(pair.publicKey)).fingerprint, keySha256, createdAt: d.now().toISOString() };
        await d.keys.save(pair.privateKey);
        const r = await run(sshCaDecider, id, { type: "create", ca: facts } satisfies SshCaCommand, ctx);
        const ca = r.state.ca!;
        return { issuer: id, publicKey: ca.publicKey, fingerprint: ca.fingerprint, keySpec: ca.keySpec, ...(r.replayed ? { replayed: true } : {}) };
      },
    },
    {
      kind: "command",
      name: "ssh-ca.policy",
      description: "Set an SSH CA's policy: user and host lifetimes, the extensions user certificates may carry, forced force-command / source-address",
      resource: (i: { issuer: string }) => ({ kind: "issuer", id: i.issuer }),
      input: S(
        {
          issuer: str,
          userExtensions: { type: "array", maxItems: 16, items: { enum: USER_EXTENSIONS } },
          userDefaultHours: { type: "integer", minimum: 1 },
          userMaxHours: { type: "integer", minimum: 1 },
          hostDefaultDays: { type: "integer", minimum: 1 },
          hostMaxDays: { type: "integer", minimum: 1 },
          forceCommand: { type: "string", maxLength: 1024 },
          sourceAddress: { type: "array", maxItems: 64, items: { type: "string", minLength: 1, maxLength: 64 } },
        },
        ["issuer"],
      ),
      async handle(i: { issuer: string } & Partial<SshPolicy>, ctx) {
        const { issuer, ...rest } = i;
        const ca = caOf(assertIssuerId(issuer));
        const policy = normalSshPolicy(rest, ca.policy);
        const r = await run(sshCaDecider, ca.id, { type: "policy", policy } satisfies SshCaCommand, ctx);
        return { issuer: ca.id, policy: r.state.policy };
      },
    },
    {
      kind: "command",
      name: "ssh.sign-user",
      description: "Sign an SSH user certificate: principals from a realm principal's login name and groups (or named), validity in hours, extensions and critical options within the CA's policy",
      resource: (i: { issuer?: string }) => resourceOf(i.issuer),
      input: S(
        {
          issuer: str,
          publicKey: pubKey,
          principal: str,
          principals: names,
          hours: { type: "integer", minimum: 1, maximum: 24 * 366 },
          extensions: { type: "array", maxItems: 16, items: { enum: USER_EXTENSIONS } },
          forceCommand: { type: "string", maxLength: 1024 },
          sourceAddress: { type: "array", maxItems: 64, items: { type: "string", minLength: 1, maxLength: 64 } },
          keyId: { type: "string", minLength: 1, maxLength: 128 },
        },
        ["publicKey"],
      ),
      async handle(i: { issuer?: string; publicKey: string; principal?: string; principals?: string[]; hours?: number; extensions?: string[]; forceCommand?: string; sourceAddress?: string[]; keyId?: string }, ctx) {
        if (!i.principal && !i.principals?.length) throw invalid("name a realm principal (its login name and groups become the certificate's principals) or the principals");
        let allowed: string[] | undefined;
        if (i.principal) {
          let p = people.of(i.principal);
          if (!p) {
            await people.catchUp();
            p = people.of(i.principal);
          }
          if (!p) throw notFound(`principal ${i.principal} does not exist in the realm`);
          if (p.disabled) throw invalid(`principal ${i.principal} is disabled: no SSH certificate`);
          allowed = p.logins;
        }
        const keyId = i.keyId !== undefined ? assertKeyId(i.keyId) : undefined;
        return sign(
          "user",
          i.issuer,
          i.publicKey,
          (policy) => planUserCertificate({ principals: i.principals?.length ? i.principals : allowed!, allowed, hours: i.hours, extensions: i.extensions, forceCommand: i.forceCommand, sourceAddress: i.sourceAddress, now: d.now(), policy }),
          (p) => keyId ?? i.principal ?? p.principals[0]!,
          i.principal,
          ctx,
        );
      },
    },
    {
      kind: "command",
      name: "ssh.sign-self",
      description: "A person signed in (realm login, or their own API key) gets an SSH user certificate for themselves: their login name and groups, the CA's policy, nothing more",
      auth: "authenticated",
      input: S({ issuer: str, publicKey: pubKey, principals: names, hours: { type: "integer", minimum: 1, maximum: 24 * 366 } }, ["publicKey"]),
      async handle(i: { issuer?: string; publicKey: string; principals?: string[]; hours?: number }, ctx) {
        const me = ctx.principal?.id;
        if (!me) throw new RealmError("UNAUTHORIZED", "sign in first (realm login): an SSH certificate for yourself needs to know who you are");
        let p = people.of(me);
        if (!p) {
          await people.catchUp();
          p = people.of(me);
        }
        if (!p) throw notFound(`principal ${me} does not exist in the realm's directory`);
        if (p.kind !== "person") throw invalid(`principal ${me} is a ${p.kind}, not a person: its certificates are signed by an operator (ssh.sign-user)`);
        if (p.disabled) throw invalid(`principal ${me} is disabled: no SSH certificate`);
        const allowed = p.logins;
        return sign("user", i.issuer, i.publicKey, (policy) => planUserCertificate({ principals: i.principals?.length ? i.principals : allowed, allowed, hours: i.hours, now: d.now(), policy }), () => me, me, ctx);
      },
    },
    {
      kind: "command",
      name: "ssh.sign-host",
      description: "Sign an SSH host certificate for hosts the realm names (DNS names in its zones or the issuer's allow-list, IPs in its ranges)",
      resource: (i: { issuer?: string }) => resourceOf(i.issuer),
      input: S({ issuer: str, publicKey: pubKey, names: { ...names, minItems: 1 }, days: { type: "integer", minimum: 1, maximum: 3650 }, keyId: { type: "string", minLength: 1, maxLength: 128 } }, ["publicKey", "names"]),
      async handle(i: { issuer?: string; publicKey: string; names: string[]; days?: number; keyId?: string }, ctx) {
        const keyId = i.keyId !== undefined ? assertKeyId(i.keyId) : undefined;
        return sign(
          "host",
          i.issuer,
          i.publicKey,
          async (policy, issuer) => {
            const x509 = d.issuers().get(issuer);
            const planned = () => planHostCertificate({ names: i.names, days: i.days, now: d.now(), policy, ownedDomains: [...d.ownedZones(), ...(x509?.policy.allowDomains ?? [])], allowIps: x509?.policy.allowIps ?? [] });
            try {
              return planned();
            } catch (err) {
              if (!(err instanceof RealmError) || err.code !== "VALIDATION" || !d.catchUpZones) throw err;
              await d.catchUpZones();
              return planned();
            }
          },
          (p) => keyId ?? p.principals[0]!,
          undefined,
          ctx,
        );
      },
    },
    {
      kind: "command",
      name: "ssh.revoke",
      description: "Revoke an SSH certificate by serial (decimal), or every certificate of a key id; the KRL lists it at once",
      resource: (i: { serial?: string; issuer?: string }) => (i.serial ? resourceOf(model().certs.get(i.serial)?.issuer) : resourceOf(i.issuer)),
      input: S({ serial: { type: "string", pattern: "^[0-9]{1,20}$" }, keyId: { type: "string", minLength: 1, maxLength: 128 }, issuer: str, reason: { enum: SSH_REVOCATION_REASONS } }),
      async handle(i: { serial?: string; keyId?: string; issuer?: string; reason?: string }, ctx) {
        const at = new Date(Math.floor(d.now().getTime() / 1000) * 1000).toISOString();
        if ((i.serial === undefined) === (i.keyId === undefined)) throw invalid("give a serial or a key id (not both)");
        if (i.serial !== undefined) {
          const serial = BigInt(i.serial).toString();
          const r = await run(sshCertDecider, serial, { type: "revoke", reason: i.reason ?? "unspecified", at } satisfies SshCertCommand, ctx);
          return { serial, issuer: r.state.issuer, keyId: r.state.keyId, revoked: r.state.revoked };
        }
        const ca = caOf(i.issuer);
        await run(sshCaDecider, ca.id, { type: "revokeKeyId", keyId: assertKeyId(i.keyId!), at, reason: i.reason ?? "unspecified" } satisfies SshCaCommand, ctx);
        return { issuer: ca.id, keyId: i.keyId, revoked: { at, reason: i.reason ?? "unspecified" } };
      },
    },
    {
      kind: "query",
      name: "ssh-cas",
      description: "The SSH CAs: public key, fingerprint, policy, KRL route",
      filter: (r, can) => ({ ...r, cas: (r as { cas: { issuer: string }[] }).cas.filter((x) => can({ kind: "issuer", id: x.issuer })) }),
      input: S({}),
      async handle() {
        return {
          cas: [...model().cas.values()].filter((c) => c.exists).map((c) => ({ issuer: c.id, keySpec: c.ca!.keySpec, publicKey: c.ca!.publicKey, fingerprint: c.ca!.fingerprint, createdAt: c.ca!.createdAt, policy: c.policy, revokedKeyIds: c.revokedKeyIds, krl: SshRoutes.krl(c.id) })),
        };
      },
    },
    {
      kind: "query",
      name: "ssh-certificates",
      description: "SSH certificates, filtered by issuer, kind, principal (SSH or realm), status, or expiring within N hours",
      filter: (r, can) => ({ ...r, certificates: (r as { certificates: { issuer?: string }[] }).certificates.filter((c) => can({ kind: "issuer", id: c.issuer ?? "" })) }),
      input: S({ issuer: str, kind: { enum: ["user", "host"] }, principal: str, status: { enum: ["valid", "revoked", "expired"] }, expiringWithinHours: { type: "integer", minimum: 0, maximum: 876_000 }, limit: { type: "integer", minimum: 1, maximum: 10_000 } }),
      async handle(i: { issuer?: string; kind?: string; principal?: string; status?: string; expiringWithinHours?: number; limit?: number }) {
        const t = d.now();
        const horizon = i.expiringWithinHours !== undefined ? t.getTime() + i.expiringWithinHours * 3_600_000 : undefined;
        const out = [];
        for (const c of model().certs.values()) {
          if (!c.exists) continue;
          if (i.issuer && c.issuer !== i.issuer) continue;
          if (i.kind && c.kind !== i.kind) continue;
          if (i.principal && c.principal !== i.principal && !c.principals?.includes(i.principal)) continue;
          const v = sshCertView(c, t, model().cas.get(c.issuer!)?.revokedKeyIds);
          if (i.status && v.status !== i.status) continue;
          if (horizon !== undefined && (v.status !== "valid" || new Date(c.validBefore!).getTime() > horizon)) continue;
          out.push(v);
          if (out.length >= (i.limit ?? 1000)) break;
        }
        return { certificates: out };
      },
    },
    {
      kind: "query",
      name: "ssh-krl",
      description: "An SSH CA's KRL (base64 of the binary PROTOCOL.krl file, as served at /pki/ssh/<issuer>.krl)",
      resource: (i: { issuer?: string }) => resourceOf(i.issuer),
      input: S({ issuer: str }),
      async handle(i: { issuer?: string }) {
        const ca = caOf(i.issuer);
        const k = krlOf(ca.id);
        return { issuer: ca.id, version: k.version, krl: k.der.toString("base64"), revokedSerials: [...(model().revokedSerials.get(ca.id) ?? [])], revokedKeyIds: ca.revokedKeyIds.map((x) => x.keyId) };
      },
    },
    {
      kind: "query",
      name: "ssh-config",
      description: "The sshd settings (TrustedUserCAKeys, RevokedKeys) and the @cert-authority known_hosts line of an SSH CA",
      resource: (i: { issuer?: string }) => resourceOf(i.issuer),
      input: S({ issuer: str }),
      async handle(i: { issuer?: string }) {
        return configOf(caOf(i.issuer).id, d.publicUrl);
      },
    },
  ];

  return {
    endpoints,
    model,
    projections: () => [projection as Projection<unknown>, people.projection as Projection<unknown>],
    metrics: () => [`realm_pki_ssh_certificates ${model().certs.size}`, `realm_pki_ssh_revocations ${[...model().revokedSerials.values()].reduce((n, s) => n + s.size, 0)}`],
    async routes(app) {
      await app.register(async (scope) => {
        scope.get<{ Params: { file: string } }>("/pki/ssh/:file", async (req, reply) => {
          const m = ISSUER_PATH.exec(req.params.file);
          const ca = m ? model().cas.get(m[1]!) : undefined;
          if (!m || !ca?.exists) return reply.code(404).type("text/plain").send("no such SSH CA\n");
          if (m[2] === "pub") return reply.type("text/plain").send(`${ca.ca!.publicKey} realm-${ca.id}\n`);
          if (projection.quarantinedTotal > 0) return reply.code(503).type("text/plain").header("retry-after", "300").send("the realm's SSH revocation record is incomplete (a PKI event was quarantined); no KRL until it is repaired\n");
          const k = krlOf(ca.id);
          return reply.type("application/octet-stream").header("cache-control", "max-age=60").header("last-modified", k.at.toUTCString()).send(k.der);
        });
      });
    },
    async stop() {
      await projection.stop();
      await people.stop();
    },
  };
}

function replyOf(c: { serial: string } & Partial<SshIssuedFacts>) {
  return {
    serial: c.serial,
    issuer: c.issuer!,
    kind: c.kind!,
    keyId: c.keyId!,
    principals: c.principals!,
    validAfter: c.validAfter!,
    validBefore: c.validBefore!,
    criticalOptions: c.criticalOptions!,
    extensions: c.extensions!,
    key: c.key!,
    certificate: c.certificate!,
  };
}
