import type { ContextDeps, RealmContext } from "../services/host/context.js";
import { EventStore, newId, Projection, type EventEnvelope, type NewEvent } from "../services/kernel/index.js";
import { invalid, RealmError } from "../services/kernel/errors.js";
import { SECRETS_CONTEXT, SecretsEventTypes, type EscrowRequest, type SecretEscrow, type SecretEscrowedData, type SecretRef } from "./contract.js";
import { isSecretsError } from "./errors.js";

/**
 * The secrets context's own record (stream REALM_SECRETS): every secret the realm escrowed, by principal and
 * name, with the Vaultwarden item and revision of each version, caused by the command that handed it out.
 * It never holds a secret: `realm secrets list` answers from it without Vaultwarden credentials.
 */
export interface EscrowedSecret {
  itemId: string;
  principal: string;
  name: string;
  /** Revision of the current version. */
  revision: string;
  versions: number;
  firstAt: string;
  lastAt: string;
  /** Command that wrote the current version. */
  causedBy: string;
}

/**
 * The event of one store (first or rotation) on aggregate `secret/<itemId>`. A record of what Vaultwarden
 * took, not a decision: it is appended after whatever came before (the projection counts the versions).
 */
function escrowedEvent(data: SecretEscrowedData): NewEvent {
  if (!data.principal || !data.name || !data.revision) throw invalid("a secret record needs principal, name and revision");
  return { type: SecretsEventTypes.SecretEscrowed, data };
}

export const secretsProjection = () => ({
  name: "secrets",
  version: 1,
  initial: () => new Map<string, EscrowedSecret>(),
  apply(m: Map<string, EscrowedSecret>, e: EventEnvelope) {
    if (e.type !== SecretsEventTypes.SecretEscrowed) return m;
    const d = e.data as SecretEscrowedData;
    const prev = m.get(d.itemId);
    m.set(d.itemId, { itemId: d.itemId, principal: d.principal, name: d.name, revision: d.revision, versions: (prev?.versions ?? 0) + 1, firstAt: prev?.firstAt ?? e.occurredAt, lastAt: e.occurredAt, causedBy: e.causationId });
    return m;
  },
  // Snapshot records: one escrowed secret each (its item id is in it).
  snapshot: {
    encode: (m: Map<string, EscrowedSecret>) => m.values(),
    decode(records: Iterable<unknown>) {
      const m = new Map<string, EscrowedSecret>();
      for (const r of records) m.set((r as EscrowedSecret).itemId, r as EscrowedSecret);
      return m;
    },
  },
});

export interface SecretsContext extends RealmContext {
  /** The escrow to hand to the other contexts: stores in Vaultwarden, then records SecretEscrowed. */
  escrow: SecretEscrow;
  store: EventStore;
  projection: Projection<Map<string, EscrowedSecret>>;
}

/**
 * What the realm's caller is told when Vaultwarden refuses the *realm's own* account (wrong credentials, a
 * missing organization role) or limits its logins: the realm cannot escrow now (UNAVAILABLE, with the
 * reason for the operator), not that the caller's credentials are wrong (UNAUTHORIZED), which is what the
 * same error means to `realm secrets`, where the Vaultwarden account is the user's own.
 */
function asServiceError(err: unknown): never {
  if (isSecretsError(err) && (err.kind === "AUTH" || err.kind === "FORBIDDEN" || err.kind === "RATE_LIMITED")) {
    throw new RealmError("UNAVAILABLE", `the realm's escrow cannot reach its secrets now: Vaultwarden refused the realm's own account (${err.kind}: ${err.message}); the realm's operator must check its REALM_VAULTWARDEN_* settings and organization role`, { escrow: err.kind });
  }
  throw err;
}

/**
 * The secrets context over an escrow (VaultwardenEscrow in `realm up`). A store that Vaultwarden took but
 * that could not be recorded fails the caller's command too (the caller records nothing; its retry stores
 * a new version, the previous one stays in the item's history).
 */
export function createSecretsContext(opts: { escrow: SecretEscrow; replicas?: number | undefined }): (deps: ContextDeps) => Promise<SecretsContext> {
  return async ({ nc, trust, log }) => {
    const store = await EventStore.open(nc, SECRETS_CONTEXT, { trust, replicas: opts.replicas });
    const projection = new Projection(store, secretsProjection(), { log });
    await projection.start();
    const escrow: SecretEscrow = {
      async store(req: EscrowRequest): Promise<SecretRef> {
        const ref = await opts.escrow.store(req).catch(asServiceError);
        const own = newId();
        const meta = { commandId: own, actor: req.cause?.actor ?? "realm", correlationId: req.cause?.correlationId ?? req.cause?.commandId ?? own, causationId: req.cause?.commandId ?? own };
        const ref_ = { type: "secret", id: ref.itemId };
        const events = [escrowedEvent({ principal: req.principal, name: req.name, itemId: ref.itemId, revision: ref.revision })];
        // A record, not a decision: when another store of the same item appended first, append after it.
        let r: Awaited<ReturnType<EventStore["append"]>> | undefined;
        for (let attempt = 0; !r; attempt++) {
          try {
            r = await store.append(ref_, await store.position(ref_), events, meta);
          } catch (err) {
            if (!(err instanceof RealmError) || err.code !== "CONFLICT" || attempt >= 4) throw err;
          }
        }
        await projection.waitFor(r.position.lastSeq);
        return ref;
      },
      get: (ref) => opts.escrow.get(ref).catch(asServiceError),
    };
    const str = { type: "string", minLength: 1, maxLength: 1024 };
    return {
      name: SECRETS_CONTEXT,
      escrow,
      store,
      projection,
      endpoints: [
        {
          kind: "query",
          name: "secrets",
          description: "Secrets the realm escrowed in Vaultwarden (references, principals, versions; never a value)",
          input: { type: "object", additionalProperties: false, properties: { principal: str, name: str, limit: { type: "integer", minimum: 1, maximum: 10_000 } } },
          async handle(i: { principal?: string; name?: string; limit?: number }) {
            const out: EscrowedSecret[] = [];
            for (const s of projection.state.values()) {
              if (i.principal && s.principal !== i.principal) continue;
              if (i.name && s.name !== i.name) continue;
              out.push(s);
              if (out.length >= (i.limit ?? 1000)) break;
            }
            return { secrets: out };
          },
        },
      ],
      projections: () => [projection as Projection<unknown>],
      ready: () => projection.status === "live",
      metrics: () => [`realm_secrets_escrowed ${projection.state.size}`],
      stop: () => projection.stop(),
    };
  };
}
