import type { NatsConnection } from "@nats-io/nats-core";
import type { Logger } from "pino";
import { EventStore, execute, newId, Projection, WriteModel, type CommandMeta, type Decider, type EventEnvelope, type RealmTrust } from "../services/kernel/index.js";
import type { Sealer } from "../services/kernel/seal.js";
import { CredentialStore } from "./credentials.js";
import { directoryProjection, directoryView, membership, type Directory } from "./domain/directory.js";
import { DEFAULT_LOCKOUT, isLocked, principalDecider, type LockoutPolicy, type PrincipalState } from "./domain/principal.js";

export type LoginFailure = "invalid" | "locked" | "disabled" | "totp_required" | "totp_invalid" | "unavailable" | "passkey_required";
/** `passkey`: whether the principal has a passkey to confirm the password with (only the sign-in page, which can ask for one, passes it). */
export interface LoginOptions {
  passkey?: (principal: string) => Promise<boolean>;
}
export type LoginResult = { ok: true; principal: PrincipalState; groups: string[]; roles: string[] } | { ok: false; reason: LoginFailure };

/** Delegates a federated principal's password check to its directory (LDAP bind). */
export type FederatedVerifier = (p: PrincipalState, password: string) => Promise<boolean>;

/** The identity context's state and the operations every adapter shares (admin API, login pages, LDAP, auth). */
export class IdentityCore {
  federated: FederatedVerifier | undefined;
  private readonly writes: WriteModel;

  private constructor(
    readonly nc: NatsConnection,
    readonly store: EventStore,
    readonly projection: Projection<Directory>,
    readonly credentials: CredentialStore,
    readonly log: Logger,
    readonly lockout: LockoutPolicy,
  ) {
    this.writes = new WriteModel(store, projection as Projection<unknown>);
  }

  /** `sealer` seals the credential store's values (password hashes, TOTP seeds, directory secrets). */
  static async open(nc: NatsConnection, log: Logger, opts: { trust: RealmTrust; sealer: Sealer; lockout?: LockoutPolicy; replicas?: number }): Promise<IdentityCore> {
    const store = await EventStore.open(nc, "identity", { trust: opts.trust, replicas: opts.replicas ?? 1 });
    const credentials = await CredentialStore.open(nc, opts.replicas ?? 1, opts.sealer);
    const projection = new Projection(store, directoryProjection, { log, indexCommands: true });
    await projection.start();
    return new IdentityCore(nc, store, projection, credentials, log, opts.lockout ?? DEFAULT_LOCKOUT);
  }

  get dir(): Directory {
    return this.projection.state;
  }

  /**
   * Executes a command and waits until the read model has it (read-your-writes). Aggregates the directory
   * holds decide on its state (no history read); the others (the bootstrap claim) load their history.
   */
  async run<S, C>(decider: Decider<S, C>, id: string, command: C, meta: CommandMeta): Promise<{ state: S; events: EventEnvelope[]; replayed: boolean }> {
    if (directoryView(this.dir, decider.aggregateType, id) !== undefined) {
      const r = await this.writes.execute(decider, (x) => directoryView(this.dir, decider.aggregateType, x) as S, id, command, meta);
      return { state: r.state, events: r.events, replayed: r.replayed };
    }
    const r = await execute(this.store, decider, id, command, meta);
    await this.projection.waitFor(r.position.lastSeq);
    return { state: r.state, events: r.events, replayed: r.replayed };
  }

  /** Meta of a command derived from another (same correlation, caused by it). */
  static derived(meta: CommandMeta): CommandMeta {
    return { commandId: newId(), actor: meta.actor, correlationId: meta.correlationId ?? meta.commandId, causationId: meta.commandId };
  }

  /**
   * Password (and TOTP) sign-in. Wrong passwords are counted on the principal; `lockout.maxFailures`
   * consecutive ones lock it. A locked or disabled principal is refused before its password is checked,
   * so a flood of guesses costs no hashing and tells nothing. An unknown name spends one dummy hash.
   */
  async login(username: string, password: string, totp: string | undefined, meta: Omit<CommandMeta, "commandId" | "actor">, opts: LoginOptions = {}): Promise<LoginResult> {
    const r = await this.attempt(username, password, totp, meta, opts);
    this.logins.set(r.ok ? "ok" : r.reason, (this.logins.get(r.ok ? "ok" : r.reason) ?? 0) + 1);
    return r;
  }

  /** Sign-in outcomes since start, for /metrics. */
  readonly logins = new Map<string, number>();

  /**
   * Failures are recorded with actor `anonymous` (whoever typed the name has not proved to be the
   * principal); a success with the principal as actor. The interaction id is the correlation id, so every
   * event of one sign-in correlates.
   */
  private async attempt(username: string, password: string, totp: string | undefined, base: Omit<CommandMeta, "commandId" | "actor">, opts: LoginOptions): Promise<LoginResult> {
    const meta = { ...base, actor: "anonymous" };
    const now = new Date();
    const p = this.dir.principals.get(username);
    if (!p || !p.exists || p.kind !== "person") {
      await this.credentials.verifyPassword(`\u0000missing`, password);
      return { ok: false, reason: "invalid" };
    }
    if (p.disabled) return { ok: false, reason: "disabled" };
    if (isLocked(p, now)) return { ok: false, reason: "locked" };
    let good: boolean;
    if (p.source.kind === "local") good = await this.credentials.verifyPassword(p.id, password);
    else if (this.federated) {
      try {
        good = await this.federated(p, password);
      } catch {
        return { ok: false, reason: "unavailable" };
      }
    } else return { ok: false, reason: "unavailable" };
    // A person with a passkey confirms the password with it, or with a TOTP code when they have TOTP too.
    if (good && !totp && opts.passkey && (await opts.passkey(p.id))) return { ok: false, reason: "passkey_required" };
    if (good && p.totp === "enabled") {
      if (!totp) return { ok: false, reason: "totp_required" };
      good = await this.credentials.verifyTotp(p.id, totp);
      if (!good) {
        const r = await this.recordFailure(p.id, now, meta);
        return { ok: false, reason: r ? "locked" : "totp_invalid" };
      }
    }
    if (!good) {
      const locked = await this.recordFailure(p.id, now, meta);
      return { ok: false, reason: locked ? "locked" : "invalid" };
    }
    await this.run(principalDecider, p.id, { type: "recordLogin", at: now.toISOString(), method: p.source.kind === "local" ? "password" : "ldap" }, { ...meta, actor: p.id, commandId: newId() });
    const m = membership(this.dir, p.id, now);
    return { ok: true, principal: this.dir.principals.get(p.id)!, ...m };
  }

  /**
   * A sign-in proved by a passkey (routes.ts checked it): as the first factor, or as the second after the
   * password (which `login` answered `passkey_required`). Disabled and locked principals are refused.
   */
  async passkeyLogin(id: string, base: Omit<CommandMeta, "commandId" | "actor">): Promise<LoginResult> {
    const now = new Date();
    const p = this.dir.principals.get(id);
    let r: LoginResult;
    if (!p || !p.exists || p.kind !== "person") r = { ok: false, reason: "invalid" };
    else if (p.disabled) r = { ok: false, reason: "disabled" };
    else if (isLocked(p, now)) r = { ok: false, reason: "locked" };
    else {
      await this.run(principalDecider, p.id, { type: "recordLogin", at: now.toISOString(), method: "passkey" }, { ...base, actor: p.id, commandId: newId() });
      r = { ok: true, principal: this.dir.principals.get(p.id)!, ...membership(this.dir, p.id, now) };
    }
    this.logins.set(r.ok ? "ok" : r.reason, (this.logins.get(r.ok ? "ok" : r.reason) ?? 0) + 1);
    return r;
  }

  /** Returns true when this failure locked the principal. */
  async recordFailure(id: string, now: Date, meta: Omit<CommandMeta, "commandId">): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await this.run(principalDecider, id, { type: "recordLoginFailure", at: now.toISOString(), policy: this.lockout }, { ...meta, commandId: newId() });
        return isLocked(r.state, now);
      } catch (err) {
        // Concurrent failures race on the aggregate: retry on the new version.
        if (attempt < 5 && err instanceof Error && (err as { code?: string }).code === "CONFLICT") continue;
        throw err;
      }
    }
  }

  async stop(): Promise<void> {
    await this.projection.stop();
  }
}
