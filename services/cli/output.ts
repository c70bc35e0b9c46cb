import { invalid } from "../kernel/errors.js";

/** What every `realm` verb shares: JSON results on stdout, progress on stderr, option parsers. */
export const printJson = (r: unknown): void => void process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
export const note = (line: string): void => void process.stderr.write(`${line}\n`);

/** Option parser for repeatable, comma-separated values: `--dns a,b --dns c` gives [a, b, c]. */
export const commaList = (v: string, prev: string[] = []): string[] => [...prev, ...v.split(",").map((s) => s.trim()).filter(Boolean)];

/** Option parser for an integer; anything else is a VALIDATION error naming the value. */
export function integer(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n)) throw invalid(`${v} is not an integer`);
  return n;
}
