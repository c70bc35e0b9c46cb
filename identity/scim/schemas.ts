/** The discovery documents of RFC 7643 §5-7: what this server supports, its resource types and their schemas. */

export const USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User";
export const GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group";
export const LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
export const PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RT_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/** The most resources one list answers (`count` above it is cut to it). */
export const MAX_RESULTS = 1000;

type Attr = { name: string; type: string; multiValued?: boolean; required?: boolean; caseExact?: boolean; mutability?: string; returned?: string; uniqueness?: string; subAttributes?: Attr[]; referenceTypes?: string[]; description: string };
const attr = (a: Attr): Record<string, unknown> => ({ multiValued: false, required: false, caseExact: false, mutability: "readWrite", returned: "default", uniqueness: "none", ...a, ...(a.subAttributes ? { subAttributes: a.subAttributes.map(attr) } : {}) });

const userAttributes: Attr[] = [
  { name: "userName", type: "string", required: true, uniqueness: "server", mutability: "immutable", description: "The realm principal id (sign-in name); immutable here because it is the principal's id. Unique, compared case-insensitively." },
  {
    name: "name",
    type: "complex",
    description: "The person's name",
    subAttributes: [
      { name: "formatted", type: "string", mutability: "readOnly", description: "givenName and familyName joined" },
      { name: "familyName", type: "string", description: "Family name" },
      { name: "givenName", type: "string", description: "Given name" },
    ],
  },
  { name: "displayName", type: "string", description: "The principal's display name (default: the name, else userName)" },
  { name: "password", type: "string", mutability: "writeOnly", returned: "never", caseExact: true, description: "Sets the realm password (Argon2id in the credential store; never returned, never in an event)" },
  { name: "active", type: "boolean", description: "false disables the principal (it can no longer sign in; its API keys stop working)" },
  {
    name: "emails",
    type: "complex",
    multiValued: true,
    description: "One address: the realm keeps one email per person",
    subAttributes: [
      { name: "value", type: "string", description: "The address" },
      { name: "type", type: "string", description: "work, home, other" },
      { name: "primary", type: "boolean", description: "Always true" },
    ],
  },
  {
    name: "groups",
    type: "complex",
    multiValued: true,
    mutability: "readOnly",
    description: "The realm groups the person is in (change them through /Groups)",
    subAttributes: [
      { name: "value", type: "string", mutability: "readOnly", caseExact: true, description: "Group id" },
      { name: "$ref", type: "reference", mutability: "readOnly", referenceTypes: ["Group"], description: "The group's URI" },
      { name: "display", type: "string", mutability: "readOnly", description: "Group display name" },
    ],
  },
];

const groupAttributes: Attr[] = [
  { name: "displayName", type: "string", required: true, uniqueness: "server", description: "The group's display name (unique, case-insensitive; the realm does not rename groups)" },
  {
    name: "members",
    type: "complex",
    multiValued: true,
    description: "Member principals",
    subAttributes: [
      { name: "value", type: "string", mutability: "immutable", caseExact: true, description: "Principal id" },
      { name: "$ref", type: "reference", mutability: "immutable", referenceTypes: ["User"], description: "The member's URI" },
      { name: "display", type: "string", mutability: "readOnly", description: "Member display name" },
      { name: "type", type: "string", mutability: "immutable", description: "User" },
    ],
  },
];
const common: Attr[] = [{ name: "externalId", type: "string", caseExact: true, description: "The provisioning client's own id" }];

export function schemas(base: string) {
  const one = (id: string, name: string, description: string, attributes: Attr[]) => ({ schemas: [SCHEMA_SCHEMA], id, name, description, attributes: attributes.map(attr), meta: { resourceType: "Schema", location: `${base}/Schemas/${id}` } });
  return [one(USER_SCHEMA, "User", "A realm person principal", [...userAttributes, ...common]), one(GROUP_SCHEMA, "Group", "A realm group", groupAttributes)];
}

export function resourceTypes(base: string) {
  const one = (id: string, endpoint: string, schema: string, description: string) => ({ schemas: [RT_SCHEMA], id, name: id, endpoint, description, schema, schemaExtensions: [], meta: { resourceType: "ResourceType", location: `${base}/ResourceTypes/${id}` } });
  return [one("User", "/Users", USER_SCHEMA, "Person principals of the realm"), one("Group", "/Groups", GROUP_SCHEMA, "Groups of the realm")];
}

export function serviceProviderConfig(base: string) {
  return {
    schemas: [SPC_SCHEMA],
    documentationUri: "https://github.com/cim-realm/cim-realm/blob/main/identity/README.md#scim-20",
    patch: { supported: true },
    bulk: { supported: true, maxOperations: 1000, maxPayloadSize: 1_048_576 },
    filter: { supported: true, maxResults: MAX_RESULTS },
    changePassword: { supported: true },
    sort: { supported: true },
    etag: { supported: true },
    authenticationSchemes: [{ type: "oauthbearertoken", name: "Realm API key", description: "Authorization: Bearer rk_<id>_<secret>, a realm API key whose role grants identity:scim", primary: true }],
    meta: { resourceType: "ServiceProviderConfig", location: `${base}/ServiceProviderConfig` },
  };
}
