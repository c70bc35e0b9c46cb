import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CredentialsStore, credentialsFile, realmUrlOf } from "../../services/cli/credentials-store.js";
import { RealmError } from "../../services/kernel/errors.js";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const fresh = () => {
  const d = mkdtempSync(join(tmpdir(), "realm-creds-"));
  dirs.push(d);
  return new CredentialsStore(credentialsFile({ XDG_CONFIG_HOME: d }));
};
const entry = { issuer: "http://127.0.0.1:8080/oidc", accessToken: "at-secret-value-0123456789", refreshToken: "rt-secret-value-0123456789", expiresAt: new Date(Date.now() + 3600_000).toISOString(), principal: "ada" };

describe("the CLI's credentials file", () => {
  it("one entry per normalized realm URL; http only to this machine", () => {
    expect(realmUrlOf("http://127.0.0.1:8080/")).toBe("http://127.0.0.1:8080");
    expect(realmUrlOf("https://realm.example.org/base/")).toBe("https://realm.example.org/base");
    expect(() => realmUrlOf("http://realm.example.org")).toThrow(RealmError);
    expect(() => realmUrlOf("not a url")).toThrow(/not a URL/);
    expect(credentialsFile({ XDG_CONFIG_HOME: "/x/y" })).toBe("/x/y/cim-realm/credentials.json");
    expect(credentialsFile({ XDG_CONFIG_HOME: "relative" })).toMatch(/\.config\/cim-realm\/credentials\.json$/);
  });

  it("is written 0600 in a 0700 directory, and refused once others may read it (without repeating a token)", () => {
    const s = fresh();
    expect(s.get("http://127.0.0.1:8080")).toBeUndefined();
    s.put("http://127.0.0.1:8080", entry);
    expect(statSync(s.file).mode & 0o777).toBe(0o600);
    expect(statSync(join(s.file, "..")).mode & 0o777).toBe(0o700);
    expect(s.get("http://127.0.0.1:8080")).toEqual(entry);
    expect(s.delete("http://127.0.0.1:8080")).toBe(true);
    expect(s.delete("http://127.0.0.1:8080")).toBe(false);
    s.put("http://127.0.0.1:8080", entry);
    chmodSync(s.file, 0o644);
    let err: unknown;
    try {
      s.get("http://127.0.0.1:8080");
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: "VALIDATION", message: expect.stringContaining("may be read by others") });
    expect((err as Error).message).not.toContain(entry.accessToken);
    chmodSync(s.file, 0o600);
    writeFileSync(s.file, "{ not json");
    expect(() => s.get("http://127.0.0.1:8080")).toThrow(/not JSON/);
  });

  it("the refresh lock is held by one at a time, and a dead holder's lock is taken over", async () => {
    const s = fresh();
    s.put("http://127.0.0.1:8080", entry);
    const order: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const a = s.withLock(async () => {
      order.push("a in");
      await held;
      order.push("a out");
    });
    const b = s.withLock(async () => {
      order.push("b in");
    });
    // b can only get in after a let go.
    await new Promise<void>((r) => setImmediate(r));
    expect(order).toEqual(["a in"]);
    release();
    await Promise.all([a, b]);
    expect(order).toEqual(["a in", "a out", "b in"]);
    const dead = spawnSync(process.execPath, ["-e", ""]).pid!;
    writeFileSync(`${s.file}.lock`, String(dead));
    await expect(s.withLock(async () => "taken over")).resolves.toBe("taken over");
  });
});
