/**
 * A Vaultwarden-compatible HTTPS double for tests (never for production). It implements the endpoints that
 * secrets-client and the official `bw` CLI 2026.9.0 call, with the shapes and validation rules of
 * Vaultwarden 1.37 (see /work/shared/reference/vaultwarden.md): prelogin (+ /password with kdfSettings),
 * register (old and new body shapes, PBKDF2 >= 100000), connect/token (password, client_credentials,
 * refresh_token) answering UserDecryptionOptions + AccountKeys, user-key-id backfill, config, sync (no cipher
 * `data`, policies with revisionDate), ciphers (personal, org create, update with stale check, soft/hard delete,
 * restore, share), folders, organizations, collections, invite/confirm and public keys.
 *
 * It stores what the client sends as Vaultwarden does (EncStrings are opaque to it); as a test-only strictness it
 * refuses any encrypted field that is not an EncString type 2, so a client leaking plaintext fails loudly.
 * Per-user state that Vaultwarden keeps per user (folder, favorite) is kept per cipher here: fine for tests.
 *
 * Serves HTTPS with a server certificate signed by a throw-away test CA (made with openssl in a temp dir);
 * `caFile` is what to give NODE_EXTRA_CA_CERTS, `ca` (PEM) what to give secrets-client.
 */
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import type { AddressInfo } from "node:net";

export interface VwKdf {
  kdfType: number;
  iterations: number;
  memory: number | null;
  parallelism: number | null;
}

export interface VwUser {
  id: string;
  email: string;
  name: string;
  masterPasswordHash: string;
  kdf: VwKdf;
  key: string;
  publicKey: string;
  encryptedPrivateKey: string;
  securityStamp: string;
  apiKey: string;
  userKeyId: string | null;
  creationDate: string;
  revisionDate: string;
}

export interface VwOrg {
  id: string;
  name: string;
  billingEmail: string;
  publicKey: string | null;
  encryptedPrivateKey: string | null;
}

export interface VwMembership {
  id: string;
  orgId: string;
  userId: string;
  /** Org key wrapped to the member (type 4); null until confirmed. */
  key: string | null;
  /** 0 invited, 1 accepted, 2 confirmed. */
  status: number;
  /** 0 owner, 1 admin, 2 user, 3 manager, 4 custom. */
  type: number;
  collections: Map<string, { readOnly: boolean; hidePasswords: boolean; manage: boolean }>;
}

export interface VwCollection {
  id: string;
  orgId: string;
  name: string;
  externalId: string | null;
}

export interface VwFolder {
  id: string;
  userId: string;
  name: string;
  revisionDate: string;
}

export interface VwCipher {
  id: string;
  userId: string | null;
  organizationId: string | null;
  folderId: string | null;
  type: number;
  key: string | null;
  name: string;
  notes: string | null;
  fields: unknown[] | null;
  passwordHistory: unknown[] | null;
  login: Record<string, unknown> | null;
  secureNote: Record<string, unknown> | null;
  card: Record<string, unknown> | null;
  identity: Record<string, unknown> | null;
  sshKey: Record<string, unknown> | null;
  favorite: boolean;
  reprompt: number;
  collectionIds: string[];
  creationDate: string;
  revisionDate: string;
  deletedDate: string | null;
}

export interface VwFault {
  status: number;
  /** How many matching requests get the fault (Infinity for all until cleared). */
  times: number;
  path?: RegExp;
  method?: string;
  retryAfter?: string;
}

export interface VaultwardenDouble {
  /** https://127.0.0.1:<port> (what `bw config server` and secrets-client take). */
  url: string;
  port: number;
  /** Test CA certificate, PEM. */
  ca: string;
  /** Path of the CA certificate file (for NODE_EXTRA_CA_CERTS); removed by stop(). */
  caFile: string;
  users: Map<string, VwUser>;
  orgs: Map<string, VwOrg>;
  memberships: Map<string, VwMembership>;
  collections: Map<string, VwCollection>;
  folders: Map<string, VwFolder>;
  ciphers: Map<string, VwCipher>;
  /** method, path (no query) and status of every request, in order. */
  log: { method: string; path: string; status: number }[];
  /** Raw request bodies, to assert that no plaintext secret ever went over the wire. */
  bodies: string[];
  /** Access-token lifetime in seconds (Vaultwarden: 7200). */
  tokenLifetime: number;
  /** Inject failures: each request matching a fault consumes one `times`. */
  faults: VwFault[];
  /**
   * Feature flags served in /api/config. Vaultwarden does not send `enableCipherKeyEncryption`; setting it
   * makes bw give the ciphers it creates their own key (what Bitwarden's cloud does).
   */
  featureStates: Record<string, boolean>;
  /** Makes every access token issued so far expired (401 on use). */
  expireAccessTokens(): void;
  /** Forgets every refresh token (refresh grant answers invalid_grant). */
  revokeRefreshTokens(): void;
  userByEmail(email: string): VwUser | undefined;
  stop(): Promise<void>;
}

const now = () => new Date().toISOString();
const PASSWORD_GRANT_SCOPE = "api offline_access";

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body?: object,
  ) {
    super(message);
  }
}

/** Vaultwarden's error body (src/error.rs `ErrorModel`). */
const errorBody = (message: string) => ({
  message,
  validationErrors: { "": [message] },
  errorModel: { message, object: "error" },
  error: "",
  error_description: "",
  exceptionMessage: null,
  object: "error",
});
const bad = (message: string) => new HttpError(400, message, errorBody(message));

function makeCertificates(dir: string): { key: Buffer; cert: string; ca: string; caFile: string } {
  const run = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  run(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=vaultwarden-double test CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  run(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
  writeFileSync(join(dir, "ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n");
  run(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "ext.cnf"]);
  const ca = readFileSync(join(dir, "ca.pem"), "utf8");
  return { key: readFileSync(join(dir, "server.key")), cert: readFileSync(join(dir, "server.pem"), "utf8") + ca, ca, caFile: join(dir, "ca.pem") };
}

/** Form and JSON field lookup, case-insensitive and snake/camel tolerant like Vaultwarden's `ConnectData`. */
function field(body: Record<string, unknown>, name: string): unknown {
  const want = name.replace(/_/g, "").toLowerCase();
  for (const [k, v] of Object.entries(body)) if (k.replace(/_/g, "").toLowerCase() === want) return v;
  return undefined;
}
const str = (body: Record<string, unknown>, name: string): string | undefined => {
  const v = field(body, name);
  return typeof v === "string" ? v : typeof v === "number" ? String(v) : undefined;
};

/** Test-only strictness: an encrypted field must be an EncString type 2 (or absent). */
function requireEnc(v: unknown, what: string): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== "string" || !/^2\.[A-Za-z0-9+/]+={0,2}\|[A-Za-z0-9+/]+={0,2}\|[A-Za-z0-9+/]+={0,2}$/.test(v)) throw bad(`${what} is not an EncString type 2`);
  return v;
}

export async function startVaultwardenDouble(opts: { tokenLifetime?: number } = {}): Promise<VaultwardenDouble> {
  const dir = mkdtempSync(join(tmpdir(), "vw-double-"));
  const tls = makeCertificates(dir);
  const jwtSecret = randomBytes(32);
  const users = new Map<string, VwUser>();
  const orgs = new Map<string, VwOrg>();
  const memberships = new Map<string, VwMembership>();
  const collections = new Map<string, VwCollection>();
  const folders = new Map<string, VwFolder>();
  const ciphers = new Map<string, VwCipher>();
  const accessTokens = new Map<string, { userId: string; exp: number }>();
  const refreshTokens = new Map<string, string>();
  const log: VaultwardenDouble["log"] = [];
  const bodies: string[] = [];
  const state = { tokenLifetime: opts.tokenLifetime ?? 7200, faults: [] as VwFault[] };
  const featureStates: Record<string, boolean> = { "duo-redirect": true, "email-verification": true, "unauth-ui-refresh": true };
  let port = 0;

  const userByEmail = (email: string) => [...users.values()].find((u) => u.email === email.trim().toLowerCase());

  // ---------- tokens ----------
  const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url");
  function issueTokens(user: VwUser, clientId: string, scope: string[], withRefresh: boolean, device: string) {
    const exp = Math.floor(Date.now() / 1000) + state.tokenLifetime;
    const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
    const payload = b64url(
      JSON.stringify({ nbf: Math.floor(Date.now() / 1000) - 1, exp, iss: `https://127.0.0.1:${port}|login`, sub: user.id, premium: true, name: user.name, email: user.email, email_verified: true, sstamp: user.securityStamp, device, devicetype: "LinuxCLI", client_id: clientId, scope, amr: ["Application"] }),
    );
    const token = `${header}.${payload}.${b64url(createHmac("sha256", jwtSecret).update(`${header}.${payload}`).digest())}`;
    accessTokens.set(token, { userId: user.id, exp: exp * 1000 });
    let refresh: string | undefined;
    if (withRefresh) {
      refresh = randomBytes(48).toString("base64url");
      refreshTokens.set(refresh, user.id);
    }
    const kdf = { KdfType: user.kdf.kdfType, Iterations: user.kdf.iterations, Memory: user.kdf.memory, Parallelism: user.kdf.parallelism };
    return {
      access_token: token,
      expires_in: state.tokenLifetime,
      token_type: "Bearer",
      ...(refresh ? { refresh_token: refresh } : {}),
      scope: scope.join(" "),
      Key: user.key,
      PrivateKey: user.encryptedPrivateKey,
      Kdf: user.kdf.kdfType,
      KdfIterations: user.kdf.iterations,
      KdfMemory: user.kdf.memory,
      KdfParallelism: user.kdf.parallelism,
      ResetMasterPassword: false,
      ForcePasswordReset: false,
      MasterPasswordPolicy: { object: "masterPasswordPolicy" },
      AccountKeys: { publicKeyEncryptionKeyPair: { wrappedPrivateKey: user.encryptedPrivateKey, publicKey: user.publicKey, Object: "publicKeyEncryptionKeyPair" }, Object: "privateKeys" },
      UserDecryptionOptions: {
        HasMasterPassword: true,
        MasterPasswordUnlock: { Kdf: kdf, MasterKeyWrappedUserKey: user.key, MasterKeyEncryptedUserKey: user.key, Salt: user.email },
        Object: "userDecryptionOptions",
      },
    };
  }

  function authUser(req: IncomingMessage): VwUser {
    const h = req.headers.authorization ?? "";
    const m = /^Bearer (.+)$/.exec(h);
    const t = m ? accessTokens.get(m[1]!) : undefined;
    if (!t || t.exp <= Date.now()) throw new HttpError(401, "Unauthorized", errorBody("Invalid token"));
    const u = users.get(t.userId);
    if (!u) throw new HttpError(401, "Unauthorized", errorBody("User not found"));
    return u;
  }

  const hashEq = (a: string, b: string) => {
    const x = Buffer.from(a);
    const y = Buffer.from(b);
    return x.length === y.length && timingSafeEqual(x, y);
  };

  function checkKdf(kdf: VwKdf) {
    // accounts.rs set_kdf_data / register validation.
    if (kdf.kdfType === 0) {
      if (kdf.iterations < 100_000) throw bad("PBKDF2 KDF iterations must be at least 100000.");
      return { ...kdf, memory: null, parallelism: null };
    }
    if (kdf.kdfType === 1) {
      if (kdf.iterations < 1) throw bad("Argon2 KDF iterations must be at least 1.");
      if (kdf.memory === null || kdf.memory < 15 || kdf.memory > 1024) throw bad("Argon2 memory must be between 15 MB and 1024 MB.");
      if (kdf.parallelism === null || kdf.parallelism < 1 || kdf.parallelism > 16) throw bad("Argon2 parallelism must be between 1 and 16.");
      return kdf;
    }
    throw bad("Invalid KDF type");
  }

  // ---------- JSON shapes ----------
  const orgKeyFor = (orgId: string, userId: string) => [...memberships.values()].find((m) => m.orgId === orgId && m.userId === userId);
  const visibleCollections = (user: VwUser) =>
    [...collections.values()].filter((c) => {
      const m = orgKeyFor(c.orgId, user.id);
      return m && m.status === 2 && (m.type <= 1 || m.collections.has(c.id));
    });
  const canSeeCipher = (user: VwUser, c: VwCipher) => {
    if (c.organizationId === null) return c.userId === user.id;
    const m = orgKeyFor(c.organizationId, user.id);
    if (!m || m.status !== 2) return false;
    return m.type <= 1 || c.collectionIds.some((id) => m.collections.has(id));
  };

  const cipherJson = (c: VwCipher) => ({
    id: c.id,
    type: c.type,
    organizationId: c.organizationId,
    folderId: c.folderId,
    key: c.key,
    name: c.name,
    notes: c.notes,
    fields: c.fields,
    passwordHistory: c.passwordHistory,
    login: c.type === 1 ? c.login : null,
    secureNote: c.type === 2 ? c.secureNote : null,
    card: c.type === 3 ? c.card : null,
    identity: c.type === 4 ? c.identity : null,
    sshKey: c.type === 5 ? c.sshKey : null,
    favorite: c.favorite,
    reprompt: c.reprompt,
    edit: true,
    viewPassword: true,
    permissions: { delete: true, restore: true },
    collectionIds: c.collectionIds,
    attachments: null,
    organizationUseTotp: true,
    creationDate: c.creationDate,
    revisionDate: c.revisionDate,
    deletedDate: c.deletedDate,
    archivedDate: null,
    object: "cipherDetails",
  });

  const profileJson = (u: VwUser) => ({
    id: u.id,
    name: u.name,
    email: u.email,
    emailVerified: true,
    premium: true,
    premiumFromOrganization: false,
    masterPasswordHint: null,
    culture: "en-US",
    twoFactorEnabled: false,
    key: u.key,
    privateKey: u.encryptedPrivateKey,
    accountKeys: { publicKeyEncryptionKeyPair: { wrappedPrivateKey: u.encryptedPrivateKey, publicKey: u.publicKey, signedPublicKey: null, object: "publicKeyEncryptionKeyPair" }, securityState: null, signatureKeyPair: null, object: "privateKeys" },
    securityStamp: u.securityStamp,
    organizations: [...memberships.values()]
      .filter((m) => m.userId === u.id && m.status >= 1)
      .map((m) => {
        const o = orgs.get(m.orgId)!;
        return {
          id: o.id,
          name: o.name,
          key: m.status === 2 ? m.key : null,
          status: m.status,
          type: m.type,
          enabled: true,
          userId: u.id,
          organizationUserId: m.id,
          hasPublicAndPrivateKeys: o.publicKey !== null,
          permissions: { accessEventLogs: false, accessImportExport: false, accessReports: false, createNewCollections: false, editAnyCollection: false, deleteAnyCollection: false, manageGroups: false, managePolicies: false, manageSso: false, manageUsers: false, manageResetPassword: false, manageScim: false },
          useSecretsManager: false,
          accessSecretsManager: false,
          productTierType: 3,
          planProductType: 3,
          usePolicies: true,
          useEvents: false,
          useGroups: false,
          useDirectory: false,
          useTotp: true,
          use2fa: true,
          useApi: true,
          useSso: false,
          useKeyConnector: false,
          useResetPassword: false,
          selfHost: true,
          usersGetPremium: true,
          seats: null,
          maxCollections: null,
          maxStorageGb: 32767,
          ssoBound: false,
          identifier: null,
          resetPasswordEnrolled: false,
          familySponsorshipFriendlyName: null,
          familySponsorshipAvailable: false,
          allowAdminAccessToAllCollectionItems: true,
          limitCollectionCreation: false,
          limitCollectionDeletion: false,
          limitItemDeletion: false,
          object: "profileOrganization",
        };
      }),
    providers: [],
    providerOrganizations: [],
    forcePasswordReset: false,
    avatarColor: null,
    usesKeyConnector: false,
    creationDate: u.creationDate,
    _status: 0,
    object: "profile",
  });

  const collectionJson = (c: VwCollection, u: VwUser) => {
    const m = orgKeyFor(c.orgId, u.id);
    const access = m?.collections.get(c.id);
    return { id: c.id, organizationId: c.orgId, name: c.name, externalId: c.externalId, type: 0, readOnly: access?.readOnly ?? false, hidePasswords: access?.hidePasswords ?? false, manage: access?.manage ?? (m ? m.type <= 1 : false), object: "collectionDetails" };
  };
  const folderJson = (f: VwFolder) => ({ id: f.id, name: f.name, revisionDate: f.revisionDate, object: "folder" });

  // ---------- cipher writes ----------
  const ENC_LOGIN = ["username", "password", "totp"] as const;
  function cipherFromData(d: Record<string, unknown>, existing?: VwCipher): Omit<VwCipher, "id" | "userId" | "creationDate" | "revisionDate" | "deletedDate" | "collectionIds"> {
    const type = Number(field(d, "type"));
    if (![1, 2, 3, 4, 5].includes(type)) throw bad("Invalid cipher type");
    const name = requireEnc(field(d, "name"), "name");
    if (name === null) throw bad("The Name field is required.");
    const notes = requireEnc(field(d, "notes"), "notes");
    if (notes !== null && notes.length > 10_000) throw bad("The field Notes exceeds the maximum encrypted value length of 10000 characters.");
    const key = requireEnc(field(d, "key"), "key");
    const fields = field(d, "fields");
    const fieldsOut = Array.isArray(fields)
      ? fields.map((f: Record<string, unknown>) => ({ type: Number(field(f, "type") ?? 0), name: requireEnc(field(f, "name"), "field name"), value: requireEnc(field(f, "value"), "field value"), linkedId: field(f, "linkedId") ?? null }))
      : null;
    const ph = field(d, "passwordHistory");
    const phOut = Array.isArray(ph) ? ph.map((p: Record<string, unknown>) => ({ password: requireEnc(field(p, "password"), "password history"), lastUsedDate: str(p, "lastUsedDate") ?? now() })) : null;
    let login: Record<string, unknown> | null = null;
    const l = field(d, "login") as Record<string, unknown> | null | undefined;
    if (type === 1) {
      const src = l ?? {};
      login = { uri: null, uris: null, username: null, password: null, passwordRevisionDate: null, totp: null, autofillOnPageLoad: null, fido2Credentials: null };
      for (const k of ENC_LOGIN) login[k] = requireEnc(field(src, k), `login.${k}`);
      const uris = field(src, "uris");
      if (Array.isArray(uris)) login.uris = uris.map((u: Record<string, unknown>) => ({ uri: requireEnc(field(u, "uri"), "uri"), uriChecksum: requireEnc(field(u, "uriChecksum"), "uriChecksum"), match: field(u, "match") ?? null }));
      login.uri = Array.isArray(login.uris) ? ((login.uris[0] as { uri: string | null } | undefined)?.uri ?? null) : null;
      login.passwordRevisionDate = str(src, "passwordRevisionDate") ?? (existing?.login?.password !== login.password && existing ? now() : null);
      login.fido2Credentials = field(src, "fido2Credentials") ?? null;
    }
    const sn = field(d, "secureNote") as Record<string, unknown> | null | undefined;
    const folderId = str(d, "folderId") ?? null;
    return {
      organizationId: str(d, "organizationId") ?? null,
      folderId,
      type,
      key,
      name,
      notes,
      fields: fieldsOut,
      passwordHistory: phOut,
      login,
      secureNote: type === 2 ? { type: Number((sn && field(sn, "type")) ?? 0) } : null,
      card: type === 3 ? ((field(d, "card") as Record<string, unknown>) ?? {}) : null,
      identity: type === 4 ? ((field(d, "identity") as Record<string, unknown>) ?? {}) : null,
      sshKey: type === 5 ? ((field(d, "sshKey") as Record<string, unknown>) ?? {}) : null,
      favorite: field(d, "favorite") === true,
      reprompt: Number(field(d, "reprompt") ?? 0),
    };
  }

  function checkFolder(user: VwUser, folderId: string | null) {
    if (folderId !== null) {
      const f = folders.get(folderId);
      if (!f || f.userId !== user.id) throw bad("Invalid folder");
    }
  }

  function createCipher(user: VwUser, d: Record<string, unknown>, collectionIds: string[] | null): VwCipher {
    const data = cipherFromData(d);
    checkFolder(user, data.folderId);
    const t = now();
    const c: VwCipher = { ...data, id: randomUUID(), userId: data.organizationId ? null : user.id, collectionIds: [], creationDate: t, revisionDate: t, deletedDate: null };
    if (data.organizationId) {
      const m = orgKeyFor(data.organizationId, user.id);
      if (!m || m.status !== 2) throw bad("You don't have permission to add item to organization");
      // ciphers.rs post_ciphers_create: org ciphers need at least one collection the user can write to.
      if (!collectionIds || collectionIds.length === 0) throw bad("You must select at least one collection.");
      for (const id of collectionIds) {
        const col = collections.get(id);
        if (!col || col.orgId !== data.organizationId) throw bad("Invalid collection ID provided");
        const access = m.collections.get(id);
        if (!(m.type <= 1 || (access && !access.readOnly))) throw bad("You don't have permission to add cipher directly to collection");
      }
      c.collectionIds = [...collectionIds];
    } else if (collectionIds && collectionIds.length > 0) {
      throw bad("Organization Id is required for collection ciphers");
    }
    ciphers.set(c.id, c);
    user.revisionDate = t;
    return c;
  }

  function getCipher(user: VwUser, id: string): VwCipher {
    const c = ciphers.get(id);
    if (!c || !canSeeCipher(user, c)) throw new HttpError(404, "Cipher doesn't exist", errorBody("Cipher doesn't exist"));
    return c;
  }

  function updateCipher(user: VwUser, id: string, d: Record<string, unknown>): VwCipher {
    const c = getCipher(user, id);
    const known = str(d, "lastKnownRevisionDate");
    // ciphers.rs update_cipher_from_data: stale client copy (older than the server's by more than 1 s).
    if (known && Date.parse(c.revisionDate) - Date.parse(known) > 1000) throw bad("The client copy of this cipher is out of date. Resync the client and try again.");
    const data = cipherFromData(d, c);
    if (data.organizationId !== c.organizationId) {
      if (c.organizationId !== null) throw bad("Organization mismatch. Please resync the client before updating the cipher");
      if (data.organizationId !== null) throw bad("Use the share endpoint to move a cipher to an organization");
    }
    checkFolder(user, data.folderId);
    Object.assign(c, data, { revisionDate: now() });
    user.revisionDate = c.revisionDate;
    return c;
  }

  // ---------- routing ----------
  type Handler = (req: IncomingMessage, body: Record<string, unknown>, params: string[], query: URLSearchParams) => unknown;
  const routes: { method: string; re: RegExp; h: Handler }[] = [];
  const route = (method: string, path: string, h: Handler) => routes.push({ method, re: new RegExp(`^${path.replace(/:id/g, "([^/]+)")}/?$`, "i"), h });

  const configJson = () => ({
    version: "2026.6.0",
    gitHash: "double",
    server: { name: "Vaultwarden", url: "https://github.com/dani-garcia/vaultwarden" },
    settings: { disableUserRegistration: false, suppressOnboardingInterstitials: true },
    environment: { vault: `https://127.0.0.1:${port}`, api: `https://127.0.0.1:${port}/api`, identity: `https://127.0.0.1:${port}/identity`, notifications: `https://127.0.0.1:${port}/notifications`, sso: "", cloudRegion: null },
    push: { pushTechnology: 0, vapidPublicKey: null },
    featureStates,
    communication: null,
    object: "config",
  });
  route("GET", "/api/config", () => configJson());
  route("GET", "/api/alive", () => now());
  route("GET", "/api/now", () => now());
  route("GET", "/api/version", () => "1.37.2");

  const prelogin: Handler = (_req, body) => {
    const email = str(body, "email") ?? "";
    const u = userByEmail(email);
    const kdf = u?.kdf ?? { kdfType: 0, iterations: 600_000, memory: null, parallelism: null };
    return { kdf: kdf.kdfType, kdfIterations: kdf.iterations, kdfMemory: kdf.memory, kdfParallelism: kdf.parallelism, kdfSettings: { kdfType: kdf.kdfType, iterations: kdf.iterations, memory: kdf.memory, parallelism: kdf.parallelism }, salt: null };
  };
  route("POST", "/identity/accounts/prelogin", prelogin);
  route("POST", "/identity/accounts/prelogin/password", prelogin);
  route("POST", "/api/accounts/prelogin", prelogin);

  route("POST", "/identity/accounts/register", (_req, b) => {
    const email = (str(b, "email") ?? "").trim().toLowerCase();
    if (!/^[^@\s]+@[^@\s]+$/.test(email)) throw bad("Email is invalid");
    if (userByEmail(email)) throw bad("Registration not allowed or user already exists");
    let kdf: VwKdf;
    let hash: string | undefined;
    let key: string | undefined;
    let keys: Record<string, unknown> | undefined;
    const mpa = field(b, "masterPasswordAuthentication") as Record<string, unknown> | undefined;
    if (mpa) {
      // New shape: both salts must be the normalised email and both KDFs equal.
      const mpu = (field(b, "masterPasswordUnlock") ?? {}) as Record<string, unknown>;
      const ka = (field(mpa, "kdf") ?? {}) as Record<string, unknown>;
      const ku = (field(mpu, "kdf") ?? {}) as Record<string, unknown>;
      if (str(mpa, "salt") !== email || str(mpu, "salt") !== email) throw new HttpError(422, "salt mismatch", errorBody("Salt must be the email"));
      if (JSON.stringify(ka) !== JSON.stringify(ku)) throw new HttpError(422, "kdf mismatch", errorBody("KDF settings must match"));
      kdf = { kdfType: Number(field(ka, "kdfType")), iterations: Number(field(ka, "iterations")), memory: (field(ka, "memory") as number | null) ?? null, parallelism: (field(ka, "parallelism") as number | null) ?? null };
      hash = str(mpa, "masterPasswordAuthenticationHash");
      key = str(mpu, "masterKeyWrappedUserKey");
      keys = field(b, "userAsymmetricKeys") as Record<string, unknown> | undefined;
    } else {
      kdf = { kdfType: Number(field(b, "kdf") ?? 0), iterations: Number(field(b, "kdfIterations")), memory: (field(b, "kdfMemory") as number | null) ?? null, parallelism: (field(b, "kdfParallelism") as number | null) ?? null };
      hash = str(b, "masterPasswordHash");
      key = str(b, "key");
      keys = field(b, "keys") as Record<string, unknown> | undefined;
    }
    kdf = checkKdf(kdf);
    if (!hash) throw bad("The MasterPasswordHash field is required.");
    requireEnc(key, "key");
    const publicKey = keys ? str(keys, "publicKey") : undefined;
    const encryptedPrivateKey = keys ? str(keys, "encryptedPrivateKey") : undefined;
    if (!key || !publicKey || !encryptedPrivateKey) throw bad("key and keys{publicKey, encryptedPrivateKey} are required");
    requireEnc(encryptedPrivateKey, "encryptedPrivateKey");
    const t = now();
    const u: VwUser = { id: randomUUID(), email, name: str(b, "name") ?? email, masterPasswordHash: hash, kdf, key, publicKey, encryptedPrivateKey, securityStamp: randomUUID(), apiKey: randomBytes(30).toString("base64").replace(/[^A-Za-z0-9]/g, "").padEnd(30, "x").slice(0, 30), userKeyId: null, creationDate: t, revisionDate: t };
    users.set(u.id, u);
    return { object: "register", captchaBypassToken: "" };
  });

  route("POST", "/identity/connect/token", (_req, b) => {
    const grant = str(b, "grant_type");
    const invalidGrant = (desc: string) => new HttpError(400, "invalid_grant", { error: "invalid_grant", error_description: desc, ErrorModel: { Message: desc, Object: "error" } });
    if (grant === "refresh_token") {
      const r = str(b, "refresh_token") ?? "";
      const uid = refreshTokens.get(r);
      const u = uid ? users.get(uid) : undefined;
      if (!u) throw invalidGrant("Invalid refresh token");
      return issueTokens(u, "cli", ["api", "offline_access"], true, "refresh");
    }
    for (const f of ["scope", "client_id", "deviceIdentifier", "deviceName", "deviceType"]) if (!str(b, f)) throw bad(`${f} cannot be blank`);
    const device = str(b, "deviceIdentifier")!;
    if (grant === "password") {
      if (str(b, "scope") !== PASSWORD_GRANT_SCOPE) throw bad("Scope not supported");
      const u = userByEmail(str(b, "username") ?? "");
      const pw = str(b, "password") ?? "";
      if (!u || !hashEq(u.masterPasswordHash, pw)) throw invalidGrant(`Username or password is incorrect. Try again`);
      return issueTokens(u, str(b, "client_id")!, ["api", "offline_access"], true, device);
    }
    if (grant === "client_credentials") {
      if (str(b, "scope") !== "api") throw bad("Scope not supported");
      const cid = str(b, "client_id")!;
      const m = /^user\.(.+)$/.exec(cid);
      const u = m ? users.get(m[1]!) : undefined;
      if (!u || !hashEq(u.apiKey, str(b, "client_secret") ?? "")) throw invalidGrant("Incorrect client_secret");
      // Personal API key logins get no refresh token (identity.rs api_key_login).
      return issueTokens(u, cid, ["api"], false, device);
    }
    throw bad("Invalid type");
  });

  route("GET", "/api/accounts/revision-date", (req) => Date.parse(authUser(req).revisionDate));
  route("GET", "/api/accounts/profile", (req) => profileJson(authUser(req)));
  route("POST", "/api/accounts/key-management/user-key-id", (req, b) => {
    const u = authUser(req);
    const id = str(b, "userKeyId");
    if (!id) throw bad("userKeyId is required");
    u.userKeyId = id;
    return {};
  });
  route("POST", "/api/accounts/api-key", (req, b) => {
    const u = authUser(req);
    if (!hashEq(u.masterPasswordHash, str(b, "masterPasswordHash") ?? "")) throw bad("Invalid password");
    return { apiKey: u.apiKey, revisionDate: u.revisionDate, object: "apiKey" };
  });
  route("GET", "/api/users/:id/public-key", (req, _b, [id]) => {
    authUser(req);
    const u = users.get(id!);
    if (!u) throw new HttpError(404, "User doesn't exist", errorBody("User doesn't exist"));
    return { userId: u.id, publicKey: u.publicKey, object: "userKey" };
  });

  route("GET", "/api/sync", (req) => {
    const u = authUser(req);
    return {
      profile: profileJson(u),
      folders: [...folders.values()].filter((f) => f.userId === u.id).map(folderJson),
      collections: visibleCollections(u).map((c) => collectionJson(c, u)),
      policies: [],
      ciphers: [...ciphers.values()].filter((c) => canSeeCipher(u, c)).map(cipherJson),
      domains: null,
      sends: [],
      userDecryption: { masterPasswordUnlock: { kdf: { kdfType: u.kdf.kdfType, iterations: u.kdf.iterations, memory: u.kdf.memory, parallelism: u.kdf.parallelism }, masterKeyWrappedUserKey: u.key, masterKeyEncryptedUserKey: u.key, salt: u.email }, ...(u.userKeyId ? { userKeyId: u.userKeyId } : {}) },
      object: "sync",
    };
  });

  // ciphers
  route("GET", "/api/ciphers", (req) => {
    const u = authUser(req);
    return { data: [...ciphers.values()].filter((c) => canSeeCipher(u, c) && c.deletedDate === null).map(cipherJson), object: "list", continuationToken: null };
  });
  route("POST", "/api/ciphers", (req, b) => cipherJson(createCipher(authUser(req), b, (field(b, "collectionIds") as string[] | undefined) ?? null)));
  route("POST", "/api/ciphers/create", (req, b) => {
    const cipher = field(b, "cipher") as Record<string, unknown> | undefined;
    if (!cipher) throw bad("cipher is required");
    return cipherJson(createCipher(authUser(req), cipher, (field(b, "collectionIds") as string[] | undefined) ?? []));
  });
  route("POST", "/api/ciphers/delete", (req, b) => {
    const u = authUser(req);
    for (const id of (field(b, "ids") as string[] | undefined) ?? []) ciphers.delete(getCipher(u, id).id);
    return {};
  });
  route("GET", "/api/ciphers/:id", (req, _b, [id]) => cipherJson(getCipher(authUser(req), id!)));
  route("GET", "/api/ciphers/:id/details", (req, _b, [id]) => cipherJson(getCipher(authUser(req), id!)));
  route("PUT", "/api/ciphers/:id", (req, b, [id]) => cipherJson(updateCipher(authUser(req), id!, b)));
  route("POST", "/api/ciphers/:id", (req, b, [id]) => cipherJson(updateCipher(authUser(req), id!, b)));
  route("PUT", "/api/ciphers/:id/delete", (req, _b, [id]) => {
    const c = getCipher(authUser(req), id!);
    c.deletedDate = now();
    c.revisionDate = c.deletedDate;
    return {};
  });
  const hardDelete: Handler = (req, _b, [id]) => {
    ciphers.delete(getCipher(authUser(req), id!).id);
    return {};
  };
  route("DELETE", "/api/ciphers/:id", hardDelete);
  route("POST", "/api/ciphers/:id/delete", hardDelete);
  route("PUT", "/api/ciphers/:id/restore", (req, _b, [id]) => {
    const c = getCipher(authUser(req), id!);
    c.deletedDate = null;
    c.revisionDate = now();
    return cipherJson(c);
  });
  const share: Handler = (req, b, [id]) => {
    const u = authUser(req);
    const c = getCipher(u, id!);
    const inner = field(b, "cipher") as Record<string, unknown> | undefined;
    const cols = (field(b, "collectionIds") as string[] | undefined) ?? [];
    if (!inner || !str(inner, "organizationId")) throw bad("Organization id not provided");
    if (c.organizationId !== null) throw bad("Cipher already belongs to an organization");
    const created = createCipher(u, inner, cols);
    ciphers.delete(created.id);
    Object.assign(c, { ...created, id: c.id, creationDate: c.creationDate });
    return cipherJson(c);
  };
  route("PUT", "/api/ciphers/:id/share", share);
  route("POST", "/api/ciphers/:id/share", share);

  // folders
  route("GET", "/api/folders", (req) => {
    const u = authUser(req);
    return { data: [...folders.values()].filter((f) => f.userId === u.id).map(folderJson), object: "list", continuationToken: null };
  });
  route("POST", "/api/folders", (req, b) => {
    const u = authUser(req);
    const f: VwFolder = { id: randomUUID(), userId: u.id, name: requireEnc(field(b, "name"), "folder name") ?? "", revisionDate: now() };
    if (!f.name) throw bad("The Name field is required.");
    folders.set(f.id, f);
    return folderJson(f);
  });
  const ownFolder = (u: VwUser, id: string) => {
    const f = folders.get(id);
    if (!f || f.userId !== u.id) throw new HttpError(404, "Invalid folder", errorBody("Invalid folder"));
    return f;
  };
  route("GET", "/api/folders/:id", (req, _b, [id]) => folderJson(ownFolder(authUser(req), id!)));
  route("PUT", "/api/folders/:id", (req, b, [id]) => {
    const f = ownFolder(authUser(req), id!);
    f.name = requireEnc(field(b, "name"), "folder name") ?? f.name;
    f.revisionDate = now();
    return folderJson(f);
  });
  route("DELETE", "/api/folders/:id", (req, _b, [id]) => {
    const f = ownFolder(authUser(req), id!);
    folders.delete(f.id);
    for (const c of ciphers.values()) if (c.folderId === f.id) c.folderId = null;
    return {};
  });

  // organizations
  route("POST", "/api/organizations", (req, b) => {
    const u = authUser(req);
    const keys = (field(b, "keys") ?? {}) as Record<string, unknown>;
    const key = str(b, "key");
    if (!key || !key.startsWith("4.")) throw bad("key must be the org key wrapped to your public key (EncString type 4)");
    const o: VwOrg = { id: randomUUID(), name: str(b, "name") ?? "", billingEmail: str(b, "billingEmail") ?? u.email, publicKey: str(keys, "publicKey") ?? null, encryptedPrivateKey: requireEnc(field(keys, "encryptedPrivateKey"), "encryptedPrivateKey") };
    if (!o.name) throw bad("The Name field is required.");
    orgs.set(o.id, o);
    const m: VwMembership = { id: randomUUID(), orgId: o.id, userId: u.id, key, status: 2, type: 0, collections: new Map() };
    memberships.set(m.id, m);
    const colName = requireEnc(field(b, "collectionName"), "collectionName");
    if (colName) {
      const c: VwCollection = { id: randomUUID(), orgId: o.id, name: colName, externalId: null };
      collections.set(c.id, c);
      m.collections.set(c.id, { readOnly: false, hidePasswords: false, manage: true });
    }
    return { id: o.id, name: o.name, object: "organization" };
  });
  const member = (u: VwUser, orgId: string, admin: boolean) => {
    const m = orgKeyFor(orgId, u.id);
    if (!m || m.status !== 2) throw new HttpError(404, "Organization not found", errorBody("Organization not found"));
    if (admin && m.type > 1) throw new HttpError(403, "Forbidden", errorBody("You don't have permission"));
    return m;
  };
  route("GET", "/api/organizations/:id/public-key", (req, _b, [id]) => {
    member(authUser(req), id!, false);
    return { publicKey: orgs.get(id!)!.publicKey, object: "organizationPublicKey" };
  });
  route("GET", "/api/organizations/:id/collections", (req, _b, [id]) => {
    const u = authUser(req);
    member(u, id!, false);
    return { data: visibleCollections(u).filter((c) => c.orgId === id).map((c) => ({ id: c.id, organizationId: c.orgId, name: c.name, externalId: c.externalId, object: "collection" })), object: "list", continuationToken: null };
  });
  route("POST", "/api/organizations/:id/collections", (req, b, [id]) => {
    const u = authUser(req);
    member(u, id!, true);
    const name = requireEnc(field(b, "name"), "collection name");
    if (!name) throw bad("The Name field is required.");
    const c: VwCollection = { id: randomUUID(), orgId: id!, name, externalId: str(b, "externalId") ?? null };
    collections.set(c.id, c);
    for (const a of (field(b, "users") as Record<string, unknown>[] | undefined) ?? []) {
      const m = memberships.get(str(a, "id") ?? "");
      if (!m || m.orgId !== id) throw bad("User is not part of organization");
      m.collections.set(c.id, { readOnly: field(a, "readOnly") === true, hidePasswords: field(a, "hidePasswords") === true, manage: field(a, "manage") === true });
    }
    return { id: c.id, organizationId: c.orgId, name: c.name, externalId: c.externalId, object: "collection" };
  });
  route("POST", "/api/organizations/:id/users/invite", (req, b, [id]) => {
    const u = authUser(req);
    member(u, id!, true);
    for (const email of (field(b, "emails") as string[] | undefined) ?? []) {
      const invitee = userByEmail(email);
      if (!invitee) throw bad("User does not exist (the double has no mail invitations)");
      if (orgKeyFor(id!, invitee.id)) throw bad("User already in organization");
      // With SMTP off, an existing user goes straight to Accepted (organizations.rs send_invite).
      const m: VwMembership = { id: randomUUID(), orgId: id!, userId: invitee.id, key: null, status: 1, type: Number(field(b, "type") ?? 2), collections: new Map() };
      for (const a of (field(b, "collections") as Record<string, unknown>[] | undefined) ?? []) m.collections.set(str(a, "id") ?? "", { readOnly: field(a, "readOnly") === true, hidePasswords: field(a, "hidePasswords") === true, manage: field(a, "manage") === true });
      memberships.set(m.id, m);
    }
    return {};
  });
  route("GET", "/api/organizations/:id/users", (req, _b, [id]) => {
    member(authUser(req), id!, true);
    return { data: [...memberships.values()].filter((m) => m.orgId === id).map((m) => ({ id: m.id, userId: m.userId, email: users.get(m.userId)?.email, status: m.status, type: m.type, object: "organizationUserUserDetails" })), object: "list", continuationToken: null };
  });
  route("POST", "/api/organizations/:id/users/:id/confirm", (req, b, [id, mid]) => {
    member(authUser(req), id!, true);
    const m = memberships.get(mid!);
    if (!m || m.orgId !== id) throw new HttpError(404, "Membership not found", errorBody("Membership not found"));
    if (m.status !== 1) throw bad("User in invalid state");
    const key = str(b, "key");
    if (!key || !key.startsWith("4.")) throw bad("Invalid key provided");
    m.key = key;
    m.status = 2;
    return {};
  });

  // ---------- server ----------
  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = body === undefined ? "" : JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
    res.end(text);
  };

  const server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "https://double");
      const method = (req.method ?? "GET").toUpperCase();
      const path = url.pathname;
      const raw = Buffer.concat(chunks).toString("utf8");
      if (raw) bodies.push(raw);
      const finish = (status: number, body: unknown, headers?: Record<string, string>) => {
        log.push({ method, path, status });
        send(res, status, body, headers);
      };
      const fault = state.faults.find((f) => f.times > 0 && (!f.path || f.path.test(path)) && (!f.method || f.method === method));
      if (fault) {
        fault.times--;
        return finish(fault.status, errorBody(`injected ${fault.status}`), fault.retryAfter ? { "retry-after": fault.retryAfter } : {});
      }
      let body: Record<string, unknown> = {};
      try {
        const ct = req.headers["content-type"] ?? "";
        if (raw && ct.includes("application/x-www-form-urlencoded")) body = Object.fromEntries(new URLSearchParams(raw));
        else if (raw) body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        return finish(400, errorBody("Invalid JSON"));
      }
      for (const r of routes) {
        if (r.method !== method) continue;
        const m = r.re.exec(path);
        if (!m) continue;
        try {
          const out = r.h(req, body ?? {}, m.slice(1), url.searchParams);
          return finish(200, out);
        } catch (e) {
          if (e instanceof HttpError) return finish(e.status, e.body ?? errorBody(e.message));
          return finish(500, errorBody(`internal: ${(e as Error).message}`));
        }
      }
      finish(404, errorBody("Not found"));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  port = (server.address() as AddressInfo).port;

  return {
    url: `https://127.0.0.1:${port}`,
    port,
    ca: tls.ca,
    caFile: tls.caFile,
    users,
    orgs,
    memberships,
    collections,
    folders,
    ciphers,
    log,
    bodies,
    get tokenLifetime() {
      return state.tokenLifetime;
    },
    set tokenLifetime(s: number) {
      state.tokenLifetime = s;
    },
    get faults() {
      return state.faults;
    },
    set faults(f: VwFault[]) {
      state.faults = f;
    },
    featureStates,
    expireAccessTokens() {
      for (const t of accessTokens.values()) t.exp = 0;
    },
    revokeRefreshTokens() {
      refreshTokens.clear();
    },
    userByEmail,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => {
          rmSync(dir, { recursive: true, force: true });
          r();
        });
      }),
  };
}
