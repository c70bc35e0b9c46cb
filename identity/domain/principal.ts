import type { Decider, EventEnvelope, NewEvent } from "../../services/kernel/index.js";
import { alreadyExists, invalid, notFound, RealmError } from "../../services/kernel/index.js";
import { assertName, dataOf, ev } from "./common.js";

export type PrincipalKind = "person" | "service" | "agent";
/** Where the principal's password lives: the realm's own credential store, or an LDAP directory. */
export type PrincipalSource = { kind: "local" } | { kind: "ldap"; directory: string; dn: string };

export interface PrincipalProfile {
  displayName: string;
  email?: string | undefined;
  organization?: string | undefined;
  orgUnit?: string | undefined;
  /** SCIM provisioning (identity/scim): the provisioning client's own id for the person, and the name parts. */
  externalId?: string | undefined;
  givenName?: string | undefined;
  familyName?: string | undefined;
}

/** Profile fields an update may clear (`null`); the others can only be changed. */
const CLEARABLE = ["email", "externalId", "givenName", "familyName"] as const;
type Clearable = (typeof CLEARABLE)[number];

export interface PrincipalState extends PrincipalProfile {
  id: string;
  exists: boolean;
  kind: PrincipalKind;
  source: PrincipalSource;
  disabled: boolean;
  disabledReason?: string | undefined;
  /** Consecutive failed sign-ins since the last success or unlock. */
  failedLogins: number;
  /** ISO time until which sign-in is refused; undefined when not locked. */
  lockedUntil?: string | undefined;
  passwordSet: boolean;
  totp: "none" | "pending" | "enabled";
}

/** Lockout policy: `maxFailures` consecutive failures lock the account for `lockMinutes`. */
export interface LockoutPolicy {
  maxFailures: number;
  lockMinutes: number;
}
export const DEFAULT_LOCKOUT: LockoutPolicy = { maxFailures: 5, lockMinutes: 15 };

export type PrincipalCommand =
  | ({ type: "create"; kind: PrincipalKind; source?: PrincipalSource } & PrincipalProfile)
  | ({ type: "update" } & Partial<Omit<PrincipalProfile, Clearable>> & { [K in Clearable]?: string | null | undefined })
  | { type: "disable"; reason: string }
  | { type: "enable" }
  /** The hash itself goes to the credential store, never into an event. */
  | { type: "setPassword"; at: string }
  | { type: "recordLoginFailure"; at: string; policy: LockoutPolicy }
  | { type: "recordLogin"; at: string; method: string }
  | { type: "unlock" }
  | { type: "startTotp"; at: string }
  | { type: "activateTotp"; at: string }
  | { type: "removeTotp" };

export const PrincipalEvents = {
  Created: "PrincipalCreated",
  Updated: "PrincipalUpdated",
  Disabled: "PrincipalDisabled",
  Enabled: "PrincipalEnabled",
  PasswordSet: "PasswordSet",
  LoginFailed: "LoginFailed",
  LoginSucceeded: "LoginSucceeded",
  Locked: "PrincipalLocked",
  Unlocked: "PrincipalUnlocked",
  TotpEnrollmentStarted: "TotpEnrollmentStarted",
  TotpEnabled: "TotpEnabled",
  TotpRemoved: "TotpRemoved",
} as const;

/** Whether a principal is locked at `now` (pure: the caller passes the clock). */
export function isLocked(s: PrincipalState, now: Date): boolean {
  return s.lockedUntil !== undefined && Date.parse(s.lockedUntil) > now.getTime();
}

/** The SCIM-only profile fields a command or event carries (absent ones are left out, so older events stay as they were). */
const scimFields = (x: Pick<PrincipalProfile, Clearable>) => ({
  ...(x.externalId !== undefined ? { externalId: x.externalId } : {}),
  ...(x.givenName !== undefined ? { givenName: x.givenName } : {}),
  ...(x.familyName !== undefined ? { familyName: x.familyName } : {}),
});

const must = (s: PrincipalState) => {
  if (!s.exists) throw notFound(`no principal ${s.id}`);
};

export const principalDecider: Decider<PrincipalState, PrincipalCommand> = {
  aggregateType: "principal",
  initialState: (id) => ({ id, exists: false, kind: "person", source: { kind: "local" }, displayName: id, disabled: false, failedLogins: 0, passwordSet: false, totp: "none" }),
  decide(s, c): NewEvent[] {
    switch (c.type) {
      case "create": {
        if (s.exists) throw alreadyExists(`principal ${s.id} already exists`);
        assertName("principal id", s.id);
        if (c.email !== undefined && !/^[^\s@]+@[^\s@]+$/.test(c.email)) throw invalid(`email ${JSON.stringify(c.email)} is not an address`);
        return [ev(PrincipalEvents.Created, { kind: c.kind, source: c.source ?? { kind: "local" }, displayName: c.displayName, email: c.email, organization: c.organization, orgUnit: c.orgUnit, ...scimFields(c) })];
      }
      case "update": {
        must(s);
        if (typeof c.email === "string" && !/^[^\s@]+@[^\s@]+$/.test(c.email)) throw invalid(`email ${JSON.stringify(c.email)} is not an address`);
        const changed: Record<string, string | null> = {};
        for (const k of ["displayName", "organization", "orgUnit"] as const) if (c[k] !== undefined && c[k] !== s[k]) changed[k] = c[k];
        // null clears a field (a SCIM replace without it); clearing an absent field changes nothing.
        for (const k of CLEARABLE) if (c[k] !== undefined && (c[k] ?? undefined) !== s[k]) changed[k] = c[k];
        return Object.keys(changed).length ? [ev(PrincipalEvents.Updated, changed)] : [];
      }
      case "disable":
        must(s);
        // Disabling again with another reason records it (a SCIM DELETE of a disabled person says so).
        return s.disabled && s.disabledReason === c.reason ? [] : [ev(PrincipalEvents.Disabled, { reason: c.reason })];
      case "enable":
        must(s);
        return s.disabled ? [ev(PrincipalEvents.Enabled, {})] : [];
      case "setPassword":
        must(s);
        if (s.source.kind !== "local") throw invalid(`principal ${s.id} signs in with its ${s.source.kind} directory; its password is set there`);
        if (s.kind !== "person") throw invalid(`principal ${s.id} is a ${s.kind}: services and agents use API keys or client credentials, not passwords`);
        return [ev(PrincipalEvents.PasswordSet, { at: c.at })];
      case "recordLoginFailure": {
        must(s);
        const failures = s.failedLogins + 1;
        const out: NewEvent[] = [ev(PrincipalEvents.LoginFailed, { at: c.at, failures })];
        if (failures >= c.policy.maxFailures) out.push(ev(PrincipalEvents.Locked, { until: new Date(Date.parse(c.at) + c.policy.lockMinutes * 60_000).toISOString(), failures }));
        return out;
      }
      case "recordLogin":
        must(s);
        if (s.disabled) throw new RealmError("FORBIDDEN", `principal ${s.id} is disabled`);
        if (isLocked(s, new Date(c.at))) throw new RealmError("FORBIDDEN", `principal ${s.id} is locked`);
        return [ev(PrincipalEvents.LoginSucceeded, { at: c.at, method: c.method })];
      case "unlock":
        must(s);
        return s.lockedUntil !== undefined || s.failedLogins > 0 ? [ev(PrincipalEvents.Unlocked, {})] : [];
      case "startTotp":
        must(s);
        if (s.totp === "enabled") throw alreadyExists(`principal ${s.id} already has a TOTP second factor; remove it first`);
        return [ev(PrincipalEvents.TotpEnrollmentStarted, { at: c.at })];
      case "activateTotp":
        must(s);
        if (s.totp !== "pending") throw invalid(`principal ${s.id} has no TOTP enrollment to confirm`);
        return [ev(PrincipalEvents.TotpEnabled, { at: c.at })];
      case "removeTotp":
        must(s);
        return s.totp === "none" ? [] : [ev(PrincipalEvents.TotpRemoved, {})];
    }
  },
  evolve(s, e: EventEnvelope): PrincipalState {
    switch (e.type) {
      case PrincipalEvents.Created: {
        const d = dataOf<{ kind: PrincipalKind; source: PrincipalSource } & PrincipalProfile>(e);
        return { ...s, exists: true, kind: d.kind, source: d.source, displayName: d.displayName, email: d.email, organization: d.organization, orgUnit: d.orgUnit, ...scimFields(d) };
      }
      case PrincipalEvents.Updated: {
        const next: PrincipalState = { ...s };
        for (const [k, v] of Object.entries(dataOf<Record<string, string | null>>(e))) (next as unknown as Record<string, unknown>)[k] = v ?? undefined;
        return next;
      }
      case PrincipalEvents.Disabled:
        return { ...s, disabled: true, disabledReason: dataOf<{ reason: string }>(e).reason };
      case PrincipalEvents.Enabled:
        return { ...s, disabled: false, disabledReason: undefined };
      case PrincipalEvents.PasswordSet:
        return { ...s, passwordSet: true, failedLogins: 0, lockedUntil: undefined };
      case PrincipalEvents.LoginFailed:
        return { ...s, failedLogins: dataOf<{ failures: number }>(e).failures };
      case PrincipalEvents.Locked:
        return { ...s, lockedUntil: dataOf<{ until: string }>(e).until };
      case PrincipalEvents.LoginSucceeded:
      case PrincipalEvents.Unlocked:
        return { ...s, failedLogins: 0, lockedUntil: undefined };
      case PrincipalEvents.TotpEnrollmentStarted:
        return { ...s, totp: "pending" };
      case PrincipalEvents.TotpEnabled:
        return { ...s, totp: "enabled" };
      case PrincipalEvents.TotpRemoved:
        return { ...s, totp: "none" };
      default:
        return s;
    }
  },
};
