/**
 * What a realm instance (one `realm up` process) says of itself on every context's micro-service: its id,
 * host and pid in the service metadata (`$SRV.PING/INFO/STATS`: one service per context and instance, so
 * the services of one process are found by their `instance`), and, in `$SRV.STATS`, each context's
 * projections: which stream, the last sequence applied, the status. `$SRV.STATS` reaches every instance
 * (each service answers once, not in the queue group), so each reports its own projections.
 */
import { hostname } from "node:os";
import type { NatsConnection } from "@nats-io/nats-core";
import { newId } from "../kernel/envelope.js";
import type { RealmContext } from "./context.js";

export interface InstanceIdentity {
  id: string;
  host: string;
  pid: number;
}

/** This process's identity as a realm instance (a fresh id per start). */
export const instanceIdentity = (id: string = newId()): InstanceIdentity => ({ id, host: hostname(), pid: process.pid });

/** The service metadata of every context service of the instance (values are strings: the micro protocol's). */
export const instanceMetadata = (i: InstanceIdentity): Record<string, string> => ({ instance: i.id, host: i.host, pid: String(i.pid) });

/** One projection's position as a context's `$SRV.STATS` reports it. */
export interface ProjectionPosition {
  projection: string;
  stream: string;
  /** The last stream sequence the projection has applied (or skipped as quarantined). */
  seq: number;
  status: string;
  quarantined: number;
}

/** What the first endpoint of a context's service carries as its `$SRV.STATS` data. */
export interface ContextStatsData {
  /** The NATS server the context's connection is on now. */
  server: string | null;
  projections: ProjectionPosition[];
}

export function contextStatsData(ctx: RealmContext, nc: NatsConnection): ContextStatsData {
  return {
    server: nc.isClosed() ? null : (nc.info?.server_name ?? null),
    projections: (ctx.projections?.() ?? []).map((p) => ({ projection: p.def.name, stream: p.store.stream, seq: p.lastSeq, status: p.status, quarantined: p.quarantinedTotal })),
  };
}
