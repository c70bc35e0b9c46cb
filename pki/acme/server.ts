import { randomBytes, X509Certificate } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { eventIdFor, newId, RealmError, type Decider, type Execution } from "../../services/kernel/index.js";
import type { RequestContext } from "../../services/host/context.js";
import type { PkiModel } from "../projection.js";
import { parseCsr } from "../x509/csr.js";
import { fromPem, normalSerial, sha256Hex, toPem } from "../x509/der.js";
import { extensionOf, parseCertificate } from "../x509/cert.js";
import { AuthorityKeyIdentifier, id_ce_authorityKeyIdentifier } from "@peculiar/asn1-x509";
import { REVOCATION_REASONS, type RevocationReason } from "../x509/reasons.js";
import { isWildcard } from "../domain/names.js";
import {
  acmeAccountDecider,
  acmeOrderDecider,
  authzStatus,
  challengeTypesFor,
  csrMismatch,
  keyAuthorization,
  normalIdentifiers,
  orderStatus,
  parseCertId,
  suggestedWindow,
  type AcmeAccountCommand,
  type AcmeAccountState,
  type AcmeConfig,
  type AcmeOrderCommand,
  type AcmeOrderState,
  type AuthorizationState,
  type ChallengeType,
} from "./domain.js";
import { NoncePool } from "./nonces.js";
import { acmeProblem, AcmeProblem, problemOf, type ProblemDocument } from "./problems.js";
import { keyObjectOf, publicJwk, readJws, thumbprintOf, verifyJws, type AcmeProtected } from "./jws.js";
import { validateChallenge, type ValidatorOptions } from "./validator.js";
import { verifyEab, type EabKeys } from "./eab.js";
import { acmeEabDecider, type AcmeEabCommand } from "./domain.js";
import { decide, type Grant } from "../../services/host/authz.js";

type Ctx = Pick<RequestContext, "commandId" | "actor" | "correlationId" | "causationId">;

/** What the ACME server needs from the PKI context (pki/service.ts wires it). */
export interface AcmeDeps {
  model: () => PkiModel;
  now: () => Date;
  /** Base URL clients reach the realm at; empty: taken from each request's Host. */
  publicUrl: string;
  log: Logger;
  /** Runs a command through the PKI's write model (waits until the projection applied it). */
  run<S, C>(decider: Decider<S, C>, id: string, cmd: C, ctx: Ctx): Promise<Execution<S>>;
  /** Why the issuer would refuse a leaf for this DNS name (ownership, name constraints), or undefined. */
  refusal(issuer: string, name: string): Promise<string | undefined>;
  /** TXT values at a name in a realm zone (from the DNS projection), undefined when no realm zone holds it. */
  ownTxt(name: string): Promise<string[] | undefined>;
  /** The PKI's issuance path (certificate.issue). */
  issue(input: { issuer: string; profile: string; csr: string; days: number; principal?: string }, ctx: Ctx): Promise<{ serial: string }>;
  /** The PKI's revocation path (certificate.revoke). */
  revoke(serial: string, reason: RevocationReason, ctx: Ctx): Promise<void>;
  /** PEM of the intermediate that issued a certificate. */
  intermediateOf(serial: string): string | undefined;
  validator?: ValidatorOptions | undefined;
  /** The sealed EAB HMAC keys. */
  eab: EabKeys;
  /**
   * A realm principal's grants (identity's role bindings), for accounts bound to one by EAB; undefined when
   * this process cannot read them (then such accounts are refused: fail closed).
   */
  grantsOf?: ((principal: string) => Promise<Grant[]>) | undefined;
}

/** ACME routes, relative to the realm's base URL. */
export const AcmePaths = {
  base: (issuer: string) => `/acme/${issuer}`,
  directory: (issuer: string) => `/acme/${issuer}/directory`,
} as const;

const ORDER_LIFETIME_MS = 7 * 86_400_000;
/** Validations running at once in one instance; more wait their turn (clients keep polling meanwhile). */
const MAX_VALIDATIONS = 32;
const MAX_BODY = 64 * 1024;

interface Answer {
  status?: number;
  body?: object | string;
  location?: string;
  links?: string[];
  type?: string;
  /** Seconds a client should wait before polling again (RFC 8555 §8.2: while validation is under way). */
  retryAfter?: number;
}

interface Authenticated {
  header: AcmeProtected;
  /** undefined: POST-as-GET (empty payload). */
  payload: unknown;
  /** The account the request was signed for (kid), when signed with kid. */
  account?: AcmeAccountState;
  base: string;
  raw: Buffer;
}

/**
 * The ACME server (RFC 8555) of every issuer whose ACME configuration is enabled:
 * `<base>/acme/<issuer>/directory` and the resources it names. Each request is a JWS checked here (algorithm,
 * URL, key, signature, then the nonce), then decided by pki/acme/domain.ts through the PKI's write model;
 * state is read from the PKI projection. http-01 validation runs after the client responds to a challenge,
 * in this process, with bounded attempts and the SSRF guard.
 */
export class AcmeServer {
  readonly nonces = new NoncePool();
  private readonly validations = new Set<Promise<void>>();
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private stopped = false;

  constructor(private readonly d: AcmeDeps) {}

  private config(issuer: string): AcmeConfig {
    const c = this.d.model().acme.configs.get(issuer)?.config;
    if (!c?.enabled || !this.d.model().issuers.get(issuer)?.active) throw acmeProblem("malformed", `issuer ${issuer} serves no ACME`, { status: 404 });
    return c;
  }

  private baseOf(req: FastifyRequest): string {
    return this.d.publicUrl || `${req.protocol}://${req.headers.host ?? "localhost"}`;
  }

  private urls(base: string, issuer: string) {
    const b = `${base}${AcmePaths.base(issuer)}`;
    return {
      directory: `${b}/directory`,
      newNonce: `${b}/new-nonce`,
      newAccount: `${b}/new-account`,
      newOrder: `${b}/new-order`,
      revokeCert: `${b}/revoke-cert`,
      keyChange: `${b}/key-change`,
      renewalInfo: `${b}/renewal-info`,
      account: (id: string) => `${b}/acct/${id}`,
      orders: (id: string) => `${b}/acct/${id}/orders`,
      order: (id: string) => `${b}/order/${id}`,
      finalize: (id: string) => `${b}/order/${id}/finalize`,
      authz: (id: string) => `${b}/authz/${id}`,
      challenge: (authz: string, type: string) => `${b}/chall/${authz}/${type}`,
      certificate: (serial: string) => `${b}/cert/${serial}`,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled([...this.validations]);
  }

  routes(app: FastifyInstance): Promise<void> {
    return Promise.resolve(
      app.register(async (scope) => {
        scope.addContentTypeParser("application/jose+json", { parseAs: "buffer", bodyLimit: MAX_BODY }, (_req, body, done) => done(null, body));
        scope.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
          const p = err instanceof AcmeProblem ? err : acmeProblem("malformed", err.statusCode === 413 ? `the request is larger than ${MAX_BODY} bytes` : err.statusCode === 415 ? "ACME requests are application/jose+json" : "the request could not be read");
          return this.sendProblem(req, reply, p);
        });
        scope.get<{ Params: { issuer: string } }>("/acme/:issuer/directory", (req, reply) =>
          this.answer(req, reply, async () => {
            const issuer = req.params.issuer;
            const c = this.config(issuer);
            const u = this.urls(this.baseOf(req), issuer);
            return { body: { newNonce: u.newNonce, newAccount: u.newAccount, newOrder: u.newOrder, revokeCert: u.revokeCert, keyChange: u.keyChange, renewalInfo: u.renewalInfo, meta: { externalAccountRequired: c.externalAccountRequired, website: this.baseOf(req) } } };
          }),
        );
        scope.route<{ Params: { issuer: string } }>({
          method: ["GET", "HEAD"],
          url: "/acme/:issuer/new-nonce",
          exposeHeadRoute: false,
          handler: (req, reply) =>
            this.answer(req, reply, async () => {
              this.config(req.params.issuer);
              return { status: req.method === "HEAD" ? 200 : 204 };
            }),
        });
        // RFC 9773: unauthenticated GET of a certificate's suggested renewal window.
        scope.get<{ Params: { issuer: string; certId: string } }>("/acme/:issuer/renewal-info/:certId", (req, reply) =>
          this.answer(req, reply, async () => {
            this.config(req.params.issuer);
            return this.renewalInfo(req.params.issuer, req.params.certId);
          }),
        );
        const post = (path: string, fn: (issuer: string, a: Authenticated, params: Record<string, string>) => Promise<Answer>, key: "kid" | "jwk" | "either" = "kid") =>
          scope.post<{ Params: Record<string, string> }>(`/acme/:issuer${path}`, (req, reply) =>
            this.answer(req, reply, async () => {
              const issuer = req.params.issuer!;
              this.config(issuer);
              const a = await this.authenticate(req, issuer, key);
              return fn(issuer, a, req.params);
            }),
          );
        post("/new-account", (i, a) => this.newAccount(i, a), "jwk");
        post("/acct/:id", (i, a, p) => this.accountRequest(i, a, p.id!));
        post("/acct/:id/orders", (i, a, p) => this.ordersList(i, a, p.id!));
        post("/new-order", (i, a) => this.newOrder(i, a));
        post("/order/:id", (i, a, p) => this.orderRequest(i, a, p.id!));
        post("/order/:id/finalize", (i, a, p) => this.finalize(i, a, p.id!));
        post("/authz/:id", (i, a, p) => this.authzRequest(i, a, p.id!));
        post("/chall/:authz/:type", (i, a, p) => this.challengeRequest(i, a, p.authz!, p.type!));
        post("/cert/:serial", (i, a, p) => this.certificate(i, a, p.serial!));
        post("/revoke-cert", (i, a) => this.revokeCert(i, a), "either");
        post("/key-change", (i, a) => this.keyChange(i, a));
      }),
    );
  }

  // ---------------------------------------------------------------------------------------------- plumbing

  private async answer(req: FastifyRequest, reply: FastifyReply, fn: () => Promise<Answer>): Promise<FastifyReply> {
    let a: Answer;
    try {
      a = await fn();
    } catch (err) {
      if (!(err instanceof RealmError)) this.d.log.error({ err: err instanceof Error ? err.message : String(err) }, "ACME request failed");
      return this.sendProblem(req, reply, problemOf(err));
    }
    this.common(req, reply);
    if (a.location) reply.header("location", a.location);
    for (const l of a.links ?? []) reply.header("link", l);
    if (a.retryAfter !== undefined) reply.header("retry-after", String(a.retryAfter));
    reply.code(a.status ?? 200);
    if (a.body === undefined) return reply.send();
    return typeof a.body === "string" ? reply.type(a.type ?? "text/plain").send(a.body) : reply.type("application/json").send(JSON.stringify(a.body));
  }

  private common(req: FastifyRequest, reply: FastifyReply): void {
    reply.header("replay-nonce", this.nonces.issue());
    reply.header("cache-control", "no-store");
    const issuer = (req.params as { issuer?: string }).issuer;
    if (issuer) reply.header("link", `<${this.urls(this.baseOf(req), issuer).directory}>;rel="index"`);
  }

  private sendProblem(req: FastifyRequest, reply: FastifyReply, p: AcmeProblem): FastifyReply {
    this.common(req, reply);
    for (const [k, v] of Object.entries(p.extra.headers ?? {})) reply.header(k, v);
    const doc = p.document();
    return reply.code(doc.status).type("application/problem+json").send(JSON.stringify(doc));
  }

  /** RFC 8555 §6.2-6.5: JWS shape, algorithm, URL, key (jwk or kid), signature, then the nonce (used once). */
  private async authenticate(req: FastifyRequest, issuer: string, key: "kid" | "jwk" | "either"): Promise<Authenticated> {
    if (!/^application\/jose\+json\b/.test(req.headers["content-type"] ?? "")) throw acmeProblem("malformed", "ACME requests are application/jose+json", { status: 415 });
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString("utf8"));
    } catch {
      throw acmeProblem("malformed", "the request body is not JSON");
    }
    const { jws, header } = readJws(body);
    const base = this.baseOf(req);
    const u = this.urls(base, issuer);
    if (header.url !== `${base}${req.url}`) throw acmeProblem("unauthorized", `the JWS url ${JSON.stringify(header.url)} is not the URL requested`);
    if (typeof header.nonce !== "string" || header.nonce.length === 0) throw acmeProblem("badNonce", "the JWS carries no nonce");
    if (key === "kid" && !header.kid) throw acmeProblem("malformed", "this request must be signed with the account key (kid), not a jwk");
    if (key === "jwk" && !header.jwk) throw acmeProblem("malformed", "this request must carry the account's public key (jwk), not a kid");
    let account: AcmeAccountState | undefined;
    let jwk = header.jwk;
    if (header.kid) {
      const prefix = u.account("");
      const id = header.kid.startsWith(prefix) ? header.kid.slice(prefix.length) : "";
      account = id ? this.d.model().acme.accounts.get(id) : undefined;
      if (!account?.exists || account.issuer !== issuer) throw acmeProblem("accountDoesNotExist", `no account ${JSON.stringify(header.kid)} at this issuer`);
      jwk = account.jwk;
    }
    const verified = await verifyJws(jws, header, jwk!);
    if (!this.nonces.consume(header.nonce)) throw acmeProblem("badNonce", "the nonce was not issued by this server, was used already, or expired");
    if (account && account.status !== "valid") throw acmeProblem("unauthorized", `account ${account.id} is ${account.status}`);
    let payload: unknown;
    if (verified.payload.length > 0) {
      try {
        payload = JSON.parse(verified.payload.toString("utf8"));
      } catch {
        throw acmeProblem("malformed", "the JWS payload is not JSON");
      }
      if (typeof payload !== "object" || payload === null || Array.isArray(payload)) throw acmeProblem("malformed", "the JWS payload must be a JSON object");
    }
    return { header, payload, ...(account ? { account } : {}), base, raw };
  }

  private ctx(actor: string): Ctx {
    const id = newId();
    return { commandId: id, actor, correlationId: id, causationId: id };
  }

  private run<S, C>(decider: Decider<S, C>, id: string, cmd: C, actor: string) {
    return this.d.run(decider, id, cmd, this.ctx(actor));
  }

  private ownAccount(a: Authenticated): AcmeAccountState {
    if (!a.account) throw acmeProblem("malformed", "sign this request with the account key (kid)");
    return a.account;
  }

  private ownOrder(a: Authenticated, issuer: string, id: string): AcmeOrderState {
    const o = this.d.model().acme.orders.get(id);
    if (!o?.exists || o.issuer !== issuer) throw acmeProblem("malformed", `no order ${id}`, { status: 404 });
    if (o.account !== this.ownAccount(a).id) throw acmeProblem("unauthorized", `order ${id} belongs to another account`);
    return o;
  }

  // ------------------------------------------------------------------------------------------ views

  private accountView(a: AcmeAccountState, base: string, issuer: string) {
    return { status: a.status, contact: a.contact ?? [], orders: this.urls(base, issuer).orders(a.id), ...(a.eab ? { externalAccountBinding: { keyId: a.eab.keyId } } : {}) };
  }

  private orderView(o: AcmeOrderState, base: string) {
    const u = this.urls(base, o.issuer!);
    const now = this.d.now();
    const status = orderStatus(o, now);
    return {
      status,
      expires: o.expires,
      identifiers: o.identifiers,
      authorizations: (o.authorizations ?? []).map((a) => u.authz(a.id)),
      finalize: u.finalize(o.id),
      ...(o.certificate ? { certificate: u.certificate(o.certificate) } : {}),
      ...(status === "invalid" ? { error: this.orderError(o) } : {}),
    };
  }

  private orderError(o: AcmeOrderState): ProblemDocument | undefined {
    for (const a of o.authorizations ?? []) for (const c of a.challenges) if (c.error) return c.error;
    return undefined;
  }

  private authzView(o: AcmeOrderState, a: AuthorizationState, base: string) {
    const u = this.urls(base, o.issuer!);
    return {
      identifier: a.identifier,
      status: authzStatus(o, a, this.d.now()),
      expires: o.expires,
      challenges: a.challenges.map((c) => ({ type: c.type, url: u.challenge(a.id, c.type), token: c.token, status: c.status, ...(c.validated ? { validated: c.validated } : {}), ...(c.error ? { error: c.error } : {}) })),
      ...(a.wildcard ? { wildcard: true } : {}),
    };
  }

  // ------------------------------------------------------------------------------------------ resources

  private async newAccount(issuer: string, a: Authenticated): Promise<Answer> {
    const p = (a.payload ?? {}) as { contact?: unknown; termsOfServiceAgreed?: unknown; onlyReturnExisting?: unknown; externalAccountBinding?: unknown };
    const jwk = a.header.jwk!;
    const thumbprint = await thumbprintOf(jwk);
    const u = this.urls(a.base, issuer);
    const existingId = this.d.model().acme.accountByKey.get(`${issuer}/${thumbprint}`);
    const existing = existingId ? this.d.model().acme.accounts.get(existingId) : undefined;
    // RFC 8555 §7.3.6: a deactivated account's key authorizes nothing more, finding its account included.
    if (existing?.exists && existing.status !== "valid") throw acmeProblem("unauthorized", `the account of this key is ${existing.status}`);
    if (existing?.exists) return { status: 200, location: u.account(existing.id), body: this.accountView(existing, a.base, issuer) };
    if (p.onlyReturnExisting === true) throw acmeProblem("accountDoesNotExist", "no account exists for this key");
    if (this.config(issuer).externalAccountRequired && p.externalAccountBinding === undefined) throw acmeProblem("externalAccountRequired", "this issuer requires an external account binding (ask the realm's operator for an EAB key id and HMAC key: realm acme eab create)");
    const contact = p.contact === undefined ? [] : Array.isArray(p.contact) && p.contact.every((c) => typeof c === "string") ? (p.contact as string[]) : undefined;
    if (!contact) throw acmeProblem("malformed", "contact must be an array of URLs");
    const id = randomBytes(12).toString("base64url");
    let eab: { keyId: string; principal: string } | undefined;
    if (p.externalAccountBinding !== undefined) {
      const keyId = await verifyEab(p.externalAccountBinding, jwk, u.newAccount, async (k) => {
        const st = this.d.model().acme.eabKeys.get(k);
        return st?.exists && !st.revoked && st.issuer === issuer ? this.d.eab.get(k) : null;
      });
      const st = this.d.model().acme.eabKeys.get(keyId)!;
      // The key binds this one account (AcmeEabKeyBound first: a second account with the same key is refused).
      await this.run(acmeEabDecider, keyId, { type: "bind", account: id } satisfies AcmeEabCommand, `acme:${issuer}:${id}`);
      eab = { keyId, principal: st.principal! };
    }
    const r = await this.run(acmeAccountDecider, id, { type: "create", issuer, jwk, thumbprint, contact, at: this.d.now().toISOString(), eab } satisfies AcmeAccountCommand, `acme:${issuer}:${id}`);
    return { status: 201, location: u.account(id), body: this.accountView(r.state, a.base, issuer) };
  }

  private async accountRequest(issuer: string, a: Authenticated, id: string): Promise<Answer> {
    const acct = this.ownAccount(a);
    if (acct.id !== id) throw acmeProblem("unauthorized", "the JWS kid is not this account");
    const p = a.payload as { status?: unknown; contact?: unknown } | undefined;
    let state = acct;
    if (p?.status !== undefined) {
      if (p.status !== "deactivated") throw acmeProblem("malformed", 'an account\'s status can only be set to "deactivated"');
      state = (await this.run(acmeAccountDecider, id, { type: "deactivate", at: this.d.now().toISOString() } satisfies AcmeAccountCommand, `acme:${issuer}:${id}`)).state;
    } else if (p?.contact !== undefined) {
      if (!Array.isArray(p.contact) || !p.contact.every((c) => typeof c === "string")) throw acmeProblem("malformed", "contact must be an array of URLs");
      state = (await this.run(acmeAccountDecider, id, { type: "update", contact: p.contact as string[] } satisfies AcmeAccountCommand, `acme:${issuer}:${id}`)).state;
    }
    return { body: this.accountView(state, a.base, issuer), location: this.urls(a.base, issuer).account(id) };
  }

  private async ordersList(issuer: string, a: Authenticated, id: string): Promise<Answer> {
    if (this.ownAccount(a).id !== id) throw acmeProblem("unauthorized", "the JWS kid is not this account");
    const u = this.urls(a.base, issuer);
    return { body: { orders: (this.d.model().acme.ordersOf.get(id) ?? []).map((o) => u.order(o)) } };
  }

  private async newOrder(issuer: string, a: Authenticated): Promise<Answer> {
    const acct = this.ownAccount(a);
    const p = (a.payload ?? {}) as { identifiers?: unknown; notBefore?: unknown; notAfter?: unknown; replaces?: unknown };
    if (p.replaces !== undefined) {
      // RFC 9773 §5: the certificate this order replaces must be one this account ordered here.
      const old = typeof p.replaces === "string" ? parseCertId(p.replaces) : undefined;
      const orderId = old ? this.d.model().acme.orderOfCertificate.get(normalSerial(old.serialHex)) : undefined;
      if (!orderId || this.d.model().acme.orders.get(orderId)?.account !== acct.id) throw acmeProblem("malformed", "replaces does not name a certificate this account ordered here");
    }
    if (p.notBefore !== undefined || p.notAfter !== undefined) throw acmeProblem("malformed", "notBefore and notAfter are not supported: the issuer's configuration sets the lifetime");
    const identifiers = normalIdentifiers(p.identifiers);
    const sub: ProblemDocument[] = [];
    for (const i of identifiers) {
      const why = await this.d.refusal(issuer, i.value);
      if (why) sub.push({ ...acmeProblem("rejectedIdentifier", why).document(), identifier: i });
    }
    if (sub.length === 0) await this.assertPrincipalMay(issuer, acct, identifiers.map((i) => i.value));
    if (sub.length) throw acmeProblem("rejectedIdentifier", `the realm does not certify ${sub.map((s) => s.identifier!.value).join(", ")} at issuer ${issuer}: ${sub.map((s) => s.detail).join("; ")}`, { subproblems: sub });
    const authorizations: AuthorizationState[] = identifiers.map((i) => ({
      id: randomBytes(12).toString("base64url"),
      identifier: { type: "dns", value: i.value.replace(/^\*\./, "") },
      wildcard: isWildcard(i.value),
      challenges: challengeTypesFor(i).map((type) => ({ type, token: randomBytes(32).toString("base64url"), status: "pending" as const })),
    }));
    const id = newId();
    const now = this.d.now();
    const r = await this.run(acmeOrderDecider, id, { type: "create", issuer, account: acct.id, identifiers, authorizations, at: now.toISOString(), expires: new Date(now.getTime() + ORDER_LIFETIME_MS).toISOString() } satisfies AcmeOrderCommand, `acme:${issuer}:${acct.id}`);
    return { status: 201, location: this.urls(a.base, issuer).order(id), body: this.orderView(r.state, a.base) };
  }

  /**
   * An account bound to a realm principal (EAB) orders only what that principal may have issued: for every
   * name, a grant of `pki:certificate.issue` unscoped, scoped to this issuer, or scoped to a zone holding
   * the name (services/host/authz.ts decides, on the grants identity's bindings give the principal now).
   */
  private async assertPrincipalMay(issuer: string, acct: AcmeAccountState, names: string[]): Promise<void> {
    if (!acct.eab) return;
    if (!this.d.grantsOf) throw acmeProblem("unauthorized", `account ${acct.id} is bound to principal ${acct.eab.principal}, whose grants this realm process cannot read`);
    const principal = { id: acct.eab.principal, roles: [], grants: await this.d.grantsOf(acct.eab.principal) };
    const perm = "pki:certificate.issue";
    const sub: ProblemDocument[] = [];
    for (const n of names) {
      const byIssuer = decide(principal, perm, "command", [{ kind: "issuer", id: issuer }]);
      const byName = decide(principal, perm, "command", [{ kind: "name", id: n.replace(/^\*\./, "") }]);
      if (!byIssuer.allowed && !byName.allowed) sub.push({ ...acmeProblem("unauthorized", byName.reason ?? `principal ${principal.id} may not have ${n} issued`).document(), identifier: { type: "dns", value: n } });
    }
    if (sub.length) throw acmeProblem("unauthorized", `principal ${principal.id} (bound to this account) may not have ${sub.map((x) => x.identifier!.value).join(", ")} issued at issuer ${issuer}: ${sub.map((x) => x.detail).join("; ")}`, { subproblems: sub });
  }

  private async orderRequest(issuer: string, a: Authenticated, id: string): Promise<Answer> {
    const o = this.ownOrder(a, issuer, id);
    return { body: this.orderView(o, a.base), location: this.urls(a.base, issuer).order(id) };
  }

  private authzAndOrder(issuer: string, a: Authenticated, authzId: string): { o: AcmeOrderState; z: AuthorizationState } {
    const orderId = this.d.model().acme.orderOfAuthz.get(authzId);
    const o = orderId ? this.ownOrder(a, issuer, orderId) : undefined;
    const z = o?.authorizations?.find((x) => x.id === authzId);
    if (!o || !z) throw acmeProblem("malformed", `no authorization ${authzId}`, { status: 404 });
    return { o, z };
  }

  private async authzRequest(issuer: string, a: Authenticated, id: string): Promise<Answer> {
    let { o, z } = this.authzAndOrder(issuer, a, id);
    const p = a.payload as { status?: unknown } | undefined;
    if (p?.status !== undefined) {
      if (p.status !== "deactivated") throw acmeProblem("malformed", 'an authorization\'s status can only be set to "deactivated"');
      o = (await this.run(acmeOrderDecider, o.id, { type: "deactivateAuthz", authz: id, now: this.d.now() } satisfies AcmeOrderCommand, `acme:${issuer}:${o.account}`)).state;
      z = o.authorizations!.find((x) => x.id === id)!;
    }
    const view = this.authzView(o, z, a.base);
    return { body: view, ...(view.status === "pending" && z.challenges.some((c) => c.status === "processing") ? { retryAfter: 1 } : {}) };
  }

  private async challengeRequest(issuer: string, a: Authenticated, authzId: string, type: string): Promise<Answer> {
    let { o, z } = this.authzAndOrder(issuer, a, authzId);
    const ch = z.challenges.find((c) => c.type === type);
    if (!ch) throw acmeProblem("malformed", `authorization ${authzId} offers no ${type} challenge`, { status: 404 });
    const u = this.urls(a.base, issuer);
    if (a.payload !== undefined) {
      // The client says it is ready (payload {}): record that validation started, then validate.
      const r = await this.run(acmeOrderDecider, o.id, { type: "startChallenge", authz: authzId, challenge: ch.type, now: this.d.now() } satisfies AcmeOrderCommand, `acme:${issuer}:${o.account}`);
      o = r.state;
      z = o.authorizations!.find((x) => x.id === authzId)!;
      if (r.events.length > 0) this.startValidation(issuer, o.id, authzId, ch.type);
    }
    const view = this.authzView(o, z, a.base).challenges.find((c) => c.type === type)!;
    return { body: view, links: [`<${u.authz(authzId)}>;rel="up"`], ...(view.status === "processing" ? { retryAfter: 1 } : {}) };
  }

  /**
   * Challenges an instance left `processing` when it stopped (the client's response recorded, no outcome):
   * validated again at start. Another live instance may be validating one of them too; the second outcome
   * is then refused by the decider (not processing any more) and dropped.
   */
  resume(): number {
    const now = this.d.now();
    let n = 0;
    for (const o of this.d.model().acme.orders.values()) {
      if (!o.exists || orderStatus(o, now) !== "pending") continue;
      for (const a of o.authorizations ?? [])
        for (const c of a.challenges)
          if (c.status === "processing") {
            this.startValidation(o.issuer!, o.id, a.id, c.type);
            n++;
          }
    }
    return n;
  }

  private startValidation(issuer: string, orderId: string, authzId: string, type: ChallengeType): void {
    const p = this.validate(issuer, orderId, authzId, type).catch((err: unknown) => this.d.log.error({ err: err instanceof Error ? err.message : String(err), order: orderId, authz: authzId }, "ACME validation could not record its outcome"));
    this.validations.add(p);
    void p.finally(() => this.validations.delete(p));
  }

  private async validate(issuer: string, orderId: string, authzId: string, type: ChallengeType): Promise<void> {
    // A slot is handed from a finished validation to the next waiting one, never freed in between.
    if (this.running >= MAX_VALIDATIONS) await new Promise<void>((r) => this.waiting.push(r));
    else this.running++;
    try {
      await this.validateNow(issuer, orderId, authzId, type);
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  private async validateNow(issuer: string, orderId: string, authzId: string, type: ChallengeType): Promise<void> {
    if (this.stopped) return;
    const o = this.d.model().acme.orders.get(orderId)!;
    const z = o.authorizations!.find((x) => x.id === authzId)!;
    const ch = z.challenges.find((c) => c.type === type)!;
    const acct = this.d.model().acme.accounts.get(o.account!)!;
    const cfg = this.config(issuer);
    const outcome = await validateChallenge({ type, name: z.identifier.value, token: ch.token, keyAuthorization: keyAuthorization(ch.token, acct.thumbprint!), networks: cfg.validationNetworks, http01Port: cfg.http01Port, tlsAlpn01Port: cfg.tlsAlpn01Port, ownTxt: (n) => this.d.ownTxt(n) }, this.d.validator);
    if (this.stopped) return;
    const at = this.d.now().toISOString();
    const cmd: AcmeOrderCommand = outcome.ok ? { type: "validateChallenge", authz: authzId, challenge: type, at } : { type: "failChallenge", authz: authzId, challenge: type, error: outcome.error, at };
    const current = this.d.model().acme.orders.get(orderId)?.authorizations?.find((x) => x.id === authzId)?.challenges.find((c) => c.type === type);
    if (current?.status !== "processing") return; // decided meanwhile (by another instance)
    await this.run(acmeOrderDecider, orderId, cmd, `acme:${issuer}:validator`).catch((err: unknown) => {
      if (err instanceof AcmeProblem) return this.d.log.debug({ order: orderId, authz: authzId }, "ACME validation outcome not recorded: the challenge was decided meanwhile");
      throw err;
    });
  }

  private async finalize(issuer: string, a: Authenticated, id: string): Promise<Answer> {
    const o = this.ownOrder(a, issuer, id);
    const u = this.urls(a.base, issuer);
    if (o.certificate) return { body: this.orderView(o, a.base), location: u.order(id) };
    const status = orderStatus(o, this.d.now());
    if (status !== "ready") throw acmeProblem("orderNotReady", `order ${id} is ${status}, not ready: every authorization must be valid first`);
    const p = a.payload as { csr?: unknown } | undefined;
    if (typeof p?.csr !== "string" || !/^[A-Za-z0-9_-]+$/.test(p.csr)) throw acmeProblem("malformed", "finalize needs { csr: base64url DER }");
    const der = Buffer.from(p.csr, "base64url");
    let csr: ReturnType<typeof parseCsr>;
    try {
      csr = parseCsr(der);
    } catch (err) {
      throw acmeProblem("badCSR", err instanceof Error ? err.message : "the CSR does not parse");
    }
    const mismatch = csrMismatch(o.identifiers!, { commonName: csr.commonName, ...csr.sans });
    if (mismatch) throw acmeProblem("badCSR", mismatch);
    // RFC 8555 §11.1: the account key must not also be a certificate key.
    if (csr.spkiDer.equals(keyObjectOf(this.ownAccount(a).jwk!).export({ format: "der", type: "spki" }))) throw acmeProblem("badCSR", "the CSR's key is the account key: use another key for the certificate");
    const cfg = this.config(issuer);
    const acct = this.ownAccount(a);
    // Grants may have changed since the order: decide again before anything is issued.
    await this.assertPrincipalMay(issuer, acct, o.identifiers!.map((i) => i.value));
    // The issuance command id derives from the order: a resent finalize maps to the same serial, never a second certificate.
    const commandId = eventIdFor(o.id, 1_000_000);
    let serial: string;
    try {
      const profile = o.identifiers!.some((x) => isWildcard(x.value)) ? "server-wildcard" : cfg.profile;
      serial = (await this.d.issue({ issuer, profile, csr: toPem(der, "CERTIFICATE REQUEST"), days: cfg.days, ...(acct.eab ? { principal: acct.eab.principal } : {}) }, { commandId, actor: `acme:${issuer}:${o.account}`, correlationId: o.id, causationId: commandId })).serial;
    } catch (err) {
      if (err instanceof RealmError && (err.code === "VALIDATION" || err.code === "MALFORMED")) throw acmeProblem("badCSR", err.message);
      throw err;
    }
    const r = await this.run(acmeOrderDecider, id, { type: "finalize", serial, at: this.d.now().toISOString(), now: this.d.now() } satisfies AcmeOrderCommand, `acme:${issuer}:${o.account}`);
    return { body: this.orderView(r.state, a.base), location: u.order(id) };
  }

  private async certificate(issuer: string, a: Authenticated, serialText: string): Promise<Answer> {
    const acct = this.ownAccount(a);
    const serial = /^[0-9a-f]{1,64}$/.test(serialText) ? normalSerial(serialText) : "";
    const orderId = this.d.model().acme.orderOfCertificate.get(serial);
    const o = orderId ? this.d.model().acme.orders.get(orderId) : undefined;
    const c = this.d.model().certificates.get(serial);
    if (!o || o.issuer !== issuer || !c?.certPem) throw acmeProblem("malformed", `no certificate ${serialText}`, { status: 404 });
    if (o.account !== acct.id) throw acmeProblem("unauthorized", "the certificate was ordered by another account");
    return { body: c.certPem + (this.d.intermediateOf(serial) ?? ""), type: "application/pem-certificate-chain" };
  }

  private renewalInfo(issuer: string, certId: string): Answer {
    const id = parseCertId(certId);
    const serial = id ? normalSerial(id.serialHex) : "";
    const c = serial ? this.d.model().certificates.get(serial) : undefined;
    if (!id || !c?.exists || c.issuer !== issuer || !c.certPem) throw acmeProblem("malformed", `no certificate ${certId} at this issuer`, { status: 404 });
    // The AKI half must name the key that signed it (a serial alone could be guessed across issuers).
    const aki = extensionOf(parseCertificate(fromPem(c.certPem, ["CERTIFICATE"], "certificate")), id_ce_authorityKeyIdentifier, AuthorityKeyIdentifier)?.keyIdentifier;
    if (!aki || !Buffer.from(aki.buffer).equals(id.keyIdentifier)) throw acmeProblem("malformed", `no certificate ${certId} at this issuer`, { status: 404 });
    return { body: { suggestedWindow: suggestedWindow({ notBefore: c.notBefore!, notAfter: c.notAfter!, revoked: c.revoked !== undefined }, this.d.now()) }, retryAfter: 6 * 3600 };
  }

  private async revokeCert(issuer: string, a: Authenticated): Promise<Answer> {
    const p = (a.payload ?? {}) as { certificate?: unknown; reason?: unknown };
    if (typeof p.certificate !== "string") throw acmeProblem("malformed", "revokeCert needs { certificate: base64url DER }");
    let x: X509Certificate;
    const der = Buffer.from(p.certificate, "base64url");
    try {
      x = new X509Certificate(der);
    } catch {
      throw acmeProblem("malformed", "the certificate does not parse");
    }
    const serial = normalSerial(x.serialNumber.toLowerCase());
    const c = this.d.model().certificates.get(serial);
    if (!c?.exists || c.issuer !== issuer || c.fingerprint !== sha256Hex(der)) throw acmeProblem("malformed", "the certificate was not issued by this issuer", { status: 404 });
    if (a.account) {
      const orderId = this.d.model().acme.orderOfCertificate.get(serial);
      if (this.d.model().acme.orders.get(orderId ?? "")?.account !== a.account.id) throw acmeProblem("unauthorized", "this account did not order the certificate");
    } else {
      const spki = (k: import("node:crypto").KeyObject) => k.export({ format: "der", type: "spki" }).toString("base64");
      if (spki(keyObjectOf(a.header.jwk!)) !== spki(x.publicKey)) throw acmeProblem("unauthorized", "the JWS key is neither an account key nor the certificate's key");
    }
    const reasonCode = p.reason === undefined ? 0 : p.reason;
    const reason = (Object.entries(REVOCATION_REASONS).find(([, v]) => v === reasonCode)?.[0] ?? undefined) as RevocationReason | undefined;
    if (!reason || reason === "removeFromCRL") throw acmeProblem("badRevocationReason", `reason ${JSON.stringify(p.reason)} is not an RFC 5280 reason code this issuer accepts`);
    if (c.revoked) throw acmeProblem("alreadyRevoked", `certificate ${serial} was revoked at ${c.revoked.at}`);
    await this.d.revoke(serial, reason, this.ctx(`acme:${issuer}:${a.account?.id ?? "certificate-key"}`)).catch((err: unknown) => {
      throw err instanceof RealmError && err.code === "ALREADY_EXISTS" ? acmeProblem("alreadyRevoked", err.message) : err;
    });
    return { status: 200 };
  }

  /** RFC 8555 §7.3.5: the outer JWS by the account key, the inner by the new key naming the account and old key. */
  private async keyChange(issuer: string, a: Authenticated): Promise<Answer> {
    const acct = this.ownAccount(a);
    const { jws, header } = readJws(a.payload);
    if (!header.jwk) throw acmeProblem("malformed", "the inner JWS must carry the new key as jwk");
    if (header.nonce !== undefined) throw acmeProblem("malformed", "the inner JWS must not carry a nonce");
    if (header.url !== a.header.url) throw acmeProblem("malformed", "the inner JWS url differs from the outer");
    const inner = await verifyJws(jws, header, header.jwk);
    let body: { account?: unknown; oldKey?: unknown };
    try {
      body = JSON.parse(inner.payload.toString("utf8")) as typeof body;
    } catch {
      throw acmeProblem("malformed", "the inner payload is not JSON");
    }
    const u = this.urls(a.base, issuer);
    if (body.account !== u.account(acct.id) || body.account !== a.header.kid) throw acmeProblem("malformed", "the inner payload's account is not the signing account");
    if ((await thumbprintOf(publicJwk(body.oldKey))) !== acct.thumbprint) throw acmeProblem("malformed", "oldKey is not the account's current key");
    const thumbprint = await thumbprintOf(header.jwk);
    const other = this.d.model().acme.accountByKey.get(`${issuer}/${thumbprint}`);
    if (other) throw acmeProblem("malformed", "the new key belongs to an account already", { status: 409, headers: { location: u.account(other) } });
    const r = await this.run(acmeAccountDecider, acct.id, { type: "changeKey", jwk: header.jwk, thumbprint } satisfies AcmeAccountCommand, `acme:${issuer}:${acct.id}`);
    return { body: this.accountView(r.state, a.base, issuer), location: u.account(acct.id) };
  }
}
