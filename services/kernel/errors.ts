import { errors as natsErrors } from "@nats-io/nats-core";
import { JetStreamApiError, JetStreamError } from "@nats-io/jetstream";

/**
 * Typed errors with stable codes. Every entry point (NATS subject, HTTP route, CLI) answers
 * `{ ok: false, error: { code, message } }` built from one of these; the code never changes meaning.
 */
export const ErrorCodes = {
  /** The input is not well-formed (malformed JSON, unreadable packet, broken file). */
  MALFORMED: "MALFORMED",
  /** The input is well-formed but breaks the schema or a domain rule. */
  VALIDATION: "VALIDATION",
  /** Another writer appended to the aggregate first (optimistic concurrency). */
  CONFLICT: "CONFLICT",
  NOT_FOUND: "NOT_FOUND",
  ALREADY_EXISTS: "ALREADY_EXISTS",
  UNAUTHORIZED: "UNAUTHORIZED",
  FORBIDDEN: "FORBIDDEN",
  /** An upstream refused the call for now because of its rate limit (e.g. Vaultwarden's login limit); retry later. */
  RATE_LIMITED: "RATE_LIMITED",
  /** A dependency (nats-server, a directory, an upstream) is not reachable. */
  UNAVAILABLE: "UNAVAILABLE",
  /** An audit chain or a stored event does not verify. */
  INTEGRITY: "INTEGRITY",
  /** A projection could not apply an event (no longer raised: projections quarantine such events; the code keeps its meaning). */
  PROJECTION: "PROJECTION",
  INTERNAL: "INTERNAL",
} as const;
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

const httpStatusByCode: Record<ErrorCode, number> = {
  MALFORMED: 400,
  VALIDATION: 400,
  CONFLICT: 409,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  INTEGRITY: 500,
  PROJECTION: 500,
  INTERNAL: 500,
};

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  details?: unknown;
}

export class RealmError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = "RealmError";
    this.code = code;
    this.details = details;
  }

  get httpStatus(): number {
    return httpStatusByCode[this.code];
  }

  toBody(): ErrorBody {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

export const malformed = (message: string, details?: unknown) => new RealmError("MALFORMED", message, details);
export const invalid = (message: string, details?: unknown) => new RealmError("VALIDATION", message, details);
export const conflict = (message: string, details?: unknown) => new RealmError("CONFLICT", message, details);
export const notFound = (message: string, details?: unknown) => new RealmError("NOT_FOUND", message, details);
export const alreadyExists = (message: string, details?: unknown) => new RealmError("ALREADY_EXISTS", message, details);

/**
 * Turns anything thrown into a RealmError. Errors of the NATS client that mean the server (or JetStream)
 * is unreachable or not answering become UNAVAILABLE with a short fixed reason; unknown errors become
 * INTERNAL with a generic message: their text may carry secrets or internals and is logged (redacted) by
 * the caller, not returned.
 */
export function toRealmError(err: unknown): RealmError {
  if (err instanceof RealmError) return err;
  const reason = natsOutage(err, 0);
  if (reason) return new RealmError("UNAVAILABLE", `${reason}: NATS unreachable or not answering`);
  return new RealmError("INTERNAL", "internal error");
}

/**
 * The short reason when `err` is a nats.js v3 error that means NATS is unreachable or not answering, else
 * undefined. Classes are matched where the packages export them; JetStreamNotEnabled (not exported by
 * @nats-io/jetstream) by its `name`. The reasons are fixed strings: an error's own message is never used,
 * it may quote a subject or a payload. Causes are followed a few levels (RequestError wraps
 * NoRespondersError, JetStreamNotEnabled wraps RequestError).
 */
function natsOutage(err: unknown, depth: number): string | undefined {
  if (!(err instanceof Error) || depth > 3) return undefined;
  if (err instanceof natsErrors.NoRespondersError) return "no responders";
  if (err instanceof natsErrors.TimeoutError) return "NATS request timed out";
  if (err instanceof natsErrors.ClosedConnectionError) return "NATS connection closed";
  if (err instanceof natsErrors.DrainingConnectionError) return "NATS connection draining";
  if (err instanceof natsErrors.ConnectionError) return "NATS connection failed";
  if (err instanceof natsErrors.RequestError) {
    const inner = natsOutage(err.cause, depth + 1);
    if (inner) return inner;
    // "connection disconnected" (request while reconnecting), "connection closed" (closed under a request).
    if (/disconnect/i.test(err.message)) return "NATS connection lost";
    if (/closed/i.test(err.message)) return "NATS connection closed";
    return undefined;
  }
  if (err.name === "JetStreamNotEnabled") return natsOutage(err.cause, depth + 1) ?? "JetStream not enabled";
  if (err instanceof JetStreamApiError) {
    // err.status is the HTTP-like code (503: JetStream temporarily unavailable), err.code the API code.
    if (err.status === 503) return "JetStream not answering";
    if (err.code === 10039 /* JetStream not enabled for account */ || /jetstream not enabled/i.test(err.message)) return "JetStream not enabled";
    return undefined;
  }
  if (err instanceof JetStreamError) {
    // JetStreamStatusError (a JetStreamError) carries the status code of a pull request: 503 = no responders.
    const code = (err as { code?: unknown }).code;
    if (code === 503 || code === "503" || /no responders/i.test(err.message)) return "no responders";
    if (/not enabled/i.test(err.message)) return "JetStream not enabled";
    return natsOutage(err.cause, depth + 1);
  }
  return undefined;
}

export type Reply<T> = ({ ok: true } & T) | { ok: false; error: ErrorBody };
