import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import { EMPTY_POSITION, EventStore, eventIdFor, execute, fold, newId, type AggregatePosition, type CommandMeta, type ProblemLog, type RealmTrust } from "../../services/kernel/index.js";
import { RealmError, invalid, notFound } from "../../services/kernel/errors.js";
import { Projection } from "../../services/kernel/projection.js";
import { commandMetaOf, type ContextDeps, type ContextFactory, type Endpoint, type RealmContext, type RequestContext } from "../../services/host/context.js";
import type { SecretEscrow, SecretRef } from "../../secrets-client/contract.js";
import { accountDecider, type AccountCommand, type AccountState, type ExportSpec, type ImportSpec, type MappingSpec } from "./domain/account.js";
import { userDecider, checkUserSpec, type UserCommand, type UserSpec, type UserState } from "./domain/user.js";
import { JETSTREAM_UNLIMITED, type AccountLimitsSpec, type UserPermissions } from "./domain/validation.js";
import { fingerprint, kpFromSeed, newNkey, nkeyFromSeed, seedOf, checkIssuedUserJwt, checkIssuedUserJwtOf, signAccount, signActivation, userJwtSize, validateAccountJwt, type NodeNkey } from "./jwt.js";
import { credsLength } from "./jwt-encode.js";
import { signUsers, type SignedUser, type UserSigningJob } from "./user-signing.js";
import { SigningWorker } from "./signing-pool.js";
import { KeyStore } from "./keystore.js";
import { ClaimsPusher, type PushResult } from "./push.js";
import { NATS_KEYS_BUCKET, SharedKeyStore } from "./shared-keys.js";
import type { Sealer } from "../../services/kernel/seal.js";
import { isHubKvMapping } from "../../services/kernel/buckets.js";
import type { OperatorState } from "./bootstrap.js";
import { NO_PERMISSIONS, REALM_ACCOUNT, SYSTEM_ACCOUNT } from "./bootstrap.js";
import { natsProjection, isRevoked } from "./projection.js";
import { operatorPermissions } from "./realm-identities.js";

export interface NatsAccountsOptions {
  /** Directory written by `bootstrapOperator` (operator.json, keys/, sys.creds). Default: deps.dataDir. */
  dir?: string;
  /** Servers to push claims to (any one of the cluster; every full-resolver server answers). Default: the server `nc` is on. */
  servers?: string | string[];
  escrow?: SecretEscrow;
  pushTimeoutMs?: number;
  /** Creds of the system-account user that pushes claims. Default `<dir>/sys.creds`. */
  sysCredsFile?: string;
  /**
   * A site (docs/ARCHITECTURE.md "Sites"): account changes are made at the hub and reach this process as
   * mirrored events, not as commands; push every account whose state changed to the local resolver as the
   * projection applies it, so that the site's nats-server admits the hub's accounts' users by itself.
   */
  followToResolver?: boolean;
  /**
   * The realm's seal key: with it the seeds of the accounts and signing keys made online are shared with the
   * realm's other instances, sealed in KV (shared-keys.ts); without it they stay in this instance's files.
   */
  sealer?: Sealer;
  replicas?: number;
}

export interface IssuedCreds {
  account: string;
  user: string;
  publicKey: string;
  expiresAt: number;
  /** The .creds file, present only when no escrow was given (delivered once, stored nowhere). */
  creds?: string;
  secretRef?: SecretRef;
}

/** What user.create takes. */
export type UserInput = UserSpec & { role?: string; preset?: "operator" };

/** One user of a user.createMany answer: its creds (or escrow reference), or why it was not recorded. */
export interface BatchEntry {
  user: string;
  publicKey?: string;
  expiresAt?: number;
  creds?: string;
  secretRef?: SecretRef;
  error?: { code: string; message: string };
}

/** The most users one user.createMany takes. */
export const MAX_BATCH = 10_000;

interface PreparedUser {
  spec: UserSpec;
  normalized: UserSpec;
  signerKey: string;
}
/** Users signed per slice of a batch, and the batch size from which the signing worker signs them. */
const SIGNING_SLICE = 256;
const WORKER_BATCH = 256;

/** Runs `fn` over `items` with at most `limit` running at once; rejects with the first error (after all settled). */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.err;
}

const now = () => Math.floor(Date.now() / 1000);
const userId = (account: string, name: string) => `${account}:${name}`;

/**
 * An account as a site's resolver holds it: without the hub's mappings of its sites' bucket writes
 * (services/kernel/buckets.ts `hubKvMappings`). Applied at the site, they would turn a write bound for the
 * hub into `$KV.>` before the leaf link, which nats-server does not let cross between JetStream domains.
 */
export function siteView(a: AccountState): AccountState {
  const mappings = Object.fromEntries(Object.entries(a.mappings).filter(([src]) => !isHubKvMapping(src)));
  return Object.keys(mappings).length === Object.keys(a.mappings).length ? a : { ...a, mappings };
}

/** The NATS accounts service: commands validated by the deciders, JWTs signed, validated, pushed, then recorded. */
export class NatsAccounts {
  private constructor(
    readonly store: EventStore,
    readonly projection: Projection<ReturnType<typeof natsProjection.initial>>,
    readonly state: OperatorState,
    private readonly keys: KeyStore,
    private readonly pusher: ClaimsPusher,
    private readonly escrow: SecretEscrow | undefined,
  ) {}

  static async open(nc: NatsConnection, opts: NatsAccountsOptions & { dir: string; realmTrust: RealmTrust; log?: ProblemLog | undefined }): Promise<NatsAccounts> {
    const state = JSON.parse(readFileSync(join(opts.dir, "operator.json"), "utf8")) as OperatorState;
    const sysCreds = readFileSync(opts.sysCredsFile ?? join(opts.dir, "sys.creds"), "utf8");
    const store = await EventStore.open(nc, "identity", { trust: opts.realmTrust });
    const pusher = await ClaimsPusher.open(opts.servers ?? nc.getServer(), sysCreds, opts.pushTimeoutMs ? { timeoutMs: opts.pushTimeoutMs } : {});
    const projection = new Projection(store, natsProjection, { log: opts.log });
    const keys = opts.sealer ? await SharedKeyStore.open(nc, opts.dir, opts.sealer, { replicas: opts.replicas, ...(opts.log ? { onError: (err: unknown) => opts.log!.warn({ err: err instanceof Error ? err.message : String(err) }, `${NATS_KEYS_BUCKET}: an entry that is not a seed of this realm`) } : {}) }) : new KeyStore(opts.dir);
    const svc = new NatsAccounts(store, projection, state, keys, pusher, opts.escrow);
    await svc.adoptBootstrapAccounts();
    await projection.start();
    if (opts.followToResolver) svc.followToResolver(opts.log);
    return svc;
  }

  private follower: NodeJS.Timeout | undefined;

  /** Pushes each account whose state the projection changed (checked once a second; cheap when nothing moved). */
  private followToResolver(log?: ProblemLog): void {
    const pushed = new Map<string, string>();
    let seen = -1;
    let busy = false;
    const tick = async () => {
      if (busy || this.projection.lastSeq === seen) return;
      busy = true;
      const at = this.projection.lastSeq;
      try {
        for (const a of this.projection.state.accounts.values()) {
          if (!a.exists || a.deleted || a.system) continue;
          const view = siteView(a);
          const key = JSON.stringify(view);
          if (pushed.get(a.name) === key) continue;
          await this.pushAccount(view);
          pushed.set(a.name, key);
        }
        seen = at;
      } catch (err) {
        log?.warn({ err: err instanceof Error ? err.message : String(err) }, "pushing the hub's accounts to this site's resolver failed; retrying");
      } finally {
        busy = false;
      }
    };
    this.follower = setInterval(() => void tick(), 1_000);
    this.follower.unref();
    void tick();
  }

  async close(): Promise<void> {
    if (this.follower) clearInterval(this.follower);
    this.keys.close();
    await this.projection.stop();
    await this.pusher.close();
    await this.signingWorker.close();
  }

  /** The largest reply a NATS request may get: the server's max_payload, less room for the reply envelope. */
  get maxReplyBytes(): number {
    return (this.store.nc.info?.max_payload ?? 1_048_576) - 4_096;
  }

  get trust() {
    return { operatorJwt: this.state.operatorJwt };
  }

  /** Records the accounts `bootstrapOperator` made (SYS, realm) as events, once. */
  private async adoptBootstrapAccounts(): Promise<void> {
    const sys = { type: "create", publicKey: this.state.system.publicKey, signingKey: this.state.system.signingKey, description: "system account", system: true } as const;
    const realm = { type: "create", publicKey: this.state.realm.publicKey, signingKey: this.state.realm.signingKey, description: "the realm's own services", limits: JETSTREAM_UNLIMITED, defaultPermissions: NO_PERMISSIONS } as const;
    for (const [name, cmd] of [[SYSTEM_ACCOUNT, sys], [REALM_ACCOUNT, realm]] as const) {
      const a = await this.account(name);
      if (!a.exists) await execute(this.store, accountDecider, name, cmd, { commandId: newId(), actor: "realm-init" });
    }
  }

  private accountFolds = new Map<string, { seq: number; state: AccountState }>();

  /**
   * An account's state from its verified events. The fold is kept with the stream sequence of the account's
   * last event: while that is still the last (one direct get), the history is not read again (reading it
   * costs ~5 ms of CPU with an ordered consumer, more than issuing the user).
   */
  async account(name: string): Promise<AccountState> {
    const ref = { type: "account", id: name };
    const hit = this.accountFolds.get(name);
    if (hit) {
      const last = await this.store.jsm.streams.getMessage(this.store.stream, { last_by_subj: this.store.subjectOf(ref) });
      if (last?.seq === hit.seq) return hit.state;
    }
    const h = await this.store.load(ref);
    const state = fold(accountDecider, name, h.events);
    if (h.lastSeq > 0) this.accountFolds.set(name, { seq: h.lastSeq, state });
    return state;
  }

  private async accountKey(name: string): Promise<string> {
    const a = await this.account(name);
    if (!a.exists || a.deleted) throw notFound(`unknown NATS account ${name}`);
    return a.publicKey;
  }

  private jwtCache = new Map<string, { key: string; jwt: string }>();

  /** Signs and validates the account JWT of `state` (nothing pushed); the last JWT per account is reused while the state is unchanged. */
  async accountJwt(state: AccountState): Promise<string> {
    const key = JSON.stringify(state);
    const hit = this.jwtCache.get(state.name);
    if (hit && hit.key === key && state.imports.length === 0) return hit.jwt;
    const jwt = await this.signAccountJwt(state);
    this.jwtCache.set(state.name, { key, jwt });
    return jwt;
  }

  private async signAccountJwt(state: AccountState): Promise<string> {
    const keyOf = new Map<string, string>();
    for (const im of state.imports) keyOf.set(im.account, await this.accountKey(im.account));
    const exporters = new Map<string, AccountState>();
    for (const im of state.imports) exporters.set(im.account, await this.account(im.account));
    const jwt = await signAccount(state, { operatorPublicKey: this.state.operatorPublicKey, signingKey: this.signer(this.state.operatorSigningKey) }, {
      accountKey: (n) => keyOf.get(n)!,
      activation: async (importer, exporter, subject, type) => {
        const ex = exporters.get(exporter)!;
        const e = ex.exports.find((x) => x.subject === subject && x.type === type);
        if (!e) throw notFound(`account ${exporter} exports no ${type} ${subject}`);
        return e.tokenRequired ? signActivation(importer.publicKey, this.signer(ex.publicKey), subject, type) : undefined;
      },
    });
    validateAccountJwt(jwt, this.trust);
    return jwt;
  }

  /** Decide without appending (dry run), sign + validate + push, then append: bad input pushes nothing. */
  private async applyAccount(name: string, command: AccountCommand, meta: CommandMeta, push: (next: AccountState) => Promise<PushResult>): Promise<{ state: AccountState; push: PushResult }> {
    const h = await this.store.load({ type: "account", id: name });
    let next = fold(accountDecider, name, h.events);
    // A retried command (same id) is answered from its events, without deciding or pushing again.
    if (h.events.some((e) => e.id === eventIdFor(meta.commandId, 0))) return { state: next, push: { replies: [] } };
    const events = accountDecider.decide(next, command);
    for (const e of events) next = accountDecider.evolve(next, { ...e, aggregate: { type: "account", id: name } } as never);
    const pushed = await push(next);
    const r = await execute(this.store, accountDecider, name, command, meta);
    await this.projection.waitFor(r.position.lastSeq); // read-your-writes for the queries
    return { state: r.state, push: pushed };
  }

  private pushAccount = async (s: AccountState) => this.pusher.update(await this.accountJwt(s));

  async createAccount(input: { name: string; limits?: Partial<AccountLimitsSpec>; jetstream?: boolean; description?: string }, meta: CommandMeta) {
    const id = newNkey("A");
    const sk = newNkey("A");
    const limits = { ...(input.jetstream ? JETSTREAM_UNLIMITED : {}), ...(input.limits ?? {}) };
    const cmd: AccountCommand = { type: "create", publicKey: id.getPublicKey(), signingKey: sk.getPublicKey(), limits, ...(input.description ? { description: input.description } : {}) };
    // Keys are written only after the command decided cleanly (inside push, before the server sees the JWT).
    const r = await this.applyAccount(input.name, cmd, meta, async (next) => {
      this.keys.put(id.getPublicKey(), seedOf(id));
      this.keys.put(sk.getPublicKey(), seedOf(sk));
      await this.keys.flush();
      return this.pushAccount(next);
    });
    return { name: input.name, publicKey: r.state.publicKey, signingKeys: r.state.signingKeys, servers: r.push.replies.length };
  }

  async updateAccount(input: { name: string; limits?: Partial<AccountLimitsSpec>; exports?: ExportSpec[]; imports?: ImportSpec[]; mappings?: MappingSpec; description?: string }, meta: CommandMeta) {
    const known = [...this.projection.state.accounts.values()].filter((a) => a.exists && !a.deleted).map((a) => a.name);
    for (const im of input.imports ?? []) if (!known.includes(im.account)) known.push(...((await this.account(im.account)).exists ? [im.account] : []));
    const { name, ...rest } = input;
    const r = await this.applyAccount(name, { type: "update", ...rest, knownAccounts: known }, meta, this.pushAccount);
    return { name, limits: r.state.limits, servers: r.push.replies.length };
  }

  /**
   * Gives the realm account these subject mappings unless it has them (a hub's mappings of its sites'
   * bucket writes, services/kernel/buckets.ts `hubKvMappings`). True when they were added.
   */
  async ensureRealmMappings(wanted: { source: string; destination: string }[], meta: CommandMeta): Promise<boolean> {
    const realm = await this.account(REALM_ACCOUNT);
    const same = (src: string, dest: string) => realm.mappings[src]?.length === 1 && realm.mappings[src]![0]!.subject === dest && realm.mappings[src]![0]!.weight === 100;
    if (wanted.every((m) => same(m.source, m.destination))) return false;
    const mappings = { ...realm.mappings };
    for (const m of wanted) mappings[m.source] = [{ subject: m.destination, weight: 100 }];
    await this.updateAccount({ name: REALM_ACCOUNT, mappings }, meta);
    return true;
  }

  async deleteAccount(input: { name: string }, meta: CommandMeta) {
    const r = await this.applyAccount(input.name, { type: "delete" }, meta, (next) => this.pusher.delete([next.publicKey], kpFromSeed(this.keys.seed(this.state.operatorSigningKey))));
    return { name: input.name, deleted: r.state.deleted, servers: r.push.replies.length };
  }

  async addSigningKey(input: { account: string; role?: string; template?: UserPermissions }, meta: CommandMeta) {
    const sk = newNkey("A");
    const entry = input.role ? { key: sk.getPublicKey(), scope: { role: input.role, template: input.template ?? {} } } : { key: sk.getPublicKey() };
    await this.applyAccount(input.account, { type: "addSigningKey", entry }, meta, async (next) => {
      this.keys.put(sk.getPublicKey(), seedOf(sk));
      await this.keys.flush();
      return this.pushAccount(next);
    });
    return { account: input.account, key: sk.getPublicKey(), ...(input.role ? { role: input.role } : {}) };
  }

  /** Removes a signing key from the account and pushes: users it signed are refused from then on. */
  async revokeSigningKey(input: { account: string; key: string }, meta: CommandMeta) {
    const r = await this.applyAccount(input.account, { type: "revokeSigningKey", key: input.key }, meta, this.pushAccount);
    return { account: input.account, key: input.key, servers: r.push.replies.length };
  }

  /** New key with the old one's scope replaces it in one push; re-issue the old key's users afterwards. */
  async rotateSigningKey(input: { account: string; key: string }, meta: CommandMeta) {
    const sk = newNkey("A");
    const r = await this.applyAccount(input.account, { type: "rotateSigningKey", key: input.key, newKey: sk.getPublicKey() }, meta, async (next) => {
      this.keys.put(sk.getPublicKey(), seedOf(sk));
      await this.keys.flush();
      return this.pushAccount(next);
    });
    return { account: input.account, revoked: input.key, key: sk.getPublicKey(), servers: r.push.replies.length };
  }

  private signers = new Map<string, NodeNkey>();
  private readonly signingWorker = new SigningWorker();
  /** An online key (operator signing key, account key, account signing key), read and derived once. */
  private signer(publicKey: string): NodeNkey {
    let k = this.signers.get(publicKey);
    if (!k) this.signers.set(publicKey, (k = nkeyFromSeed(this.keys.seed(publicKey))));
    return k;
  }

  /**
   * A user.create input as the decider takes it (the spec recorded, role and preset resolved), the normalized
   * spec the JWT is made from, and the key that signs it. Pure: typed errors, nothing read or written.
   */
  private prepareUser(input: UserInput, account: AccountState): PreparedUser {
    if (input.account === SYSTEM_ACCOUNT) throw invalid("the SYS account takes no users through the API");
    const spec: UserSpec = { ...input };
    delete (spec as { role?: string }).role;
    delete (spec as { preset?: string }).preset;
    if (input.preset === "operator") {
      if (input.account !== REALM_ACCOUNT) throw invalid("the operator preset is for users of the realm account");
      if (input.permissions) throw invalid("the operator preset sets the permissions itself");
      spec.permissions = operatorPermissions(input.name);
    } else if (input.account === REALM_ACCOUNT && !input.role) {
      // The realm account trusts no one by default: what the caller does not grant is denied.
      const p = input.permissions ?? {};
      spec.permissions = { ...p, pub: p.pub?.allow?.length ? p.pub : { allow: [], deny: [">", ...(p.pub?.deny ?? [])] }, sub: p.sub?.allow?.length ? p.sub : { allow: [], deny: [">", ...(p.sub?.deny ?? [])] } };
    }
    if (input.role) {
      const sk = account.signingKeys.find((k) => k.scope?.role === input.role);
      if (!sk) throw notFound(`account ${input.account} has no scoped signing key with role ${input.role}`);
      spec.scopedSigningKey = sk.key;
    }
    const normalized = checkUserSpec(spec, account.exists ? account : undefined);
    const signerKey = spec.scopedSigningKey ?? account.signingKeys.find((k) => !k.scope)?.key;
    if (!signerKey) throw invalid(`account ${account.name} has no unscoped signing key`);
    return { spec, normalized, signerKey };
  }

  /** A new user key and its JWT issued at `t`, validated against the account's JWT: nothing else is handed out. */
  private signPrepared(p: PreparedUser, account: AccountState, accountJwt: string, t: number): SignedUser {
    const expiresAt = t + (p.normalized.expiresInDays ?? 90) * 86400;
    const signed = signUsers({ accountPublicKey: account.publicKey, iat: t, users: [{ spec: p.normalized, signerKey: p.signerKey, expiresAt }] }, (k) => this.signer(k))[0]!;
    checkIssuedUserJwt(signed.jwt, p.signerKey, accountJwt, this.trust, t);
    return signed;
  }

  /** Signs a slice of a batch in this thread, after the event loop has had a turn (a batch signs slice by slice). */
  private async signHere(job: UserSigningJob): Promise<SignedUser[]> {
    await new Promise((r) => setImmediate(r));
    return signUsers(job, (k) => this.signer(k));
  }

  /** The seeds of signing keys, for the signing worker. */
  private seedsOf(keys: string[]): Record<string, string> {
    const seeds: Record<string, string> = {};
    for (const k of keys) seeds[k] ??= this.keys.seed(k);
    return seeds;
  }

  private escrowCreds(account: string, name: string, signed: SignedUser, meta: CommandMeta): Promise<SecretRef> {
    return this.escrow!.store({ principal: `nats:${account}/${name}`, name: `nats:${account}/${name}:creds`, secret: signed.creds, notes: `user ${signed.publicKey} jwt sha256 ${fingerprint(signed.jwt)}`, cause: meta });
  }

  /**
   * Appends a user's NatsUserIssued after `position` (the projection's view: a user it does not know is
   * appended as new, without reading its history). If another writer came first, or the projection was
   * behind, the append is refused and the command is decided again on the user's stored history.
   */
  private async recordIssue(id: string, state: UserState, position: AggregatePosition, cmd: UserCommand, meta: CommandMeta): Promise<number> {
    try {
      return (await this.store.append({ type: "user", id }, position, userDecider.decide(state, cmd), meta)).position.lastSeq;
    } catch (err) {
      if (!(err instanceof RealmError && err.code === "CONFLICT")) throw err;
      const r = await execute(this.store, userDecider, id, cmd, meta);
      if (r.replayed) throw new RealmError("CONFLICT", "this command already issued creds; they are delivered only once");
      return r.position.lastSeq;
    }
  }

  /** The user's state and position: from its history when the projection knows it, else new. */
  private async userState(id: string): Promise<{ state: UserState; position: AggregatePosition; events: { id: string }[] }> {
    if (!this.projection.state.users.get(id)?.exists) return { state: userDecider.initialState(id), position: EMPTY_POSITION, events: [] };
    const h = await this.store.load({ type: "user", id });
    return { state: fold(userDecider, id, h.events), position: h, events: h.events };
  }

  async createUser(input: UserInput, meta: CommandMeta): Promise<IssuedCreds> {
    if (input.account === SYSTEM_ACCOUNT) throw invalid("the SYS account takes no users through the API");
    const account = await this.account(input.account);
    const p = this.prepareUser(input, account);
    const t = now();
    const id = userId(input.account, input.name);
    const prior = await this.userState(id);
    if (prior.events.some((e) => e.id === eventIdFor(meta.commandId, 0))) throw new RealmError("CONFLICT", "this command already issued creds; they are delivered only once");
    // Decide first on the current state (a refused command signs and escrows nothing).
    userDecider.decide(prior.state, { type: "issue", spec: p.spec, account, publicKey: "", signer: p.signerKey, now: t });
    // Sign and validate: a JWT that does not validate is never recorded nor handed out.
    const signed = this.signPrepared(p, account, await this.accountJwt(account), t);
    const cmd: UserCommand = { type: "issue", spec: p.spec, account, publicKey: signed.publicKey, signer: p.signerKey, now: t };
    // With an escrow: escrow, then record the reference; if the escrow fails nothing is recorded and the
    // command can simply be retried.
    const secretRef = this.escrow ? await this.escrowCreds(input.account, input.name, signed, meta) : undefined;
    const seq = await this.recordIssue(id, prior.state, prior.position, { ...cmd, ...(secretRef ? { secretRef } : {}) }, meta);
    await this.projection.waitFor(seq);
    const out: IssuedCreds = { account: input.account, user: input.name, publicKey: signed.publicKey, expiresAt: signed.expiresAt };
    if (secretRef) out.secretRef = secretRef;
    else out.creds = signed.creds;
    return out;
  }

  /**
   * Creds for many users of one account in one command. Every entry is checked and decided on its user's
   * current state first: one bad entry refuses the whole batch (`users[i] (name): ...`) and nothing is signed,
   * escrowed or recorded. Then every JWT is signed and validated, escrowed when an escrow is configured, and
   * one NatsUserIssued appended per user (concurrently: different aggregates). Each entry's events derive
   * from `eventIdFor(commandId, i)`, so a resent batch is answered CONFLICT (creds are delivered once). The
   * answer lists the users in input order; an entry whose append lost a race with another writer of the same
   * user (after the checks) carries `error` instead of creds.
   */
  async createUsers(input: { account: string; users: Omit<UserInput, "account">[] }, meta: CommandMeta, opts: { maxReplyBytes?: number; concurrency?: number } = {}): Promise<{ account: string; issued: number; failed: number; users: BatchEntry[] }> {
    const n = input.users.length;
    if (n === 0 || n > MAX_BATCH) throw invalid(`users: 1 to ${MAX_BATCH} entries (got ${n})`);
    if (input.account === SYSTEM_ACCOUNT) throw invalid("the SYS account takes no users through the API");
    const account = await this.account(input.account);
    if (!account.exists || account.deleted) throw notFound(`unknown NATS account ${input.account}`);
    const t = now();
    const entryMeta = (i: number): CommandMeta => ({ ...meta, commandId: eventIdFor(meta.commandId, i), correlationId: meta.correlationId ?? meta.commandId, causationId: meta.commandId });
    const at = (i: number, err: unknown): never => {
      const e = err instanceof RealmError ? err : new RealmError("INTERNAL", String(err));
      throw new RealmError(e.code, `users[${i}] (${String(input.users[i]?.name)}): ${e.message}`, { index: i, ...(e.details && typeof e.details === "object" ? e.details : {}) });
    };
    // 1. Check every entry (pure), and that no name comes twice.
    const first = new Map<string, number>();
    const prepared = input.users.map((entry, i) => {
      try {
        const seen = first.get(entry.name);
        if (seen !== undefined) throw invalid(`the name is also users[${seen}]: one entry per user`);
        first.set(entry.name, i);
        return this.prepareUser({ ...entry, account: input.account }, account);
      } catch (err) {
        return at(i, err);
      }
    });
    // 2. Decide each entry on its user's state: the projection (caught up with the stream) says which users
    // exist; only those are loaded. A user with valid creds, or a resent batch, refuses the whole batch.
    await this.projection.waitFor(await this.store.lastSequence());
    const states: UserState[] = [];
    const positions: AggregatePosition[] = [];
    const known: number[] = [];
    for (let i = 0; i < n; i++) {
      const id = userId(input.account, prepared[i]!.spec.name);
      if (this.projection.state.users.get(id)?.exists) known.push(i);
      states[i] = userDecider.initialState(id);
      positions[i] = EMPTY_POSITION;
    }
    const resent = new Set<number>();
    await pool(known, 16, async (i) => {
      const u = await this.userState(userId(input.account, prepared[i]!.spec.name));
      if (u.events.some((e) => e.id === eventIdFor(entryMeta(i).commandId, 0))) resent.add(i);
      states[i] = u.state;
      positions[i] = u.position;
    });
    for (const i of known) if (resent.has(i)) at(i, new RealmError("CONFLICT", "this command already issued creds; they are delivered only once"));
    const command = (i: number, publicKey: string, secretRef?: SecretRef): UserCommand => ({ type: "issue", spec: prepared[i]!.spec, account, publicKey, signer: prepared[i]!.signerKey, now: t, ...(secretRef ? { secretRef } : {}) });
    // (A user without events decides as prepareUser checked; only the known ones can be refused here.)
    for (const i of known) {
      try {
        userDecider.decide(states[i]!, command(i, ""));
      } catch (err) {
        at(i, err);
      }
    }
    // 3. The reply's size, known before anything is signed: a JWT's length follows from its claims.
    const accountJwt = await this.accountJwt(account);
    const accountClaims = validateAccountJwt(accountJwt, this.trust, t);
    const expiresAt = prepared.map((p) => t + (p.normalized.expiresInDays ?? 90) * 86400);
    if (opts.maxReplyBytes !== undefined) {
      const size = prepared.reduce((sum, p, i) => sum + (this.escrow ? 200 : credsLength(userJwtSize(p.normalized, account.publicKey, p.signerKey, t, expiresAt[i]!)) + 40) + 110 + p.spec.name.length, 100);
      if (size > opts.maxReplyBytes) throw invalid(`the reply would be ~${Math.ceil(size / 1024)} KiB, over the ${Math.floor(opts.maxReplyBytes / 1024)} KiB a reply may have (the server's max_payload): send at most ~${Math.floor((n * opts.maxReplyBytes) / size)} users per call`);
    }
    // 4. Sign in slices: in the signing worker for a large batch (the appends below run while it signs the
    // next slice), else here. Each JWT is checked against the account's JWT before it is recorded or handed out.
    const slices: Promise<SignedUser[]>[] = [];
    for (let from = 0; from < n; from += SIGNING_SLICE) {
      const users = prepared.slice(from, from + SIGNING_SLICE).map((p, k) => ({ spec: p.normalized, signerKey: p.signerKey, expiresAt: expiresAt[from + k]! }));
      const job: UserSigningJob = { accountPublicKey: account.publicKey, iat: t, users };
      slices.push(n >= WORKER_BATCH ? this.signingWorker.sign({ ...job, seeds: this.seedsOf(users.map((u) => u.signerKey)) }) : this.signHere(job));
    }
    // A slice that fails (the worker died) fails its entries, not the batch; every slice is awaited somewhere.
    for (const s of slices) s.catch(() => undefined);
    const signedAt = async (i: number): Promise<SignedUser> => {
      const u = (await slices[Math.floor(i / SIGNING_SLICE)]!)[i % SIGNING_SLICE]!;
      checkIssuedUserJwtOf(u.jwt, prepared[i]!.signerKey, accountClaims, t);
      return u;
    };
    // 5. Escrow (when configured) every entry first, then record: an escrow failure records nothing.
    const refs: (SecretRef | undefined)[] = [];
    if (this.escrow) {
      const signed: SignedUser[] = [];
      for (let i = 0; i < n; i++) {
        try {
          signed[i] = await signedAt(i);
        } catch (err) {
          at(i, err);
        }
      }
      await pool([...Array(n).keys()], 16, async (i) => void (refs[i] = await this.escrowCreds(input.account, prepared[i]!.spec.name, signed[i]!, entryMeta(i))));
    }
    const out: BatchEntry[] = [];
    let lastSeq = 0;
    let failed = 0;
    await pool([...Array(n).keys()], opts.concurrency ?? 128, async (i) => {
      const name = prepared[i]!.spec.name;
      const id = userId(input.account, name);
      try {
        const signed = await signedAt(i);
        const seq = await this.recordIssue(id, states[i]!, positions[i]!, command(i, signed.publicKey, refs[i]), entryMeta(i));
        lastSeq = Math.max(lastSeq, seq);
        out[i] = { user: name, publicKey: signed.publicKey, expiresAt: signed.expiresAt, ...(refs[i] ? { secretRef: refs[i] } : { creds: signed.creds }) };
      } catch (err) {
        failed++;
        const e = err instanceof RealmError ? err : new RealmError("UNAVAILABLE", err instanceof Error ? err.message : String(err));
        out[i] = { user: name, error: { code: e.code, message: e.message } };
      }
    });
    if (lastSeq) await this.projection.waitFor(lastSeq);
    return { account: input.account, issued: n - failed, failed, users: out };
  }

  /** Revokes the user's current key (account revocation entry), pushed at once: live connections drop. */
  async revokeUser(input: { account: string; name: string }, meta: CommandMeta) {
    const h = await this.store.load({ type: "user", id: userId(input.account, input.name) });
    const u = fold(userDecider, userId(input.account, input.name), h.events);
    if (!u.exists || u.account !== input.account) throw notFound(`no NATS user ${input.account}/${input.name}`);
    const at = Math.max(now(), u.issuedAt);
    const r = await this.applyAccount(input.account, { type: "revokeUser", userPublicKey: u.publicKey, user: input.name, at }, meta, this.pushAccount);
    return { account: input.account, user: input.name, publicKey: u.publicKey, revokedAt: at, servers: r.push.replies.length };
  }

  accounts() {
    return [...this.projection.state.accounts.values()].filter((a) => a.exists).map((a) => ({
      name: a.name, publicKey: a.publicKey, deleted: a.deleted, system: a.system, limits: a.limits, exports: a.exports, imports: a.imports,
      signingKeys: a.signingKeys.map((k) => ({ key: k.key, ...(k.scope ? { role: k.scope.role } : {}) })), revocations: a.revocations,
    }));
  }

  users(account?: string) {
    return [...this.projection.state.users.values()].filter((u) => u.exists && (!account || u.account === account)).map((u) => ({
      account: u.account, name: u.name, kind: u.kind, publicKey: u.publicKey, scoped: u.scoped, issuedAt: u.issuedAt, expiresAt: u.expiresAt,
      revoked: isRevoked(u, this.projection.state.accounts.get(u.account)),
    }));
  }

  /** nsc-compatible tree: `<operator>/<operator>.jwt`, `<operator>/accounts/<acct>/<acct>.jwt` (public JWTs only). */
  async nscExport(): Promise<Record<string, string>> {
    const op = this.state.operatorName;
    const files: Record<string, string> = { [`${op}/${op}.jwt`]: this.state.operatorJwt };
    for (const a of this.projection.state.accounts.values()) {
      if (!a.exists || a.deleted) continue;
      files[`${op}/accounts/${a.name}/${a.name}.jwt`] = a.system ? this.state.system.jwt : await this.accountJwt(a);
    }
    return files;
  }
}

const str = { type: "string", minLength: 1, maxLength: 64 };
const perm = { type: "object", additionalProperties: false, properties: { allow: { type: "array", items: { type: "string" } }, deny: { type: "array", items: { type: "string" } } } };
const perms = { type: "object", additionalProperties: false, properties: { pub: perm, sub: perm, resp: { type: "object", required: ["max", "ttlMs"], properties: { max: { type: "integer" }, ttlMs: { type: "integer" } } } } };
const limits = { type: "object", additionalProperties: { type: ["integer", "boolean"] } };
const userProps = { name: str, kind: { enum: ["person", "service", "agent"] }, preset: { enum: ["operator"] }, permissions: perms, src: { type: "array", items: { type: "string" } }, connectionTypes: { type: "array", items: { type: "string" } }, bearer: { type: "boolean" }, expiresInDays: { type: "integer" }, tags: { type: "array", items: { type: "string" } }, role: str };

export function natsEndpoints(svc: NatsAccounts): Endpoint[] {
  return [
    { kind: "command", name: "account.create", resource: (i: { name: string }) => ({ kind: "account", id: i.name }), description: "Create a NATS account (full limits sent; JetStream on with jetstream:true) and push it", input: { type: "object", required: ["name"], additionalProperties: false, properties: { name: str, limits, jetstream: { type: "boolean" }, description: { type: "string" } } }, handle: (i, ctx) => svc.createAccount(i, commandMetaOf(ctx)) },
    { kind: "command", name: "account.update", resource: (i: { name: string }) => ({ kind: "account", id: i.name }), description: "Change limits, exports, imports or mappings of a NATS account and push it", input: { type: "object", required: ["name"], additionalProperties: false, properties: { name: str, limits, exports: { type: "array" }, imports: { type: "array" }, mappings: { type: "object" }, description: { type: "string" } } }, handle: (i, ctx) => svc.updateAccount(i, commandMetaOf(ctx)) },
    { kind: "command", name: "account.delete", resource: (i: { name: string }) => ({ kind: "account", id: i.name }), description: "Delete a NATS account on every server (its users are refused)", input: { type: "object", required: ["name"], additionalProperties: false, properties: { name: str } }, handle: (i, ctx) => svc.deleteAccount(i, commandMetaOf(ctx)) },
    { kind: "command", name: "signingkey.add", resource: (i: { account: string }) => ({ kind: "account", id: i.account }), description: "Add an account signing key; with role + template a scoped one", input: { type: "object", required: ["account"], additionalProperties: false, properties: { account: str, role: str, template: perms } }, handle: (i, ctx) => svc.addSigningKey(i, commandMetaOf(ctx)) },
    { kind: "command", name: "signingkey.revoke", resource: (i: { account: string }) => ({ kind: "account", id: i.account }), description: "Remove an account signing key; users it signed are refused", input: { type: "object", required: ["account", "key"], additionalProperties: false, properties: { account: str, key: { type: "string" } } }, handle: (i, ctx) => svc.revokeSigningKey(i, commandMetaOf(ctx)) },
    { kind: "command", name: "signingkey.rotate", resource: (i: { account: string }) => ({ kind: "account", id: i.account }), description: "Replace a signing key by a new one with the same scope (one push); its users must be re-issued", input: { type: "object", required: ["account", "key"], additionalProperties: false, properties: { account: str, key: { type: "string" } } }, handle: (i, ctx) => svc.rotateSigningKey(i, commandMetaOf(ctx)) },
    { kind: "command", name: "user.create", secret: ["creds"], resource: (i: { account: string }) => ({ kind: "account", id: i.account }), description: "Issue a NATS user and its creds (delivered once, or escrowed). In the realm account a user may do nothing the caller does not grant; preset `operator` gives the realm's operator permissions (commands, queries, its own inbox)", input: { type: "object", required: ["account", "name", "kind"], additionalProperties: false, properties: { account: str, ...userProps } }, handle: (i, ctx) => svc.createUser(i, commandMetaOf(ctx)) },
    { kind: "command", name: "user.createMany", secret: ["users"], resource: (i: { account: string }) => ({ kind: "account", id: i.account }), description: `Issue up to ${MAX_BATCH} NATS users of one account and their creds in one command (same fields as user.create per user). Every entry is checked first: one bad entry refuses the batch, naming its index, and nothing is issued. The reply lists the users in order with their creds (or escrow references) and must fit the server's max_payload`, input: { type: "object", required: ["account", "users"], additionalProperties: false, properties: { account: str, users: { type: "array", minItems: 1, maxItems: MAX_BATCH, items: { type: "object", required: ["name", "kind"], additionalProperties: false, properties: userProps } } } }, handle: (i, ctx) => svc.createUsers(i, commandMetaOf(ctx), { maxReplyBytes: svc.maxReplyBytes }) },
    { kind: "command", name: "user.revoke", resource: (i: { account: string }) => ({ kind: "account", id: i.account }), description: "Revoke a NATS user now; live connections drop", input: { type: "object", required: ["account", "name"], additionalProperties: false, properties: { account: str, name: str } }, handle: (i, ctx) => svc.revokeUser(i, commandMetaOf(ctx)) },
    { kind: "query", name: "accounts", description: "NATS accounts with limits, signing keys, revocations", input: { type: "object" }, handle: async () => ({ accounts: svc.accounts() }), filter: (r, can) => ({ ...r, accounts: (r as { accounts: { name: string }[] }).accounts.filter((a) => can({ kind: "account", id: a.name })) }) },
    { kind: "query", name: "users", description: "NATS users (optionally of one account)", input: { type: "object", properties: { account: { type: "string" } } }, handle: async (i: { account?: string }) => ({ users: svc.users(i.account) }), resource: (i: { account?: string }) => (i.account ? { kind: "account", id: i.account } : undefined), filter: (r, can) => ({ ...r, users: (r as { users: { account: string }[] }).users.filter((u) => can({ kind: "account", id: u.account })) }) },
    { kind: "query", name: "nsc-export", description: "The operator/account JWT tree in nsc's layout (public JWTs only)", input: { type: "object" }, handle: async () => ({ files: await svc.nscExport() }) },
  ];
}

export type NatsAccountsContext = RealmContext & { nats: NatsAccounts };

export function createNatsAccountsContext(opts: NatsAccountsOptions = {}): (deps: ContextDeps) => Promise<NatsAccountsContext> {
  return async (deps: ContextDeps): Promise<NatsAccountsContext> => {
    const svc = await NatsAccounts.open(deps.nc, { ...opts, dir: opts.dir ?? deps.dataDir, realmTrust: deps.trust, log: deps.log });
    return { name: "identity", nats: svc, endpoints: natsEndpoints(svc), projections: () => [svc.projection as Projection<unknown>], ready: () => svc.projection.status === "live", stop: () => svc.close() };
  };
}

/** Context factory with defaults: keys and operator state in the context's data dir. */
export const natsAccountsContext: ContextFactory = createNatsAccountsContext();

export { RealmError };
