import { existsSync, readFileSync } from "node:fs";
import { commandMetaOf, type Endpoint } from "../services/host/context.js";
import { RealmError, type Decider } from "../services/kernel/index.js";
import { IdentityCore } from "./core.js";
import type { Directory } from "./domain/directory.js";
import { grantsOf } from "./authorize.js";
import { policyDecider } from "./domain/policy.js";
import { principalDecider } from "./domain/principal.js";
import { roleDecider } from "./domain/role.js";
import { directoryEndpoints } from "./endpoints.js";
import { openBundle, type SealedBundle } from "./nats/keystore.js";

/**
 * The first admin of a realm. `admin.bootstrap` (NATS only: it needs realm creds, never the HTTP port)
 * creates the admin principal, the `admin` role and its binding, and issues one API key, shown once. It
 * works only while no principal holds an unscoped realm-admin grant, or with the passphrase of the operator identity
 * bundle (recovery, when every admin credential is lost). Each bootstrap is recorded on the `bootstrap/realm`
 * aggregate, appended with the expected version, so two racing first bootstraps cannot both win.
 */
export const ADMIN_ROLE = "realm-admin";

interface BootstrapState {
  count: number;
}
type BootstrapCommand = { type: "bootstrap"; principal: string; recovery: boolean; adminExists: boolean };

export const BootstrapEvents = { AdminBootstrapped: "AdminBootstrapped" } as const;

export const bootstrapDecider: Decider<BootstrapState, BootstrapCommand> = {
  aggregateType: "bootstrap",
  initialState: () => ({ count: 0 }),
  decide(_s, c) {
    if (c.adminExists && !c.recovery) {
      throw new RealmError("FORBIDDEN", "the realm has an admin already: bootstrap works only once, or with the operator bundle's passphrase (realm identity bootstrap --passphrase-file)");
    }
    return [{ type: BootstrapEvents.AdminBootstrapped, data: { principal: c.principal, recovery: c.recovery } }];
  },
  evolve: (s) => ({ count: s.count + 1 }),
};

/** True when some enabled principal holds, now, an unscoped grant of everything (`*`): an admin. */
export function adminExists(d: Directory, now = new Date()): boolean {
  for (const p of d.principals.values()) if (p.exists && !p.disabled && grantsOf(d, p.id, now).some((g) => !g.scope && g.permissions.includes("*"))) return true;
  return false;
}

export function bootstrapEndpoint(core: IdentityCore, opts: { operatorBundle?: string | undefined }): Endpoint {
  const issue = directoryEndpoints(core, { issuer: () => "cim-realm" }).find((e) => e.name === "apikey.issue")!;
  return {
    kind: "command",
    name: "admin.bootstrap",
    description: "Create the first admin (principal, realm-admin binding) and return its API key once. Only while no admin exists, or with the operator bundle's passphrase. NATS only.",
    auth: "none",
    transport: "nats",
    secret: ["key"],
    input: {
      type: "object",
      additionalProperties: false,
      properties: { principal: { type: "string", minLength: 1, maxLength: 128, default: "admin" }, passphrase: { type: "string", minLength: 1, maxLength: 1024 } },
    },
    async handle(i: { principal: string; passphrase?: string }, ctx) {
      let recovery = false;
      if (i.passphrase !== undefined) {
        if (!opts.operatorBundle || !existsSync(opts.operatorBundle)) throw new RealmError("VALIDATION", "this realm holds no operator bundle to check a passphrase against");
        openBundle(JSON.parse(readFileSync(opts.operatorBundle, "utf8")) as SealedBundle, i.passphrase);
        recovery = true;
      }
      const meta = commandMetaOf({ ...ctx, actor: "bootstrap" });
      const derived = () => IdentityCore.derived(meta);
      try {
        const r = await core.run(bootstrapDecider, "realm", { type: "bootstrap", principal: i.principal, recovery, adminExists: adminExists(core.dir) }, meta);
        if (r.replayed) throw new RealmError("CONFLICT", "this bootstrap command already ran; its API key was shown once");
      } catch (err) {
        if (err instanceof RealmError && err.code === "CONFLICT" && !/already ran/.test(err.message)) throw new RealmError("FORBIDDEN", "another bootstrap ran at the same moment");
        throw err;
      }
      if (!core.dir.principals.get(i.principal)?.exists) await core.run(principalDecider, i.principal, { type: "create", kind: "service", displayName: "Realm administrator" }, derived());
      if (!core.dir.roles.get(ADMIN_ROLE)?.exists) await core.run(roleDecider, ADMIN_ROLE, { type: "define", description: "Everything: every command and query of every context", permissions: ["*"] }, derived());
      const binding = `${i.principal}-admin`;
      const b = core.dir.policies.get(binding);
      if (!b?.exists) await core.run(policyDecider, binding, { type: "bind", role: ADMIN_ROLE, subject: { kind: "principal", id: i.principal }, conditions: {} }, derived());
      else if (b.revoked || b.role !== ADMIN_ROLE) await core.run(policyDecider, `${binding}-${Date.now()}`, { type: "bind", role: ADMIN_ROLE, subject: { kind: "principal", id: i.principal }, conditions: {} }, derived());
      const key = (await issue.handle({ owner: i.principal, label: recovery ? "bootstrap (recovery)" : "bootstrap", roles: [ADMIN_ROLE] }, { ...ctx, actor: "bootstrap", commandId: derived().commandId })) as { id: string; key: string };
      return { principal: i.principal, apiKeyId: key.id, key: key.key, recovery };
    },
  };
}
