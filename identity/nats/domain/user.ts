import type { Decider, NewEvent } from "../../../services/kernel/index.js";
import { alreadyExists, invalid, notFound } from "../../../services/kernel/errors.js";
import type { EventEnvelope } from "../../../services/kernel/envelope.js";
import type { AccountState } from "./account.js";
import { CONNECTION_TYPES, validateCidr, validateName, validatePermissions, type ConnectionTypeName, type UserPermissions } from "./validation.js";

/** NATS users as an aggregate (`user`, id = `<account>:<user>`). Each issue is a new user key and JWT. */

export type UserKind = "person" | "service" | "agent";
export const DEFAULT_EXPIRY_DAYS: Record<UserKind, number> = { person: 90, service: 365, agent: 90 };

export interface UserSpec {
  account: string;
  name: string;
  kind: UserKind;
  permissions?: UserPermissions;
  src?: string[];
  connectionTypes?: ConnectionTypeName[];
  bearer?: boolean;
  expiresInDays?: number;
  tags?: string[];
  /** Public key of a scoped signing key of the account: the user then carries no permissions of its own. */
  scopedSigningKey?: string;
}

export interface UserState {
  id: string;
  exists: boolean;
  account: string;
  name: string;
  publicKey: string;
  issuedAt: number;
  expiresAt: number;
  revoked: boolean;
  /** Where the creds were escrowed (Vaultwarden item), when an escrow is configured. */
  secretRef?: { itemId: string; revision: string } | undefined;
}

export type UserCommand = { type: "issue"; spec: UserSpec; account: AccountState; publicKey: string; signer: string; now: number; secretRef?: { itemId: string; revision: string } | undefined };

export const UserEvents = { issued: "NatsUserIssued" } as const;

/** Pure checks of a user spec against its account; returns the normalized spec. */
export function checkUserSpec(spec: UserSpec, account: AccountState | undefined): UserSpec {
  validateName(spec.name, "user");
  if (!account || !account.exists || account.deleted) throw notFound(`unknown NATS account ${spec.account}`);
  if (!["person", "service", "agent"].includes(spec.kind)) throw invalid("kind must be person, service or agent");
  const permissions = validatePermissions(spec.permissions, "permissions");
  const src = (spec.src ?? []).map((c, i) => validateCidr(c, `src[${i}]`));
  for (const t of spec.connectionTypes ?? []) if (!CONNECTION_TYPES.includes(t)) throw invalid(`connection type ${t} unknown (${CONNECTION_TYPES.join(", ")})`);
  const days = spec.expiresInDays ?? DEFAULT_EXPIRY_DAYS[spec.kind];
  if (!Number.isInteger(days) || days < 1 || days > 3650) throw invalid("expiresInDays must be 1..3650");
  for (const t of spec.tags ?? []) if (!/^[a-z0-9_-]+(:[a-z0-9_.-]+)?$/.test(t)) throw invalid(`tag ${JSON.stringify(t)}: lower case key or key:value`);
  if (spec.scopedSigningKey) {
    const sk = account.signingKeys.find((k) => k.key === spec.scopedSigningKey);
    if (!sk || !sk.scope) throw notFound(`no scoped signing key ${spec.scopedSigningKey} on account ${account.name}`);
    if (spec.permissions || spec.src?.length || spec.connectionTypes?.length || spec.bearer) {
      throw invalid("a user of a scoped signing key carries no permissions, limits, src, connection types or bearer flag of its own");
    }
  }
  return { ...spec, permissions, src, expiresInDays: days };
}

export const userDecider: Decider<UserState, UserCommand> = {
  aggregateType: "user",
  initialState: (id) => ({ id, exists: false, account: "", name: "", publicKey: "", issuedAt: 0, expiresAt: 0, revoked: false }),
  decide(s, c): NewEvent[] {
    const spec = checkUserSpec(c.spec, c.account);
    const revoked = s.revoked || (c.account.revocations[s.publicKey] ?? -1) >= s.issuedAt || (c.account.revocations["*"] ?? -1) >= s.issuedAt;
    if (s.exists && !revoked && s.expiresAt > c.now) throw alreadyExists(`NATS user ${spec.account}/${spec.name} has valid creds; revoke first`);
    const expiresAt = c.now + (spec.expiresInDays ?? 90) * 86400;
    return [{
      type: UserEvents.issued,
      data: {
        account: spec.account, accountPublicKey: c.account.publicKey, name: spec.name, kind: spec.kind, publicKey: c.publicKey, signer: c.signer,
        scoped: !!spec.scopedSigningKey, permissions: spec.permissions ?? {}, src: spec.src ?? [], connectionTypes: spec.connectionTypes ?? [],
        bearer: !!spec.bearer, tags: spec.tags ?? [], issuedAt: c.now, expiresAt,
        ...(c.secretRef ? { secretRef: c.secretRef } : {}),
      },
    }];
  },
  evolve(s, e: EventEnvelope): UserState {
    const d = e.data as Record<string, unknown>;
    if (e.type === UserEvents.issued) {
      return { ...s, exists: true, account: d.account as string, name: d.name as string, publicKey: d.publicKey as string, issuedAt: d.issuedAt as number, expiresAt: d.expiresAt as number, revoked: false, secretRef: d.secretRef as UserState["secretRef"] };
    }
    return s;
  },
};
