import { commandMetaOf, type Endpoint, type RequestContext } from "../../services/host/context.js";
import { newId, notFound, RealmError, type CommandMeta } from "../../services/kernel/index.js";
import { IdentityCore } from "../core.js";
import { DISABLED_BY_SYNC, federationDecider, planSync, type LdapDirectoryConfig } from "../domain/federation.js";
import { groupDecider } from "../domain/group.js";
import { principalDecider } from "../domain/principal.js";
import { ldapBind, readDirectory } from "./client.js";

const secretName = (directory: string) => `ldap-bind:${directory}`;

export interface SyncReport {
  directory: string;
  users: number;
  groups: number;
  created: number;
  updated: number;
  disabled: number;
  enabled: number;
  groupChanges: number;
  skipped: string[];
}

/** Runs one sync of a registered directory: read it, plan, apply each step as its own command. */
export async function syncDirectory(core: IdentityCore, directory: string, meta: CommandMeta): Promise<SyncReport> {
  const d = core.dir.federations.get(directory);
  if (!d?.exists || !d.config) throw notFound(`no directory ${directory}`);
  const password = await core.credentials.getSecret(secretName(directory));
  if (password === undefined) throw new RealmError("UNAVAILABLE", `directory ${directory} has no bind password in the credential store`);
  const snapshot = await readDirectory(d.config, password);
  const { steps, skipped } = planSync(directory, snapshot, core.dir.principals, core.dir.groups);
  const report: SyncReport = { directory, users: snapshot.users.length, groups: snapshot.groups.length, created: 0, updated: 0, disabled: 0, enabled: 0, groupChanges: 0, skipped };
  const sub = () => IdentityCore.derived(meta);
  for (const s of steps) {
    switch (s.kind) {
      case "createPrincipal":
        await core.run(principalDecider, s.id, { type: "create", kind: "person", displayName: s.displayName, email: s.email, source: { kind: "ldap", directory, dn: s.dn } }, sub());
        report.created++;
        break;
      case "updatePrincipal":
        await core.run(principalDecider, s.id, { type: "update", displayName: s.displayName, email: s.email }, sub());
        report.updated++;
        break;
      case "disablePrincipal":
        await core.run(principalDecider, s.id, { type: "disable", reason: DISABLED_BY_SYNC }, sub());
        report.disabled++;
        break;
      case "enablePrincipal":
        await core.run(principalDecider, s.id, { type: "enable" }, sub());
        report.enabled++;
        break;
      case "createGroup":
        await core.run(groupDecider, s.id, { type: "create", displayName: s.displayName, source: { kind: "ldap", directory, dn: s.dn } }, sub());
        report.groupChanges++;
        break;
      case "setMembers":
        await core.run(groupDecider, s.id, { type: "setMembers", principals: s.members }, sub());
        report.groupChanges++;
        break;
    }
  }
  await core.run(federationDecider, directory, { type: "recordSync", at: new Date().toISOString(), users: report.users, groups: report.groups, skipped }, sub());
  return report;
}

/**
 * LDAP federation as an extension of the identity context: `directory.register`, `directory.sync`,
 * `directories`; a scheduler syncing each directory every `syncIntervalSeconds`; password sign-in of
 * federated principals delegated to an LDAP bind as the user's DN.
 */
export function ldapFederation(opts: { schedule?: boolean } = {}) {
  return async (core: IdentityCore): Promise<{ endpoints: Endpoint[]; stop: () => Promise<void> }> => {
    core.federated = async (p, password) => {
      if (p.source.kind !== "ldap") return false;
      const d = core.dir.federations.get(p.source.directory);
      if (!d?.config) throw new RealmError("UNAVAILABLE", `directory ${p.source.directory} is not registered`);
      return ldapBind(d.config, p.source.dn, password);
    };
    const running = new Map<string, Promise<SyncReport>>();
    const syncOnce = (directory: string, meta: CommandMeta) => {
      // One sync per directory at a time: a scheduled run and an on-demand one share the result.
      const inFlight = running.get(directory);
      if (inFlight) return inFlight;
      const p = syncDirectory(core, directory, meta).finally(() => running.delete(directory));
      running.set(directory, p);
      return p;
    };
    const timers = new Map<string, NodeJS.Timeout>();
    const schedule = (directory: string, config: LdapDirectoryConfig) => {
      if (opts.schedule === false || config.syncIntervalSeconds <= 0 || timers.has(directory)) return;
      const t = setInterval(() => {
        syncOnce(directory, { commandId: newId(), actor: "ldap-sync" }).catch((err: unknown) => core.log.warn({ directory, err: err instanceof Error ? err.message : String(err) }, "scheduled LDAP sync failed"));
      }, config.syncIntervalSeconds * 1000);
      t.unref();
      timers.set(directory, t);
    };
    for (const d of core.dir.federations.values()) if (d.exists && d.config) schedule(d.id, d.config);
    const str = { type: "string", minLength: 1, maxLength: 512 };
    const endpoints: Endpoint[] = [
      {
        kind: "command",
        name: "directory.register",
        description: "Register an LDAP directory to federate with (the bind password goes to the credential store, not the event)",
        input: {
          type: "object",
          required: ["id", "url", "bindDn", "bindPassword", "usersBase", "groupsBase"],
          additionalProperties: false,
          properties: { id: str, url: str, bindDn: str, bindPassword: { type: "string", maxLength: 1024 }, usersBase: str, groupsBase: str, userFilter: str, groupFilter: str, syncIntervalSeconds: { type: "integer", minimum: 0, maximum: 86400 } },
        },
        async handle(i: Omit<LdapDirectoryConfig, "userFilter" | "groupFilter" | "syncIntervalSeconds"> & Partial<LdapDirectoryConfig> & { id: string; bindPassword: string }, ctx) {
          const config: LdapDirectoryConfig = {
            url: i.url,
            bindDn: i.bindDn,
            usersBase: i.usersBase,
            groupsBase: i.groupsBase,
            userFilter: i.userFilter ?? "(objectClass=inetOrgPerson)",
            groupFilter: i.groupFilter ?? "(|(objectClass=groupOfNames)(objectClass=posixGroup))",
            syncIntervalSeconds: i.syncIntervalSeconds ?? 900,
          };
          federationDecider.decide(core.dir.federations.get(i.id) ?? federationDecider.initialState(i.id), { type: "register", config });
          await core.credentials.setSecret(secretName(i.id), i.bindPassword);
          const r = await core.run(federationDecider, i.id, { type: "register", config }, commandMetaOf(ctx));
          schedule(i.id, config);
          return { directory: r.state };
        },
      },
      {
        kind: "command",
        name: "directory.sync",
        description: "Sync users and groups from an LDAP directory now (users gone from it are disabled, not deleted)",
        input: { type: "object", required: ["id"], additionalProperties: false, properties: { id: str } },
        async handle(i: { id: string }, ctx) {
          return { report: await syncOnce(i.id, commandMetaOf(ctx)) };
        },
      },
      {
        kind: "query",
        name: "directories",
        description: "Registered LDAP directories and their last sync",
        input: { type: "object", additionalProperties: false, properties: {} },
        async handle() {
          return { directories: [...core.dir.federations.values()].filter((d) => d.exists) };
        },
      },
    ];
    return {
      endpoints,
      async stop() {
        for (const t of timers.values()) clearInterval(t);
        await Promise.allSettled(running.values());
      },
    };
  };
}
