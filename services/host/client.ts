import type { NatsConnection } from "@nats-io/nats-core";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { newId } from "../kernel/envelope.js";
import { RealmError, type ErrorBody } from "../kernel/errors.js";

export interface CallOptions {
  /** UUIDv7; give the same id to retry a command safely. Default: a new one. */
  commandId?: string;
  correlationId?: string;
  /** Bearer credential (API key or access token) once the identity context protects the API. */
  authorization?: string;
  timeoutMs?: number;
}

/** Request headers the host reads. */
export const RequestHeaders = {
  CommandId: "CIM-Command-Id",
  CorrelationId: "CIM-Correlation-Id",
  Authorization: "Authorization",
} as const;

/**
 * Calls a realm command or query subject and unwraps the `{ok, ...}` reply: the result on success, a
 * RealmError with the server's code otherwise.
 */
export async function callRealm<T extends object = Record<string, unknown>>(nc: NatsConnection, subject: string, input: unknown, opts: CallOptions = {}): Promise<T> {
  const h = natsHeaders();
  h.set(RequestHeaders.CommandId, opts.commandId ?? newId());
  if (opts.correlationId) h.set(RequestHeaders.CorrelationId, opts.correlationId);
  if (opts.authorization) h.set(RequestHeaders.Authorization, opts.authorization);
  let reply;
  try {
    reply = await nc.request(subject, JSON.stringify(input ?? {}), { timeout: opts.timeoutMs ?? 10_000, headers: h });
  } catch (err) {
    throw new RealmError("UNAVAILABLE", `no answer on ${subject}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const body = reply.json<{ ok: boolean; error?: ErrorBody } & T>();
  if (!body.ok) throw new RealmError(body.error?.code ?? "INTERNAL", body.error?.message ?? "unknown error", body.error?.details);
  const { ok: _ok, ...rest } = body;
  return rest as unknown as T;
}
