/**
 * A Vaultwarden (Bitwarden client protocol) client with client-side encryption: prelogin, login with the
 * master password or a personal API key (then a local unlock with the master password), token refresh, sync,
 * user key / RSA private key / organization keys, items (login, secure note) in organization collections or
 * personal, folders, collections, organizations and members. Every secret is encrypted here before it is sent.
 *
 * The keys live in this object's memory only; the master password is used during login() and not kept.
 */
import { createHash } from "node:crypto";
import { hostname } from "node:os";
import {
  SymmetricKey,
  decryptBytes,
  decryptString,
  deriveMasterKey,
  emailToSalt,
  encryptBytes,
  encryptString,
  generateRsaKeyPair,
  masterPasswordHash,
  publicKeyOf,
  rsaDecrypt,
  rsaEncrypt,
  uriChecksum,
  type KdfConfig,
  type KdfTypeValue,
} from "./crypto.js";
import { SecretsError } from "./errors.js";
import { HttpTransport, type RetryPolicy } from "./http.js";

export interface VaultwardenClientOptions {
  /** Server base URL, https only, e.g. https://vault.example.org (no /api suffix). */
  url: string;
  /** Extra CA certificate (PEM) to trust for this server. */
  ca?: string | Buffer;
  /**
   * Device id (Vaultwarden keeps one device row per id and e-mails on each new one); when unset, a stable id derived
   * from this host, the server and the account (`stableDeviceIdentifier`).
   */
  deviceIdentifier?: string;
  deviceName?: string;
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** Give new items their own key (wrapped under the org/user key), as Bitwarden clients do. Default true. */
  itemKeys?: boolean;
}

export interface Credentials {
  email: string;
  /** Needed in every case: it derives the master key that unwraps the user key. */
  password: string;
  /** Personal API key: client_id `user.<uuid>` and its secret. When set, login uses client_credentials. */
  apiKey?: { clientId: string; clientSecret: string };
}

export type ItemType = "login" | "secureNote" | "card" | "identity" | "sshKey" | "other";
const typeNumber: Record<"login" | "secureNote", number> = { login: 1, secureNote: 2 };
const typeName = (n: number): ItemType => (["other", "login", "secureNote", "card", "identity", "sshKey"][n] as ItemType | undefined) ?? "other";

export interface ItemField {
  name: string;
  value: string | null;
  /** 0 text, 1 hidden, 2 boolean, 3 linked. */
  type: number;
}

export interface PasswordHistoryEntry {
  password: string;
  lastUsedDate: string;
}

export interface LoginData {
  username: string | null;
  password: string | null;
  totp: string | null;
  uris: string[];
}

/** A decrypted item. Card/identity/SSH items come back with name and notes only. */
export interface Item {
  id: string;
  type: ItemType;
  organizationId: string | null;
  collectionIds: string[];
  folderId: string | null;
  name: string;
  notes: string | null;
  login: LoginData | null;
  fields: ItemField[];
  passwordHistory: PasswordHistoryEntry[];
  favorite: boolean;
  /** The item has its own key (per-item key). */
  hasItemKey: boolean;
  creationDate: string;
  revisionDate: string;
  deletedDate: string | null;
}

export interface ItemInput {
  type: "login" | "secureNote";
  name: string;
  notes?: string | null;
  /** For a new item: owner organization (then collectionIds must name at least one collection). */
  organizationId?: string | null;
  collectionIds?: string[];
  folderId?: string | null;
  login?: Partial<Omit<LoginData, "uris">> & { uris?: string[] };
  fields?: ItemField[];
  passwordHistory?: PasswordHistoryEntry[];
  favorite?: boolean;
}

export interface Organization {
  id: string;
  name: string;
  /** This user's membership id (organizationUserId). */
  memberId: string;
  /** 0 owner, 1 admin, 2 user, 3 manager, 4 custom. */
  role: number;
}

export interface Collection {
  id: string;
  organizationId: string;
  name: string;
}

export interface Folder {
  id: string;
  name: string;
  revisionDate: string;
}

type Json = Record<string, unknown>;

/** Lower-cases the first letter of every key (Vaultwarden and Bitwarden mix PascalCase and camelCase). */
function camel(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(camel);
  if (v && typeof v === "object") {
    const o: Json = {};
    for (const [k, x] of Object.entries(v as Json)) o[k.charAt(0).toLowerCase() + k.slice(1)] = camel(x);
    return o;
  }
  return v;
}

const asObj = (v: unknown): Json => (v && typeof v === "object" ? (v as Json) : {});
const asStr = (v: unknown): string | null => (typeof v === "string" ? v : null);

interface Session {
  accessToken: string;
  expiresAt: number;
  refreshToken: string | undefined;
}

/** What `sessionState()` gives and `resume()` takes. */
export interface SavedSession {
  email: string;
  accessToken: string;
  /** Epoch ms. */
  expiresAt: number;
  refreshToken?: string;
}

export class VaultwardenClient {
  readonly http: HttpTransport;
  private deviceIdentifier: string | undefined;
  private readonly deviceName: string;
  private readonly itemKeys: boolean;
  private session: Session | undefined;
  private apiKey: Credentials["apiKey"];
  private email: string | undefined;
  private kdf: KdfConfig | undefined;
  private userKey: SymmetricKey | undefined;
  private privateKey: Buffer | undefined;
  private orgKeys = new Map<string, SymmetricKey>();
  private orgs: Organization[] = [];
  private rawCollections: Json[] = [];
  /** User id (JWT `sub`) once logged in. */
  userId: string | undefined;

  constructor(opts: VaultwardenClientOptions) {
    this.http = new HttpTransport({
      baseUrl: opts.url,
      ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
      ...(opts.retry !== undefined ? { retry: opts.retry } : {}),
      headers: {
        accept: "application/json",
        // Vaultwarden reads these (auth.rs ClientHeaders); 21 = SDK. The version gates features server-side.
        "device-type": "21",
        "bitwarden-client-name": "cim-realm",
        "bitwarden-client-version": "2026.9.0",
        "user-agent": "cim-realm-secrets-client",
      },
    });
    this.deviceIdentifier = opts.deviceIdentifier;
    this.deviceName = opts.deviceName ?? "cim-realm";
    this.itemKeys = opts.itemKeys ?? true;
  }

  /** Never print tokens, keys or the API key secret held here. */
  toJSON(): string {
    return "[VaultwardenClient]";
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `[VaultwardenClient ${this.http.baseUrl.origin}${this.loggedIn ? " unlocked" : ""}]`;
  }

  // ------------------------------------------------------------------ low level

  private async call(method: string, path: string, body?: { json?: unknown; form?: Record<string, string> }, token?: string): Promise<unknown> {
    const headers: Record<string, string> = {};
    let text: string | undefined;
    if (body?.form) {
      headers["content-type"] = "application/x-www-form-urlencoded; charset=utf-8";
      text = new URLSearchParams(body.form).toString();
    } else if (body?.json !== undefined) {
      headers["content-type"] = "application/json; charset=utf-8";
      text = JSON.stringify(body.json);
    }
    if (token) headers.authorization = `Bearer ${token}`;
    if (method === "GET") {
      headers["cache-control"] = "no-store";
      headers.pragma = "no-cache";
    }
    const isToken = path.startsWith("identity/connect/token");
    const res = await this.http.request({ method, path, headers, ...(text !== undefined ? { body: text } : {}), ...(isToken ? { noRetryOn429: true } : {}) });
    const what = `${method} ${path.split("?")[0]}`;
    let parsed: unknown;
    if (res.text.length > 0) {
      try {
        parsed = camel(JSON.parse(res.text));
      } catch {
        if (res.status >= 200 && res.status < 300) throw new SecretsError("SERVER", `Vaultwarden answered ${what} with a body that is not JSON`, { status: res.status });
      }
    }
    if (res.status >= 200 && res.status < 300) return parsed;
    throw errorFromResponse(what, res.status, parsed, isToken);
  }

  /**
   * An authenticated API call: renews an expiring token first. On a 401 it finds out whether the session or the
   * right is missing: Vaultwarden answers 401 both for a dead token and for a role the account lacks (auth.rs
   * OrgHeaders / AdminHeaders / ManagerHeaders). If the token still works (GET /api/accounts/revision-date), the
   * 401 is final (FORBIDDEN) and nothing is renewed; else the session is renewed once and the call repeated, and a
   * 401 after that renewal is final too. No loop, and no login spent on a missing role.
   */
  async api(method: string, path: string, json?: unknown): Promise<unknown> {
    if (!this.session) throw new SecretsError("AUTH", "not logged in");
    if (this.session.expiresAt - 60_000 < Date.now()) await this.renew();
    const body = json === undefined ? undefined : { json };
    try {
      return await this.call(method, path, body, this.session.accessToken);
    } catch (e) {
      if (!(e instanceof SecretsError) || e.status !== 401) throw e;
      if (await this.tokenWorks()) throw forbidden(e);
      await this.renew();
      try {
        return await this.call(method, path, body, this.session.accessToken);
      } catch (e2) {
        if (e2 instanceof SecretsError && e2.status === 401) throw forbidden(e2);
        throw e2;
      }
    }
  }

  /** Whether the current access token is still accepted (a cheap authenticated GET). */
  private async tokenWorks(): Promise<boolean> {
    try {
      await this.call("GET", "api/accounts/revision-date", undefined, this.session?.accessToken);
      return true;
    } catch (e) {
      if (e instanceof SecretsError && e.status === 401) return false;
      throw e;
    }
  }

  private deviceFields(): Record<string, string> {
    this.deviceIdentifier ??= stableDeviceIdentifier(this.http.baseUrl.href, this.email ?? "");
    return { deviceIdentifier: this.deviceIdentifier, deviceName: this.deviceName, deviceType: "21" };
  }

  private accept(tokenResponse: Json): void {
    const access = asStr(tokenResponse.access_token);
    if (!access) throw new SecretsError("SERVER", "token response without access_token");
    const expiresIn = Number(tokenResponse.expires_in ?? 3600);
    this.session = { accessToken: access, expiresAt: Date.now() + expiresIn * 1000, refreshToken: asStr(tokenResponse.refresh_token) ?? this.session?.refreshToken };
    try {
      const payload = JSON.parse(Buffer.from(access.split(".")[1] ?? "", "base64url").toString("utf8")) as { sub?: string };
      if (payload.sub) this.userId = payload.sub;
    } catch {
      // Not a JWT: the user id comes from sync then.
    }
  }

  /** Gets a fresh access token: refresh grant, else the API key again (API-key logins have no refresh token). */
  async renew(): Promise<void> {
    const s = this.session;
    if (s?.refreshToken) {
      try {
        this.accept(asObj(await this.call("POST", "identity/connect/token", { form: { grant_type: "refresh_token", client_id: "cli", refresh_token: s.refreshToken } })));
        return;
      } catch (e) {
        if (!(e instanceof SecretsError) || e.kind !== "AUTH" || !this.apiKey) throw e instanceof SecretsError && e.kind === "AUTH" ? new SecretsError("AUTH", "session expired and the refresh token was refused: log in again", { status: e.status }) : e;
      }
    }
    if (this.apiKey) {
      this.accept(asObj(await this.call("POST", "identity/connect/token", { form: { grant_type: "client_credentials", scope: "api", client_id: this.apiKey.clientId, client_secret: this.apiKey.clientSecret, ...this.deviceFields() } })));
      return;
    }
    throw new SecretsError("AUTH", "session expired: log in again");
  }

  // ------------------------------------------------------------------ identity

  /** KDF settings for an account (unknown accounts get Vaultwarden's defaults, by design). */
  async prelogin(email: string): Promise<KdfConfig> {
    let r: Json;
    try {
      r = asObj(await this.call("POST", "identity/accounts/prelogin/password", { json: { email } }));
    } catch (e) {
      if (!(e instanceof SecretsError) || e.kind !== "NOT_FOUND") throw e;
      r = asObj(await this.call("POST", "identity/accounts/prelogin", { json: { email } }));
    }
    return kdfFrom(asObj(r.kdfSettings), r);
  }

  /** Logs in and unlocks: afterwards items can be read and written. */
  async login(creds: Credentials): Promise<void> {
    this.lock();
    const email = emailToSalt(creds.email);
    this.email = email;
    let tokenResponse: Json;
    let masterKey: Buffer | undefined;
    if (creds.apiKey) {
      tokenResponse = asObj(await this.call("POST", "identity/connect/token", { form: { grant_type: "client_credentials", scope: "api", client_id: creds.apiKey.clientId, client_secret: creds.apiKey.clientSecret, ...this.deviceFields() } }));
      this.apiKey = creds.apiKey;
    } else {
      const kdf = await this.prelogin(email);
      masterKey = await deriveMasterKey(creds.password, email, kdf);
      this.kdf = kdf;
      tokenResponse = asObj(
        await this.call("POST", "identity/connect/token", {
          form: { grant_type: "password", scope: "api offline_access", client_id: "cli", username: email, password: await masterPasswordHash(masterKey, creds.password, 1), ...this.deviceFields() },
        }),
      );
    }
    this.accept(tokenResponse);
    this.email = email;
    const mpu = asObj(asObj(tokenResponse.userDecryptionOptions).masterPasswordUnlock);
    const protectedKey = asStr(mpu.masterKeyWrappedUserKey) ?? asStr(mpu.masterKeyEncryptedUserKey) ?? asStr(tokenResponse.key);
    const wrappedPrivate = asStr(asObj(asObj(tokenResponse.accountKeys).publicKeyEncryptionKeyPair).wrappedPrivateKey) ?? asStr(tokenResponse.privateKey);
    if (!protectedKey) throw new SecretsError("SERVER", "token response carries no master-key-wrapped user key");
    if (!masterKey) {
      // API key login: the KDF comes with the (authenticated) token response.
      const kdf = kdfFrom(asObj(mpu.kdf), tokenResponse);
      const salt = asStr(mpu.salt) ?? email;
      masterKey = await deriveMasterKey(creds.password, salt, kdf);
      this.kdf = kdf;
    }
    try {
      this.userKey = SymmetricKey.fromBytes(decryptBytes(protectedKey, SymmetricKey.stretch(masterKey)));
    } catch (e) {
      if (e instanceof SecretsError && e.kind === "INTEGRITY") throw new SecretsError("AUTH", "the master password does not unlock this account");
      throw e;
    }
    if (wrappedPrivate) this.privateKey = decryptBytes(wrappedPrivate, this.userKey);
    await this.sync();
  }

  /**
   * The tokens of this session, to keep for a later process (`resume`): bearer credentials to the (encrypted)
   * vault, so whoever stores them keeps them private. No key, no password is in it.
   */
  sessionState(): SavedSession | undefined {
    const s = this.session;
    return s && this.email ? { email: this.email, accessToken: s.accessToken, expiresAt: s.expiresAt, ...(s.refreshToken ? { refreshToken: s.refreshToken } : {}) } : undefined;
  }

  /**
   * Unlocks with a session kept from an earlier `login` instead of logging in again (Vaultwarden allows 10 logins,
   * then one a minute): the tokens are renewed if needed (refresh grant, not rate-limited; an API-key session
   * repeats client_credentials), the master-key-wrapped user key comes from sync (`userDecryption`, ciphers.rs
   * sync), and the master password unlocks it here. AUTH if the session is gone or belongs to another account.
   */
  async resume(creds: Credentials, saved: SavedSession): Promise<void> {
    this.lock();
    const email = emailToSalt(creds.email);
    if (emailToSalt(saved.email) !== email) throw new SecretsError("AUTH", "the kept session belongs to another account");
    this.email = email;
    if (creds.apiKey) this.apiKey = creds.apiKey;
    this.session = { accessToken: saved.accessToken, expiresAt: saved.expiresAt, refreshToken: saved.refreshToken };
    try {
      const r = asObj(await this.api("GET", "api/sync?excludeDomains=true"));
      const profile = asObj(r.profile);
      if (emailToSalt(asStr(profile.email) ?? "") !== email) throw new SecretsError("AUTH", "the kept session belongs to another account");
      const mpu = asObj(asObj(r.userDecryption).masterPasswordUnlock);
      const protectedKey = asStr(mpu.masterKeyWrappedUserKey) ?? asStr(mpu.masterKeyEncryptedUserKey) ?? asStr(profile.key);
      if (!protectedKey) throw new SecretsError("SERVER", "sync carries no master-key-wrapped user key");
      const kdf = asObj(mpu.kdf).kdfType !== undefined ? kdfFrom(asObj(mpu.kdf), {}) : await this.prelogin(email);
      this.kdf = kdf;
      const masterKey = await deriveMasterKey(creds.password, asStr(mpu.salt) ?? email, kdf);
      try {
        this.userKey = SymmetricKey.fromBytes(decryptBytes(protectedKey, SymmetricKey.stretch(masterKey)));
      } catch (e) {
        if (e instanceof SecretsError && e.kind === "INTEGRITY") throw new SecretsError("AUTH", "the master password does not unlock this account");
        throw e;
      }
      if (!this.userId) this.userId = asStr(profile.id) ?? undefined;
      await this.sync();
    } catch (e) {
      this.lock();
      throw e;
    }
  }

  /** Forgets keys and tokens. */
  lock(): void {
    this.session = undefined;
    this.userKey = undefined;
    this.privateKey = undefined;
    this.orgKeys.clear();
    this.orgs = [];
    this.rawCollections = [];
  }

  close(): void {
    this.lock();
    this.http.close();
  }

  get loggedIn(): boolean {
    return this.session !== undefined && this.userKey !== undefined;
  }

  /** Current access token (for callers that must hand it to another tool; never log it). */
  get accessToken(): string | undefined {
    return this.session?.accessToken;
  }

  private requireUserKey(): SymmetricKey {
    if (!this.userKey) throw new SecretsError("AUTH", "vault is locked: log in first");
    return this.userKey;
  }

  /** The personal API key of the logged-in user (asks the server; needs the master password again). */
  async fetchApiKey(password: string): Promise<{ clientId: string; clientSecret: string }> {
    if (!this.email || !this.kdf) throw new SecretsError("AUTH", "not logged in");
    const hash = await masterPasswordHash(await deriveMasterKey(password, this.email, this.kdf), password, 1);
    const r = asObj(await this.api("POST", "api/accounts/api-key", { masterPasswordHash: hash }));
    const secret = asStr(r.apiKey);
    if (!secret || !this.userId) throw new SecretsError("SERVER", "no API key in the answer");
    return { clientId: `user.${this.userId}`, clientSecret: secret };
  }

  // ------------------------------------------------------------------ sync and keys

  /** Syncs the vault: refreshes organizations, their keys and collections. Returns the raw (encrypted) ciphers. */
  async sync(): Promise<Json[]> {
    const r = asObj(await this.api("GET", "api/sync?excludeDomains=true"));
    const profile = asObj(r.profile);
    this.userId = asStr(profile.id) ?? this.userId;
    if (!this.privateKey) {
      const wp = asStr(asObj(asObj(profile.accountKeys).publicKeyEncryptionKeyPair).wrappedPrivateKey) ?? asStr(profile.privateKey);
      if (wp) this.privateKey = decryptBytes(wp, this.requireUserKey());
    }
    this.orgs = [];
    this.orgKeys.clear();
    for (const o of (profile.organizations as Json[] | undefined) ?? []) {
      const id = asStr(o.id);
      const key = asStr(o.key);
      if (!id || !key || Number(o.status) !== 2) continue;
      if (!this.privateKey) throw new SecretsError("INTEGRITY", "account has organization keys but no private key");
      this.orgKeys.set(id, SymmetricKey.fromBytes(rsaDecrypt(key, this.privateKey)));
      this.orgs.push({ id, name: asStr(o.name) ?? "", memberId: asStr(o.organizationUserId) ?? "", role: Number(o.type ?? 2) });
    }
    this.rawCollections = ((r.collections as Json[] | undefined) ?? []).map(asObj);
    return ((r.ciphers as Json[] | undefined) ?? []).map(asObj);
  }

  organizations(): Organization[] {
    return [...this.orgs];
  }

  /** An organization by id or (exact) name, from the last sync. */
  organization(idOrName: string): Organization {
    const o = this.orgs.find((x) => x.id === idOrName) ?? this.orgs.find((x) => x.name === idOrName);
    if (!o) throw new SecretsError("NOT_FOUND", `organization ${idOrName} not found (or membership not confirmed)`);
    return o;
  }

  private orgKey(orgId: string): SymmetricKey {
    const k = this.orgKeys.get(orgId);
    if (!k) throw new SecretsError("NOT_FOUND", `no key for organization ${orgId} (not a confirmed member?)`);
    return k;
  }

  /** Decrypted collections visible to this user (from the last sync). */
  collections(organizationId?: string): Collection[] {
    return this.rawCollections
      .filter((c) => !organizationId || c.organizationId === organizationId)
      .map((c) => ({ id: String(c.id), organizationId: String(c.organizationId), name: decryptString(String(c.name), this.orgKey(String(c.organizationId))) }));
  }

  async createCollection(organizationId: string, name: string): Promise<Collection> {
    const org = this.organization(organizationId);
    const r = asObj(
      await this.api("POST", `api/organizations/${encodeURIComponent(org.id)}/collections`, {
        name: encryptString(name, this.orgKey(org.id)),
        externalId: null,
        groups: [],
        users: org.memberId ? [{ id: org.memberId, readOnly: false, hidePasswords: false, manage: true }] : [],
      }),
    );
    await this.sync();
    return { id: String(r.id), organizationId: org.id, name };
  }

  /** Creates an organization owned by this user (org key shared to ourselves as RSA type 4). */
  async createOrganization(name: string, firstCollection?: string): Promise<{ organization: Organization; collection: Collection | undefined }> {
    if (!this.privateKey) throw new SecretsError("AUTH", "vault is locked: log in first");
    const orgKey = SymmetricKey.generate();
    const orgRsa = generateRsaKeyPair();
    const r = asObj(
      await this.api("POST", "api/organizations", {
        name,
        billingEmail: this.email,
        planType: 0,
        key: rsaEncrypt(orgKey.toBytes(), publicKeyOf(this.privateKey)),
        keys: { publicKey: orgRsa.publicKey.toString("base64"), encryptedPrivateKey: encryptBytes(orgRsa.privateKey, orgKey) },
        collectionName: firstCollection !== undefined ? encryptString(firstCollection, orgKey) : null,
      }),
    );
    await this.sync();
    const organization = this.organization(String(r.id));
    const collection = firstCollection !== undefined ? this.collections(organization.id).find((c) => c.name === firstCollection) : undefined;
    return { organization, collection };
  }

  /** Invites an existing user, wraps the org key to their public key and confirms them. */
  async addMember(organizationId: string, email: string, opts: { role?: number; collectionIds?: string[]; readOnly?: boolean; permissions?: Record<string, boolean> } = {}): Promise<void> {
    const org = this.organization(organizationId);
    await this.api("POST", `api/organizations/${org.id}/users/invite`, {
      emails: [email],
      type: opts.role ?? 2,
      groups: [],
      accessSecretsManager: false,
      collections: (opts.collectionIds ?? []).map((id) => ({ id, readOnly: opts.readOnly ?? false, hidePasswords: false, manage: false })),
      permissions: opts.permissions ?? {},
    });
    const list = ((asObj(await this.api("GET", `api/organizations/${org.id}/users`)).data as Json[] | undefined) ?? []).map(asObj);
    const m = list.find((x) => String(x.email).toLowerCase() === emailToSalt(email));
    if (!m) throw new SecretsError("NOT_FOUND", "invited member not listed");
    const pk = asStr(asObj(await this.api("GET", `api/users/${String(m.userId)}/public-key`)).publicKey);
    if (!pk) throw new SecretsError("SERVER", "member has no public key");
    await this.api("POST", `api/organizations/${org.id}/users/${String(m.id)}/confirm`, { key: rsaEncrypt(this.orgKey(org.id).toBytes(), Buffer.from(pk, "base64")) });
  }

  // ------------------------------------------------------------------ folders

  async folders(): Promise<Folder[]> {
    const r = asObj(await this.api("GET", "api/folders"));
    const k = this.requireUserKey();
    return ((r.data as Json[] | undefined) ?? []).map((f) => ({ id: String(f.id), name: decryptString(String(f.name), k), revisionDate: String(f.revisionDate) }));
  }

  async createFolder(name: string): Promise<Folder> {
    const f = asObj(await this.api("POST", "api/folders", { name: encryptString(name, this.requireUserKey()) }));
    return { id: String(f.id), name, revisionDate: String(f.revisionDate) };
  }

  async renameFolder(id: string, name: string): Promise<Folder> {
    const f = asObj(await this.api("PUT", `api/folders/${encodeURIComponent(id)}`, { name: encryptString(name, this.requireUserKey()) }));
    return { id, name, revisionDate: String(f.revisionDate) };
  }

  async deleteFolder(id: string): Promise<void> {
    await this.api("DELETE", `api/folders/${encodeURIComponent(id)}`);
  }

  // ------------------------------------------------------------------ items

  /** The key that encrypts an item's fields: its own key if it has one, else the org or user key. */
  private async ownerKey(organizationId: string | null): Promise<SymmetricKey> {
    if (!organizationId) return this.requireUserKey();
    if (!this.orgKeys.has(organizationId)) await this.sync();
    return this.orgKey(organizationId);
  }

  private async itemKey(raw: Json): Promise<SymmetricKey> {
    const owner = await this.ownerKey(asStr(raw.organizationId));
    const k = asStr(raw.key);
    return k ? SymmetricKey.fromBytes(decryptBytes(k, owner)) : owner;
  }

  /** Decrypts a raw cipher as the server returns it. */
  async decryptItem(raw: Json): Promise<Item> {
    const k = await this.itemKey(raw);
    const dec = (v: unknown): string | null => (typeof v === "string" ? decryptString(v, k) : null);
    const type = typeName(Number(raw.type));
    const l = raw.login ? asObj(raw.login) : null;
    return {
      id: String(raw.id),
      type,
      organizationId: asStr(raw.organizationId),
      collectionIds: ((raw.collectionIds as unknown[] | undefined) ?? []).map(String),
      folderId: asStr(raw.folderId),
      name: dec(raw.name) ?? "",
      notes: dec(raw.notes),
      login:
        type === "login" && l
          ? { username: dec(l.username), password: dec(l.password), totp: dec(l.totp), uris: ((l.uris as Json[] | null | undefined) ?? []).map((u) => dec(asObj(u).uri) ?? "") }
          : null,
      fields: ((raw.fields as Json[] | null | undefined) ?? []).map((f) => ({ name: dec(asObj(f).name) ?? "", value: dec(asObj(f).value), type: Number(asObj(f).type ?? 0) })),
      passwordHistory: ((raw.passwordHistory as Json[] | null | undefined) ?? []).map((p) => ({ password: dec(asObj(p).password) ?? "", lastUsedDate: String(asObj(p).lastUsedDate) })),
      favorite: raw.favorite === true,
      hasItemKey: typeof raw.key === "string",
      creationDate: String(raw.creationDate),
      revisionDate: String(raw.revisionDate),
      deletedDate: asStr(raw.deletedDate),
    };
  }

  private encryptBody(input: ItemInput, key: SymmetricKey, wrappedKey: string | null, organizationId: string | null, lastKnownRevisionDate?: string): Json {
    const enc = (v: string | null | undefined) => (v === null || v === undefined ? null : encryptString(v, key));
    return {
      type: typeNumber[input.type],
      organizationId,
      folderId: input.folderId ?? null,
      key: wrappedKey,
      name: encryptString(input.name, key),
      notes: enc(input.notes),
      favorite: input.favorite ?? false,
      reprompt: 0,
      fields: (input.fields ?? []).map((f) => ({ type: f.type, name: enc(f.name), value: enc(f.value), linkedId: null })),
      passwordHistory: (input.passwordHistory ?? []).map((p) => ({ password: encryptString(p.password, key), lastUsedDate: p.lastUsedDate })),
      login:
        input.type === "login"
          ? {
              username: enc(input.login?.username),
              password: enc(input.login?.password),
              totp: enc(input.login?.totp),
              uris: (input.login?.uris ?? []).map((u) => ({ uri: encryptString(u, key), uriChecksum: encryptString(uriChecksum(u), key), match: null })),
              fido2Credentials: null,
            }
          : null,
      secureNote: input.type === "secureNote" ? { type: 0 } : null,
      card: null,
      identity: null,
      sshKey: null,
      ...(lastKnownRevisionDate ? { lastKnownRevisionDate } : {}),
    };
  }

  /** Creates an item; with organizationId it is owned by the organization and placed in `collectionIds`. */
  async createItem(input: ItemInput): Promise<Item> {
    const orgId = input.organizationId ?? null;
    if (orgId && (!input.collectionIds || input.collectionIds.length === 0)) throw new SecretsError("VALIDATION", "an organization item needs at least one collection");
    const owner = await this.ownerKey(orgId);
    let key = owner;
    let wrapped: string | null = null;
    if (this.itemKeys) {
      key = SymmetricKey.generate();
      wrapped = encryptBytes(key.toBytes(), owner);
    }
    const body = this.encryptBody(input, key, wrapped, orgId);
    const raw = orgId ? await this.api("POST", "api/ciphers/create", { cipher: body, collectionIds: input.collectionIds }) : await this.api("POST", "api/ciphers", body);
    return this.decryptItem(asObj(raw));
  }

  async getRawItem(id: string): Promise<Json> {
    return asObj(await this.api("GET", `api/ciphers/${encodeURIComponent(id)}`));
  }

  async getItem(id: string): Promise<Item> {
    return this.decryptItem(await this.getRawItem(id));
  }

  /**
   * Replaces an item's content (same owner, same item key). With `expectedRevision` the write is refused (CONFLICT)
   * if anyone changed the item since that revision, to the millisecond: Vaultwarden's own check refuses only a
   * `lastKnownRevisionDate` at least 2 whole seconds older than the item's (ciphers.rs update_cipher_from_data,
   * `num_seconds() > 1`), so this client (1) compares the revision it just read, and (2) sends as
   * `lastKnownRevisionDate` the expected revision minus 1.999999 s: the server then accepts the write only while the
   * item is still at that revision (a later write, even 1 µs later, makes the difference >= 2 s). Should the
   * server refuse although the item is unchanged (a server keeping coarser dates), the write is sent once more
   * with the plain revision, i.e. Vaultwarden's own 2 s check.
   */
  async updateItem(id: string, input: ItemInput, expectedRevision?: string): Promise<Item> {
    const raw = await this.getRawItem(id);
    const current = String(raw.revisionDate);
    if (expectedRevision !== undefined && current !== expectedRevision) throw new SecretsError("CONFLICT", `PUT /api/ciphers/${id}: the item changed since revision ${expectedRevision} (now ${current})`);
    const orgId = asStr(raw.organizationId);
    if (input.organizationId !== undefined && input.organizationId !== orgId) throw new SecretsError("VALIDATION", "updateItem cannot move an item between owners");
    const key = await this.itemKey(raw);
    const put = async (lastKnown: string) => this.decryptItem(asObj(await this.api("PUT", `api/ciphers/${encodeURIComponent(id)}`, this.encryptBody(input, key, asStr(raw.key), orgId, lastKnown))));
    const tight = expectedRevision !== undefined ? justUnderTwoSecondsBefore(expectedRevision) : undefined;
    if (tight === undefined) return put(expectedRevision ?? current);
    try {
      return await put(tight);
    } catch (e) {
      if (!(e instanceof SecretsError) || e.kind !== "CONFLICT") throw e;
      if (String((await this.getRawItem(id)).revisionDate) !== expectedRevision) throw e;
      return put(expectedRevision!);
    }
  }

  /** Moves an item to the trash (soft delete), or removes it for good with `permanent`. */
  async deleteItem(id: string, opts: { permanent?: boolean } = {}): Promise<void> {
    if (opts.permanent) await this.api("DELETE", `api/ciphers/${encodeURIComponent(id)}`);
    else await this.api("PUT", `api/ciphers/${encodeURIComponent(id)}/delete`);
  }

  async restoreItem(id: string): Promise<Item> {
    return this.decryptItem(asObj(await this.api("PUT", `api/ciphers/${encodeURIComponent(id)}/restore`)));
  }

  /** All items visible to this user (fresh sync), decrypted; filter by organization / collection. */
  async listItems(filter: { organizationId?: string; collectionId?: string; includeDeleted?: boolean } = {}): Promise<Item[]> {
    const raws = await this.sync();
    const out: Item[] = [];
    for (const r of raws) {
      if (filter.organizationId && r.organizationId !== filter.organizationId) continue;
      if (filter.collectionId && !((r.collectionIds as unknown[] | undefined) ?? []).includes(filter.collectionId)) continue;
      if (!filter.includeDeleted && r.deletedDate) continue;
      out.push(await this.decryptItem(r));
    }
    return out;
  }
}

function kdfFrom(settings: Json, flat: Json): KdfConfig {
  const kdfType = Number(settings.kdfType ?? flat.kdf ?? 0) as KdfTypeValue;
  const iterations = Number(settings.iterations ?? flat.kdfIterations);
  const memory = (settings.memory ?? flat.kdfMemory ?? null) as number | null;
  const parallelism = (settings.parallelism ?? flat.kdfParallelism ?? null) as number | null;
  if (!Number.isFinite(iterations)) throw new SecretsError("SERVER", "KDF settings missing from the server's answer");
  return { kdfType, iterations, memory, parallelism };
}

/** Vaultwarden's error text: ErrorModel `message` (error.rs api_error), OAuth `error_description`, Rocket's catcher `error.description`. */
function serverMessage(b: Json): string {
  const e = b.error;
  return String(asStr(b.message) ?? asStr(asObj(b.errorModel).message) ?? (asStr(b.error_description) || null) ?? (typeof e === "string" ? e : asStr(asObj(e).description)) ?? "").slice(0, 200);
}

/** 400 messages of Vaultwarden that mean "no such thing, or not visible to you" (ciphers.rs, folders.rs, organizations.rs). */
const NOT_FOUND_400 = /^(Cipher doesn't exist|Cipher does not exist|Cipher is not owned by user|Cipher is not accessible.*|Invalid folder|Organization not found|Collection not found|Can't find organization details|User doesn't exist|User is not part of organization|The specified user isn't a member of the organization|Resource not found\.?)$/;
/** 400 messages that mean "you may not" (ciphers.rs, organizations.rs). */
const FORBIDDEN_400 = /^(You don't have permission.*|Cipher is not write accessible|Cipher can't be (deleted|restored) by user|Cipher cannot be deleted by user|No rights to modify the collection|Only Owners can .*|User not allowed to create organizations)$/;
/** Token endpoint 400s that refuse the credentials (identity.rs password_login, user_api_key_login, refresh_login, json_err_twofactor). */
const BAD_CREDENTIALS = /^(Username or password is incorrect\. Try again|Incorrect client_secret|Invalid client_id|Malformed client_id|This user has been disabled.*|Please verify your email before trying again\.)$/;

/**
 * Maps a refused request to a typed error by status and body, as Vaultwarden 1.37 sends them: every `err!` is a 400
 * with the ErrorModel body (`error: ""`), so the message decides; `invalid_grant` only for a refused refresh and
 * "Two factor required."; 401 from the auth guards; 404 only for routes and ids that are not UUIDs; 429 from the
 * login limiter. Only server-authored text goes into the message, never our request.
 */
function errorFromResponse(what: string, status: number, parsed: unknown, isToken: boolean): SecretsError {
  const b = asObj(parsed);
  const serverMsg = serverMessage(b);
  const msg = `${what}: ${status}${serverMsg ? ` ${serverMsg}` : ""}`;
  const opts = { status };
  if (status === 429) {
    return new SecretsError(
      "RATE_LIMITED",
      isToken
        ? `${msg}: Vaultwarden's login rate limit (by default 10 logins, then one per 60 s per address) refused this login; try again in a minute, or reuse a session`
        : `${msg}: Vaultwarden's rate limit refused this request; try again later`,
      opts,
    );
  }
  if (status === 401) return new SecretsError("AUTH", msg, opts);
  if (status === 403) return new SecretsError("FORBIDDEN", msg, opts);
  if (status === 404) return new SecretsError("NOT_FOUND", msg, opts);
  if (isToken && status === 400) {
    if (b.error === "invalid_grant" && /two factor/i.test(serverMsg)) return new SecretsError("AUTH", `${msg}: this account requires two-factor login; use its personal API key (client_credentials skips 2FA)`, opts);
    if (b.error === "invalid_grant" || b.error === "invalid_client" || BAD_CREDENTIALS.test(serverMsg)) return new SecretsError("AUTH", msg, opts);
  }
  if (status === 400) {
    if (/out of date|resync/i.test(serverMsg)) return new SecretsError("CONFLICT", msg, opts);
    if (NOT_FOUND_400.test(serverMsg)) return new SecretsError("NOT_FOUND", msg, opts);
    if (FORBIDDEN_400.test(serverMsg)) return new SecretsError("FORBIDDEN", msg, opts);
  }
  if (status >= 500) return new SecretsError("SERVER", msg, opts);
  return new SecretsError("VALIDATION", msg, opts);
}

function forbidden(e: SecretsError): SecretsError {
  return new SecretsError("FORBIDDEN", `${e.message}: refused with a valid session, so the account lacks the right (organization role or collection access) this call needs`, { status: e.status ?? 401 });
}

/**
 * A device identifier that stays the same for one installation and account: a UUID made from a hash of the host
 * name, the server and the e-mail. Vaultwarden keeps one device row per identifier and (with mail on) e-mails the
 * user on every new device (identity.rs get_device / send_new_device_logged_in): a random id per process would
 * send one mail per start.
 */
export function stableDeviceIdentifier(serverUrl: string, email: string): string {
  const h = createHash("sha256").update(`cim-realm|${hostname()}|${new URL(serverUrl).origin}|${emailToSalt(email)}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50; // version 5-style (name-based)
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString("hex");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** `iso` minus 1.999999 s, with microseconds (what Vaultwarden's "%+" parser reads); undefined if `iso` is not a date. */
function justUnderTwoSecondsBefore(iso: string): string | undefined {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)$/.exec(iso);
  if (!m) return undefined;
  const whole = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(whole)) return undefined;
  const micros = whole * 1000 + Number(((m[2] ?? "") + "000000").slice(0, 6)) - 1_999_999;
  const ms = Math.floor(micros / 1000);
  const frac = String(micros - Math.floor(micros / 1_000_000) * 1_000_000).padStart(6, "0");
  return `${new Date(ms).toISOString().slice(0, 19)}.${frac}Z`;
}
