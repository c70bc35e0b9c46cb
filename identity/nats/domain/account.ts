import type { Decider, NewEvent } from "../../../services/kernel/index.js";
import { alreadyExists, invalid, notFound } from "../../../services/kernel/errors.js";
import type { EventEnvelope } from "../../../services/kernel/envelope.js";
import { validateLimits, validatePermissions, validateSubject, validateName, type AccountLimitsSpec, type UserPermissions } from "./validation.js";

/** NATS accounts as an aggregate (`account`, id = account name). Pure: commands in, events out. */

export interface ExportSpec {
  name: string;
  subject: string;
  type: "service" | "stream";
  /** Token-activated (private) export: importers need an activation JWT. */
  tokenRequired?: boolean;
}

export interface ImportSpec {
  name: string;
  /** Exporting account's name (realm) — resolved to its public key when signing. */
  account: string;
  subject: string;
  type: "service" | "stream";
  localSubject?: string;
}

/** Subject mapping: source -> weighted destinations (destination without wildcards). */
export type MappingSpec = Record<string, { subject: string; weight: number }[]>;

export interface SigningKeyEntry {
  key: string;
  /** Scoped key: users it signs get exactly this template (and must carry no permissions themselves). */
  scope?: { role: string; template: UserPermissions };
}

export interface AccountState {
  name: string;
  exists: boolean;
  deleted: boolean;
  publicKey: string;
  description: string;
  limits: AccountLimitsSpec;
  signingKeys: SigningKeyEntry[];
  exports: ExportSpec[];
  imports: ImportSpec[];
  mappings: MappingSpec;
  /** user public key (or "*") -> unix seconds: JWTs issued at or before are revoked. */
  revocations: Record<string, number>;
  system: boolean;
  /** What a user whose JWT names no permissions may do (the realm account: nothing). */
  defaultPermissions?: UserPermissions | undefined;
}

export type AccountCommand =
  | { type: "create"; publicKey: string; signingKey: string; limits?: Partial<AccountLimitsSpec>; description?: string; system?: boolean; defaultPermissions?: UserPermissions }
  | { type: "update"; limits?: Partial<AccountLimitsSpec>; exports?: ExportSpec[]; imports?: ImportSpec[]; mappings?: MappingSpec; description?: string; knownAccounts: string[] }
  | { type: "addSigningKey"; entry: SigningKeyEntry }
  | { type: "revokeSigningKey"; key: string }
  /** Replace a signing key by a new one with the same scope, in one push: users of the old key drop. */
  | { type: "rotateSigningKey"; key: string; newKey: string }
  | { type: "revokeUser"; userPublicKey: string; user: string; at: number }
  | { type: "delete" };

export const AccountEvents = {
  created: "NatsAccountCreated",
  updated: "NatsAccountUpdated",
  signingKeyAdded: "NatsSigningKeyAdded",
  signingKeyRevoked: "NatsSigningKeyRevoked",
  userRevoked: "NatsUserRevoked",
  deleted: "NatsAccountDeleted",
} as const;

const live = (s: AccountState) => {
  if (!s.exists || s.deleted) throw notFound(`no NATS account ${s.name}`);
};

export function validateExports(exports: ExportSpec[], limits: AccountLimitsSpec): ExportSpec[] {
  const names = new Set<string>();
  return exports.map((e, i) => {
    validateName(e.name, `exports[${i}]`);
    if (names.has(e.name)) throw invalid(`exports[${i}]: duplicate name ${e.name}`);
    names.add(e.name);
    if (e.type !== "service" && e.type !== "stream") throw invalid(`exports[${i}].type must be service or stream`);
    validateSubject(e.subject, `exports[${i}].subject`);
    if (!limits.wildcards && /(^|\.)[*>](\.|$)/.test(e.subject)) throw invalid(`exports[${i}].subject: wildcard exports need limits.wildcards`);
    return { name: e.name, subject: e.subject, type: e.type, ...(e.tokenRequired ? { tokenRequired: true } : {}) };
  });
}

function validateImports(imports: ImportSpec[], known: string[], self: string): ImportSpec[] {
  return imports.map((im, i) => {
    validateName(im.name, `imports[${i}]`);
    if (im.account === self) throw invalid(`imports[${i}]: an account cannot import from itself`);
    if (!known.includes(im.account)) throw notFound(`imports[${i}]: unknown account ${im.account}`);
    if (im.type !== "service" && im.type !== "stream") throw invalid(`imports[${i}].type must be service or stream`);
    validateSubject(im.subject, `imports[${i}].subject`);
    if (im.localSubject) validateSubject(im.localSubject, `imports[${i}].localSubject`);
    return { name: im.name, account: im.account, subject: im.subject, type: im.type, ...(im.localSubject ? { localSubject: im.localSubject } : {}) };
  });
}

function validateMappings(m: MappingSpec): MappingSpec {
  for (const [src, dests] of Object.entries(m)) {
    validateSubject(src, `mappings[${src}]`);
    if (!Array.isArray(dests) || dests.length === 0) throw invalid(`mappings[${src}]: at least one destination`);
    let total = 0;
    for (const d of dests) {
      validateSubject(d.subject.replace(/\{\{[^}]*\}\}/g, "X"), `mappings[${src}].subject`, { wildcards: false });
      if (!Number.isInteger(d.weight) || d.weight < 1 || d.weight > 100) throw invalid(`mappings[${src}]: weight 1..100`);
      total += d.weight;
    }
    if (total > 100) throw invalid(`mappings[${src}]: weights add up to ${total} > 100`);
  }
  return m;
}

export const accountDecider: Decider<AccountState, AccountCommand> = {
  aggregateType: "account",
  initialState: (name) => ({
    name, exists: false, deleted: false, publicKey: "", description: "", limits: validateLimits({}), signingKeys: [],
    exports: [], imports: [], mappings: {}, revocations: {}, system: false,
  }),
  decide(s, c): NewEvent[] {
    switch (c.type) {
      case "create": {
        validateName(s.name, "account");
        if (s.exists && !s.deleted) throw alreadyExists(`NATS account ${s.name} exists`);
        if (s.deleted) throw alreadyExists(`NATS account ${s.name} was deleted; pick another name`);
        if (!/^A[A-Z2-7]{55}$/.test(c.publicKey) || !/^A[A-Z2-7]{55}$/.test(c.signingKey)) throw invalid("account keys must be account public nkeys");
        const limits = validateLimits(c.limits);
        if (c.system && (limits.memStorage !== 0 || limits.diskStorage !== 0)) throw invalid("the system account cannot have JetStream");
        const defaultPermissions = c.defaultPermissions ? validatePermissions(c.defaultPermissions, "defaultPermissions") : undefined;
        return [{ type: AccountEvents.created, data: { name: s.name, publicKey: c.publicKey, signingKeys: [c.signingKey], limits, description: c.description ?? "", system: !!c.system, ...(defaultPermissions ? { defaultPermissions } : {}) } }];
      }
      case "update": {
        live(s);
        const limits = validateLimits(c.limits, s.limits);
        const exports = c.exports ? validateExports(c.exports, limits) : s.exports;
        const imports = c.imports ? validateImports(c.imports, c.knownAccounts, s.name) : s.imports;
        const mappings = c.mappings ? validateMappings(c.mappings) : s.mappings;
        if (s.system && (limits.memStorage !== 0 || limits.diskStorage !== 0)) throw invalid("the system account cannot have JetStream");
        return [{ type: AccountEvents.updated, data: { limits, exports, imports, mappings, description: c.description ?? s.description } }];
      }
      case "addSigningKey": {
        live(s);
        if (!/^A[A-Z2-7]{55}$/.test(c.entry.key)) throw invalid("signing key must be an account public nkey");
        if (s.signingKeys.some((k) => k.key === c.entry.key)) throw alreadyExists("signing key already on the account");
        const entry: SigningKeyEntry = c.entry.scope
          ? { key: c.entry.key, scope: { role: validateName(c.entry.scope.role, "role"), template: validatePermissions(c.entry.scope.template, "template", true) } }
          : { key: c.entry.key };
        return [{ type: AccountEvents.signingKeyAdded, data: entry }];
      }
      case "revokeSigningKey": {
        live(s);
        if (!s.signingKeys.some((k) => k.key === c.key)) throw notFound(`signing key ${c.key} is not on account ${s.name}`);
        return [{ type: AccountEvents.signingKeyRevoked, data: { key: c.key } }];
      }
      case "rotateSigningKey": {
        live(s);
        const old = s.signingKeys.find((k) => k.key === c.key);
        if (!old) throw notFound(`signing key ${c.key} is not on account ${s.name}`);
        if (!/^A[A-Z2-7]{55}$/.test(c.newKey) || s.signingKeys.some((k) => k.key === c.newKey)) throw invalid("new signing key must be a fresh account public nkey");
        return [
          { type: AccountEvents.signingKeyAdded, data: old.scope ? { key: c.newKey, scope: old.scope } : { key: c.newKey } },
          { type: AccountEvents.signingKeyRevoked, data: { key: c.key, replacedBy: c.newKey } },
        ];
      }
      case "revokeUser": {
        live(s);
        if (!/^U[A-Z2-7]{55}$/.test(c.userPublicKey) && c.userPublicKey !== "*") throw invalid("not a user public key");
        return [{ type: AccountEvents.userRevoked, data: { userPublicKey: c.userPublicKey, user: c.user, at: c.at } }];
      }
      case "delete": {
        live(s);
        if (s.system) throw invalid("the system account cannot be deleted");
        return [{ type: AccountEvents.deleted, data: { name: s.name } }];
      }
    }
  },
  evolve(s, e: EventEnvelope): AccountState {
    const d = e.data as Record<string, unknown>;
    switch (e.type) {
      case AccountEvents.created:
        return { ...s, exists: true, publicKey: d.publicKey as string, signingKeys: (d.signingKeys as string[]).map((key) => ({ key })), limits: d.limits as AccountLimitsSpec, description: d.description as string, system: !!d.system, defaultPermissions: d.defaultPermissions as UserPermissions | undefined };
      case AccountEvents.updated:
        return { ...s, limits: d.limits as AccountLimitsSpec, exports: d.exports as ExportSpec[], imports: d.imports as ImportSpec[], mappings: d.mappings as MappingSpec, description: d.description as string };
      case AccountEvents.signingKeyAdded:
        return { ...s, signingKeys: [...s.signingKeys, d as unknown as SigningKeyEntry] };
      case AccountEvents.signingKeyRevoked:
        return { ...s, signingKeys: s.signingKeys.filter((k) => k.key !== d.key) };
      case AccountEvents.userRevoked:
        return { ...s, revocations: { ...s.revocations, [d.userPublicKey as string]: d.at as number } };
      case AccountEvents.deleted:
        return { ...s, deleted: true };
      default:
        return s;
    }
  },
};
