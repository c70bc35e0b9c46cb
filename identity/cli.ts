import { readFileSync } from "node:fs";
import { Command, Option } from "commander";
import { callContext, withConnectionOptions, type ConnectionFlags } from "../services/cli/call.js";
import { nonNegativeInt, positiveInt, printResult } from "../services/cli/output.js";
import type { Kind } from "../services/cli/kinds.js";
import { RealmError } from "../services/kernel/errors.js";

type Conn = ConnectionFlags;
const connOptions = withConnectionOptions;

/** The kind of result an identity command or query answers with (its table, `-o name`, `-q`). */
const KIND_OF: [RegExp, Kind][] = [
  [/^principal\.enrollTotp$/, "totp"],
  [/^principals?(\.|$)/, "principal"],
  [/^organization/, "organization"],
  [/^groups?(\.|$)/, "group"],
  [/^roles?(\.|$)/, "role"],
  [/^polic(y|ies)(\.|$)/, "binding"],
  [/^apikeys?(\.|$)/, "apikey"],
  [/^clients?(\.|$)/, "client"],
  [/^director(y|ies)(\.|$)/, "directory"],
  [/^audit$/, "event"],
];
const kindOf = (name: string): Kind | undefined => KIND_OF.find(([re]) => re.test(name))?.[1];

async function call(o: Conn, kind: "commands" | "queries", name: string, input: object): Promise<void> {
  printResult(await callContext(o, "identity", kind, name, input, 10_000), kindOf(name));
}

/** A secret read from a file or stdin, never from argv (argv shows in `ps`). */
function readSecret(file: string | undefined): string {
  return readFileSync(file ?? 0, "utf8").replace(/\r?\n$/, "");
}

const list = (v: string, prev: string[] = []) => [...prev, v];

/** `zone:lab.example`, `org:acme/eng`, `self` -> a binding scope (validated by the server). */
function parseScope(text: string): { kind: string; id?: string; unit?: string } {
  if (text === "self") return { kind: "self" };
  const i = text.indexOf(":");
  if (i <= 0) throw new RealmError("VALIDATION", `--scope must be <kind>:<id> (zone, account, namespace, issuer, org) or self, not ${JSON.stringify(text)}`);
  const kind = text.slice(0, i);
  const rest = text.slice(i + 1);
  if (kind === "org" && rest.includes("/")) {
    const [id, unit] = rest.split("/", 2);
    return { kind, id: id!, unit: unit! };
  }
  return { kind, id: rest };
}

/** `realm identity ...`: principals, groups, roles, bindings, API keys, OIDC clients, LDAP directories, audit. */
export function registerIdentityCommands(program: Command): void {
  const id = program.command("identity").description("people, services and agents; groups, roles, API keys, OIDC clients, LDAP federation");
  const verb = (parent: Command, name: string, description: string) => connOptions(parent.command(name).description(description));

  const principal = id.command("principal").description("principals (person, service, agent)");
  verb(principal, "create <id>", "create a principal")
    .requiredOption("--name <displayName>", "display name")
    .addOption(new Option("--kind <kind>", "kind").choices(["person", "service", "agent"]).default("person"))
    .option("--email <email>", "email address")
    .option("--org <organization>", "organization")
    .option("--unit <orgUnit>", "organizational unit")
    .action((pid: string, o: Conn & { name: string; kind: string; email?: string; org?: string; unit?: string }) =>
      call(o, "commands", "principal.create", { id: pid, kind: o.kind, displayName: o.name, ...(o.email ? { email: o.email } : {}), ...(o.org ? { organization: o.org } : {}), ...(o.unit ? { orgUnit: o.unit } : {}) }),
    );
  verb(principal, "list", "list principals").action((o: Conn) => call(o, "queries", "principals", {}));
  verb(principal, "show <id>", "a principal with its groups and roles").action((pid: string, o: Conn) => call(o, "queries", "principal", { id: pid }));
  verb(principal, "set-password <id>", "set a person's password, read from --password-file or stdin")
    .option("--password-file <file>", "file holding the password (default: stdin)")
    .option("--nt-hash", "also keep the NT hash (sealed) so the person can sign in over RADIUS MS-CHAP; without it a kept one is dropped")
    .action((pid: string, o: Conn & { passwordFile?: string; ntHash?: boolean }) => call(o, "commands", "principal.setPassword", { id: pid, password: readSecret(o.passwordFile), ...(o.ntHash ? { ntHash: true } : {}) }));
  verb(principal, "disable <id>", "disable a principal").requiredOption("--reason <text>", "why").action((pid: string, o: Conn & { reason: string }) => call(o, "commands", "principal.disable", { id: pid, reason: o.reason }));
  verb(principal, "enable <id>", "enable a principal").action((pid: string, o: Conn) => call(o, "commands", "principal.enable", { id: pid }));
  verb(principal, "unlock <id>", "lift a lockout").action((pid: string, o: Conn) => call(o, "commands", "principal.unlock", { id: pid }));
  verb(principal, "enroll-totp <id>", "start a TOTP enrollment (prints the otpauth:// URI once)").action((pid: string, o: Conn) => call(o, "commands", "principal.enrollTotp", { id: pid }));
  verb(principal, "confirm-totp <id> <code>", "confirm a TOTP enrollment").action((pid: string, code: string, o: Conn) => call(o, "commands", "principal.confirmTotp", { id: pid, code }));

  const org = id.command("org").description("organizations and organizational units");
  verb(org, "create <id>", "create an organization").requiredOption("--name <displayName>", "display name").action((oid: string, o: Conn & { name: string }) => call(o, "commands", "organization.create", { id: oid, displayName: o.name }));
  verb(org, "add-unit <id> <unit>", "add a unit").requiredOption("--name <displayName>", "display name").option("--parent <unit>", "parent unit")
    .action((oid: string, unit: string, o: Conn & { name: string; parent?: string }) => call(o, "commands", "organization.addUnit", { id: oid, unit, displayName: o.name, ...(o.parent ? { parent: o.parent } : {}) }));

  const group = id.command("group").description("groups");
  verb(group, "create <id>", "create a group").requiredOption("--name <displayName>", "display name").action((gid: string, o: Conn & { name: string }) => call(o, "commands", "group.create", { id: gid, displayName: o.name }));
  verb(group, "add <id> <principal>", "add a member").action((gid: string, p: string, o: Conn) => call(o, "commands", "group.addMember", { id: gid, principal: p }));
  verb(group, "remove <id> <principal>", "remove a member").action((gid: string, p: string, o: Conn) => call(o, "commands", "group.removeMember", { id: gid, principal: p }));
  verb(group, "delete <id>", "delete a group (its members leave it)").action((gid: string, o: Conn) => call(o, "commands", "group.delete", { id: gid }));
  verb(group, "list", "list groups").action((o: Conn) => call(o, "queries", "groups", {}));

  const role = id.command("role").description("roles and role bindings");
  verb(role, "define <id>", "define a role: permission patterns such as dns:zone.create, dns:*, dns:zone.*, dns:read, *:read, * (realm policy permissions lists them)")
    .requiredOption("--description <text>", "what it is for")
    .option("--permission <perm>", "a permission pattern (repeat)", list, [])
    .option("--self", "the role holds only for requests about its holder (self-service)")
    .action((rid: string, o: Conn & { description: string; permission: string[]; self?: boolean }) => call(o, "commands", "role.define", { id: rid, description: o.description, permissions: o.permission, ...(o.self ? { self: true } : {}) }));
  verb(role, "list", "roles and their permission patterns").action((o: Conn) => call(o, "queries", "roles", {}));
  verb(role, "bindings", "role bindings with their subjects, conditions and scopes").action((o: Conn) => call(o, "queries", "policies", {}));
  verb(role, "bind <policyId> <role>", "bind a role to a principal or group, optionally within a scope").option("--principal <id>", "principal").option("--group <id>", "group")
    .option("--not-after <iso>", "binding ends").option("--not-before <iso>", "binding starts").option("--org <organization>", "only for members of this organization")
    .option("--scope <kind:id>", "limit the binding to zone:<zone> (and subzones), account:<name>, namespace:<subject prefix>, issuer:<id>, org:<org>[/<unit>] or self")
    .action((pid: string, r: string, o: Conn & { principal?: string; group?: string; notAfter?: string; notBefore?: string; org?: string; scope?: string }) =>
      call(o, "commands", "policy.bind", {
        id: pid,
        role: r,
        subject: o.group ? { kind: "group", id: o.group } : { kind: "principal", id: o.principal },
        conditions: { ...(o.notAfter ? { notAfter: o.notAfter } : {}), ...(o.notBefore ? { notBefore: o.notBefore } : {}), ...(o.org ? { organization: o.org } : {}) },
        ...(o.scope ? { scope: parseScope(o.scope) } : {}),
      }),
    );
  verb(role, "unbind <policyId>", "revoke a role binding").action((pid: string, o: Conn) => call(o, "commands", "policy.revoke", { id: pid }));

  const apikey = id.command("apikey").description("API keys (shown once, stored hashed)");
  verb(apikey, "issue <owner>", "issue an API key").requiredOption("--label <text>", "what it is for").option("--role <role>", "a role (repeat)", list, []).option("--expires <iso>", "expiry")
    .action((owner: string, o: Conn & { label: string; role: string[]; expires?: string }) => call(o, "commands", "apikey.issue", { owner, label: o.label, roles: o.role, ...(o.expires ? { expiresAt: o.expires } : {}) }));
  verb(apikey, "revoke <id>", "revoke an API key").requiredOption("--reason <text>", "why").action((kid: string, o: Conn & { reason: string }) => call(o, "commands", "apikey.revoke", { id: kid, reason: o.reason }));
  verb(apikey, "list", "list API keys").action((o: Conn) => call(o, "queries", "apikeys", {}));

  // Registration needs a browser (WebAuthn): a person adds passkeys at <realm URL>/account/passkeys.
  const passkey = id.command("passkey").description("passkeys (WebAuthn); a person registers them at /account/passkeys");
  verb(passkey, "list <principal>", "list a person's passkeys (public data)").action((pid: string, o: Conn) => call(o, "queries", "passkeys", { principal: pid }));
  verb(passkey, "revoke <principal> <credentialId>", "revoke a passkey: refused at sign-in from now on").option("--reason <text>", "why").action((pid: string, cid: string, o: Conn & { reason?: string }) => call(o, "commands", "passkey.revoke", { principal: pid, credentialId: cid, ...(o.reason ? { reason: o.reason } : {}) }));

  const client = id.command("client").description("OIDC clients");
  verb(client, "register <id>", "register an OIDC client (a confidential client's secret is printed once)")
    .requiredOption("--name <displayName>", "display name").option("--public", "public client (PKCE, no secret)").option("--trusted", "first-party: skip consent")
    .option("--redirect <uri>", "redirect URI (repeat)", list, []).option("--post-logout <uri>", "post-logout redirect URI (repeat)", list, [])
    .option("--grant <type>", "grant type (repeat; default authorization_code + refresh_token)", list, []).option("--principal <id>", "service principal its client-credentials tokens name (not accepted by the admin API: services use API keys)")
    .action((cid: string, o: Conn & { name: string; public?: boolean; trusted?: boolean; redirect: string[]; postLogout: string[]; grant: string[]; principal?: string }) =>
      call(o, "commands", "client.register", {
        id: cid,
        displayName: o.name,
        public: !!o.public,
        trusted: !!o.trusted,
        redirectUris: o.redirect,
        postLogoutRedirectUris: o.postLogout,
        grantTypes: o.grant.length ? o.grant : ["authorization_code", "refresh_token"],
        ...(o.principal ? { principal: o.principal } : {}),
      }),
    );
  verb(client, "rotate-secret <id>", "give a client a new secret").action((cid: string, o: Conn) => call(o, "commands", "client.rotateSecret", { id: cid }));
  verb(client, "list", "list clients").action((o: Conn) => call(o, "queries", "clients", {}));
  verb(id, "rotate-keys", "rotate the OIDC signing key").action((o: Conn) => call(o, "commands", "oidc.rotateKeys", {}));

  const dir = id.command("directory").description("LDAP federation");
  verb(dir, "register <id>", "register an LDAP directory (bind password from --password-file or stdin)")
    .requiredOption("--url <ldap-url>", "ldap:// or ldaps:// URL").requiredOption("--bind-dn <dn>", "DN to bind as for sync").requiredOption("--users <dn>", "users base DN").requiredOption("--groups <dn>", "groups base DN")
    .option("--password-file <file>", "file holding the bind password (default: stdin)").option("--interval <seconds>", "sync interval (0 = on demand)", nonNegativeInt, 900)
    .action((did: string, o: Conn & { url: string; bindDn: string; users: string; groups: string; passwordFile?: string; interval: number }) =>
      call(o, "commands", "directory.register", { id: did, url: o.url, bindDn: o.bindDn, bindPassword: readSecret(o.passwordFile), usersBase: o.users, groupsBase: o.groups, syncIntervalSeconds: o.interval }),
    );
  verb(dir, "sync <id>", "sync users and groups now").action((did: string, o: Conn) => {
    process.stderr.write(`realm: syncing directory ${did}...\n`);
    return call(o, "commands", "directory.sync", { id: did });
  });
  verb(dir, "list", "registered directories").action((o: Conn) => call(o, "queries", "directories", {}));

  verb(id, "audit", "who did what: identity events with actor and correlation id")
    .option("--actor <id>", "only this actor").option("--aggregate <type/id>", "only this aggregate").option("--correlation <id>", "only this correlation id").option("--limit <n>", "last n entries", positiveInt, 100)
    .action((o: Conn & { actor?: string; aggregate?: string; correlation?: string; limit: number }) => {
      const [aggregateType, aggregateId] = o.aggregate?.split("/") ?? [];
      return call(o, "queries", "audit", { limit: o.limit, ...(o.actor ? { actor: o.actor } : {}), ...(aggregateType ? { aggregateType } : {}), ...(aggregateId ? { aggregateId } : {}), ...(o.correlation ? { correlationId: o.correlation } : {}) });
    });

  verb(id, "bootstrap", "create the first admin (principal, the built-in `realm-admin` role bound unscoped) and print its API key once (stdout; the label goes to stderr). Works only while the realm has no admin, or with the operator bundle's passphrase (recovery)")
    .option("--principal <id>", "admin principal id", "admin")
    .option("--passphrase-file <file>", "recovery: file holding the operator identity bundle's passphrase")
    .action(async (o: Conn & { principal: string; passphraseFile?: string }) => {
      process.stderr.write("realm: creating the admin principal, role and binding...\n");
      const r = (await callContext(o, "identity", "commands", "admin.bootstrap", { principal: o.principal, ...(o.passphraseFile ? { passphrase: readSecret(o.passphraseFile) } : {}) }, 60_000)) as { apiKeyId: string; key: string; recovery: boolean };
      process.stderr.write(`realm: API key ${r.apiKeyId} of ${o.principal}${r.recovery ? " (recovery)" : ""}, shown once: store it now\n`);
      // The key alone by default (REALM_TOKEN=$(realm identity bootstrap) keeps working); -o json|yaml the whole reply.
      printResult({ ...r, principal: o.principal }, "apikey", { table: (x: { key: string }) => `${x.key}\n`, textByDefault: true });
    });
}
