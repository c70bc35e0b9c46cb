import type { ErrorCode } from "../kernel/errors.js";

/**
 * The `realm` command line's exit status by error class (README "Exit codes"): a script can tell a name that
 * does not exist from a realm that is not running without reading stderr. 1 stays the generic failure, 2 a
 * usage error (unknown command or option, a missing or invalid argument: nothing was done).
 */
export const EXIT_USAGE = 2;
/**
 * A health report found the realm running but not whole (`realm cluster status`: a stream without a leader
 * or with a replica missing or behind, a projection behind, no instance answering). No error class: the
 * report on stdout says what.
 */
export const EXIT_DEGRADED = 13;
export const EXIT_CODES: Record<ErrorCode, number> = {
  INTERNAL: 1,
  PROJECTION: 1,
  MALFORMED: 3,
  VALIDATION: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  CONFLICT: 7,
  UNAUTHORIZED: 8,
  FORBIDDEN: 9,
  UNAVAILABLE: 10,
  INTEGRITY: 11,
  RATE_LIMITED: 12,
};

/** The exit status of an error code; 1 for anything not a realm code. */
export const exitCodeOf = (code: string | undefined): number => (code && Object.hasOwn(EXIT_CODES, code) ? EXIT_CODES[code as ErrorCode] : 1);
