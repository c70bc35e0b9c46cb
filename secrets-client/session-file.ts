/**
 * Where `realm secrets` keeps its Vaultwarden session between commands, so that each command does not log in
 * anew (Vaultwarden's login limit: 10, then one a minute per address; ratelimit.rs): one entry per server and
 * account in `$XDG_CONFIG_HOME/cim-realm/vaultwarden-sessions.json` (else `~/.config/...`), the file 0600, its
 * directory 0700, written to a private temp file renamed over it. It holds the access and refresh tokens only:
 * bearer credentials to the encrypted vault, never a key or password (decrypting still takes the master password).
 * A file that group or others may read is not used (and not written): the command logs in instead.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
import type { SavedSession } from "./client.js";

export interface SessionStore {
  load(): SavedSession | undefined;
  save(session: SavedSession | undefined): void;
}

export function vaultwardenSessionFile(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), ".config"), "cim-realm", "vaultwarden-sessions.json");
}

const privateFile = (file: string): boolean => {
  try {
    return (statSync(file).mode & 0o077) === 0;
  } catch {
    return true; // absent
  }
};

function readAll(file: string): Record<string, SavedSession> {
  try {
    const v = JSON.parse(readFileSync(file, "utf8")) as unknown;
    return v && typeof v === "object" ? (v as Record<string, SavedSession>) : {};
  } catch {
    return {};
  }
}

/** A store for one server and account in `file`; failures to read or write only cost a login. */
export function fileSessionStore(file: string, serverUrl: string, email: string): SessionStore {
  const key = `${new URL(serverUrl).origin}|${email.trim().toLowerCase()}`;
  return {
    load() {
      if (!privateFile(file)) return undefined;
      const s = readAll(file)[key];
      return s && typeof s.accessToken === "string" && typeof s.expiresAt === "number" && typeof s.email === "string" ? s : undefined;
    },
    save(session) {
      if (!privateFile(file)) return;
      try {
        mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
        const all = readAll(file);
        if (session) all[key] = session;
        else delete all[key];
        const tmp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
        writeFileSync(tmp, JSON.stringify(all), { mode: 0o600 });
        chmodSync(tmp, 0o600);
        renameSync(tmp, file);
      } catch {
        // Not kept: the next command logs in again.
      }
    },
  };
}
