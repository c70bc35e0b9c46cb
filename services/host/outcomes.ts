import { createHash } from "node:crypto";
import { openBucket } from "../kernel/buckets.js";
import type { NatsConnection } from "@nats-io/nats-core";
import { type KV } from "@nats-io/kv";
import { canonicalJson } from "../kernel/canonical.js";
import { conflict } from "../kernel/errors.js";
import type { Sealer } from "../kernel/seal.js";

/**
 * The first outcome of every command sent with a command id, so a resent id is answered with exactly
 * that outcome, for as long as the realm keeps it (no expiry), whatever the command touched: one
 * aggregate, several, an external system (Cloudflare, an LDAP sync), or nothing but a fresh secret.
 *
 * One KV bucket per context (`realm_<context>_outcomes`, written only by that context's identity), keyed
 * by command id; every value is sealed (AES-GCM with the realm's seal key, the bucket and key as AAD). A
 * value records the endpoint, the actor and a hash of the input: the same id sent by another principal,
 * to another endpoint or with another input is refused with CONFLICT and tells nothing about the first.
 *
 * Response fields an endpoint declares secret (an API key, a client secret, a private key, creds) are not
 * kept with the rest: they go to `realm_<context>_outcome_secrets`, whose entries expire after
 * `OUTCOME_SECRETS_MAX_AGE_MS` (24 h, as payment APIs keep idempotent answers). A replay after that names
 * them in `withheld` instead (the key or client exists; issue a new one if its secret was lost).
 *
 * The domain does not depend on this journal: the write model answers a resent command from its events
 * too (a journal write lost in a crash costs only the exact wording of the answer).
 */
export const outcomesBucket = (context: string) => `realm_${context}_outcomes`;
export const outcomeSecretsBucket = (context: string) => `realm_${context}_outcome_secrets`;
export const OUTCOME_SECRETS_MAX_AGE_MS = 24 * 3600_000;

/** The buckets of one context's journal and the options they are made with (provisioning, permissions). */
export function outcomeBuckets(context: string): { name: string; opts: { history: number; ttl?: number } }[] {
  return [
    { name: outcomesBucket(context), opts: { history: 1 } },
    { name: outcomeSecretsBucket(context), opts: { history: 1, ttl: OUTCOME_SECRETS_MAX_AGE_MS } },
  ];
}

/** What a command request is, for telling a resend from a reuse of its id. */
export interface OutcomeKey {
  commandId: string;
  endpoint: string;
  actor: string;
  input: Record<string, unknown>;
}

interface StoredOutcome {
  v: 1;
  endpoint: string;
  actor: string;
  /** sha256 of the canonical JSON of the input. */
  input: string;
  at: string;
  response: Record<string, unknown>;
  /** Names of the response fields kept in the secrets bucket. */
  secret?: string[];
}

export type Outcome = { response: Record<string, unknown>; replayed: boolean };

/** `secret`: the response fields that are secrets; `keepSecrets`: whether a replay may show them again (24 h). */
export interface SecretHandling {
  secret: readonly string[];
  keepSecrets: boolean;
}

const hashOf = (input: object) => createHash("sha256").update(canonicalJson(input)).digest("hex");
const sameRequest = (a: OutcomeKey, b: OutcomeKey) => a.endpoint === b.endpoint && a.actor === b.actor && hashOf(a.input) === hashOf(b.input);
/** The same words whoever sent the first request and whatever it was: the refusal tells nothing about it. */
const reused = (commandId: string) => conflict(`command id ${commandId} was used for another request: send a new command id for a new request`);

export interface OutcomeLog {
  warn(obj: object, msg: string): void;
}

export class OutcomeJournal {
  /** Commands of this process still running, by command id: a concurrent resend waits for the first. */
  private readonly running = new Map<string, { key: OutcomeKey; outcome: Promise<Outcome> }>();

  private constructor(
    readonly context: string,
    private readonly outcomes: KV,
    private readonly secrets: KV,
    private readonly sealer: Sealer,
    private readonly log?: OutcomeLog,
  ) {}

  /** Opens the context's buckets (made by provisioning; made here when the connection may, as in tests). */
  static async open(nc: NatsConnection, context: string, sealer: Sealer, replicas = 1, log?: OutcomeLog): Promise<OutcomeJournal> {
    const [o, s] = outcomeBuckets(context);
    return new OutcomeJournal(context, await openBucket(nc, o!.name, { ...o!.opts, replicas }), await openBucket(nc, s!.name, { ...s!.opts, replicas }), sealer, log);
  }

  /** Runs `run` unless this command id has an outcome already; records what it answers. */
  async once(key: OutcomeKey, secrets: SecretHandling, run: () => Promise<Record<string, unknown>>): Promise<Outcome> {
    const inflight = this.running.get(key.commandId);
    if (inflight) {
      if (!sameRequest(inflight.key, key)) throw reused(key.commandId);
      return { response: (await inflight.outcome).response, replayed: true };
    }
    const p = this.runOnce(key, secrets, run);
    this.running.set(key.commandId, { key, outcome: p });
    try {
      return await p;
    } finally {
      this.running.delete(key.commandId);
    }
  }

  private async runOnce(key: OutcomeKey, secrets: SecretHandling, run: () => Promise<Record<string, unknown>>): Promise<Outcome> {
    const earlier = await this.lookup(key);
    if (earlier) return { response: earlier, replayed: true };
    const response = await run();
    // The command is done: a journal that cannot take its outcome (NATS gone, a value over max_payload)
    // must not turn that into an error. A resend then runs again, and the kernel's own replay answers it.
    await this.record(key, response, secrets).catch((err: unknown) =>
      this.log?.warn({ context: this.context, commandId: key.commandId, endpoint: key.endpoint, err: err instanceof Error ? err.message : String(err) }, "outcome not recorded; a resend of this command id is answered by the context's events"),
    );
    return { response, replayed: false };
  }

  private aad(bucket: string, id: string): string {
    return `${bucket}/${id}`;
  }

  private async lookup(key: OutcomeKey): Promise<Record<string, unknown> | undefined> {
    const e = await this.outcomes.get(key.commandId);
    if (!e || e.operation !== "PUT") return undefined;
    const stored = JSON.parse(this.sealer.openString(e.string(), this.aad(outcomesBucket(this.context), key.commandId))) as StoredOutcome;
    if (stored.endpoint !== key.endpoint || stored.actor !== key.actor || stored.input !== hashOf(key.input)) {
      throw reused(key.commandId);
    }
    if (!stored.secret?.length) return stored.response;
    const s = await this.secrets.get(key.commandId);
    if (s && s.operation === "PUT") {
      const values = JSON.parse(this.sealer.openString(s.string(), this.aad(outcomeSecretsBucket(this.context), key.commandId))) as Record<string, unknown>;
      return { ...stored.response, ...values };
    }
    return { ...stored.response, withheld: stored.secret };
  }

  private async record(key: OutcomeKey, response: Record<string, unknown>, secrets: SecretHandling): Promise<void> {
    const kept: Record<string, unknown> = {};
    const hidden: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(response)) (secrets.secret.includes(k) ? hidden : kept)[k] = v;
    const names = Object.keys(hidden);
    if (names.length && secrets.keepSecrets) {
      // Too big for one message (a large batch of creds), or not stored: replays say `withheld` instead.
      await this.secrets.put(key.commandId, this.sealer.seal(JSON.stringify(hidden), this.aad(outcomeSecretsBucket(this.context), key.commandId))).catch((err: unknown) =>
        this.log?.warn({ context: this.context, commandId: key.commandId, endpoint: key.endpoint, err: err instanceof Error ? err.message : String(err) }, "secret fields of an outcome not kept; a resend is told they are withheld"),
      );
    }
    const stored: StoredOutcome = { v: 1, endpoint: key.endpoint, actor: key.actor, input: hashOf(key.input), at: new Date().toISOString(), response: kept, ...(names.length ? { secret: names } : {}) };
    await this.outcomes.put(key.commandId, this.sealer.seal(JSON.stringify(stored), this.aad(outcomesBucket(this.context), key.commandId)));
  }
}
