import { RealmError, type ErrorCode } from "../../services/kernel/errors.js";

/**
 * RFC 8555 §6.7 error types (`urn:ietf:params:acme:error:<type>`) the realm answers with, and the HTTP status
 * each goes out with. An AcmeProblem is a RealmError (so deciders and the write model treat it like any
 * refusal) that carries its ACME type; anything else reaching the ACME routes is mapped by `problemOf`.
 */
export const ACME_ERRORS = {
  accountDoesNotExist: 400,
  alreadyRevoked: 400,
  badCSR: 400,
  badNonce: 400,
  badRevocationReason: 400,
  badSignatureAlgorithm: 400,
  caa: 403,
  connection: 400,
  dns: 400,
  externalAccountRequired: 400,
  incorrectResponse: 400,
  invalidContact: 400,
  malformed: 400,
  orderNotReady: 403,
  rejectedIdentifier: 400,
  serverInternal: 500,
  tls: 400,
  unauthorized: 403,
  unsupportedContact: 400,
  unsupportedIdentifier: 400,
  userActionRequired: 403,
} as const;
export type AcmeErrorType = keyof typeof ACME_ERRORS;

export const ACME_ERROR_PREFIX = "urn:ietf:params:acme:error:";

/** An RFC 7807 problem document as ACME sends it. */
export interface ProblemDocument {
  type: string;
  detail: string;
  status: number;
  identifier?: { type: string; value: string };
  subproblems?: ProblemDocument[];
}

const REALM_CODE: Record<AcmeErrorType, ErrorCode> = {
  accountDoesNotExist: "NOT_FOUND",
  alreadyRevoked: "ALREADY_EXISTS",
  badCSR: "VALIDATION",
  badNonce: "VALIDATION",
  badRevocationReason: "VALIDATION",
  badSignatureAlgorithm: "VALIDATION",
  caa: "FORBIDDEN",
  connection: "VALIDATION",
  dns: "VALIDATION",
  externalAccountRequired: "UNAUTHORIZED",
  incorrectResponse: "VALIDATION",
  invalidContact: "VALIDATION",
  malformed: "MALFORMED",
  orderNotReady: "CONFLICT",
  rejectedIdentifier: "VALIDATION",
  serverInternal: "INTERNAL",
  tls: "VALIDATION",
  unauthorized: "FORBIDDEN",
  unsupportedContact: "VALIDATION",
  unsupportedIdentifier: "VALIDATION",
  userActionRequired: "FORBIDDEN",
};

export class AcmeProblem extends RealmError {
  constructor(
    readonly acmeType: AcmeErrorType,
    detail: string,
    readonly extra: { status?: number; identifier?: { type: string; value: string }; subproblems?: ProblemDocument[]; headers?: Record<string, string> } = {},
  ) {
    super(REALM_CODE[acmeType], detail);
    this.name = "AcmeProblem";
  }

  document(): ProblemDocument {
    return {
      type: ACME_ERROR_PREFIX + this.acmeType,
      detail: this.message,
      status: this.extra.status ?? ACME_ERRORS[this.acmeType],
      ...(this.extra.identifier ? { identifier: this.extra.identifier } : {}),
      ...(this.extra.subproblems ? { subproblems: this.extra.subproblems } : {}),
    };
  }
}

export const acmeProblem = (type: AcmeErrorType, detail: string, extra?: AcmeProblem["extra"]) => new AcmeProblem(type, detail, extra);

/** Any error as the ACME problem a client is sent: realm refusals keep their meaning, the rest is serverInternal. */
export function problemOf(err: unknown): AcmeProblem {
  if (err instanceof AcmeProblem) return err;
  if (err instanceof RealmError) {
    const byCode: Partial<Record<ErrorCode, AcmeErrorType>> = { MALFORMED: "malformed", VALIDATION: "malformed", NOT_FOUND: "malformed", UNAUTHORIZED: "unauthorized", FORBIDDEN: "unauthorized", CONFLICT: "malformed", ALREADY_EXISTS: "malformed", RATE_LIMITED: "serverInternal", UNAVAILABLE: "serverInternal" };
    const status = err.code === "NOT_FOUND" ? 404 : err.code === "CONFLICT" || err.code === "ALREADY_EXISTS" ? 409 : err.code === "UNAVAILABLE" || err.code === "RATE_LIMITED" ? 503 : undefined;
    const t = byCode[err.code] ?? "serverInternal";
    return new AcmeProblem(t, t === "serverInternal" && !status ? "the server could not handle the request" : err.message, status ? { status } : {});
  }
  return new AcmeProblem("serverInternal", "the server could not handle the request");
}
