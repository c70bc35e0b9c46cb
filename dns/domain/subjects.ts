import type { Decider, EventEnvelope, NewEvent } from "../../services/kernel/index.js";
import { alreadyExists, conflict, invalid, notFound } from "../../services/kernel/errors.js";
import { subjectMatches } from "../../services/kernel/subjects.js";

/**
 * NATS subject namespaces: a pattern (`orders.>`, `telemetry.*.raw`, `a.b`) registered to an owner
 * (account or principal). Patterns of different owners must not overlap; an owner may nest its own.
 * All namespaces live in one aggregate (`namespace/registry`) so overlap checks and appends are atomic.
 */
export interface Namespace {
  pattern: string;
  owner: string;
  description?: string;
}

export interface SubjectRegistry {
  namespaces: Map<string, Namespace>;
}

export const emptySubjects = (): SubjectRegistry => ({ namespaces: new Map() });
export const REGISTRY_ID = "registry";

export const SubjectEvents = { NamespaceRegistered: "NamespaceRegistered", NamespaceReleased: "NamespaceReleased" } as const;

const TOKEN = /^[^\s.*>]+$/;

/** Checks NATS subject grammar; wildcards (`*` any one token, `>` the rest, last only) when `wildcards`. */
export function assertSubject(s: string, wildcards: boolean): string[] {
  if (s.length === 0 || s.length > 512) throw invalid(`subject must be 1..512 characters`);
  const tokens = s.split(".");
  tokens.forEach((t, i) => {
    if (t === "*" || t === ">") {
      if (!wildcards) throw invalid(`subject ${s} must not contain wildcards`);
      if (t === ">" && i !== tokens.length - 1) throw invalid(`'>' must be the last token of ${s}`);
      return;
    }
    if (!TOKEN.test(t)) throw invalid(`token ${JSON.stringify(t)} of ${JSON.stringify(s)} is empty or holds '.', '*', '>' or white space`);
  });
  return tokens;
}

/** True when some concrete subject matches both patterns. */
export function patternsOverlap(a: string, b: string): boolean {
  const x = a.split(".");
  const y = b.split(".");
  for (let i = 0; ; i++) {
    const p = x[i];
    const q = y[i];
    if (p === ">" ) return q !== undefined;
    if (q === ">") return p !== undefined;
    if (p === undefined || q === undefined) return p === q;
    if (p !== "*" && q !== "*" && p !== q) return false;
  }
}


/** How specific a pattern is (more literal tokens first): used to pick the closest namespace. */
const specificity = (p: string) => p.split(".").reduce((n, t) => n + (t === ">" ? 0 : t === "*" ? 1 : 3), 0);

/** The namespace owning a concrete subject (the most specific match), or null. */
export function ownerOf(reg: SubjectRegistry, subject: string): Namespace | null {
  let best: Namespace | null = null;
  for (const ns of reg.namespaces.values()) {
    if (subjectMatches(ns.pattern, subject) && (!best || specificity(ns.pattern) > specificity(best.pattern))) best = ns;
  }
  return best;
}

export type SubjectCommand = { type: "register"; pattern: string; owner: string; description?: string } | { type: "release"; pattern: string };

export const subjectDecider: Decider<SubjectRegistry, SubjectCommand> = {
  aggregateType: "namespace",
  initialState: () => emptySubjects(),
  decide(s, c): NewEvent[] {
    assertSubject(c.pattern, true);
    if (c.type === "release") {
      if (!s.namespaces.has(c.pattern)) throw notFound(`namespace ${c.pattern} is not registered`);
      return [{ type: SubjectEvents.NamespaceReleased, data: { pattern: c.pattern } }];
    }
    if (!c.owner.trim()) throw invalid("owner must not be empty");
    const cur = s.namespaces.get(c.pattern);
    if (cur) throw alreadyExists(`namespace ${c.pattern} is already registered to ${cur.owner}`);
    for (const ns of s.namespaces.values()) {
      if (ns.owner !== c.owner && patternsOverlap(ns.pattern, c.pattern)) throw conflict(`namespace ${c.pattern} overlaps ${ns.pattern}, owned by ${ns.owner}`, { overlaps: ns.pattern, owner: ns.owner });
    }
    return [{ type: SubjectEvents.NamespaceRegistered, data: { pattern: c.pattern, owner: c.owner, ...(c.description ? { description: c.description } : {}) } }];
  },
  evolve(s, e) {
    applySubjectEvent(s, e);
    return s;
  },
};

export function applySubjectEvent(s: SubjectRegistry, e: Pick<EventEnvelope, "type" | "data">): void {
  if (e.type === SubjectEvents.NamespaceRegistered) {
    const d = e.data as Namespace;
    s.namespaces.set(d.pattern, d);
  } else if (e.type === SubjectEvents.NamespaceReleased) s.namespaces.delete((e.data as { pattern: string }).pattern);
}
