import type { ProjectionDefinition } from "../../services/kernel/projection.js";
import { accountDecider, type AccountState } from "./domain/account.js";
import { userDecider, type UserState } from "./domain/user.js";

/** Read model of NATS accounts, users, signing keys and revocations, folded from REALM_IDENTITY. */
export interface NatsReadModel {
  accounts: Map<string, AccountState>;
  users: Map<string, UserState & { kind: string; scoped: boolean }>;
}

export const natsProjection: ProjectionDefinition<NatsReadModel> = {
  name: "nats-accounts",
  version: 1,
  initial: () => ({ accounts: new Map(), users: new Map() }),
  apply(s, e) {
    if (e.aggregate.type === accountDecider.aggregateType) {
      const prev = s.accounts.get(e.aggregate.id) ?? accountDecider.initialState(e.aggregate.id);
      s.accounts.set(e.aggregate.id, accountDecider.evolve(prev, e));
    } else if (e.aggregate.type === userDecider.aggregateType) {
      const prev = s.users.get(e.aggregate.id) ?? { ...userDecider.initialState(e.aggregate.id), kind: "", scoped: false };
      const d = e.data as { kind?: string; scoped?: boolean };
      s.users.set(e.aggregate.id, { ...userDecider.evolve(prev, e), kind: d.kind ?? prev.kind, scoped: d.scoped ?? prev.scoped });
    }
    return s;
  },
};

/** A user is revoked when its account holds a revocation at or after the user's issue time. */
export function isRevoked(u: UserState, a: AccountState | undefined): boolean {
  if (!a) return false;
  return (a.revocations[u.publicKey] ?? -1) >= u.issuedAt || (a.revocations["*"] ?? -1) >= u.issuedAt;
}
