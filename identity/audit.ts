import type { EventAuthzRecord, EventStore } from "../services/kernel/index.js";

export interface AuditEntry {
  /** The decision that allowed the request: permission, binding, role, how the caller authenticated. */
  authz?: EventAuthzRecord;
  seq: number;
  at: string;
  actor: string;
  type: string;
  aggregate: { type: string; id: string };
  correlationId: string;
  causationId: string;
  eventId: string;
}

export interface AuditFilter {
  actor?: string | undefined;
  aggregateType?: string | undefined;
  aggregateId?: string | undefined;
  correlationId?: string | undefined;
  limit?: number | undefined;
}

/** Pure: whether an entry passes a filter. */
export function matchesAudit(e: AuditEntry, f: AuditFilter): boolean {
  return (
    (f.actor === undefined || e.actor === f.actor) &&
    (f.aggregateType === undefined || e.aggregate.type === f.aggregateType) &&
    (f.aggregateId === undefined || e.aggregate.id === f.aggregateId) &&
    (f.correlationId === undefined || e.correlationId === f.correlationId)
  );
}

/**
 * The audit trail, read from the event stream itself (never a separate log): the last `limit` matches
 * among the events that verify (a quarantined message is not an entry; `realm audit` lists those).
 */
export async function readAudit(store: EventStore, f: AuditFilter): Promise<AuditEntry[]> {
  const limit = f.limit ?? 1000;
  const filter = f.aggregateType && f.aggregateId ? store.subjectOf({ type: f.aggregateType, id: f.aggregateId }) : undefined;
  const out: AuditEntry[] = [];
  for await (const { seq, event: e } of store.readEvents(filter ? { filter } : {})) {
    const entry: AuditEntry = { seq, at: e.occurredAt, actor: e.actor, type: e.type, aggregate: e.aggregate, correlationId: e.correlationId, causationId: e.causationId, eventId: e.id, ...(e.authz ? { authz: e.authz } : {}) };
    if (!matchesAudit(entry, f)) continue;
    out.push(entry);
    if (out.length > limit) out.shift();
  }
  return out;
}
