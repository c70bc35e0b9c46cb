import { createHash, randomBytes } from "node:crypto";
import { commandMetaOf, type Endpoint, type RequestContext } from "../services/host/context.js";
import { invalid, notFound } from "../services/kernel/index.js";
import type { SecretEscrow } from "../secrets-client/contract.js";
import { checkPasswordPolicy } from "./credentials.js";
import { IdentityCore } from "./core.js";
import { apiKeyDecider } from "./domain/apikey.js";
import { clientDecider, type ClientRegistration, type ClientState } from "./domain/client.js";
import { membership } from "./domain/directory.js";
import { groupDecider } from "./domain/group.js";
import { organizationDecider } from "./domain/organization.js";
import { policyDecider, SCOPE_KINDS, type BindingConditions } from "./domain/policy.js";
import { grantsOf } from "./authorize.js";
import type { Resource, Scope } from "../services/host/authz.js";
import { principalDecider, type PrincipalKind } from "./domain/principal.js";
import { roleDecider } from "./domain/role.js";
import { readAudit } from "./audit.js";
import { ntHash, ntHashSecret } from "./radius/mschap.js";


const str = (max = 256) => ({ type: "string", minLength: 1, maxLength: max });
const id = str(128);
const obj = (required: string[], properties: Record<string, object>) => ({ type: "object", required, additionalProperties: false, properties });
const strings = { type: "array", items: str(), maxItems: 64 };

export const sha256 = (s: string) => `sha256:${createHash("sha256").update(s).digest("hex")}`;

/** The admin API of principals, organizations, groups, roles, policies, API keys, clients and the audit trail. */
/** Answer fields that are secrets, by command (Endpoint.secret: never kept with a command's outcome). */
const SECRET_FIELDS: Record<string, string[]> = {
  "apikey.issue": ["key"],
  "client.register": ["clientSecret"],
  "client.rotateSecret": ["clientSecret"],
  "principal.enrollTotp": ["otpauthUri"],
};

export function directoryEndpoints(core: IdentityCore, opts: { escrow?: SecretEscrow | undefined; issuer: () => string }): Endpoint[] {
  /** `about`: the principal the request is about (org and self scopes hold it or not). */
  type Scoping<I> = { about?: (i: I) => Resource | Resource[] | undefined; filter?: Endpoint["filter"] };
  const cmd = <I>(name: string, description: string, input: object, handle: (i: I, ctx: RequestContext) => Promise<object>, sc: Scoping<I> = {}): Endpoint => ({
    kind: "command",
    name,
    description,
    input,
    handle,
    ...(sc.about ? { resource: sc.about } : {}),
    ...(SECRET_FIELDS[name] ? { secret: SECRET_FIELDS[name] } : {}),
  });
  const query = <I>(name: string, description: string, input: object, handle: (i: I, ctx: RequestContext) => Promise<object>, http?: Endpoint["http"], sc: Scoping<I> = {}): Endpoint => ({
    kind: "query",
    name,
    description,
    input,
    handle,
    ...(http ? { http } : {}),
    ...(sc.about ? { resource: sc.about } : {}),
    ...(sc.filter ? { filter: sc.filter } : {}),
  });
  const principal = (id: string): Resource => ({ kind: "principal", id });
  const byId = { about: (i: { id: string }) => principal(i.id) };
  const principalOut = (pid: string) => {
    const p = core.dir.principals.get(pid);
    if (!p?.exists) throw notFound(`no principal ${pid}`);
    const { failedLogins: _f, ...rest } = p;
    return { principal: { ...rest, locked: p.lockedUntil !== undefined && Date.parse(p.lockedUntil) > Date.now(), ...membership(core.dir, pid, new Date()) } };
  };

  return [
    cmd<{ id: string; kind: PrincipalKind; displayName: string; email?: string; organization?: string; orgUnit?: string }>(
      "principal.create",
      "Create a person, service or agent principal",
      obj(["id", "kind", "displayName"], { id, kind: { enum: ["person", "service", "agent"] }, displayName: str(), email: str(), organization: id, orgUnit: id }),
      async (i, ctx) => {
        if (i.organization) {
          const org = core.dir.organizations.get(i.organization);
          if (!org?.exists) throw notFound(`no organization ${i.organization}`);
          if (i.orgUnit && !org.units[i.orgUnit]) throw notFound(`organization ${i.organization} has no unit ${i.orgUnit}`);
        }
        const { id: pid, ...rest } = i;
        await core.run(principalDecider, pid, { type: "create", ...rest }, commandMetaOf(ctx));
        return principalOut(pid);
      },
      { about: (i) => (i.organization ? { kind: "org", id: i.orgUnit ? `${i.organization}/${i.orgUnit}` : i.organization } : undefined) },
    ),
    cmd<{ id: string; displayName?: string; email?: string; orgUnit?: string }>("principal.update", "Change a principal's profile", obj(["id"], { id, displayName: str(), email: str(), orgUnit: id }), async (i, ctx) => {
      const { id: pid, ...rest } = i;
      await core.run(principalDecider, pid, { type: "update", ...rest }, commandMetaOf(ctx));
      return principalOut(pid);
    }, byId),
    cmd<{ id: string; reason: string }>("principal.disable", "Disable a principal (it can no longer sign in; its API keys stop working)", obj(["id", "reason"], { id, reason: str() }), async (i, ctx) => {
      await core.run(principalDecider, i.id, { type: "disable", reason: i.reason }, commandMetaOf(ctx));
      return principalOut(i.id);
    }, byId),
    cmd<{ id: string }>("principal.enable", "Enable a disabled principal", obj(["id"], { id }), async (i, ctx) => {
      await core.run(principalDecider, i.id, { type: "enable" }, commandMetaOf(ctx));
      return principalOut(i.id);
    }, byId),
    cmd<{ id: string; password: string; ntHash?: boolean }>(
      "principal.setPassword",
      "Set a person's password (Argon2id hash kept in the credential KV bucket; the event says only PasswordSet). ntHash: also keep its NT hash, sealed, for RADIUS MS-CHAP (without it, a kept NT hash is dropped)",
      obj(["id", "password"], { id, password: { type: "string", maxLength: 1024 }, ntHash: { type: "boolean" } }),
      async (i, ctx) => {
        checkPasswordPolicy(i.password);
        const p = core.dir.principals.get(i.id);
        if (!p?.exists) throw notFound(`no principal ${i.id}`);
        // Decide first (refuses federated principals and services), then store the hash, then append.
        principalDecider.decide(p, { type: "setPassword", at: new Date().toISOString() });
        await core.credentials.setPassword(i.id, i.password);
        if (i.ntHash === true) await core.credentials.setSecret(ntHashSecret(i.id), await ntHash(i.password));
        else await core.credentials.removeSecret(ntHashSecret(i.id));
        await core.run(principalDecider, i.id, { type: "setPassword", at: new Date().toISOString() }, commandMetaOf(ctx));
        return { id: i.id, passwordSet: true };
      },
      byId,
    ),
    cmd<{ id: string }>("principal.unlock", "Lift a lockout after failed sign-ins", obj(["id"], { id }), async (i, ctx) => {
      await core.run(principalDecider, i.id, { type: "unlock" }, commandMetaOf(ctx));
      return principalOut(i.id);
    }, byId),
    cmd<{ id: string }>("principal.enrollTotp", "Start a TOTP enrollment; returns the otpauth:// URI once", obj(["id"], { id }), async (i, ctx) => {
      const p = core.dir.principals.get(i.id);
      if (!p?.exists) throw notFound(`no principal ${i.id}`);
      principalDecider.decide(p, { type: "startTotp", at: new Date().toISOString() });
      const { uri } = await core.credentials.startTotp(i.id, opts.issuer());
      await core.run(principalDecider, i.id, { type: "startTotp", at: new Date().toISOString() }, commandMetaOf(ctx));
      return { id: i.id, otpauthUri: uri };
    }, byId),
    cmd<{ id: string; code: string }>("principal.confirmTotp", "Confirm a TOTP enrollment with a current code", obj(["id", "code"], { id, code: { type: "string", pattern: "^[0-9]{6}$" } }), async (i, ctx) => {
      const p = core.dir.principals.get(i.id);
      if (!p?.exists) throw notFound(`no principal ${i.id}`);
      if (p.totp === "pending" && !(await core.credentials.verifyTotp(i.id, i.code))) throw invalid("the code does not match");
      await core.run(principalDecider, i.id, { type: "activateTotp", at: new Date().toISOString() }, commandMetaOf(ctx));
      return principalOut(i.id);
    }, byId),
    cmd<{ id: string; displayName: string }>("organization.create", "Create an organization", obj(["id", "displayName"], { id, displayName: str() }), async (i, ctx) => {
      const r = await core.run(organizationDecider, i.id, { type: "create", displayName: i.displayName }, commandMetaOf(ctx));
      return { organization: r.state };
    }),
    cmd<{ id: string; unit: string; displayName: string; parent?: string }>(
      "organization.addUnit",
      "Add an organizational unit",
      obj(["id", "unit", "displayName"], { id, unit: id, displayName: str(), parent: id }),
      async (i, ctx) => {
        const r = await core.run(organizationDecider, i.id, { type: "addUnit", unit: i.unit, displayName: i.displayName, parent: i.parent }, commandMetaOf(ctx));
        return { organization: r.state };
      },
      { about: (i) => ({ kind: "org", id: i.parent ? `${i.id}/${i.parent}` : i.id }) },
    ),
    cmd<{ id: string; displayName: string }>("group.create", "Create a group", obj(["id", "displayName"], { id, displayName: str() }), async (i, ctx) => {
      const r = await core.run(groupDecider, i.id, { type: "create", displayName: i.displayName }, commandMetaOf(ctx));
      return { group: r.state };
    }),
    cmd<{ id: string; principal: string }>("group.addMember", "Add a principal to a group", obj(["id", "principal"], { id, principal: id }), async (i, ctx) => {
      if (!core.dir.principals.get(i.principal)?.exists) throw notFound(`no principal ${i.principal}`);
      const r = await core.run(groupDecider, i.id, { type: "addMember", principal: i.principal }, commandMetaOf(ctx));
      return { group: r.state };
    }),
    cmd<{ id: string; principal: string }>("group.removeMember", "Remove a principal from a group", obj(["id", "principal"], { id, principal: id }), async (i, ctx) => {
      const r = await core.run(groupDecider, i.id, { type: "removeMember", principal: i.principal }, commandMetaOf(ctx));
      return { group: r.state };
    }),
    cmd<{ id: string }>("group.delete", "Delete a group: its members leave it, and bindings to it stop holding", obj(["id"], { id }), async (i, ctx) => {
      await core.run(groupDecider, i.id, { type: "delete" }, commandMetaOf(ctx));
      return { id: i.id, deleted: true };
    }),
    cmd<{ id: string; description: string; permissions: string[]; self?: boolean }>(
      "role.define",
      "Define or redefine a role: permission patterns (`dns:zone.create`, `dns:*`, `*:read`, ...); `self`: only for requests about the caller",
      obj(["id", "description", "permissions"], { id, description: str(), permissions: strings, self: { type: "boolean" } }),
      async (i, ctx) => {
      const r = await core.run(roleDecider, i.id, { type: "define", description: i.description, permissions: i.permissions, self: i.self }, commandMetaOf(ctx));
      return { role: r.state };
      },
    ),
    cmd<{ id: string; role: string; subject: { kind: "principal" | "group"; id: string }; conditions?: BindingConditions; scope?: Scope }>(
      "policy.bind",
      "Bind a role to a principal or group, under optional conditions (time window, organization, unit) and within an optional resource scope (zone and subzones, NATS account, subject namespace, PKI issuer, organization or unit subtree)",
      obj(["id", "role", "subject"], {
        id,
        role: id,
        subject: obj(["kind", "id"], { kind: { enum: ["principal", "group"] }, id }),
        conditions: obj([], { notBefore: str(64), notAfter: str(64), organization: id, orgUnit: id }),
        scope: obj(["kind"], { kind: { enum: [...SCOPE_KINDS] }, id: str(253), unit: id }),
      }),
      async (i, ctx) => {
        if (!core.dir.roles.get(i.role)?.exists) throw notFound(`no role ${i.role}`);
        const target = i.subject.kind === "principal" ? core.dir.principals.get(i.subject.id) : core.dir.groups.get(i.subject.id);
        if (!target?.exists) throw notFound(`no ${i.subject.kind} ${i.subject.id}`);
        const r = await core.run(policyDecider, i.id, { type: "bind", role: i.role, subject: i.subject, conditions: i.conditions ?? {}, ...(i.scope ? { scope: { kind: i.scope.kind, id: i.scope.id ?? "", ...(i.scope.unit ? { unit: i.scope.unit } : {}) } } : {}) }, commandMetaOf(ctx));
        return { policy: r.state };
      },
    ),
    cmd<{ id: string }>("policy.revoke", "Revoke a role binding", obj(["id"], { id }), async (i, ctx) => {
      const r = await core.run(policyDecider, i.id, { type: "revoke" }, commandMetaOf(ctx));
      return { policy: r.state };
    }),
    cmd<{ owner: string; label: string; roles: string[]; expiresAt?: string }>(
      "apikey.issue",
      "Issue an API key for a principal, scoped to roles; the key is returned once (or escrowed) and stored hashed",
      obj(["owner", "label", "roles"], { owner: id, label: str(), roles: strings, expiresAt: str(64) }),
      async (i, ctx) => {
        const owner = core.dir.principals.get(i.owner);
        if (!owner?.exists) throw notFound(`no principal ${i.owner}`);
        for (const r of i.roles) if (!core.dir.roles.get(r)?.exists) throw notFound(`no role ${r}`);
        // A key never carries more than its owner holds (and at use only what the owner holds then).
        const held = new Set(grantsOf(core.dir, i.owner).map((g) => g.role));
        const lacking = i.roles.filter((r) => !held.has(r));
        if (lacking.length) throw invalid(`principal ${i.owner} does not hold the role(s) ${lacking.join(", ")}: an API key can carry only roles its owner holds`);
        const keyId = randomBytes(8).toString("hex");
        const secret = randomBytes(32).toString("base64url");
        const key = `rk_${keyId}_${secret}`;
        const issue = { type: "issue" as const, owner: i.owner, label: i.label, roles: i.roles, secretHash: sha256(secret), expiresAt: i.expiresAt, now: new Date().toISOString(), ...(ctx.authz?.mode === "insecure-no-auth" ? { insecure: true } : {}) };
        // With an escrow the key goes to the owner's collection (after the command proved valid) and only its
        // reference to the event and the reply; without one it is returned once.
        apiKeyDecider.decide(apiKeyDecider.initialState(keyId), issue);
        const ref = opts.escrow ? await opts.escrow.store({ principal: i.owner, name: `apikey:${keyId}`, secret: key, notes: `API key ${keyId} (${i.label}), roles ${i.roles.join(", ")}`, cause: commandMetaOf(ctx) }) : undefined;
        const r = await core.run(apiKeyDecider, keyId, { ...issue, ...(ref ? { secretRef: ref } : {}) }, commandMetaOf(ctx));
        return { id: keyId, ...(ref ? { secretRef: ref } : { key }), roles: r.state.roles, expiresAt: r.state.expiresAt };
      },
      { about: (i) => principal(i.owner) },
    ),
    cmd<{ id: string; reason: string }>("apikey.revoke", "Revoke an API key", obj(["id", "reason"], { id, reason: str() }), async (i, ctx) => {
      await core.run(apiKeyDecider, i.id, { type: "revoke", reason: i.reason }, commandMetaOf(ctx));
      return { id: i.id, revoked: true };
    }, { about: (i) => principal(core.dir.apiKeys.get(i.id)?.owner ?? "") }),
    cmd<{ id: string } & Partial<ClientRegistration>>(
      "client.register",
      "Register an OIDC client; a confidential client's secret is returned once (or escrowed), events keep its hash",
      obj(["id", "displayName", "grantTypes"], {
        id,
        displayName: str(),
        public: { type: "boolean" },
        redirectUris: strings,
        postLogoutRedirectUris: strings,
        grantTypes: { type: "array", minItems: 1, items: { enum: ["authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"] } },
        scopes: strings,
        trusted: { type: "boolean" },
        principal: id,
      }),
      async (i, ctx) => {
        const isPublic = i.public ?? false;
        if (i.principal && !core.dir.principals.get(i.principal)?.exists) throw notFound(`no principal ${i.principal}`);
        const secret = isPublic ? undefined : randomBytes(32).toString("base64url");
        const reg: ClientRegistration = {
          displayName: i.displayName!,
          public: isPublic,
          redirectUris: i.redirectUris ?? [],
          postLogoutRedirectUris: i.postLogoutRedirectUris ?? [],
          grantTypes: i.grantTypes!,
          scopes: i.scopes ?? ["openid", "profile", "email", "groups", "roles", "offline_access"],
          trusted: i.trusted ?? false,
          principal: i.principal,
        };
        // Validate before escrowing anything.
        clientDecider.decide(clientDecider.initialState(i.id), { type: "register", ...reg, secretHash: secret && sha256(secret) });
        const ref = secret && opts.escrow ? await opts.escrow.store({ principal: i.principal ?? i.id, name: `oidc:${i.id}:client-secret`, secret, cause: commandMetaOf(ctx) }) : undefined;
        const r = await core.run(clientDecider, i.id, { type: "register", ...reg, secretHash: secret && sha256(secret), secretRef: ref?.itemId }, commandMetaOf(ctx));
        return { client: publicClient(r.state), ...(secret && !ref ? { clientSecret: secret } : {}), ...(ref ? { secretRef: ref } : {}) };
      },
    ),
    cmd<{ id: string }>("client.rotateSecret", "Give a confidential client a new secret (returned once or escrowed)", obj(["id"], { id }), async (i, ctx) => {
      const c = core.dir.clients.get(i.id);
      if (!c?.exists) throw notFound(`no client ${i.id}`);
      const secret = randomBytes(32).toString("base64url");
      clientDecider.decide(c, { type: "rotateSecret", secretHash: sha256(secret) });
      const ref = opts.escrow ? await opts.escrow.store({ principal: c.principal ?? i.id, name: `oidc:${i.id}:client-secret`, secret, cause: commandMetaOf(ctx) }) : undefined;
      await core.run(clientDecider, i.id, { type: "rotateSecret", secretHash: sha256(secret), secretRef: ref?.itemId }, commandMetaOf(ctx));
      return ref ? { id: i.id, secretRef: ref } : { id: i.id, clientSecret: secret };
    }),
    cmd<{ id: string }>("client.disable", "Disable an OIDC client", obj(["id"], { id }), async (i, ctx) => {
      const r = await core.run(clientDecider, i.id, { type: "disable" }, commandMetaOf(ctx));
      return { client: publicClient(r.state) };
    }),
    query<{ id: string }>("principal", "One principal with its groups and effective roles", obj(["id"], { id }), async (i) => principalOut(i.id), { method: "GET", path: "/principals/:id" }, byId),
    query<object>(
      "principals",
      "Every principal (the caller's scopes: those it may read)",
      obj([], {}),
      async () => ({
        principals: [...core.dir.principals.values()].filter((p) => p.exists).map((p) => ({ id: p.id, kind: p.kind, displayName: p.displayName, disabled: p.disabled, source: p.source.kind })),
      }),
      undefined,
      { filter: (r, can) => ({ ...r, principals: (r as { principals: { id: string }[] }).principals.filter((p) => can(principal(p.id))) }) },
    ),
    query<object>("organizations", "Organizations and their units", obj([], {}), async () => ({ organizations: [...core.dir.organizations.values()].filter((o) => o.exists) }), undefined, {
      filter: (r, can) => ({ ...r, organizations: (r as { organizations: { id: string }[] }).organizations.filter((o) => can({ kind: "org", id: o.id })) }),
    }),
    query<object>("groups", "Groups and their members", obj([], {}), async () => ({ groups: [...core.dir.groups.values()].filter((g) => g.exists) })),
    query<object>("roles", "Roles", obj([], {}), async () => ({ roles: [...core.dir.roles.values()].filter((r) => r.exists) })),
    query<object>("policies", "Role bindings", obj([], {}), async () => ({ policies: [...core.dir.policies.values()].filter((p) => p.exists) })),
    query<object>(
      "apikeys",
      "API keys (never the key); the caller's scopes: the keys of principals it may read",
      obj([], {}),
      async () => ({ apiKeys: [...core.dir.apiKeys.values()].filter((k) => k.exists).map(({ secretHash: _h, ...k }) => k) }),
      undefined,
      { filter: (r, can) => ({ ...r, apiKeys: (r as { apiKeys: { owner: string }[] }).apiKeys.filter((k) => can(principal(k.owner))) }) },
    ),
    {
      kind: "query",
      name: "whoami",
      description: "The caller: its principal, roles and the bindings (with scopes) it acts with",
      auth: "authenticated",
      input: obj([], {}),
      async handle(_i: object, ctx: RequestContext) {
        const p = ctx.principal;
        if (!p) return { principal: ctx.actor, roles: [], bindings: [] };
        return { ...principalOut(p.id), via: p.via ?? null, roles: p.roles, bindings: p.grants.map((g) => ({ binding: g.binding, role: g.role, permissions: g.permissions, ...(g.scope ? { scope: g.scope } : {}) })) };
      },
    },
    query<object>("clients", "OIDC clients (never the secret)", obj([], {}), async () => ({ clients: [...core.dir.clients.values()].filter((c) => c.exists).map(publicClient) })),
    query<{ actor?: string; aggregateType?: string; aggregateId?: string; correlationId?: string; limit?: number }>(
      "audit",
      "Who did what: identity events with actor and correlation id, newest last",
      obj([], { actor: id, aggregateType: id, aggregateId: id, correlationId: str(64), limit: { type: "integer", minimum: 1, maximum: 10000 } }),
      async (i) => ({ entries: await readAudit(core.store, i) }),
    ),
  ];
}

export function publicClient(c: ClientState): Omit<ClientState, "secretHash"> {
  const { secretHash: _h, ...rest } = c;
  return rest;
}
