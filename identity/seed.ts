
import { RealmError } from "../services/kernel/errors.js";
import { newId } from "../services/kernel/envelope.js";
import { BUILTIN_ROLES } from "./authorize.js";
import type { IdentityCore } from "./core.js";
import { clientDecider } from "./domain/client.js";
import { roleDecider } from "./domain/role.js";
import { realmClientRegistrations } from "./realm-clients.js";

/**
 * What every realm starts with, recorded as events by `realm-init` the first time the identity context
 * runs: the built-in roles (editable afterwards with role.define; a role that exists is left as it is)
 * and the realm's own OIDC clients (realm-cli, realm-console). Racing replicas meet on the aggregates'
 * expected versions: ALREADY_EXISTS and CONFLICT mean another one did it.
 */
export async function seedIdentity(core: IdentityCore, publicBase: string | undefined): Promise<void> {
  const meta = () => ({ commandId: newId(), actor: "realm-init" });
  const tolerate = (err: unknown) => {
    if (err instanceof RealmError && (err.code === "ALREADY_EXISTS" || err.code === "CONFLICT")) return;
    throw err;
  };
  for (const r of BUILTIN_ROLES) {
    if (core.dir.roles.get(r.id)?.exists) continue;
    await core.run(roleDecider, r.id, { type: "define", description: r.description, permissions: r.permissions, ...(r.self ? { self: true } : {}) }, meta()).catch(tolerate);
  }
  for (const { id, registration } of realmClientRegistrations(publicBase ?? "http://127.0.0.1:8080")) {
    if (core.dir.clients.get(id)?.exists) continue;
    await core.run(clientDecider, id, { type: "register", ...registration }, meta()).catch(tolerate);
  }
}
