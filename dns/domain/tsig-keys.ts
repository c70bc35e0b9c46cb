import type { Decider, EventEnvelope, NewEvent } from "../../services/kernel/index.js";
import { alreadyExists, invalid, notFound } from "../../services/kernel/errors.js";
import { absoluteName, assertName, lowerName } from "./names.js";

/**
 * TSIG keys (RFC 8945) as realm objects: one `tsig-key` aggregate per key name. Its events say what the key
 * is bound to (a principal, the zones and names it may change) and its secret's fingerprint, never the
 * secret (kept sealed in the `realm_dns_tsig` bucket, dns/tsig-secrets.ts).
 */
export const TsigKeyEvents = { TsigKeyCreated: "TsigKeyCreated", TsigKeyRevoked: "TsigKeyRevoked" } as const;

export const TSIG_KEY_ALGORITHMS = ["hmac-sha256", "hmac-sha512"] as const;
export type TsigKeyAlgorithm = (typeof TSIG_KEY_ALGORITHMS)[number];

export interface TsigKeyInfo {
  /** Absolute, lower case (`external-dns.example.test.`). */
  name: string;
  algorithm: TsigKeyAlgorithm;
  principal: string;
  zones: string[];
  /** Name patterns (absolute, lower case; `*.sub.zone.` = any name below): empty = every name of its zones. */
  names: string[];
  /** sha256 of the secret (hex, first 32 digits): tells versions of a key apart, proves nothing about it. */
  fingerprint: string;
  createdAt: string;
  /** Where the secret was escrowed, when it was (never the secret). */
  secretRef?: { itemId: string; revision: string } | undefined;
  revoked: boolean;
}

export type TsigKeyCommand =
  | { type: "create"; key: Omit<TsigKeyInfo, "revoked"> }
  | { type: "revoke" };

/** A key name as the realm keeps it: absolute, lower case, a valid DNS name. */
export function tsigKeyName(text: string): string {
  const n = lowerName(absoluteName(text.endsWith(".") ? text : `${text}.`));
  assertName(n);
  return n;
}

/** A name pattern of a key's binding, absolute and lower case: a name, or `*.` and a name (any name below it). */
export function tsigNamePattern(text: string, zones: string[]): string {
  const wild = text.startsWith("*.");
  const rest = tsigKeyName(wild ? text.slice(2) : text);
  if (!zones.some((z) => rest === z || rest.endsWith(`.${z}`))) throw invalid(`name pattern ${text} is in none of the key's zones (${zones.join(", ")})`);
  return wild ? `*.${rest}` : rest;
}

export const tsigKeyDecider: Decider<TsigKeyInfo | null, TsigKeyCommand> = {
  aggregateType: "tsig-key",
  initialState: () => null,
  decide(s, c): NewEvent[] {
    switch (c.type) {
      case "create":
        if (s && !s.revoked) throw alreadyExists(`TSIG key ${c.key.name} exists (revoke it first)`);
        if (c.key.zones.length === 0) throw invalid("a TSIG key needs at least one zone");
        return [{ type: TsigKeyEvents.TsigKeyCreated, data: c.key }];
      case "revoke":
        if (!s || s.revoked) throw notFound("no such TSIG key");
        return [{ type: TsigKeyEvents.TsigKeyRevoked, data: { name: s.name, fingerprint: s.fingerprint } }];
    }
  },
  evolve(s, e: EventEnvelope) {
    return applyTsigKeyEvent(s, e.type, e.data);
  },
};

export function applyTsigKeyEvent(s: TsigKeyInfo | null, type: string, data: unknown): TsigKeyInfo | null {
  switch (type) {
    case TsigKeyEvents.TsigKeyCreated:
      return { ...(data as Omit<TsigKeyInfo, "revoked">), revoked: false };
    case TsigKeyEvents.TsigKeyRevoked:
      return s ? { ...s, revoked: true } : s;
    default:
      return s;
  }
}
