import type { Decider, NewEvent } from "../../services/kernel/index.js";
import { alreadyExists, invalid, notFound } from "../../services/kernel/index.js";
import { assertName, dataOf, ev } from "./common.js";
import type { GroupState } from "./group.js";
import type { PrincipalState } from "./principal.js";

/**
 * An LDAP directory the realm federates with (FreeIPA / OpenLDAP style). The bind password is a secret:
 * it lives in the credential store, the event says only that one is set.
 */
export interface LdapDirectoryConfig {
  url: string;
  bindDn: string;
  usersBase: string;
  groupsBase: string;
  /** Default (objectClass=inetOrgPerson). */
  userFilter: string;
  /** Default (|(objectClass=groupOfNames)(objectClass=posixGroup)). */
  groupFilter: string;
  /** Seconds between scheduled syncs; 0 = on demand only. */
  syncIntervalSeconds: number;
}

export interface FederationState {
  id: string;
  exists: boolean;
  config?: LdapDirectoryConfig | undefined;
  lastSync?: { at: string; users: number; groups: number } | undefined;
}

export type FederationCommand = { type: "register"; config: LdapDirectoryConfig } | { type: "recordSync"; at: string; users: number; groups: number; skipped: string[] };

export const FederationEvents = { Registered: "DirectoryRegistered", Synced: "DirectorySynced" } as const;

export const federationDecider: Decider<FederationState, FederationCommand> = {
  aggregateType: "directory",
  initialState: (id) => ({ id, exists: false }),
  decide(s, c): NewEvent[] {
    if (c.type === "register") {
      if (s.exists) throw alreadyExists(`directory ${s.id} already exists`);
      assertName("directory id", s.id);
      if (!/^ldaps?:\/\//.test(c.config.url)) throw invalid(`directory URL ${c.config.url} must be ldap:// or ldaps://`);
      return [ev(FederationEvents.Registered, c.config)];
    }
    if (!s.exists) throw notFound(`no directory ${s.id}`);
    return [ev(FederationEvents.Synced, { at: c.at, users: c.users, groups: c.groups, skipped: c.skipped })];
  },
  evolve(s, e) {
    if (e.type === FederationEvents.Registered) return { ...s, exists: true, config: dataOf<LdapDirectoryConfig>(e) };
    if (e.type === FederationEvents.Synced) {
      const d = dataOf<{ at: string; users: number; groups: number }>(e);
      return { ...s, lastSync: { at: d.at, users: d.users, groups: d.groups } };
    }
    return s;
  },
};

/** What the directory holds now (read by the LDAP adapter). */
export interface LdapSnapshot {
  users: { uid: string; dn: string; displayName: string; email?: string | undefined }[];
  groups: { cn: string; dn: string; members: string[] }[];
}

export type SyncStep =
  | { kind: "createPrincipal"; id: string; dn: string; displayName: string; email?: string | undefined }
  | { kind: "updatePrincipal"; id: string; displayName: string; email?: string | undefined }
  | { kind: "disablePrincipal"; id: string }
  | { kind: "enablePrincipal"; id: string }
  | { kind: "createGroup"; id: string; dn: string; displayName: string }
  | { kind: "setMembers"; id: string; members: string[] };

export const DISABLED_BY_SYNC = "removed from the LDAP directory";

/**
 * Pure: the steps that bring the realm in line with a directory snapshot. Users gone from the directory
 * are disabled, never deleted (their history and audit trail stay); a returning user is enabled again.
 * Names already owned by a local principal or group (or another directory) are skipped and reported.
 */
export function planSync(directory: string, snapshot: LdapSnapshot, principals: Map<string, PrincipalState>, groups: Map<string, GroupState>): { steps: SyncStep[]; skipped: string[] } {
  const steps: SyncStep[] = [];
  const skipped: string[] = [];
  const ours = (src: PrincipalState["source"] | GroupState["source"]) => src.kind === "ldap" && src.directory === directory;
  const present = new Set<string>();
  for (const u of snapshot.users) {
    const p = principals.get(u.uid);
    if (p?.exists && !ours(p.source)) {
      skipped.push(`user ${u.uid}: a principal of that name is not from this directory`);
      continue;
    }
    present.add(u.uid);
    if (!p?.exists) steps.push({ kind: "createPrincipal", id: u.uid, dn: u.dn, displayName: u.displayName, email: u.email });
    else {
      if (p.displayName !== u.displayName || p.email !== u.email) steps.push({ kind: "updatePrincipal", id: u.uid, displayName: u.displayName, email: u.email });
      if (p.disabled && p.disabledReason === DISABLED_BY_SYNC) steps.push({ kind: "enablePrincipal", id: u.uid });
    }
  }
  for (const p of principals.values()) if (p.exists && ours(p.source) && !present.has(p.id) && !p.disabled) steps.push({ kind: "disablePrincipal", id: p.id });
  for (const g of snapshot.groups) {
    const existing = groups.get(g.cn);
    if (existing?.exists && !ours(existing.source)) {
      skipped.push(`group ${g.cn}: a group of that name is not from this directory`);
      continue;
    }
    if (!existing?.exists) steps.push({ kind: "createGroup", id: g.cn, dn: g.dn, displayName: g.cn });
    const members = [...new Set(g.members.filter((m) => present.has(m)))].sort();
    const current = [...(existing?.members ?? [])].sort();
    if (JSON.stringify(members) !== JSON.stringify(current)) steps.push({ kind: "setMembers", id: g.cn, members });
  }
  const seen = new Set(snapshot.groups.map((g) => g.cn));
  for (const g of groups.values()) if (g.exists && ours(g.source) && !seen.has(g.id) && g.members.length) steps.push({ kind: "setMembers", id: g.id, members: [] });
  return { steps, skipped };
}
