import { isIP } from "node:net";
import { InvalidArgumentError, Option } from "commander";
import { FORMATS, toJson, toNames, toQuiet, toTable, toYaml, type Format } from "./format.js";
import { KINDS, type Kind } from "./kinds.js";

/** What every `realm` verb shares: results on stdout (printResult), progress on stderr, option parsers. */
export const note = (line: string): void => void process.stderr.write(`${line}\n`);

/** How results are printed in this run: set once before the verb runs (services/cli/edge.ts) from -o and -q. */
interface OutputMode {
  format?: Format | undefined;
  quiet?: boolean | undefined;
}
let mode: OutputMode = {};
export const setOutputMode = (m: OutputMode): void => void (mode = m);
/** The format of this run: -o, else table on a terminal, else JSON (what scripts and pipes read). */
export const outputFormat = (): Format => mode.format ?? (process.stdout.isTTY === true ? "table" : "json");
export const quietMode = (): boolean => mode.quiet === true;
export const isFormat = (v: unknown): v is Format => typeof v === "string" && (FORMATS as readonly string[]).includes(v);

export interface PrintOptions {
  /** The verb's own text for `table` (a report, a PEM, a key) instead of the generic table of its kind. */
  table?: (result: never) => string;
  /**
   * Also print that text by default off a terminal: for verbs whose output was text before the formats
   * existed (`realm cert crl > crl.pem`, `REALM_TOKEN=$(realm identity bootstrap)` keep working).
   * `-o json|yaml` print the result itself.
   */
  textByDefault?: boolean;
  /** Where the text goes (default process.stdout.write; the NATS verbs print through console.log, as they always did). */
  write?: (text: string) => void;
}

/**
 * Prints a verb's result in the run's format: JSON (as the API returned it), YAML and table (times as
 * ISO 8601), `name` (`kind/id` per line), or with -q only its secret or identifiers.
 */
export function printResult(result: unknown, kind?: Kind, opts: PrintOptions = {}): void {
  const spec = kind ? KINDS[kind] : undefined;
  const text = opts.table as ((r: unknown) => string) | undefined;
  let out: string;
  if (mode.quiet) out = toQuiet(result, spec);
  else {
    const format = mode.format ?? (text && opts.textByDefault ? "table" : outputFormat());
    if (format === "table") out = text ? text(result) : toTable(result, spec);
    else if (format === "yaml") out = toYaml(result);
    else if (format === "name") out = toNames(result, spec, kind ?? "item");
    else out = toJson(result);
  }
  if (opts.write) opts.write(out);
  else process.stdout.write(out);
}

/** @deprecated printResult(result, kind): kept so that code written against the old name prints the same way. */
export const printJson = (r: unknown): void => printResult(r);

/** `-o, --output <format>`; with `legacyFile`, a value that is no format is the file the old `-o <file>` named. */
export function outputOption(legacyFile = false): Option {
  const o = new Option("-o, --output <format>", `output format: ${FORMATS.join(", ")} (default: table on a terminal, else json)${legacyFile ? "; the file goes to --out" : ""}`);
  o.argParser((v: string) => {
    if (isFormat(v) || legacyFile) return v;
    throw new InvalidArgumentError(`Expected one of ${FORMATS.join(", ")}.`);
  });
  // For --help and shell completion (the parser above is what checks).
  o.argChoices = [...FORMATS];
  return o;
}
export const quietOption = (): Option => new Option("-q, --quiet", "print only the identifier (or the secret: a key, creds, a client secret), one per line");

/**
 * The file a verb writes: --out, else (for one release) a value of -o/--output that is no format, with a
 * note that the flag is now spelled --out.
 */
export function outFile(o: { out?: string | undefined; output?: string | undefined }): string | undefined {
  if (o.out) return o.out;
  if (o.output !== undefined && !isFormat(o.output)) {
    note(`realm: -o/--output <file> is now --out <file> (-o is the output format); writing ${o.output}`);
    return o.output;
  }
  return undefined;
}

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

/** `host:port` to listen on (an address and a port from 1 to 65535; `[::1]:7422` for IPv6). */
export function hostPort(v: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(v);
  if (!m || isIP(m[1]!) === 0 || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new InvalidArgumentError("Expected address:port (127.0.0.1:7422, [::1]:7422).");
  return { host: m[1]!, port: Number(m[2]) };
}
