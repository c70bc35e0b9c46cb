import { RealmError, type ErrorCode } from "../services/kernel/errors.js";

/**
 * Why a secrets-client call failed. Stable strings: callers branch on them.
 * - UNREACHABLE: no TCP/TLS connection to the server (wrong URL, server down, certificate not trusted).
 * - AUTH: credentials refused (wrong master password, bad API key, refresh token expired or revoked).
 * - INTEGRITY: a ciphertext does not verify (MAC mismatch, bad padding, wrong key) - nothing was decrypted.
 * - NOT_FOUND: the item, organization or collection does not exist or is not visible to this user.
 * - SERVER: the server answered 5xx (after the retries) or with something this client cannot read.
 * - VALIDATION: the server refused the request as invalid (4xx other than 401/403/404), or bad input here.
 * - CONFLICT: the item changed on the server since it was read (stale revision).
 * - UNSUPPORTED: a format this client refuses on purpose (EncString type 0 or 7, unknown KDF...).
 * - FORBIDDEN: the account is logged in but lacks the right (organization role, collection access): Vaultwarden
 *   answers such calls 401 (auth.rs AdminHeaders / ManagerHeaders) or 400 ("You don't have permission ..."); a 401
 *   that a fresh session gets again is this, final (no further renewal or login).
 * - RATE_LIMITED: Vaultwarden refused a login with 429 (ratelimit.rs `check_limit_login`: by default a burst of 10,
 *   then one per 60 s per client IP). Not retried: waiting is the caller's decision.
 */
export type SecretsErrorKind = "UNREACHABLE" | "AUTH" | "INTEGRITY" | "NOT_FOUND" | "SERVER" | "VALIDATION" | "CONFLICT" | "UNSUPPORTED" | "FORBIDDEN" | "RATE_LIMITED";

const realmCodeOf: Record<SecretsErrorKind, ErrorCode> = {
  UNREACHABLE: "UNAVAILABLE",
  AUTH: "UNAUTHORIZED",
  INTEGRITY: "INTEGRITY",
  NOT_FOUND: "NOT_FOUND",
  SERVER: "UNAVAILABLE",
  VALIDATION: "VALIDATION",
  CONFLICT: "CONFLICT",
  UNSUPPORTED: "VALIDATION",
  // UNAUTHORIZED, not FORBIDDEN: the realm's caller is allowed; it is the escrow's Vaultwarden account that lacks the
  // role (and the host records FORBIDDEN as a denial of the realm principal, which this is not).
  FORBIDDEN: "UNAUTHORIZED",
  RATE_LIMITED: "RATE_LIMITED",
};

/**
 * A typed secrets-client error. It is a RealmError, so the realm's entry points pass it through with the
 * mapped stable `code` (UNAVAILABLE, UNAUTHORIZED, INTEGRITY, ...); `kind` keeps the finer reason.
 * Messages never carry a password, key, token or plaintext: only operation names, statuses and ids.
 */
export class SecretsError extends RealmError {
  readonly kind: SecretsErrorKind;
  /** HTTP status when the server answered. */
  readonly status: number | undefined;

  constructor(kind: SecretsErrorKind, message: string, opts: { status?: number; details?: unknown } = {}) {
    super(realmCodeOf[kind], message, opts.details);
    this.name = "SecretsError";
    this.kind = kind;
    this.status = opts.status;
  }
}

export const isSecretsError = (e: unknown, kind?: SecretsErrorKind): e is SecretsError =>
  e instanceof SecretsError && (kind === undefined || e.kind === kind);
