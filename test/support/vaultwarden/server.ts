/**
 * A Vaultwarden-compatible HTTPS double for tests (never for production). It implements the endpoints that
 * secrets-client and the official `bw` CLI call, following Vaultwarden 1.37.2 (dani-garcia/vaultwarden tag 1.37.2;
 * each rule below names the source file and function it follows): prelogin (+ /password with kdfSettings),
 * register (old and new body shapes, PBKDF2 >= 100000), connect/token (password, client_credentials,
 * refresh_token) answering UserDecryptionOptions + AccountKeys, its error bodies (a plain ErrorModel with
 * `error: ""` for wrong credentials, `invalid_grant` only for a refused refresh), the login rate limiter
 * (switchable), config as Vaultwarden sends it, sync, ciphers (personal, org create, update with the whole-second
 * stale check, soft/hard delete, restore, share; a missing or inaccessible cipher is a 400, a non-UUID id a 404),
 * folders, organizations with their roles (owner, admin, manager with or without access-all, user; read-only
 * collection access), collections, invite/confirm and public keys. What 1.37.2 does not serve is not served
 * (no `/api/accounts/key-management/user-key-id`, no `enableCipherKeyEncryption` flag).
 *
 * Time is the double's clock (`clock.advance(ms)`): revision dates, the stale check, token expiry and the rate
 * limiter read it, so tests move time instead of sleeping.
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
  /** An enabled authenticator (TOTP) two-factor provider: password logins then need a 2FA token (tests set it). */
  twoFactor?: boolean;
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
  /** 0 owner, 1 admin, 2 user, 3 manager (4, custom, is stored as manager: organizations.rs send_invite). */
  type: number;
  /** Access to every collection (db/models/organization.rs `access_all`; owners and admins always have it). */
  accessAll: boolean;
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

export interface VwHook {
  method?: string;
  path?: RegExp;
  user?: string;
  times: number;
  run: () => Promise<void>;
}

export interface VaultwardenDoubleOptions {
  tokenLifetime?: number;
  /** Switch the login rate limiter on (off by default so unrelated tests can log in freely). */
  loginRateLimit?: boolean;
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
   * Feature flags served in /api/config: what Vaultwarden 1.37.2 sends by default (src/api/core/mod.rs `config`:
   * the EXPERIMENTAL_CLIENT_FEATURE_FLAGS, filtered to SUPPORTED_FEATURE_FLAGS of config.rs, plus
   * `pm-19148-innovation-archive`). `enableCipherKeyEncryption` is not among them: a real server cannot send it.
   */
  featureStates: Record<string, boolean>;
  /** The double's clock: `now()` is the wall clock plus `advance()`d milliseconds. */
  clock: { now(): number; advance(ms: number): void };
  /**
   * The login rate limiter (ratelimit.rs `check_limit_login`, config.rs `login_ratelimit_seconds` 60,
   * `login_ratelimit_max_burst` 10): for the password and client_credentials grants, per client IP.
   */
  loginRateLimit: { enabled: boolean; burst: number; seconds: number; reset(): void };
  /** Device identifiers seen at login, per user id (identity.rs get_device: one device row per identifier). */
  devices: Map<string, Set<string>>;
  /**
   * Awaited before a matching request is handled (each consumes one `times`): lets a test run another client
   * between two requests of the one it watches. `user` is an e-mail, matched on the bearer token.
   */
  hooks: VwHook[];
  /** Makes every access token issued so far expired (401 on use). */
  expireAccessTokens(): void;
  /** Forgets every refresh token (refresh grant answers invalid_grant). */
  revokeRefreshTokens(): void;
  userByEmail(email: string): VwUser | undefined;
  stop(): Promise<void>;
}

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

/**
 * Vaultwarden's error body for every `err!` (src/error.rs `api_error` / `ApiErrorResponse`): status 400 unless
 * `err_code!` sets another, and `error` is always the empty string.
 */
const errorBody = (message: string) => ({
  message,
  validationErrors: { "": [message] },
  errorModel: { message, object: "error" },
  error: "",
  error_description: "",
  exceptionMessage: null,
  exceptionStackTrace: null,
  innerExceptionMessage: null,
  object: "error",
});
/** src/error.rs `err!`: 400 with the ErrorModel body. */
const bad = (message: string) => new HttpError(400, message, errorBody(message));
/** src/error.rs `err_code!`: the same body with another status. */
const errCode = (message: string, status: number) => new HttpError(status, message, errorBody(message));
/**
 * The request guards of src/auth.rs (`err_handler!`) end in Rocket's default catcher: 401 with Rocket's JSON (the
 * guard's message is only logged). Vaultwarden registers no 401 catcher (src/api/core/mod.rs `catchers`).
 */
const unauthorized = (logMessage: string) => new HttpError(401, logMessage, { error: { code: 401, reason: "Unauthorized", description: "The request requires user authentication." } });
/** src/api/core/mod.rs `api_not_found`: unknown routes, and ids that are not UUIDs (the `UuidFromParam` guards of macros/src/lib.rs refuse them, so no route matches). */
const notFoundBody = { error: { code: 404, reason: "Not Found", description: "The requested resource could not be found." } };
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function makeCertificates(dir: string): { key: Buffer; cert: string; ca: string; caFile: string } {
  const run = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  run(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=vaultwarden-double test CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  run(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
  writeFileSync(join(dir, "ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n");
  run(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "ext.cnf"]);
  const ca = readFileSync(join(dir, "ca.pem"), "utf8");
  return { key: readFileSync(join(dir, "server.key")), cert: readFileSync(join(dir, "server.pem"), "utf8") + ca, ca, caFile: join(dir, "ca.pem") };
}

/** An ISO 8601 date in microseconds since the epoch (NaN when it does not parse). */
function isoMicros(iso: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)$/.exec(iso);
  if (!m) return NaN;
  const whole = Date.parse(`${m[1]}${m[3]}`);
  return Number.isNaN(whole) ? NaN : whole * 1000 + Number(((m[2] ?? "") + "000000").slice(0, 6));
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

export async function startVaultwardenDouble(opts: VaultwardenDoubleOptions = {}): Promise<VaultwardenDouble> {
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
  // src/api/core/mod.rs `config`: EXPERIMENTAL_CLIENT_FEATURE_FLAGS defaults to "" (config.rs), plus this one.
  const featureStates: Record<string, boolean> = { "pm-19148-innovation-archive": true };
  let port = 0;
  let offsetMs = 0;
  const nowMs = () => Date.now() + offsetMs;
  // util.rs format_date: RFC 3339 with microseconds (SecondsFormat::Micros), "Z".
  const now = () => new Date(nowMs()).toISOString().replace(/Z$/, "000Z");
  const devices = new Map<string, Set<string>>();
  const hooks: VwHook[] = [];

  // ---------- login rate limiter (src/ratelimit.rs check_limit_login: governor GCRA, keyed by IP) ----------
  const limiter = { enabled: opts.loginRateLimit ?? false, burst: 10, seconds: 60, tat: new Map<string, number>() };
  function checkLimitLogin(ip: string) {
    if (!limiter.enabled) return;
    // Quota::with_period(seconds).allow_burst(burst): a burst of `burst`, then one more per `seconds`.
    const t = nowMs();
    const period = limiter.seconds * 1000;
    const next = Math.max(limiter.tat.get(ip) ?? t, t) + period;
    // err_code!("Too many login requests", 429): no Retry-After header.
    if (next - t > period * limiter.burst) throw errCode("Too many login requests", 429);
    limiter.tat.set(ip, next);
  }

  const userByEmail = (email: string) => [...users.values()].find((u) => u.email === email.trim().toLowerCase());

  // ---------- tokens ----------
  const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url");
  function issueTokens(user: VwUser, clientId: string, scope: string[], withRefresh: boolean, device: string) {
    const exp = Math.floor(nowMs() / 1000) + state.tokenLifetime;
    const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
    const payload = b64url(
      JSON.stringify({ nbf: Math.floor(nowMs() / 1000) - 1, exp, iss: `https://127.0.0.1:${port}|login`, sub: user.id, premium: true, name: user.name, email: user.email, email_verified: true, sstamp: user.securityStamp, device, devicetype: "LinuxCLI", client_id: clientId, scope, amr: ["Application"] }),
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

  /** src/auth.rs `Headers::from_request`: no, invalid or expired token -> 401 (Rocket's body). */
  function tokenUser(req: IncomingMessage): VwUser | undefined {
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? "");
    const t = m ? accessTokens.get(m[1]!) : undefined;
    return t && t.exp > nowMs() ? users.get(t.userId) : undefined;
  }
  function authUser(req: IncomingMessage): VwUser {
    const u = tokenUser(req);
    if (!u) throw unauthorized("Invalid claim");
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
  /** db/models/organization.rs `Membership::has_full_access`: (access_all or Admin/Owner) and confirmed. */
  const hasFullAccess = (m: VwMembership) => (m.accessAll || m.type === 0 || m.type === 1) && m.status === 2;
  /** db/models/collection.rs `find_by_user_uuid` / `is_writable_by_user`: full access, else the user's own assignments. */
  const collectionAccess = (user: VwUser, c: VwCollection): { write: boolean } | undefined => {
    const m = orgKeyFor(c.orgId, user.id);
    if (!m || m.status !== 2) return undefined;
    if (hasFullAccess(m)) return { write: true };
    const a = m.collections.get(c.id);
    return a ? { write: !a.readOnly } : undefined;
  };
  const visibleCollections = (user: VwUser) => [...collections.values()].filter((c) => collectionAccess(user, c) !== undefined);
  /** db/models/cipher.rs `is_accessible_to_user` / `is_write_accessible_to_user` (via `get_access_restrictions`). */
  const cipherAccess = (user: VwUser, c: VwCipher): { write: boolean } | undefined => {
    if (c.organizationId === null) return c.userId === user.id ? { write: true } : undefined;
    const m = orgKeyFor(c.organizationId, user.id);
    if (!m || m.status !== 2) return undefined;
    if (hasFullAccess(m)) return { write: true };
    let access: { write: boolean } | undefined;
    for (const id of c.collectionIds) {
      const col = collections.get(id);
      const a = col ? collectionAccess(user, col) : undefined;
      if (a) access = { write: (access?.write ?? false) || a.write };
    }
    return access;
  };
  const canSeeCipher = (user: VwUser, c: VwCipher) => cipherAccess(user, c) !== undefined;

  /** src/auth.rs `OrgHeaders`: a membership of any status, else 401. */
  function orgHeaders(req: IncomingMessage, orgId: string): { user: VwUser; m: VwMembership } {
    const user = authUser(req);
    const m = orgKeyFor(orgId, user.id);
    if (!m) throw unauthorized("The current user isn't member of the organization");
    return { user, m };
  }
  /** src/auth.rs `AdminHeaders`: confirmed Owner or Admin, else 401. */
  function adminHeaders(req: IncomingMessage, orgId: string) {
    const h = orgHeaders(req, orgId);
    if (!(h.m.status === 2 && (h.m.type === 0 || h.m.type === 1))) throw unauthorized("You need to be Admin or Owner to call this endpoint");
    return h;
  }
  /** src/auth.rs `ManagerHeadersLoose`: confirmed Manager, Admin or Owner, else 401. */
  function managerHeadersLoose(req: IncomingMessage, orgId: string) {
    const h = orgHeaders(req, orgId);
    if (!(h.m.status === 2 && [0, 1, 3].includes(h.m.type))) throw unauthorized("You need to be a Manager, Admin or Owner to call this endpoint");
    return h;
  }

  // db/models/cipher.rs Cipher::to_json (no `data` object since 1.37.0; edit/viewPassword simplified to true).
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

  // db/models/user.rs User::to_json, organizations from db/models/organization.rs Membership::to_json.
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

  // db/models/collection.rs Collection::to_json_details.
  const collectionJson = (c: VwCollection, u: VwUser) => {
    const m = orgKeyFor(c.orgId, u.id);
    const access = m?.collections.get(c.id);
    return { id: c.id, organizationId: c.orgId, name: c.name, externalId: c.externalId, type: 0, readOnly: access?.readOnly ?? false, hidePasswords: access?.hidePasswords ?? false, manage: access?.manage ?? (m ? m.type <= 1 : false), object: "collectionDetails" };
  };
  // db/models/folder.rs Folder::to_json.
  const folderJson = (f: VwFolder) => ({ id: f.id, name: f.name, revisionDate: f.revisionDate, object: "folder" });

  // ---------- cipher writes ----------
  const ENC_LOGIN = ["username", "password", "totp"] as const;
  // ciphers.rs CipherData + update_cipher_from_data (type, notes size via CONFIG._max_note_size 10,000), plus the
  // test-only EncString strictness of requireEnc.
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

  /** ciphers.rs update_cipher_from_data: `err!("Invalid folder", ...)` for a folder that is missing or another user's. */
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
      // ciphers.rs share_cipher_by_uuid: each collection must exist in the org and be writable by the user
      // (collection.rs is_writable_by_user); then update_cipher_from_data: a confirmed membership is required, and
      // without any collection only a full-access member may put the cipher in the organization.
      const m = orgKeyFor(data.organizationId, user.id);
      for (const id of collectionIds ?? []) {
        const col = collections.get(id);
        if (!col || col.orgId !== data.organizationId) throw bad("Invalid collection ID provided");
        if (!collectionAccess(user, col)?.write) throw bad("No rights to modify the collection");
      }
      if (!m || m.status !== 2) throw bad("You don't have permission to add item to organization");
      if ((collectionIds ?? []).length === 0 && !hasFullAccess(m)) throw bad("You don't have permission to add cipher directly to organization");
      c.collectionIds = [...(collectionIds ?? [])];
    }
    ciphers.set(c.id, c);
    user.revisionDate = t;
    return c;
  }

  /** ciphers.rs get_cipher: 400 "Cipher doesn't exist", 400 "Cipher is not owned by user" (never 404 for a UUID). */
  function getCipher(user: VwUser, id: string): VwCipher {
    const c = ciphers.get(id);
    if (!c) throw bad("Cipher doesn't exist");
    if (!canSeeCipher(user, c)) throw bad("Cipher is not owned by user");
    return c;
  }
  /** ciphers.rs put_cipher / share_cipher_by_uuid: 400 "Cipher doesn't exist", 400 "Cipher is not write accessible". */
  function writableCipher(user: VwUser, id: string): VwCipher {
    const c = ciphers.get(id);
    if (!c) throw bad("Cipher doesn't exist");
    if (!cipherAccess(user, c)?.write) throw bad("Cipher is not write accessible");
    return c;
  }
  /** ciphers.rs delete_cipher_by_uuid / restore_cipher_by_uuid. */
  function deletableCipher(user: VwUser, id: string, what: "deleted" | "restored"): VwCipher {
    const c = ciphers.get(id);
    if (!c) throw bad("Cipher doesn't exist");
    if (!cipherAccess(user, c)?.write) throw bad(`Cipher can't be ${what} by user`);
    return c;
  }

  function updateCipher(user: VwUser, id: string, d: Record<string, unknown>): VwCipher {
    const c = writableCipher(user, id);
    const known = str(d, "lastKnownRevisionDate");
    // ciphers.rs update_cipher_from_data: `cipher.updated_at.signed_duration_since(dt).num_seconds() > 1` refuses the
    // write: whole seconds, truncated, so a copy less than 2 s older than the server's passes. A date that does not
    // parse is only logged (warn!) and the write goes through.
    // chrono parses "%+" to the nanosecond; microseconds are enough here (revision dates are formatted with 6 digits).
    const knownUs = known ? isoMicros(known) : NaN;
    if (!Number.isNaN(knownUs) && Math.trunc((isoMicros(c.revisionDate) - knownUs) / 1_000_000) > 1) throw bad("The client copy of this cipher is out of date. Resync the client and try again.");
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
  // Every `:id` of these routes is a UUID guard in Vaultwarden (CipherId, FolderId, OrganizationId, MembershipId,
  // UserId: macros/src/lib.rs UuidFromParam); a value that is not a UUID matches no route: 404.

  // src/api/core/mod.rs `config`, field for field (gitHash is the build's GIT_REV; settings at their config.rs defaults).
  const configJson = () => ({
    version: "2026.6.0",
    gitHash: null,
    server: { name: "Vaultwarden", url: "https://github.com/dani-garcia/vaultwarden" },
    settings: { disableUserRegistration: false, suppressOnboardingInterstitials: true },
    environment: { vault: `https://127.0.0.1:${port}`, api: `https://127.0.0.1:${port}/api`, identity: `https://127.0.0.1:${port}/identity`, notifications: `https://127.0.0.1:${port}/notifications`, sso: "", cloudRegion: null },
    push: { pushTechnology: 0, vapidPublicKey: null },
    featureStates,
    communication: null,
    object: "config",
  });
  route("GET", "/api/config", () => configJson());
  // src/api/core/mod.rs alive / now / version.
  route("GET", "/api/alive", () => now());
  route("GET", "/api/now", () => now());
  route("GET", "/api/version", () => "1.37.2");

  // identity.rs prelogin_password / accounts.rs _prelogin: defaults (PBKDF2 600000) for unknown e-mails.
  const prelogin: Handler = (_req, body) => {
    const email = str(body, "email") ?? "";
    const u = userByEmail(email);
    const kdf = u?.kdf ?? { kdfType: 0, iterations: 600_000, memory: null, parallelism: null };
    return { kdf: kdf.kdfType, kdfIterations: kdf.iterations, kdfMemory: kdf.memory, kdfParallelism: kdf.parallelism, kdfSettings: { kdfType: kdf.kdfType, iterations: kdf.iterations, memory: kdf.memory, parallelism: kdf.parallelism }, salt: null };
  };
  // identity.rs post_prelogin / prelogin_password, accounts.rs prelogin: unknown accounts get the defaults.
  route("POST", "/identity/accounts/prelogin", prelogin);
  route("POST", "/identity/accounts/prelogin/password", prelogin);
  route("POST", "/api/accounts/prelogin", prelogin);

  // identity.rs identity_register -> accounts.rs _register (with SIGNUPS_ALLOWED, the default).
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
    const u: VwUser = { id: randomUUID(), email, name: str(b, "name") ?? email, masterPasswordHash: hash, kdf, key, publicKey, encryptedPrivateKey, securityStamp: randomUUID(), apiKey: randomBytes(30).toString("base64").replace(/[^A-Za-z0-9]/g, "").padEnd(30, "x").slice(0, 30), creationDate: t, revisionDate: t };
    users.set(u.id, u);
    return { object: "register", captchaBypassToken: "" };
  });

  // identity.rs `login`: the blank checks in this order, then the grant.
  route("POST", "/identity/connect/token", (req, b) => {
    const grant = str(b, "grant_type");
    const ip = req.socket.remoteAddress ?? "";
    const blank = (names: string[]) => {
      for (const n of names) if (!str(b, n)) throw bad(`${n} cannot be blank`);
    };
    const deviceSeen = (u: VwUser) => {
      const set = devices.get(u.id) ?? new Set<string>();
      set.add(str(b, "device_identifier")!);
      devices.set(u.id, set);
    };
    if (grant === "refresh_token") {
      blank(["refresh_token"]);
      // identity.rs refresh_login: err_json!({"error": "invalid_grant"}): that body exactly, 400. Not rate-limited.
      const uid = refreshTokens.get(str(b, "refresh_token")!);
      const u = uid ? users.get(uid) : undefined;
      if (!u) throw new HttpError(400, "invalid_grant", { error: "invalid_grant" });
      return issueTokens(u, "cli", ["api", "offline_access"], true, "refresh");
    }
    if (grant === "password") {
      blank(["client_id", "password", "scope", "username", "device_identifier", "device_name", "device_type"]);
      // identity.rs password_login: scope (auth.rs AuthMethod::check_scope), then the rate limit, then the user.
      const scope = str(b, "scope")!;
      if (scope !== PASSWORD_GRANT_SCOPE) throw bad(`Scope (${scope}) not supported`);
      checkLimitLogin(ip);
      const u = userByEmail(str(b, "username") ?? "");
      // The same plain ErrorModel (error: "") for an unknown user and a wrong password.
      if (!u || !hashEq(u.masterPasswordHash, str(b, "password") ?? "")) throw bad("Username or password is incorrect. Try again");
      deviceSeen(u);
      // identity.rs twofactor_auth: no two_factor_token -> err_json!(json_err_twofactor(...)), 400 (the double
      // accepts no 2FA token at all; API-key logins skip 2FA).
      if (u.twoFactor) throw new HttpError(400, "Two factor required.", { error: "invalid_grant", error_description: "Two factor required.", TwoFactorProviders: ["0"], TwoFactorProviders2: { "0": null }, MasterPasswordPolicy: { Object: "masterPasswordPolicy" } });
      return issueTokens(u, str(b, "client_id")!, ["api", "offline_access"], true, str(b, "device_identifier")!);
    }
    if (grant === "client_credentials") {
      blank(["client_id", "client_secret", "scope", "device_identifier", "device_name", "device_type"]);
      // identity.rs api_key_login: the rate limit first, then the scope, then user_api_key_login.
      checkLimitLogin(ip);
      if (str(b, "scope") !== "api") throw bad("Scope not supported");
      const cid = str(b, "client_id")!;
      const m = /^user\.(.+)$/.exec(cid);
      if (!m) throw bad("Malformed client_id");
      const u = users.get(m[1]!);
      if (!u) throw bad("Invalid client_id");
      if (!hashEq(u.apiKey, str(b, "client_secret") ?? "")) throw bad("Incorrect client_secret");
      deviceSeen(u);
      // Personal API key logins get no refresh token (identity.rs user_api_key_login).
      return issueTokens(u, cid, ["api"], false, str(b, "device_identifier")!);
    }
    throw bad("Invalid type");
  });

  // accounts.rs revision_date / profile / post_api_key (PasswordOrOtpData::validate: "Invalid password").
  route("GET", "/api/accounts/revision-date", (req) => Date.parse(authUser(req).revisionDate));
  route("GET", "/api/accounts/profile", (req) => profileJson(authUser(req)));
  route("POST", "/api/accounts/api-key", (req, b) => {
    const u = authUser(req);
    if (!hashEq(u.masterPasswordHash, str(b, "masterPasswordHash") ?? "")) throw bad("Invalid password");
    return { apiKey: u.apiKey, revisionDate: u.revisionDate, object: "apiKey" };
  });
  route("GET", "/api/users/:id/public-key", (req, _b, [id]) => {
    authUser(req);
    const u = users.get(id!);
    // accounts.rs get_public_keys: err_code!("User doesn't exist", 404).
    if (!u) throw errCode("User doesn't exist", 404);
    return { userId: u.id, publicKey: u.publicKey, object: "userKey" };
  });

  // ciphers.rs sync (no cipher `data`, userDecryption as in connect/token).
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
      userDecryption: { masterPasswordUnlock: { kdf: { kdfType: u.kdf.kdfType, iterations: u.kdf.iterations, memory: u.kdf.memory, parallelism: u.kdf.parallelism }, masterKeyWrappedUserKey: u.key, masterKeyEncryptedUserKey: u.key, salt: u.email } },
      object: "sync",
    };
  });

  // ciphers
  // ciphers.rs get_ciphers, post_ciphers, post_ciphers_create, delete_cipher_selected, get_cipher(_details),
  // put_cipher / post_cipher, delete_cipher_put (soft), delete_cipher / delete_cipher_post (hard), restore_cipher_put,
  // put_cipher_share / post_cipher_share.
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
    for (const id of (field(b, "ids") as string[] | undefined) ?? []) ciphers.delete(deletableCipher(u, id, "deleted").id);
    return {};
  });
  route("GET", "/api/ciphers/:id", (req, _b, [id]) => cipherJson(getCipher(authUser(req), id!)));
  route("GET", "/api/ciphers/:id/details", (req, _b, [id]) => cipherJson(getCipher(authUser(req), id!)));
  route("PUT", "/api/ciphers/:id", (req, b, [id]) => cipherJson(updateCipher(authUser(req), id!, b)));
  route("POST", "/api/ciphers/:id", (req, b, [id]) => cipherJson(updateCipher(authUser(req), id!, b)));
  route("PUT", "/api/ciphers/:id/delete", (req, _b, [id]) => {
    const c = deletableCipher(authUser(req), id!, "deleted");
    c.deletedDate = now();
    c.revisionDate = c.deletedDate;
    return {};
  });
  const hardDelete: Handler = (req, _b, [id]) => {
    ciphers.delete(deletableCipher(authUser(req), id!, "deleted").id);
    return {};
  };
  route("DELETE", "/api/ciphers/:id", hardDelete);
  route("POST", "/api/ciphers/:id/delete", hardDelete);
  route("PUT", "/api/ciphers/:id/restore", (req, _b, [id]) => {
    const c = deletableCipher(authUser(req), id!, "restored");
    c.deletedDate = null;
    c.revisionDate = now();
    return cipherJson(c);
  });
  const share: Handler = (req, b, [id]) => {
    const u = authUser(req);
    const c = writableCipher(u, id!);
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
  // folders.rs get_folders, post_folders, get_folder, put_folder, delete_folder.
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
    // folders.rs get_folder / put_folder / delete_folder: err!("Invalid folder", ...): 400.
    if (!f || f.userId !== u.id) throw bad("Invalid folder");
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
  // organizations.rs create_organization: the creator is a confirmed Owner (access-all).
  route("POST", "/api/organizations", (req, b) => {
    const u = authUser(req);
    const keys = (field(b, "keys") ?? {}) as Record<string, unknown>;
    const key = str(b, "key");
    if (!key || !key.startsWith("4.")) throw bad("key must be the org key wrapped to your public key (EncString type 4)");
    const o: VwOrg = { id: randomUUID(), name: str(b, "name") ?? "", billingEmail: str(b, "billingEmail") ?? u.email, publicKey: str(keys, "publicKey") ?? null, encryptedPrivateKey: requireEnc(field(keys, "encryptedPrivateKey"), "encryptedPrivateKey") };
    if (!o.name) throw bad("The Name field is required.");
    orgs.set(o.id, o);
    const m: VwMembership = { id: randomUUID(), orgId: o.id, userId: u.id, key, status: 2, type: 0, accessAll: true, collections: new Map() };
    memberships.set(m.id, m);
    const colName = requireEnc(field(b, "collectionName"), "collectionName");
    if (colName) {
      const c: VwCollection = { id: randomUUID(), orgId: o.id, name: colName, externalId: null };
      collections.set(c.id, c);
      m.collections.set(c.id, { readOnly: false, hidePasswords: false, manage: true });
    }
    return { id: o.id, name: o.name, object: "organization" };
  });
  // organizations.rs get_organization_public_key: OrgHeaders.
  route("GET", "/api/organizations/:id/public-key", (req, _b, [id]) => {
    orgHeaders(req, id!);
    return { publicKey: orgs.get(id!)!.publicKey, object: "organizationPublicKey" };
  });
  const collectionListJson = (c: VwCollection) => ({ id: c.id, organizationId: c.orgId, name: c.name, externalId: c.externalId, object: "collection" });
  // organizations.rs get_org_collections: ManagerHeadersLoose, then full access or err_code!("Resource not found.", 404).
  route("GET", "/api/organizations/:id/collections", (req, _b, [id]) => {
    const { m } = managerHeadersLoose(req, id!);
    if (!hasFullAccess(m)) throw errCode("Resource not found.", 404);
    return { data: [...collections.values()].filter((c) => c.orgId === id).map(collectionListJson), object: "list", continuationToken: null };
  });
  // organizations.rs post_organization_collections: ManagerHeadersLoose; a Manager without access-all may not create.
  route("POST", "/api/organizations/:id/collections", (req, b, [id]) => {
    const { user, m } = managerHeadersLoose(req, id!);
    const users_ = (field(b, "users") as Record<string, unknown>[] | undefined) ?? [];
    // FullCollectionData::validate: every member must belong to the org.
    for (const a of users_) {
      const x = memberships.get(str(a, "id") ?? "");
      if (!x || x.orgId !== id) throw bad("User is not part of organization");
    }
    if (m.type === 3 && !m.accessAll) throw bad("You don't have permission to create collections");
    const name = requireEnc(field(b, "name"), "collection name");
    if (!name) throw bad("The Name field is required.");
    const c: VwCollection = { id: randomUUID(), orgId: id!, name, externalId: str(b, "externalId") ?? null };
    collections.set(c.id, c);
    for (const a of users_) {
      const x = memberships.get(str(a, "id")!)!;
      if (x.accessAll) continue; // organizations.rs: members with access_all get no CollectionUser row
      x.collections.set(c.id, { readOnly: field(a, "readOnly") === true, hidePasswords: field(a, "hidePasswords") === true, manage: field(a, "manage") === true });
    }
    return collectionJson(c, user);
  });
  // organizations.rs send_invite: AdminHeaders; only Owners invite non-Users; a Custom (4) role becomes a Manager,
  // with access-all only when it carries the three collection permissions; Owners and Admins always have it.
  route("POST", "/api/organizations/:id/users/invite", (req, b, [id]) => {
    const { m: inviter } = adminHeaders(req, id!);
    const raw = str(b, "type") ?? "";
    const type = { "0": 0, "1": 1, "2": 2, "3": 3, "4": 3 }[raw];
    if (type === undefined) throw bad("Invalid type");
    if (type !== 2 && inviter.type !== 0) throw bad("Only Owners can invite Managers, Admins or Owners");
    const perms = (field(b, "permissions") ?? {}) as Record<string, unknown>;
    const accessAll = type === 0 || type === 1 || (raw === "4" && perms.editAnyCollection === true && perms.deleteAnyCollection === true && perms.createNewCollections === true);
    const cols = (field(b, "collections") as Record<string, unknown>[] | undefined) ?? [];
    // InviteData::validate: collections of this org only.
    for (const a of cols) if (collections.get(str(a, "id") ?? "")?.orgId !== id) throw bad("Invalid collection");
    for (const email of (field(b, "emails") as string[] | undefined) ?? []) {
      const invitee = userByEmail(email);
      if (!invitee) throw bad(`User does not exist: ${email} (the double has no mail invitations)`);
      if (orgKeyFor(id!, invitee.id)) throw bad(`User already in organization: ${email}`);
      // With SMTP off, an existing user goes straight to Accepted (organizations.rs send_invite).
      const m: VwMembership = { id: randomUUID(), orgId: id!, userId: invitee.id, key: null, status: 1, type, accessAll, collections: new Map() };
      if (!accessAll) for (const a of cols) m.collections.set(str(a, "id")!, { readOnly: field(a, "readOnly") === true, hidePasswords: field(a, "hidePasswords") === true, manage: field(a, "manage") === true });
      memberships.set(m.id, m);
    }
    return {};
  });
  // organizations.rs get_members: ManagerHeadersLoose, then full access or 404 "Resource not found.".
  route("GET", "/api/organizations/:id/users", (req, _b, [id]) => {
    const { m: me } = managerHeadersLoose(req, id!);
    if (!hasFullAccess(me)) throw errCode("Resource not found.", 404);
    return { data: [...memberships.values()].filter((m) => m.orgId === id).map((m) => ({ id: m.id, userId: m.userId, email: users.get(m.userId)?.email, status: m.status, type: m.type, accessAll: m.accessAll, object: "organizationUserUserDetails" })), object: "list", continuationToken: null };
  });
  // organizations.rs confirm_invite_impl: AdminHeaders; only Owners confirm non-Users; Accepted only.
  route("POST", "/api/organizations/:id/users/:id/confirm", (req, b, [id, mid]) => {
    const { m: me } = adminHeaders(req, id!);
    const key = str(b, "key");
    if (!key) throw bad("Key or UserId is not set, unable to process request");
    const m = memberships.get(mid!);
    if (!m || m.orgId !== id) throw bad("The specified user isn't a member of the organization");
    if (m.type !== 2 && me.type !== 0) throw bad("Only Owners can confirm Managers, Admins or Owners");
    if (m.status !== 1) throw bad("User in invalid state");
    if (!key.startsWith("4.")) throw bad("Invalid key provided (the double wants an EncString type 4)");
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
      const handle = () => {
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
          const params = m.slice(1);
          if (params.some((x) => !UUID_RE.test(x))) continue;
          try {
            const out = r.h(req, body ?? {}, params, url.searchParams);
            return finish(200, out);
          } catch (e) {
            if (e instanceof HttpError) return finish(e.status, e.body ?? errorBody(e.message));
            return finish(500, errorBody(`internal: ${(e as Error).message}`));
          }
        }
        finish(404, notFoundBody);
      };
      const fault = state.faults.find((f) => f.times > 0 && (!f.path || f.path.test(path)) && (!f.method || f.method === method));
      if (fault) {
        fault.times--;
        return finish(fault.status, errorBody(`injected ${fault.status}`), fault.retryAfter ? { "retry-after": fault.retryAfter } : {});
      }
      const who = tokenUser(req)?.email;
      const hook = hooks.find((h) => h.times > 0 && (!h.path || h.path.test(path)) && (!h.method || h.method === method) && (!h.user || h.user === who));
      if (!hook) return handle();
      hook.times--;
      hook.run().then(
        () => handle(),
        (e: unknown) => finish(500, errorBody(`hook failed: ${(e as Error).message}`)),
      );
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
    clock: {
      now: nowMs,
      advance(ms: number) {
        offsetMs += ms;
      },
    },
    loginRateLimit: {
      get enabled() {
        return limiter.enabled;
      },
      set enabled(v: boolean) {
        limiter.enabled = v;
      },
      get burst() {
        return limiter.burst;
      },
      set burst(v: number) {
        limiter.burst = v;
      },
      get seconds() {
        return limiter.seconds;
      },
      set seconds(v: number) {
        limiter.seconds = v;
      },
      reset() {
        limiter.tat.clear();
      },
    },
    devices,
    hooks,
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
