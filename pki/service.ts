import { Sealer } from "../services/kernel/seal.js";
import { createHash, createHmac, createPublicKey, X509Certificate, type KeyObject } from "node:crypto";
import { join } from "node:path";
import { commandMetaOf, type ContextDeps, type Endpoint, type RealmContext, type RequestContext } from "../services/host/context.js";
import type { Resource } from "../services/host/authz.js";
import { EventStore, executeNew, Projection, WriteModel, type Decider } from "../services/kernel/index.js";
import { conflict, invalid, notFound, RealmError } from "../services/kernel/errors.js";
import type { SecretEscrow } from "../secrets-client/contract.js";
import { PKI_CONTEXT, PkiRoutes } from "./contract.js";
import { certificateDecider, type CertificateCommand, type CertificateState, type IssuedCertificate } from "./domain/certificate.js";
import { planIssuance, type LeafNames } from "./domain/issuance.js";
import { isWildcard } from "./domain/names.js";
import { assertIssuerId, issuerDecider, type IntermediateFacts, type IssuerCommand, type IssuerState } from "./domain/issuer.js";
import { isProfileName, PROFILE_NAMES, type ProfileName } from "./domain/profiles.js";
import { IssuerKeyStore, publicKeySha256 } from "./keystore.js";
import { certificateView, pkiProjection, type PkiModel } from "./projection.js";
import { CrlCache, intermediatesOf, OcspIssuers, OcspResponder } from "./revocation.js";
import { followRealmZones } from "./realm-zones.js";
import { registerPkiRoutes } from "./routes.js";
import { createSshCa } from "./ssh/service.js";
import { expiringWithin, expiryMetrics } from "./expiry.js";
import { buildName, nameConstraintsOf, parseCertificate, wholeSeconds } from "./x509/cert.js";
import { crlNumberOf, crlSignedBy, readCrl, REVOCATION_REASON_NAMES, type RevocationReason } from "./x509/crl.js";
import { createCsr, parseCsr } from "./x509/csr.js";
import { fromPem, normalSerial, pemBlocks, serialHex, sha256Hex, toPem } from "./x509/der.js";
import { generateKeyPair, keyInfo, privateKeyPem, signerFor, spkiDer, type KeySpec } from "./x509/keys.js";
import { buildLeaf, leafIssuer, type LeafIssuer } from "./x509/leaf.js";
import { acmeAccountDecider, acmeConfigDecider, acmeEabDecider, acmeOrderDecider } from "./acme/domain.js";
import { EabKeys } from "./acme/eab.js";
import type { Grant } from "../services/host/authz.js";
import { acmeEndpoints } from "./acme/endpoints.js";
import { AcmeServer } from "./acme/server.js";
import type { ValidatorOptions } from "./acme/validator.js";

export interface PkiOptions {
  /** Base URL relying parties reach the realm's HTTP API at (CRL and OCSP pointers in leaves). Default $REALM_PKI_URL. */
  publicUrl?: string | undefined;
  /**
   * Zones of the realm's name domain (names the realm owns). Default: followed from the DNS context's events
   * (REALM_DNS). Besides these, only the issuers' allow-lists count.
   */
  ownedZones?: (() => Iterable<string>) | undefined;
  /** Where generated private keys go; without it they are returned once and stored nowhere. */
  escrow?: SecretEscrow | undefined;
  /** Clock (tests issue already-expired certificates with it). */
  clock?: (() => Date) | undefined;
  replicas?: number | undefined;
  /**
   * The realm's seal key: the intermediate keys are sealed with it in the shared bucket (pki/keystore.ts).
   * Without it a throw-away key seals them, which no later process opens (embedding and tests only).
   */
  sealer?: Sealer | undefined;
  /**
   * ACME challenge validation: the resolver (default the system's), timeouts and attempts. Tests name a
   * resolver that maps their loopback names; the issuer's ACME configuration still decides which addresses
   * validation may reach.
   */
  acme?: ValidatorOptions | undefined;
  /**
   * A realm principal's grants (the identity context's role bindings): ACME accounts bound to a principal by
   * EAB order only what it may have issued. Without it such accounts are refused (fail closed).
   */
  principalGrants?: ((principal: string) => Promise<Grant[]>) | undefined;
}

export interface PkiContext extends RealmContext {
  store: EventStore;
  projection: Projection<PkiModel>;
  /** The zones this PKI currently counts as the realm's (followed from the DNS context, or as configured). */
  ownedZones(): string[];
  /** Issues one certificate (the `certificate.issue` handler, for in-process callers and benchmarks). */
  issue(input: IssueInput, ctx: Pick<RequestContext, "commandId" | "actor" | "correlationId" | "causationId">): Promise<IssueReply>;
}

export interface IssueInput {
  issuer?: string;
  profile: string;
  csr?: string;
  commonName?: string;
  dns?: string[];
  ip?: string[];
  email?: string[];
  uri?: string[];
  keySpec?: KeySpec;
  days?: number;
  principal?: string;
}

export interface IssueReply {
  serial: string;
  issuer: string;
  profile: ProfileName;
  commonName: string;
  sans: LeafNames;
  fingerprint: string;
  notBefore: string;
  notAfter: string;
  certPem: string;
  /** Intermediate then root: what a server presents after its own certificate is the intermediate. */
  chainPem: string;
  /** The generated key, only when it was generated here and no escrow is configured (shown this once). */
  privateKeyPem?: string;
  secretRef?: { itemId: string; revision: string };
  replayed?: boolean;
}

const S = (props: Record<string, object>, required: string[] = []) => ({ type: "object", additionalProperties: false, required, properties: props });
const str = { type: "string", minLength: 1, maxLength: 1024 };
const names = { type: "array", maxItems: 100, items: { type: "string", minLength: 1, maxLength: 1024 } };
const pem = { type: "string", minLength: 1, maxLength: 65_536 };
const LEAF_KEY_SPECS: KeySpec[] = ["ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096"];
const INTERMEDIATE_KEY_SPECS: KeySpec[] = ["ecdsa-p256", "ecdsa-p384"];

/** The online half of the PKI: intermediates (key made here, signed by the offline ceremony), leaves, revocation, CRL, OCSP. */
export function createPkiContext(opts: PkiOptions = {}): (deps: ContextDeps) => Promise<PkiContext> {
  return async (deps) => {
    const store = await EventStore.open(deps.nc, PKI_CONTEXT, { trust: deps.trust, replicas: opts.replicas });
    const projection = new Projection(store, pkiProjection(), { log: deps.log, indexCommands: true });
    const writes = new WriteModel(store, projection as Projection<unknown>);
    await projection.start();
    if (!opts.sealer) deps.log.warn("no seal key given: the PKI's intermediate keys are sealed with a throw-away key and will not open after a restart");
    const sealer = opts.sealer ?? Sealer.generate();
    const keys = await IssuerKeyStore.open(deps.nc, sealer, {
      legacyDir: join(deps.dataDir, "keys"),
      replicas: opts.replicas,
      onError: (err) => deps.log.error({ err: err instanceof Error ? err.message : String(err) }, "an entry of the PKI key bucket does not open with this realm's seal key: skipped"),
      log: deps.log,
    });
    const eabKeys = await EabKeys.open(deps.nc, sealer);
    const realmZones = opts.ownedZones ? undefined : await followRealmZones(deps.nc, { trust: deps.trust, log: deps.log, replicas: opts.replicas });
    const ownedZones = opts.ownedZones ?? (() => realmZones!.zones());
    const now = opts.clock ?? (() => new Date());
    const publicUrl = (opts.publicUrl ?? process.env.REALM_PKI_URL ?? "").replace(/\/$/, "");
    const model = () => projection.state;
    /** Each aggregate's state as the projection holds it: what a command decides on (write-model.ts). */
    const views: Record<string, (id: string) => unknown> = {
      [issuerDecider.aggregateType]: (id) => model().issuers.get(id) ?? issuerDecider.initialState(id),
      [certificateDecider.aggregateType]: (id) => model().certificates.get(id) ?? certificateDecider.initialState(id),
      [acmeConfigDecider.aggregateType]: (id) => model().acme.configs.get(id) ?? acmeConfigDecider.initialState(id),
      [acmeAccountDecider.aggregateType]: (id) => model().acme.accounts.get(id) ?? acmeAccountDecider.initialState(id),
      [acmeOrderDecider.aggregateType]: (id) => model().acme.orders.get(id) ?? acmeOrderDecider.initialState(id),
      [acmeEabDecider.aggregateType]: (id) => model().acme.eabKeys.get(id) ?? acmeEabDecider.initialState(id),
    };
    function run<St, C>(decider: Decider<St, C>, id: string, cmd: C, ctx: Pick<RequestContext, "commandId" | "actor" | "correlationId" | "causationId">) {
      const view = views[decider.aggregateType] as ((id: string) => St) | undefined;
      if (!view) throw new RealmError("INTERNAL", `no view of ${decider.aggregateType} aggregates in the pki projection`);
      return writes.execute(decider, view, id, cmd, commandMetaOf(ctx));
    }

    /** Signing state of an issuer's active intermediate, built once per intermediate. */
    const signing = new Map<string, { fingerprint: string; issuer: LeafIssuer; serialKey: Buffer; chainPem: string }>();
    function signingFor(st: IssuerState) {
      const a = st.active;
      if (!a) throw invalid(`issuer ${st.id} has no intermediate yet: prepare, have the ceremony sign, import`);
      const hit = signing.get(st.id);
      if (hit && hit.fingerprint === a.fingerprint) return hit;
      const key = keys.load(a.publicKeySha256);
      const cert = parseCertificate(fromPem(a.certPem, ["CERTIFICATE"], "the intermediate"));
      const urls = publicUrl ? { crlUrl: `${publicUrl}${PkiRoutes.intermediateCrl(st.id, a.serial)}`, ocspUrl: `${publicUrl}${PkiRoutes.ocsp}` } : {};
      const entry = { fingerprint: a.fingerprint, issuer: leafIssuer(cert, signerFor(key), urls), serialKey: serialKeyOf(key), chainPem: a.certPem + a.rootPem };
      signing.set(st.id, entry);
      return entry;
    }
    /** The issuer a request names, or the realm's only one; undefined when that cannot be told (the handler says why). */
    function issuerOfRequest(id: string | undefined): Resource | undefined {
      try {
        return { kind: "issuer", id: issuerState(id).id };
      } catch {
        return id ? { kind: "issuer", id } : undefined;
      }
    }
    function issuerOfCertificate(serial: string): Resource | undefined {
      const c = model().certificates.get(serialOf(serial));
      return c?.issuer ? { kind: "issuer", id: c.issuer } : undefined;
    }
    function issuerState(id: string | undefined): IssuerState {
      const all = [...model().issuers.values()].filter((i) => i.active);
      if (!id) {
        if (all.length === 1) return all[0]!;
        throw invalid(all.length === 0 ? "the realm has no issuer with an intermediate yet" : `the realm has ${all.length} issuers (${all.map((i) => i.id).join(", ")}): name one`);
      }
      const st = model().issuers.get(id);
      if (!st) throw notFound(`issuer ${id} does not exist`);
      return st;
    }

    async function issue(i: IssueInput, ctx: Pick<RequestContext, "commandId" | "actor" | "correlationId" | "causationId">): Promise<IssueReply> {
      if (!isProfileName(i.profile)) throw invalid(`profile must be one of ${PROFILE_NAMES.join(", ")}`);
      const profile: ProfileName = i.profile;
      if (i.csr && i.keySpec) throw invalid("give a CSR or a keySpec for a generated key, not both");
      const st = issuerState(i.issuer);
      // An intermediate prepared through another instance: its key may still be on its way through the bucket.
      if (st.active) await keys.wait(st.active.publicKeySha256);
      const sig = signingFor(st);
      const serial = serialFor(sig.serialKey, ctx.commandId);
      const earlier = model().certificates.get(serialHex(serial));
      if (earlier?.exists) return { ...replyOf(earlier, sig.chainPem), replayed: true };
      // Read the request: a CSR (its key proven by its signature) or a key made here.
      let spkiBytes: Buffer;
      let keyInfoOf: ReturnType<typeof parseCsr>["key"];
      let generated: KeyObject | undefined;
      const given: LeafNames = { dns: i.dns ?? [], ip: i.ip ?? [], email: i.email ?? [], uri: i.uri ?? [] };
      let commonName = i.commonName;
      if (i.csr) {
        const csr = parseCsr(i.csr);
        spkiBytes = csr.spkiDer;
        keyInfoOf = csr.key;
        for (const k of ["dns", "ip", "email", "uri"] as const) given[k] = [...given[k], ...csr.sans[k]];
        commonName ??= csr.commonName;
      } else {
        const spec = i.keySpec ?? "ecdsa-p256";
        if (!LEAF_KEY_SPECS.includes(spec)) throw invalid(`keySpec must be one of ${LEAF_KEY_SPECS.join(", ")}`);
        const pair = await generateKeyPair(spec);
        generated = pair.privateKey;
        spkiBytes = spkiDer(pair.publicKey);
        keyInfoOf = keyInfo(pair.publicKey);
      }
      const a = st.active!;
      const planned = () =>
        planIssuance({
          profile,
          commonName,
          names: given,
          days: i.days,
          now: now(),
          policy: st.policy,
          realmZones: ownedZones(),
          permittedDns: a.permittedDns,
          issuerNotAfter: new Date(a.notAfter),
        });
      let plan: ReturnType<typeof planIssuance>;
      try {
        plan = planned();
      } catch (err) {
        // A zone created a moment ago may not have reached this follower yet: catch up once and decide again.
        if (!(err instanceof RealmError) || err.code !== "VALIDATION" || !realmZones) throw err;
        await realmZones.catchUp();
        plan = planned();
      }
      const der = buildLeaf({ plan, serial, spkiDer: spkiBytes, key: keyInfoOf, issuer: sig.issuer });
      const certPem = toPem(der, "CERTIFICATE");
      const facts: IssuedCertificate = {
        serial: serialHex(serial),
        issuer: st.id,
        issuerFingerprint: a.fingerprint,
        profile: plan.profile,
        subject: `CN=${plan.commonName}`,
        commonName: plan.commonName,
        sans: plan.names,
        fingerprint: sha256Hex(der),
        notBefore: plan.notBefore.toISOString(),
        notAfter: plan.notAfter.toISOString(),
        key: { spec: keyInfoOf.spec, source: generated ? "generated" : "csr" },
        ...(i.principal ? { principal: i.principal } : {}),
        certPem,
      };
      let privateKeyPem_: string | undefined;
      if (generated) {
        const keyPem = privateKeyPem(generated);
        if (opts.escrow) {
          // Escrow first: if it fails nothing is recorded and the key is dropped (no half-issued certificate).
          facts.secretRef = await opts.escrow.store({
            principal: i.principal ?? `cert:${plan.commonName}`,
            name: `cert:${facts.serial}:key`,
            secret: keyPem,
            notes: `private key of certificate ${facts.serial} (${plan.commonName}), sha256 ${facts.fingerprint}, issuer ${st.id}`,
            cause: commandMetaOf(ctx),
          });
        } else privateKeyPem_ = keyPem;
      }
      // The serial is new by construction (the projection knew no certificate for it): append without a load.
      const r = await executeNew(store, certificateDecider, facts.serial, { type: "issue", certificate: facts } satisfies CertificateCommand, commandMetaOf(ctx));
      await projection.waitFor(r.position.lastSeq);
      return { ...replyOf(r.state, sig.chainPem), ...(privateKeyPem_ ? { privateKeyPem: privateKeyPem_ } : {}), ...(r.replayed ? { replayed: true } : {}) };
    }

    const ssh = await createSshCa({ nc: deps.nc, store, keys, trust: deps.trust, log: deps.log, replicas: opts.replicas, now, publicUrl, issuers: () => model().issuers, ownedZones, catchUpZones: realmZones ? () => realmZones.catchUp() : undefined });
    async function revoke(serialText: string, reason: RevocationReason, ctx: Pick<RequestContext, "commandId" | "actor" | "correlationId" | "causationId">) {
      const serial = serialOf(serialText);
      // The decider reads the certificate's own events (not the read model, which may lag a fresh issue).
      const r = await run(certificateDecider, serial, { type: "revoke", reason, at: wholeSeconds(now()).toISOString() } satisfies CertificateCommand, ctx).catch((err: unknown) => {
        throw err instanceof RealmError && err.code === "NOT_FOUND" ? noSuchSerial(serialText) : err;
      });
      return { serial, revoked: r.state.revoked };
    }

    /** Why issuer `id` would refuse a server leaf for DNS name `name` (ownership, name constraints), or undefined. */
    async function refusal(id: string, name: string): Promise<string | undefined> {
      const st = issuerState(id);
      const a = st.active;
      if (!a) return `issuer ${id} has no intermediate`;
      const plan = () => planIssuance({ profile: isWildcard(name) ? "server-wildcard" : "server", names: { dns: [name], ip: [], email: [], uri: [] }, now: now(), policy: st.policy, realmZones: ownedZones(), permittedDns: a.permittedDns, issuerNotAfter: new Date(a.notAfter) });
      for (let attempt = 0; ; attempt++) {
        try {
          plan();
          return undefined;
        } catch (err) {
          if (!(err instanceof RealmError) || err.code !== "VALIDATION") throw err;
          if (attempt > 0 || !realmZones) return err.message;
          await realmZones.catchUp();
        }
      }
    }

    const keyOfIntermediate = (i: IntermediateFacts) => keys.load(i.publicKeySha256);
    const crls = new CrlCache(() => model(), keyOfIntermediate, now);
    const ocsp = new OcspResponder(new OcspIssuers(() => model(), keyOfIntermediate, now), () => model(), now);
    const chainOf = (c: CertificateState) => {
      const st = c.issuer ? model().issuers.get(c.issuer) : undefined;
      const inter = st ? intermediatesOf(st).find((x) => x.fingerprint === c.issuerFingerprint) : undefined;
      return inter ? inter.certPem + inter.rootPem : "";
    };

    const acme = new AcmeServer({
      model,
      now,
      publicUrl,
      log: deps.log,
      run,
      refusal,
      ownTxt: async (name) => {
        if (!realmZones) return undefined;
        await realmZones.catchUp();
        return realmZones.challengeTxt(name);
      },
      issue: (i, ctx) => issue(i, ctx),
      revoke: async (serial, reason, ctx) => void (await revoke(serial, reason, ctx)),
      intermediateOf: (serial) => {
        const c = model().certificates.get(serial);
        return c ? chainOf(c).split(/(?<=-----END CERTIFICATE-----\n)/)[0] : undefined;
      },
      validator: opts.acme,
      eab: eabKeys,
      grantsOf: opts.principalGrants,
    });

    const resumed = acme.resume();
    if (resumed > 0) deps.log.info({ resumed }, "ACME: validating again the challenges a stopped instance left processing");

    const endpoints: Endpoint[] = [
      {
        kind: "command",
        name: "issuer.prepare",
        description: "Make an online intermediate key for an issuer and return its CSR for the offline ceremony to sign",
        resource: (i: { issuer: string }) => ({ kind: "issuer", id: i.issuer }),
        input: S({ issuer: str, commonName: str, organization: str, keySpec: { enum: INTERMEDIATE_KEY_SPECS } }, ["issuer", "commonName"]),
        async handle(i: { issuer: string; commonName: string; organization?: string; keySpec?: KeySpec }, ctx) {
          const id = assertIssuerId(i.issuer);
          const prior = model().issuers.get(id);
          if (prior?.pending) throw conflict(`issuer ${id} already waits for the ceremony to sign its CSR (key ${prior.pending.publicKeySha256.slice(0, 16)}); import that certificate first`);
          const spec = i.keySpec ?? "ecdsa-p256";
          const { privateKey, publicKey } = await generateKeyPair(spec);
          const subject = buildName({ CN: i.commonName, ...(i.organization ? { O: i.organization } : {}) });
          const csrPem = toPem(createCsr(subject, publicKey, signerFor(privateKey)), "CERTIFICATE REQUEST");
          const sha = await keys.save(privateKey);
          const r = await run(issuerDecider, id, { type: "prepare", spec, publicKeySha256: sha, csrPem, subject: `CN=${i.commonName}${i.organization ? `,O=${i.organization}` : ""}` } satisfies IssuerCommand, ctx);
          return { issuer: id, csrPem: r.state.pending?.csrPem ?? csrPem, publicKeySha256: r.state.pending?.publicKeySha256 ?? sha, keySpec: spec };
        },
      },
      {
        kind: "command",
        name: "issuer.import",
        description: "Import the intermediate certificate the ceremony signed for the prepared key, with the root certificate",
        resource: (i: { issuer: string }) => ({ kind: "issuer", id: i.issuer }),
        input: S({ issuer: str, certificate: pem, root: pem, manifestCid: str }, ["issuer", "certificate", "root"]),
        async handle(i: { issuer: string; certificate: string; root: string }, ctx) {
          const id = assertIssuerId(i.issuer);
          const facts = checkIntermediate(i.certificate, i.root, now());
          const r = await run(issuerDecider, id, { type: "import", intermediate: facts } satisfies IssuerCommand, ctx);
          return { issuer: id, serial: facts.serial, subject: facts.subject, notAfter: facts.notAfter, permittedDns: facts.permittedDns, fingerprint: facts.fingerprint, replayed: r.replayed };
        },
      },
      {
        kind: "command",
        name: "issuer.policy",
        description: "Set an issuer's allow-list: DNS domains besides the realm's zones, and IP ranges it may certify",
        resource: (i: { issuer: string }) => ({ kind: "issuer", id: i.issuer }),
        input: S({ issuer: str, allowDomains: names, allowIps: names }, ["issuer"]),
        async handle(i: { issuer: string; allowDomains?: string[]; allowIps?: string[] }, ctx) {
          const r = await run(issuerDecider, assertIssuerId(i.issuer), { type: "policy", allowDomains: i.allowDomains, allowIps: i.allowIps } satisfies IssuerCommand, ctx);
          return { issuer: i.issuer, policy: r.state.policy };
        },
      },
      {
        kind: "command",
        name: "issuer.root-crl",
        description: "Publish a root CRL the ceremony issued (checked against the issuer's root; served at /pki/crl/root.crl)",
        resource: (i: { issuer: string }) => ({ kind: "issuer", id: i.issuer }),
        input: S({ issuer: str, crl: { type: "string", minLength: 1, maxLength: 1_000_000 } }, ["issuer", "crl"]),
        async handle(i: { issuer: string; crl: string }, ctx) {
          const st = issuerState(i.issuer);
          if (!st.active) throw invalid(`issuer ${st.id} has no intermediate yet`);
          const der = i.crl.includes("-----BEGIN") ? fromPem(i.crl, ["X509 CRL"], "the CRL") : Buffer.from(i.crl, "base64");
          const { list, thisUpdate, serials } = readCrl(der);
          const root = new X509Certificate(fromPem(st.active.rootPem, ["CERTIFICATE"], "the root"));
          if (!crlSignedBy(list, root.publicKey)) throw invalid("the CRL's signature does not verify with this issuer's root");
          const crlNumber = crlNumberOf(list);
          await run(issuerDecider, st.id, { type: "rootCrl", der: der.toString("base64"), crlNumber, thisUpdate: thisUpdate.toISOString(), rootFingerprint: st.active.rootFingerprint } satisfies IssuerCommand, ctx);
          return { issuer: st.id, crlNumber, revoked: serials };
        },
      },
      {
        kind: "command",
        name: "certificate.issue",
        description: "Issue a leaf by profile from a CSR, or with a key generated here (returned once, or escrowed)",
        secret: ["privateKeyPem"],
        resource: (i: IssueInput) => issuerOfRequest(i.issuer),
        input: S(
          { issuer: str, profile: { enum: PROFILE_NAMES }, csr: pem, commonName: str, dns: names, ip: names, email: names, uri: names, keySpec: { enum: LEAF_KEY_SPECS }, days: { type: "integer", minimum: 1, maximum: 3650 }, principal: str },
          ["profile"],
        ),
        handle: (i: IssueInput, ctx) => issue(i, ctx) as Promise<object>,
      },
      {
        kind: "command",
        name: "certificate.revoke",
        description: "Revoke a certificate by serial with an RFC 5280 reason (default unspecified)",
        resource: (i: { serial: string }) => issuerOfCertificate(i.serial),
        input: S({ serial: str, reason: { enum: REVOCATION_REASON_NAMES.filter((r) => r !== "removeFromCRL") } }, ["serial"]),
        handle: (i: { serial: string; reason?: RevocationReason }, ctx) => revoke(i.serial, i.reason ?? "unspecified", ctx),
      },
      {
        kind: "query",
        name: "issuers",
        description: "Issuers with their intermediate, pending CSR and policy",
        filter: (r, can) => ({ ...r, issuers: (r as { issuers: { issuer: string }[] }).issuers.filter((x) => can({ kind: "issuer", id: x.issuer })) }),
        input: S({}),
        async handle() {
          return {
            issuers: [...model().issuers.values()].map((s) => ({
              issuer: s.id,
              ...(s.active ? { intermediate: { serial: s.active.serial, subject: s.active.subject, notAfter: s.active.notAfter, permittedDns: s.active.permittedDns, fingerprint: s.active.fingerprint, rootFingerprint: s.active.rootFingerprint } } : {}),
              ...(s.pending ? { pending: { keySpec: s.pending.spec, publicKeySha256: s.pending.publicKeySha256, csrPem: s.pending.csrPem } } : {}),
              policy: s.policy,
              crl: PkiRoutes.crl(s.id),
            })),
          };
        },
      },
      {
        kind: "query",
        name: "certificates",
        description: "Certificates, filtered by issuer, name (CN or SAN), status, or expiring within N days",
        filter: (r, can) => ({ ...r, certificates: (r as { certificates: { issuer?: string }[] }).certificates.filter((c) => can({ kind: "issuer", id: c.issuer ?? "" })) }),
        input: S({ issuer: str, name: str, status: { enum: ["valid", "revoked", "expired"] }, expiringWithinDays: { type: "integer", minimum: 0, maximum: 36500 }, limit: { type: "integer", minimum: 1, maximum: 10_000 } }),
        async handle(i: { issuer?: string; name?: string; status?: string; expiringWithinDays?: number; limit?: number }) {
          const t = now();
          const serials = i.name ? [...(model().byName.get(i.name.toLowerCase().replace(/\.$/, "")) ?? [])] : [...model().certificates.keys()];
          const horizon = i.expiringWithinDays !== undefined ? t.getTime() + i.expiringWithinDays * 86_400_000 : undefined;
          const out = [];
          for (const s of serials) {
            const c = model().certificates.get(s);
            if (!c?.exists) continue;
            if (i.issuer && c.issuer !== i.issuer) continue;
            const v = certificateView(c, t);
            if (i.status && v.status !== i.status) continue;
            if (horizon !== undefined && (v.status !== "valid" || new Date(c.notAfter!).getTime() > horizon)) continue;
            out.push(v);
            if (out.length >= (i.limit ?? 1000)) break;
          }
          return { certificates: out };
        },
      },
      {
        kind: "query",
        name: "certificate",
        description: "One certificate by serial, with its PEM and chain",
        resource: (i: { serial: string }) => issuerOfCertificate(i.serial),
        http: { method: "GET", path: "/certificates/:serial" },
        input: S({ serial: str }, ["serial"]),
        async handle(i: { serial: string }) {
          const c = model().certificates.get(serialOf(i.serial));
          if (!c?.exists) throw noSuchSerial(i.serial);
          return { ...certificateView(c, now(), true), chainPem: chainOf(c) };
        },
      },
      {
        kind: "query",
        name: "crl",
        description: "An issuer's CRL (PEM) for its current intermediate, or an earlier one by serial; as served under /pki/crl/",
        resource: (i: { issuer?: string }) => issuerOfRequest(i.issuer),
        input: S({ issuer: str, intermediate: { type: "string", pattern: "^[0-9a-f]{1,40}$" } }),
        async handle(i: { issuer?: string; intermediate?: string }) {
          const st = issuerState(i.issuer);
          const c = crls.forIssuer(st.id, i.intermediate);
          return { issuer: st.id, intermediate: i.intermediate ?? st.active!.serial, crlPem: toPem(c.der, "X509 CRL"), crlNumber: c.crlNumber, thisUpdate: c.thisUpdate.toISOString(), nextUpdate: c.nextUpdate.toISOString(), revoked: c.revoked };
        },
      },
      ...ssh.endpoints,
      {
        kind: "query",
        name: "expiring",
        description: "Everything still valid that expires within N hours, soonest first: leaves, intermediates, SSH certificates",
        filter: (r, can) => ({ ...r, expiring: (r as { expiring: { issuer: string }[] }).expiring.filter((x) => can({ kind: "issuer", id: x.issuer })) }),
        input: S({ withinHours: { type: "integer", minimum: 0, maximum: 876_000 }, limit: { type: "integer", minimum: 1, maximum: 10_000 } }, ["withinHours"]),
        async handle(i: { withinHours: number; limit?: number }) {
          return { expiring: expiringWithin(model(), ssh.model(), now(), i.withinHours * 3_600_000).slice(0, i.limit ?? 1000) };
        },
      },
      ...acmeEndpoints({ model, now, run, eab: eabKeys }),
    ];

    return {
      name: PKI_CONTEXT,
      endpoints,
      store,
      projection,
      issue,
      ownedZones: () => [...ownedZones()],
      routes: async (app) => {
        await ssh.routes(app);
        await acme.routes(app);
        await registerPkiRoutes(app, {
          model,
          crls,
          ocsp,
          now,
          // Fail closed: with any PKI event quarantined (it may have been a revocation), no status is vouched for.
          revocationGap: () => (projection.quarantinedTotal > 0 ? `${projection.quarantinedTotal} PKI event(s) quarantined, first: ${projection.quarantined[0]?.message}` : undefined),
        });
      },
      projections: () => [projection as Projection<unknown>, ...(realmZones ? [realmZones.projection as Projection<unknown>] : []), ...ssh.projections()],
      ready: () => projection.status === "live",
      metrics: () => [`realm_pki_certificates ${model().certificates.size}`, `realm_pki_revocations ${model().revocations}`, ...ssh.metrics(), ...expiryMetrics(model(), ssh.model(), now())],
      stop: async () => {
        await ssh.stop();
        await acme.stop();
        keys.stop();
        await projection.stop();
        await realmZones?.stop();
      },
    };
  };
}

function replyOf(c: CertificateState, chainPem: string): IssueReply {
  return {
    serial: c.serial,
    issuer: c.issuer!,
    profile: c.profile!,
    commonName: c.commonName!,
    sans: c.sans!,
    fingerprint: c.fingerprint!,
    notBefore: c.notBefore!,
    notAfter: c.notAfter!,
    certPem: c.certPem!,
    chainPem,
    ...(c.secretRef ? { secretRef: c.secretRef } : {}),
  };
}

/**
 * A serial as given (any case, colons, leading zeros, `0x`) in the realm's one normal form, the form
 * certificates are keyed and shown by: `normalSerial` (serialHex of the DER INTEGER: lowercase, whole bytes,
 * no leading zero byte). Stripping every leading zero digit instead, as this did, gives another string for
 * a serial whose first byte is below 0x10 (`0112...` became `112...`): not the key it is stored under.
 */
function serialOf(text: string): string {
  const clean = text.trim().toLowerCase().replace(/:/g, "").replace(/^0x/, "");
  if (!/^[0-9a-f]{1,64}$/.test(clean)) throw invalid(`serial ${JSON.stringify(text)} is not hex`);
  return normalSerial(clean);
}

/** NOT_FOUND naming the serial as given, and its normal form when that differs. */
const noSuchSerial = (given: string): RealmError => {
  const normal = serialOf(given);
  return notFound(`no certificate with serial ${given.trim()}${normal === given.trim().toLowerCase() ? "" : ` (${normal} in normal form)`}`);
};

/** A secret for serial numbers, derived from the intermediate key: every replica holding the key derives the same. */
const serialKeyOf = (key: KeyObject): Buffer => createHash("sha256").update("cim-realm/pki/serial/v1").update(key.export({ format: "der", type: "pkcs8" })).digest();

/**
 * Serial of the certificate a command issues: 128 bits from HMAC(serial key, command id), positive and
 * unpredictable to the caller; a retried command maps to the same serial, so it is answered, not issued twice.
 */
function serialFor(serialKey: Buffer, commandId: string): Buffer {
  const b = createHmac("sha256", serialKey).update(commandId).digest().subarray(0, 16);
  b[0] = (b[0]! & 0x7f) | 0x10;
  return Buffer.from(b);
}

/** Reads and checks an intermediate the ceremony signed: CA, signed by `rootPem`, root self-signed, valid now. */
function checkIntermediate(certPemText: string, rootPemText: string, at: Date): IntermediateFacts {
  const [certDer] = pemBlocks(certPemText, ["CERTIFICATE"]);
  const [rootDer] = pemBlocks(rootPemText, ["CERTIFICATE"]);
  if (!certDer) throw invalid("the intermediate certificate is not PEM (-----BEGIN CERTIFICATE-----)");
  if (!rootDer) throw invalid("the root certificate is not PEM (-----BEGIN CERTIFICATE-----)");
  let cert: X509Certificate;
  let root: X509Certificate;
  try {
    cert = new X509Certificate(certDer);
    root = new X509Certificate(rootDer);
  } catch {
    throw invalid("the certificate or the root is not a readable X.509 certificate");
  }
  if (!root.ca || !root.verify(root.publicKey)) throw invalid("the root is not a self-signed CA certificate");
  if (!cert.ca) throw invalid("the certificate is not a CA certificate (an intermediate needs CA:TRUE)");
  if (!cert.checkIssued(root) || !cert.verify(root.publicKey)) throw new RealmError("VALIDATION", "the intermediate is not signed by the given root");
  if (new Date(cert.validTo).getTime() <= at.getTime()) throw invalid("the intermediate has expired");
  const parsed = parseCertificate(certDer);
  return {
    serial: serialHex(parsed.tbsCertificate.serialNumber),
    subject: cert.subject.replace(/\n/g, ","),
    fingerprint: sha256Hex(certDer),
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: new Date(cert.validTo).toISOString(),
    permittedDns: nameConstraintsOf(parsed),
    publicKeySha256: publicKeySha256(createPublicKey(cert.publicKey.export({ format: "pem", type: "spki" }))),
    certPem: toPem(certDer, "CERTIFICATE"),
    rootPem: toPem(rootDer, "CERTIFICATE"),
    rootFingerprint: sha256Hex(rootDer),
  };
}
