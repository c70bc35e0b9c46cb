import type { Decider, NewEvent } from "../../services/kernel/index.js";
import { alreadyExists, invalid, notFound } from "../../services/kernel/index.js";
import { assertName, dataOf, ev, uniq } from "./common.js";

/**
 * An API key. The key itself (`rk_<id>_<secret>`, 256 random bits of secret) is shown once; events carry
 * only `sha256:<hex>` of the secret. A 256-bit random secret cannot be guessed from its SHA-256, so no slow
 * hash is needed (unlike passwords).
 */
export interface ApiKeyState {
  id: string;
  exists: boolean;
  owner: string;
  label: string;
  roles: string[];
  secretHash: string;
  expiresAt?: string | undefined;
  revoked: boolean;
  /** Where the key was escrowed (Vaultwarden item), when an escrow is configured. */
  secretRef?: { itemId: string; revision: string } | undefined;
  /** Issued while the realm ran without authentication: refused once authentication is on. */
  insecure?: boolean | undefined;
}

export type ApiKeyCommand =
  | { type: "issue"; owner: string; label: string; roles: string[]; secretHash: string; expiresAt?: string | undefined; now: string; secretRef?: { itemId: string; revision: string } | undefined; insecure?: boolean | undefined }
  | { type: "revoke"; reason: string };

export const ApiKeyEvents = { Issued: "ApiKeyIssued", Revoked: "ApiKeyRevoked" } as const;

export const apiKeyDecider: Decider<ApiKeyState, ApiKeyCommand> = {
  aggregateType: "apikey",
  initialState: (id) => ({ id, exists: false, owner: "", label: "", roles: [], secretHash: "", revoked: false }),
  decide(s, c): NewEvent[] {
    if (c.type === "revoke") {
      if (!s.exists) throw notFound(`no API key ${s.id}`);
      return s.revoked ? [] : [ev(ApiKeyEvents.Revoked, { reason: c.reason })];
    }
    if (s.exists) throw alreadyExists(`API key ${s.id} already exists`);
    if (!/^sha256:[0-9a-f]{64}$/.test(c.secretHash)) throw invalid("secretHash must be sha256:<64 hex>");
    if (c.roles.length === 0) throw invalid("an API key needs at least one role");
    for (const r of c.roles) assertName("role", r);
    if (c.expiresAt !== undefined && !(Date.parse(c.expiresAt) > Date.parse(c.now))) throw invalid(`expiresAt ${c.expiresAt} is not in the future`);
    return [ev(ApiKeyEvents.Issued, { owner: c.owner, label: c.label, roles: uniq(c.roles), secretHash: c.secretHash, expiresAt: c.expiresAt, ...(c.secretRef ? { secretRef: c.secretRef } : {}), ...(c.insecure ? { insecure: true } : {}) })];
  },
  evolve(s, e) {
    if (e.type === ApiKeyEvents.Issued) return { ...s, exists: true, ...dataOf<Omit<ApiKeyState, "id" | "exists" | "revoked">>(e) };
    if (e.type === ApiKeyEvents.Revoked) return { ...s, revoked: true };
    return s;
  },
};

/** Whether a key may be used at `now` (the owner's own state is checked by the caller). */
export function apiKeyUsable(k: ApiKeyState, now: Date): boolean {
  return k.exists && !k.revoked && (k.expiresAt === undefined || Date.parse(k.expiresAt) > now.getTime());
}
