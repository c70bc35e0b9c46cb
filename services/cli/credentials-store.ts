/**
 * Where `realm login` keeps what it got: one entry per realm URL in
 * `$XDG_CONFIG_HOME/cim-realm/credentials.json` (else `~/.config/cim-realm/credentials.json`), the file 0600,
 * its directory 0700. A file that group or others may read is refused (like the realm's seal key): its
 * tokens may have been read, so the fix is `realm logout` / `realm login`, not silence.
 *
 * Writes go to a private temp file in the same directory that is then renamed over the file, so a reader
 * never sees half a file. Refreshing a token (refresh tokens rotate, and using a rotated one revokes the
 * whole sign-in) is done under `credentials.json.lock`, so two `realm` processes never refresh with the
 * same refresh token.
 *
 * Nothing here prints or logs a token; errors name the file, never its content.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { RealmError } from "../kernel/errors.js";

/** The realm's HTTP URL when neither --url nor REALM_URL says otherwise (what `realm up` serves). */
export const DEFAULT_REALM_URL = "http://127.0.0.1:8080";

/** What `realm login` keeps for one realm. */
export interface StoredCredential {
  /** The OIDC issuer that issued the tokens (`<realm url>/oidc`, as its discovery document names it). */
  issuer: string;
  accessToken: string;
  refreshToken?: string | undefined;
  /** When the access token expires (ISO 8601). */
  expiresAt: string;
  /** The signed-in principal (the ID token's `sub`). */
  principal: string;
}

interface CredentialsFile {
  version: 1;
  realms: Record<string, StoredCredential>;
}

/**
 * The realm URL a command means: `given` (--url), else $REALM_URL, else DEFAULT_REALM_URL, normalized to
 * `<scheme>://<host>[:port][/path]` without a trailing slash (the key of its entry). Plain http only to
 * this machine: tokens do not cross a network in clear.
 */
export function realmUrlOf(given?: string | undefined): string {
  const text = given ?? process.env.REALM_URL ?? DEFAULT_REALM_URL;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new RealmError("VALIDATION", `the realm URL ${JSON.stringify(text)} is not a URL (--url or REALM_URL, e.g. ${DEFAULT_REALM_URL})`);
  }
  const loopback = url.hostname === "127.0.0.1" || url.hostname === "localhost" || url.hostname === "[::1]";
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) throw new RealmError("VALIDATION", `the realm URL ${url.origin} must be https (http only on this machine: 127.0.0.1, localhost, [::1])`);
  if (url.username || url.password || url.search || url.hash) throw new RealmError("VALIDATION", "the realm URL must not carry a user, password, query or fragment");
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

/** `$XDG_CONFIG_HOME/cim-realm/credentials.json` (an absolute XDG_CONFIG_HOME only, as the spec says), else `~/.config/...`. */
export function credentialsFile(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), ".config"), "cim-realm", "credentials.json");
}

const errCode = (err: unknown) => (err as NodeJS.ErrnoException).code;

const LOCK_WAIT_MS = 15_000;
const LOCK_RETRY_MS = 50;

/** Is `pid` a live process here? EPERM means it exists but belongs to someone else: alive. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errCode(err) === "EPERM";
  }
}

export class CredentialsStore {
  constructor(readonly file: string = credentialsFile()) {}

  private read(): CredentialsFile {
    let text: string;
    try {
      const st = statSync(this.file);
      if (st.mode & 0o077) throw new RealmError("VALIDATION", `${this.file} may be read by others (mode ${(st.mode & 0o777).toString(8)}): its tokens may have leaked; delete it, run \`realm login\` again (it writes the file 0600)`);
      text = readFileSync(this.file, "utf8");
    } catch (err) {
      if (errCode(err) === "ENOENT") return { version: 1, realms: {} };
      if (err instanceof RealmError) throw err;
      throw new RealmError("UNAVAILABLE", `cannot read ${this.file}: ${errCode(err) ?? "error"}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new RealmError("MALFORMED", `${this.file} is not JSON; delete it and run \`realm login\` again`);
    }
    const f = parsed as Partial<CredentialsFile>;
    if (f?.version !== 1 || typeof f.realms !== "object" || f.realms === null) throw new RealmError("MALFORMED", `${this.file} is not a cim-realm credentials file (version 1); delete it and run \`realm login\` again`);
    return f as CredentialsFile;
  }

  private write(content: CredentialsFile): void {
    const dir = dirname(this.file);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    const tmp = join(dir, `.credentials.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
    try {
      writeFileSync(tmp, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600, flag: "wx" });
      chmodSync(tmp, 0o600);
      renameSync(tmp, this.file);
    } catch (err) {
      try {
        unlinkSync(tmp);
      } catch {
        // already renamed or never made
      }
      throw new RealmError("UNAVAILABLE", `cannot write ${this.file}: ${errCode(err) ?? "error"}`);
    }
  }

  /** The entry of `realmUrl` (normalized with realmUrlOf), if any. */
  get(realmUrl: string): StoredCredential | undefined {
    return this.read().realms[realmUrl];
  }

  put(realmUrl: string, credential: StoredCredential): void {
    const f = this.read();
    f.realms[realmUrl] = credential;
    this.write(f);
  }

  /** Removes the entry; true when there was one. */
  delete(realmUrl: string): boolean {
    const f = this.read();
    if (!(realmUrl in f.realms)) return false;
    delete f.realms[realmUrl];
    this.write(f);
    return true;
  }

  /**
   * Runs `fn` holding `<file>.lock` (created O_EXCL, holds our pid), waiting up to 15 s for another
   * `realm` process that holds it. A lock whose pid is gone (a process killed mid-refresh) is taken over.
   */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    const lock = `${this.file}.lock`;
    mkdirSync(dirname(lock), { recursive: true, mode: 0o700 });
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      let fd: number | undefined;
      try {
        fd = openSync(lock, "wx", 0o600);
      } catch (err) {
        if (errCode(err) !== "EEXIST") throw new RealmError("UNAVAILABLE", `cannot create ${lock}: ${errCode(err) ?? "error"}`);
      }
      if (fd !== undefined) {
        try {
          writeSync(fd, String(process.pid));
        } finally {
          closeSync(fd);
        }
        try {
          return await fn();
        } finally {
          try {
            unlinkSync(lock);
          } catch {
            // gone already
          }
        }
      }
      let holder = NaN;
      try {
        holder = Number(readFileSync(lock, "utf8"));
      } catch {
        // released in between: try again at once
        continue;
      }
      if (Number.isInteger(holder) && holder > 0 && !alive(holder)) {
        try {
          unlinkSync(lock);
        } catch {
          // someone else took it over first
        }
        continue;
      }
      if (Date.now() > deadline) throw new RealmError("UNAVAILABLE", `another realm process (pid ${Number.isInteger(holder) ? holder : "?"}) holds ${lock}`);
      await delay(LOCK_RETRY_MS);
    }
  }
}
