import type { EventEnvelope, NewEvent } from "../../services/kernel/index.js";
import { invalid } from "../../services/kernel/index.js";

/** Names of principals, groups, roles and clients: readable, subject-encodable, bounded. */
export const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;

export function assertName(what: string, v: string): string {
  if (!NAME.test(v)) throw invalid(`${what} must be 1-128 characters of letters, digits, '.', '_', '@', '-' and start with a letter or digit: ${JSON.stringify(v)}`);
  return v;
}

export const ev = <D>(type: string, data: D): NewEvent<D> => ({ type, data });

/** Typed access to an event's data inside `evolve` (the decider wrote it, so its shape is known). */
export const dataOf = <D>(e: EventEnvelope): D => e.data as D;

export const uniq = (xs: string[]): string[] => [...new Set(xs)].sort();
