import { isIP } from "node:net";
import { InvalidArgumentError } from "commander";

/** What every `realm` verb shares: JSON results on stdout, progress on stderr, option parsers. */
export const printJson = (r: unknown): void => void process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
export const note = (line: string): void => void process.stderr.write(`${line}\n`);

/** Option parser for repeatable, comma-separated values: `--dns a,b --dns c` gives [a, b, c]. */
export const commaList = (v: string, prev: string[] = []): string[] => [...prev, ...v.split(",").map((s) => s.trim()).filter(Boolean)];

/**
 * Numeric option parsers. They run while commander parses the command line, before any action: a bad
 * value is a usage error (commander prints `option '--ttl <seconds>' argument 'abc' is invalid. ...`, exit
 * 2) and nothing has been done yet.
 */
function integerIn(v: string, min: number, max: number, what: string): number {
  const n = /^[+-]?\d+$/.test(v.trim()) ? Number(v) : NaN;
  const range = min === Number.MIN_SAFE_INTEGER ? "" : max === Number.MAX_SAFE_INTEGER ? ` ${min} or more` : ` from ${min} to ${max}`;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`Expected ${what}${range}.`);
  return n;
}

/** An integer (any sign). */
export const integer = (v: string): number => integerIn(v, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, "an integer");
/** An integer >= 1 (counts, days, years, seconds of a TTL). */
export const positiveInt = (v: string): number => integerIn(v, 1, Number.MAX_SAFE_INTEGER, "an integer");
/** An integer >= 0 (sizes, TTLs where 0 means something). */
export const nonNegativeInt = (v: string): number => integerIn(v, 0, Number.MAX_SAFE_INTEGER, "an integer");
/** A TCP/UDP port, 0 (any free port) to 65535. */
export const port = (v: string): number => integerIn(v, 0, 65535, "a port");
/** An IPv4 or IPv6 address to listen on (not a name: a listener binds an address). */
export function ipAddress(v: string): string {
  if (isIP(v) === 0) throw new InvalidArgumentError("Expected an IPv4 or IPv6 address (0.0.0.0 or :: for every address).");
  return v;
}

/** `true` or `false`; anything else is a usage error (it used to mean false). */
export function boolean(v: string): boolean {
  if (v === "true" || v === "false") return v === "true";
  throw new InvalidArgumentError("Expected true or false.");
}
