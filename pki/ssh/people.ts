import type { NatsConnection } from "@nats-io/nats-core";
import { EventStore, Projection, type ProblemLog, type ProjectionDefinition, type RealmTrust } from "../../services/kernel/index.js";
import { IDENTITY_CONTEXT, IdentityEventTypes as I } from "../../identity/contract.js";

/** A principal as the SSH CA sees it: whether it may get a certificate, and the groups it is in. */
export interface SshPerson {
  kind: string;
  disabled: boolean;
  groups: Set<string>;
}

export interface SshPeople {
  /** The principal's login names and groups (its SSH principals), or undefined when it does not exist. */
  of(id: string): { logins: string[]; disabled: boolean; kind: string } | undefined;
  catchUp(): Promise<void>;
  projection: Projection<Map<string, SshPerson>>;
  stop(): Promise<void>;
}

/** The fold of REALM_IDENTITY the SSH CA keeps: principal kind and disabled flag, group memberships. */
export function sshPeopleProjection(): ProjectionDefinition<Map<string, SshPerson>> {
  const person = (m: Map<string, SshPerson>, id: string) => {
    let p = m.get(id);
    if (!p) m.set(id, (p = { kind: "unknown", disabled: true, groups: new Set() }));
    return p;
  };
  return {
    name: "pki-ssh-people",
    version: 1,
    initial: () => new Map(),
    apply(m, e) {
      const d = (e.data ?? {}) as { kind?: string; principal?: string };
      if (e.aggregate.type === "principal") {
        if (e.type === I.PrincipalCreated) Object.assign(person(m, e.aggregate.id), { kind: d.kind ?? "person", disabled: false });
        else if (e.type === I.PrincipalDisabled) person(m, e.aggregate.id).disabled = true;
        else if (e.type === I.PrincipalEnabled) person(m, e.aggregate.id).disabled = false;
      } else if (e.aggregate.type === "group" && d.principal) {
        if (e.type === I.GroupMemberAdded) person(m, d.principal).groups.add(e.aggregate.id);
        else if (e.type === I.GroupMemberRemoved) person(m, d.principal).groups.delete(e.aggregate.id);
      }
      return m;
    },
    // A projection of REALM_IDENTITY that the PKI keeps: its snapshots are the PKI's (its bucket, its key).
    snapshot: {
      owner: "pki",
      *encode(m) {
        for (const [id, p] of m) yield [id, p.kind, p.disabled, [...p.groups]];
      },
      decode(records) {
        const m = new Map<string, SshPerson>();
        for (const rec of records) {
          const [id, kind, disabled, groups] = rec as [string, string, boolean, string[]];
          m.set(id, { kind, disabled, groups: new Set(groups) });
        }
        return m;
      },
    },
  };
}

/**
 * Principals and group memberships followed from the identity context's events (REALM_IDENTITY, read only,
 * verified against the trust), so a user certificate's principals come from the person's login name and
 * groups wherever the PKI runs.
 */
export async function followSshPeople(nc: NatsConnection, opts: { trust: RealmTrust; log?: ProblemLog; replicas?: number | undefined }): Promise<SshPeople> {
  const store = await EventStore.open(nc, IDENTITY_CONTEXT, { trust: opts.trust, replicas: opts.replicas });
  const projection = new Projection<Map<string, SshPerson>>(store, sshPeopleProjection(), { log: opts.log });
  await projection.start();
  return {
    projection,
    of(id) {
      const p = projection.state.get(id);
      if (!p || p.kind === "unknown") return undefined;
      return { logins: [id, ...[...p.groups].sort()], disabled: p.disabled, kind: p.kind };
    },
    catchUp: async () => projection.waitFor(await store.lastSequence()),
    stop: () => projection.stop(),
  };
}
