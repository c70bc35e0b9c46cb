import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRealm, type RunningRealm } from "../../services/cli/runtime.js";
import { createLogger } from "../../services/host/logger.js";
import { ldapDirectoryFromEnv } from "../../identity/directory-server/extension.js";
import { freePort } from "./harness.js";

/** `realm up` (startRealm, operator mode) with REALM_LDAP_PORT: the identity context serves the directory. */
const run = promisify(execFile);
let realm: RunningRealm;
let dir: string;
let port: number;
const saved = { ...process.env };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "realm-ldap-up-"));
  port = await freePort();
  process.env.REALM_LDAP_PORT = String(port);
  process.env.REALM_LDAP_BASE_DN = "dc=up,dc=test";
  realm = await startRealm({ dataDir: dir, natsPort: 0, httpPort: 0, dnsPort: 0, log: createLogger({ level: "silent" }) });
}, 90_000);
afterAll(async () => {
  process.env = saved;
  await realm?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("realm up with REALM_LDAP_PORT", () => {
  it("serves the directory on that port and lists its query among the realm's permissions", async () => {
    const bad = await run("ldapsearch", ["-x", "-H", `ldap://127.0.0.1:${port}`, "-D", "uid=root,ou=people,dc=up,dc=test", "-w", "not the password", "-b", "dc=up,dc=test"], { env: { ...process.env, LDAPNOINIT: "1" } }).catch((e: { code: number; stderr: string }) => e);
    expect("code" in bad ? bad.code : 0).toBe(49);
    expect(realm.host.permissions().map((p) => p.permission)).toContain("identity:ldapDirectory");
  });

  it("refuses bad settings with a clear message", () => {
    expect(() => ldapDirectoryFromEnv({ REALM_LDAP_PORT: "70000" })).toThrow(/REALM_LDAP_PORT/);
    expect(() => ldapDirectoryFromEnv({ REALM_LDAP_PORT: "389", REALM_LDAPS_KEY: "/k.pem" })).toThrow(/go together/);
    expect(ldapDirectoryFromEnv({})).toBeUndefined();
  });
});
