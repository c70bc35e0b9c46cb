/**
 * What other contexts may rely on from the identity context: subjects, event types and reply shapes.
 * (Read its events or call its subjects; never import its internals.)
 */
export const IDENTITY_CONTEXT = "identity";

export const IdentitySubjects = {
  principal: "realm.identity.queries.principal",
  principals: "realm.identity.queries.principals",
  groups: "realm.identity.queries.groups",
  jwks: "realm.identity.queries.jwks",
  audit: "realm.identity.queries.audit",
} as const;

/** Aggregate types this part of the context writes to REALM_IDENTITY. */
export const IdentityAggregates = ["principal", "organization", "group", "role", "policy", "apikey", "client", "directory", "posix"] as const;

export const IdentityEventTypes = {
  PrincipalCreated: "PrincipalCreated",
  PrincipalUpdated: "PrincipalUpdated",
  PrincipalDisabled: "PrincipalDisabled",
  PrincipalEnabled: "PrincipalEnabled",
  PasswordSet: "PasswordSet",
  LoginFailed: "LoginFailed",
  LoginSucceeded: "LoginSucceeded",
  PrincipalLocked: "PrincipalLocked",
  PrincipalUnlocked: "PrincipalUnlocked",
  OrganizationCreated: "OrganizationCreated",
  OrgUnitAdded: "OrgUnitAdded",
  GroupCreated: "GroupCreated",
  GroupMemberAdded: "GroupMemberAdded",
  GroupMemberRemoved: "GroupMemberRemoved",
  RoleDefined: "RoleDefined",
  RoleBound: "RoleBound",
  RoleBindingRevoked: "RoleBindingRevoked",
  ApiKeyIssued: "ApiKeyIssued",
  ApiKeyRevoked: "ApiKeyRevoked",
  ClientRegistered: "ClientRegistered",
  DirectorySynced: "DirectorySynced",
  /** `{ kind: "uid" | "gid", name, number }` on aggregate `posix/ids`: a POSIX number the LDAP directory allocated. */
  PosixIdAllocated: "PosixIdAllocated",
} as const;

/** `PrincipalCreated.data` */
export interface PrincipalCreatedData {
  kind: "person" | "service" | "agent";
  source: { kind: "local" } | { kind: "ldap"; directory: string; dn: string };
  displayName: string;
  email?: string;
  organization?: string;
  orgUnit?: string;
}

/** Reply of `realm.identity.queries.principal` ({ id }). */
export interface PrincipalView {
  principal: {
    id: string;
    kind: "person" | "service" | "agent";
    displayName: string;
    email?: string;
    organization?: string;
    orgUnit?: string;
    disabled: boolean;
    locked: boolean;
    groups: string[];
    roles: string[];
  };
}
