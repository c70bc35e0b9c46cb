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
  /** A dependency (nats-server, a directory, an upstream) is not reachable. */
  UNAVAILABLE: "UNAVAILABLE",
  /** An audit chain or a stored event does not verify. */
  INTEGRITY: "INTEGRITY",
  /** A projection could not apply an event. */
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
 * Turns anything thrown into a RealmError. Unknown errors become INTERNAL with a generic message:
 * their text may carry secrets or internals and is logged (redacted) by the caller, not returned.
 */
export function toRealmError(err: unknown): RealmError {
  if (err instanceof RealmError) return err;
  return new RealmError("INTERNAL", "internal error");
}

export type Reply<T> = ({ ok: true } & T) | { ok: false; error: ErrorBody };
