/**
 * Credential escrow in Vaultwarden: the realm hands out private material (certificate keys, NATS creds, API
 * keys, client secrets), stores it here, and keeps only the returned SecretRef in its events.
 *
 * Layout (chosen so that Vaultwarden's own access control can give a principal exactly its secrets):
 * - one collection per principal in the realm's organization, named `principal:<principal>`, created on first use;
 * - one **login item** per secret name in that collection: the secret is the item's password (hidden field,
 *   encrypted with a per-item key), the caller's non-secret notes are the item's notes, and fields record the
 *   principal, the current version number and when it was written;
 * - rotation (store with the same principal and name) updates the same item: the new value becomes the
 *   password ("current"), the previous one goes to the item's password history (newest first, with the date it
 *   stopped being current). Nothing is dropped. `versions()` returns both.
 */
import { readFileSync } from "node:fs";
import type { EscrowRequest, SecretEscrow, SecretRef } from "./contract.js";
import { VaultwardenClient, type Credentials, type Item, type ItemInput } from "./client.js";
import type { SessionStore } from "./session-file.js";
import { SecretsError } from "./errors.js";
import type { RetryPolicy } from "./http.js";

export interface VaultwardenEscrowConfig {
  url: string;
  /** Organization id or exact name. */
  organization: string;
  email: string;
  /** Master password: needed to unlock (derive the key that unwraps the user key) even with an API key. */
  password: string;
  /** Personal API key (client_id `user.<uuid>`); when set, logins use client_credentials. */
  apiKey?: { clientId: string; clientSecret: string };
  /** Extra CA (PEM) to trust for the server. */
  ca?: string | Buffer;
  retry?: Partial<RetryPolicy>;
  timeoutMs?: number;
  /** Collection name prefix (default `principal:`). */
  collectionPrefix?: string;
  /** Vaultwarden device identifier; default: stable per host, server and account (`stableDeviceIdentifier`). */
  deviceIdentifier?: string;
  /** Keeps the session (tokens only) for the next process, e.g. `realm secrets` between commands; default: memory only. */
  sessionStore?: SessionStore;
}

export interface SecretVersions {
  itemId: string;
  revision: string;
  principal: string | null;
  name: string;
  /** The value `get()` returns. */
  current: string;
  /** Version number of `current` (1 for the first store). */
  version: number;
  /** Earlier values, newest first, each with the time it was replaced. */
  previous: { value: string; replacedAt: string }[];
}

/** Retries of one rotation after a conflict or a lost write. */
const MAX_ATTEMPTS = 3;
const F_PRINCIPAL = "realm:principal";
const F_VERSION = "realm:version";
const F_WRITTEN = "realm:written-at";
const F_CURRENT = "realm:current";

export class VaultwardenEscrow implements SecretEscrow {
  private readonly client: VaultwardenClient;
  private readonly creds: Credentials;
  private readonly organization: string;
  private readonly prefix: string;
  private ready: Promise<void> | undefined;
  private readonly sessionStore: SessionStore | undefined;
  /** store() calls run one at a time per escrow: no duplicate collection or item from concurrent calls. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(config: VaultwardenEscrowConfig) {
    this.client = new VaultwardenClient({
      url: config.url,
      deviceName: "cim-realm escrow",
      ...(config.deviceIdentifier !== undefined ? { deviceIdentifier: config.deviceIdentifier } : {}),
      ...(config.ca !== undefined ? { ca: config.ca } : {}),
      ...(config.retry !== undefined ? { retry: config.retry } : {}),
      ...(config.timeoutMs !== undefined ? { timeoutMs: config.timeoutMs } : {}),
    });
    this.creds = { email: config.email, password: config.password, ...(config.apiKey ? { apiKey: config.apiKey } : {}) };
    this.organization = config.organization;
    this.prefix = config.collectionPrefix ?? "principal:";
    this.sessionStore = config.sessionStore;
  }

  /** Never print the credentials held here. */
  toJSON(): string {
    return "[VaultwardenEscrow]";
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return "[VaultwardenEscrow]";
  }

  /**
   * Logs in, unlocks and finds the organization: what `realm up` calls at start so that a wrong URL, wrong
   * credentials or a missing organization stop it with a clear error instead of failing the first issuance.
   */
  async check(): Promise<{ organizationId: string }> {
    return this.withSession(async () => ({ organizationId: this.orgId() }));
  }

  private login(): Promise<void> {
    if (!this.ready) {
      this.ready = this.resumeOrLogin().catch((e: unknown) => {
        this.ready = undefined;
        throw e;
      });
    }
    return this.ready;
  }

  /** A kept session if there is one that still works (no login spent), else a login; the session is then kept. */
  private async resumeOrLogin(): Promise<void> {
    const saved = this.sessionStore?.load();
    if (saved) {
      try {
        await this.client.resume(this.creds, saved);
        this.keepSession();
        return;
      } catch (e) {
        if (!(e instanceof SecretsError) || e.kind !== "AUTH") throw e;
        this.sessionStore!.save(undefined);
      }
    }
    await this.client.login(this.creds);
    this.keepSession();
  }

  private keepSession(): void {
    this.sessionStore?.save(this.client.sessionState());
  }

  /**
   * Runs `op` with the cached session (one login per escrow, reused by every call: Vaultwarden's login limiter
   * allows 10 logins, then one a minute). Only if the session died (AUTH: token expired and its renewal refused)
   * does it log in once more and retry. FORBIDDEN (the account lacks a role; final) and RATE_LIMITED are thrown as
   * they are: logging in again would not help and would spend the login budget.
   */
  private async withSession<T>(op: () => Promise<T>): Promise<T> {
    await this.login();
    try {
      return await op();
    } catch (e) {
      if (!(e instanceof SecretsError) || e.kind !== "AUTH") throw e;
      this.ready = undefined;
      this.sessionStore?.save(undefined);
      await this.login();
      return op();
    } finally {
      if (this.sessionStore && this.client.loggedIn) this.keepSession();
    }
  }

  private orgId(): string {
    return this.client.organization(this.organization).id;
  }

  private async collectionFor(principal: string): Promise<string> {
    const orgId = this.orgId();
    const name = `${this.prefix}${principal}`;
    const found = this.client.collections(orgId).find((c) => c.name === name);
    if (found) return found.id;
    await this.client.sync();
    const again = this.client.collections(orgId).find((c) => c.name === name);
    if (again) return again.id;
    return (await this.client.createCollection(orgId, name)).id;
  }

  private async findItem(collectionId: string, principal: string, name: string): Promise<Item | undefined> {
    const items = await this.client.listItems({ organizationId: this.orgId(), collectionId });
    // The newest one if a retried create ever left a duplicate behind.
    return items
      .filter((i) => i.name === name && i.type === "login" && fieldOf(i, F_PRINCIPAL) === principal)
      .sort((a, b) => Date.parse(b.revisionDate) - Date.parse(a.revisionDate))[0];
  }

  async store(req: EscrowRequest): Promise<SecretRef> {
    if (!req.principal || !req.name) throw new SecretsError("VALIDATION", "escrow needs a principal and a name");
    if (typeof req.secret !== "string" || req.secret.length === 0) throw new SecretsError("VALIDATION", "escrow needs a non-empty secret");
    const run = this.queue.then(() => this.withSession(() => this.storeNow(req)));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Writes one rotation and then checks it: Vaultwarden's stale-write check only refuses copies at least 2 s older
   * than the server's (ciphers.rs update_cipher_from_data, whole seconds), so two writers less than 2 s apart would
   * both be accepted and one value lost. So: the client refuses locally a write whose base revision is not exactly the
   * current one (CONFLICT) and sends a `lastKnownRevisionDate` that makes the server refuse the PUT if anything was
   * written after that revision (`VaultwardenClient.updateItem`); and after every write the item is read back: if
   * another writer replaced our value without keeping it (current or in the history), the rotation is redone on top
   * of what is there. Bounded attempts.
   */
  private async storeNow(req: EscrowRequest): Promise<SecretRef> {
    const collectionId = await this.collectionFor(req.principal);
    for (let attempt = 0; ; attempt++) {
      const now = new Date().toISOString();
      const existing = await this.findItem(collectionId, req.principal, req.name);
      const version = existing ? Number(fieldOf(existing, F_VERSION) ?? "1") + 1 : 1;
      const previous = existing?.login?.password;
      const history = existing ? [...(previous !== null && previous !== undefined ? [{ password: previous, lastUsedDate: now }] : []), ...existing.passwordHistory] : [];
      const input: ItemInput = {
        type: "login",
        name: req.name,
        notes: req.notes ?? null,
        organizationId: this.orgId(),
        collectionIds: [collectionId],
        login: { username: req.principal, password: req.secret, uris: [] },
        fields: [
          { name: F_PRINCIPAL, value: req.principal, type: 0 },
          { name: F_VERSION, value: String(version), type: 0 },
          { name: F_WRITTEN, value: now, type: 0 },
          { name: F_CURRENT, value: `version ${version} is the login password; ${history.length} earlier version(s) in the password history, newest first`, type: 0 },
        ],
        passwordHistory: history,
      };
      let item: Item;
      try {
        item = existing ? await this.client.updateItem(existing.id, input, existing.revisionDate) : await this.client.createItem(input);
      } catch (e) {
        // A concurrent rotation of the same item: read it again and rotate on top of it.
        if (e instanceof SecretsError && e.kind === "CONFLICT" && attempt < MAX_ATTEMPTS) continue;
        throw e;
      }
      // Read back: is our value still there (current, or kept in the history by a writer that came after us)?
      const after = await this.client.getItem(item.id).catch((e: unknown) => {
        if (e instanceof SecretsError && e.kind === "NOT_FOUND") return undefined;
        throw e;
      });
      if (!after || after.deletedDate) return { itemId: item.id, revision: item.revisionDate };
      // (The reference is the revision our write made, even if a later writer has since rotated on top of it.)
      if (after.login?.password === req.secret || after.passwordHistory.some((p) => p.password === req.secret)) return { itemId: item.id, revision: item.revisionDate };
      if (attempt >= MAX_ATTEMPTS) throw new SecretsError("CONFLICT", `item ${item.id} was rewritten by another writer ${MAX_ATTEMPTS + 1} times while this rotation was stored; store again`);
      // Lost to a writer whose copy was older than ours by less than Vaultwarden's 2 s: redo it on top.
    }
  }

  async get(ref: Pick<SecretRef, "itemId">): Promise<string> {
    return (await this.versions(ref)).current;
  }

  /** Current value and every earlier one of an escrowed secret. */
  async versions(ref: Pick<SecretRef, "itemId">): Promise<SecretVersions> {
    if (!ref.itemId) throw new SecretsError("VALIDATION", "itemId is required");
    const item = await this.withSession(() => this.client.getItem(ref.itemId));
    if (item.deletedDate) throw new SecretsError("NOT_FOUND", `item ${ref.itemId} is in the trash`);
    // Items written by hand (secure notes) are read too: their notes are the secret.
    const current = item.type === "login" ? item.login?.password : item.type === "secureNote" ? item.notes : null;
    if (current === null || current === undefined) throw new SecretsError("NOT_FOUND", `item ${ref.itemId} holds no secret`);
    return {
      itemId: item.id,
      revision: item.revisionDate,
      principal: fieldOf(item, F_PRINCIPAL),
      name: item.name,
      current,
      version: Number(fieldOf(item, F_VERSION) ?? "1"),
      previous: item.passwordHistory.map((p) => ({ value: p.password, replacedAt: p.lastUsedDate })),
    };
  }

  /** The SecretRef of the current item for a principal and name, if any. */
  async find(principal: string, name: string): Promise<SecretRef | undefined> {
    return this.withSession(async () => {
      await this.client.sync();
      const collectionId = this.client.collections(this.orgId()).find((c) => c.name === `${this.prefix}${principal}`)?.id;
      if (!collectionId) return undefined;
      const item = await this.findItem(collectionId, principal, name);
      return item ? { itemId: item.id, revision: item.revisionDate } : undefined;
    });
  }

  close(): void {
    this.client.close();
  }
}

function fieldOf(item: Item, name: string): string | null {
  return item.fields.find((f) => f.name === name)?.value ?? null;
}

/**
 * Escrow configured from the environment, or undefined when REALM_VAULTWARDEN_URL is unset:
 * REALM_VAULTWARDEN_URL (https), REALM_VAULTWARDEN_ORG (id or name), REALM_VAULTWARDEN_EMAIL,
 * REALM_VAULTWARDEN_PASSWORD, optionally REALM_VAULTWARDEN_CLIENT_ID + REALM_VAULTWARDEN_CLIENT_SECRET (personal
 * API key, both or neither) and REALM_VAULTWARDEN_CA (path of a PEM CA file to trust).
 * A missing or half-set variable is a VALIDATION error naming the variable (never its value).
 */
export function vaultwardenEscrowFromEnv(env: NodeJS.ProcessEnv = process.env, extra: Pick<VaultwardenEscrowConfig, "sessionStore"> = {}): VaultwardenEscrow | undefined {
  const url = env.REALM_VAULTWARDEN_URL?.trim();
  if (!url) return undefined;
  const need = (k: string): string => {
    const v = env[k];
    if (!v) throw new SecretsError("VALIDATION", `${k} is required when REALM_VAULTWARDEN_URL is set`);
    return v;
  };
  const clientId = env.REALM_VAULTWARDEN_CLIENT_ID;
  const deviceIdentifier = env.REALM_VAULTWARDEN_DEVICE_ID?.trim();
  const clientSecret = env.REALM_VAULTWARDEN_CLIENT_SECRET;
  if (Boolean(clientId) !== Boolean(clientSecret)) throw new SecretsError("VALIDATION", "REALM_VAULTWARDEN_CLIENT_ID and REALM_VAULTWARDEN_CLIENT_SECRET must be set together");
  let ca: string | undefined;
  if (env.REALM_VAULTWARDEN_CA) {
    try {
      ca = readFileSync(env.REALM_VAULTWARDEN_CA, "utf8");
    } catch {
      throw new SecretsError("VALIDATION", "REALM_VAULTWARDEN_CA does not name a readable file");
    }
  }
  return new VaultwardenEscrow({
    url,
    organization: need("REALM_VAULTWARDEN_ORG"),
    email: need("REALM_VAULTWARDEN_EMAIL"),
    password: need("REALM_VAULTWARDEN_PASSWORD"),
    ...(clientId && clientSecret ? { apiKey: { clientId, clientSecret } } : {}),
    ...(ca !== undefined ? { ca } : {}),
    ...(deviceIdentifier ? { deviceIdentifier } : {}),
    ...extra,
  });
}
