import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "ldapts";

export interface TestSlapd {
  url: string;
  baseDn: string;
  adminDn: string;
  adminPassword: string;
  dir: string;
  /** A client bound as the admin; the harness unbinds it on stop. */
  admin(): Promise<Client>;
  stop(): Promise<void>;
}

export interface SlapdOptions {
  baseDn?: string;
  /** LDIF loaded with slapadd before the server starts (entries under baseDn; the base entry is added for you). */
  ldif?: string;
  /** Extra modules to load (e.g. `argon2` for {ARGON2} userPassword values). */
  modules?: string[];
  /** Extra lines of the database section (e.g. `index uid,cn eq`). */
  databaseConfig?: string[];
}

const SLAPD = process.env.SLAPD ?? "/usr/sbin/slapd";
const SLAPADD = process.env.SLAPADD ?? "/usr/sbin/slapadd";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a ? resolve(a.port) : reject(new Error("no free port"))));
    });
  });
}

/**
 * Starts a real OpenLDAP slapd (Debian package) in a temp dir on a free port: slapd.conf with the core,
 * cosine, nis and inetorgperson schemas, one mdb database for `baseDn` with admin `cn=admin,<baseDn>`,
 * loaded from `ldif` with slapadd. Stop it with `stop()` (SIGTERM, then the dir is removed).
 */
export async function startSlapd(opts: SlapdOptions = {}): Promise<TestSlapd> {
  const baseDn = opts.baseDn ?? "dc=example,dc=org";
  const adminDn = `cn=admin,${baseDn}`;
  const adminPassword = "slapd-admin-test-password";
  const dir = mkdtempSync(join(tmpdir(), "realm-slapd-"));
  const db = join(dir, "db");
  mkdirSync(db);
  const dc = /^dc=([^,]+)/.exec(baseDn)?.[1] ?? "example";
  const conf = join(dir, "slapd.conf");
  writeFileSync(
    conf,
    [
      "include /etc/ldap/schema/core.schema",
      "include /etc/ldap/schema/cosine.schema",
      "include /etc/ldap/schema/nis.schema",
      "include /etc/ldap/schema/inetorgperson.schema",
      `pidfile ${join(dir, "slapd.pid")}`,
      `argsfile ${join(dir, "slapd.args")}`,
      "modulepath /usr/lib/ldap",
      "moduleload back_mdb",
      ...(opts.modules ?? []).map((m) => `moduleload ${m}`),
      "database mdb",
      "maxsize 104857600",
      `suffix "${baseDn}"`,
      `rootdn "${adminDn}"`,
      `rootpw ${adminPassword}`,
      `directory ${db}`,
      "index objectClass eq",
      ...(opts.databaseConfig ?? []),
      "access to attrs=userPassword by self write by anonymous auth by * none",
      "access to * by * read",
      "",
    ].join("\n"),
  );
  const base = `dn: ${baseDn}\nobjectClass: dcObject\nobjectClass: organization\ndc: ${dc}\no: ${dc}\n\n`;
  writeFileSync(join(dir, "init.ldif"), base + (opts.ldif ?? ""));
  const add = spawnSync(SLAPADD, ["-f", conf, "-l", join(dir, "init.ldif")], { encoding: "utf8" });
  if (add.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`slapadd failed: ${add.stderr}`);
  }
  const port = await freePort();
  const url = `ldap://127.0.0.1:${port}`;
  // -d 0: stay in the foreground (so we own the process) without debug output.
  const proc: ChildProcess = spawn(SLAPD, ["-f", conf, "-h", `${url}/`, "-d", "0"], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const clients: Client[] = [];
  const admin = async () => {
    const c = new Client({ url, timeout: 5000, connectTimeout: 2000 });
    await c.bind(adminDn, adminPassword);
    clients.push(c);
    return c;
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`slapd exited (${proc.exitCode}): ${stderr}`);
    try {
      const c = new Client({ url, timeout: 2000, connectTimeout: 500 });
      await c.bind(adminDn, adminPassword);
      await c.unbind();
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        proc.kill("SIGKILL");
        throw new Error(`slapd did not answer on ${url}: ${String(err)} ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    baseDn,
    adminDn,
    adminPassword,
    dir,
    admin,
    async stop() {
      await Promise.all(clients.map((c) => c.unbind().catch(() => undefined)));
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** LDIF of the two organizational units the tests' directories use: ou=people and ou=groups under `base`. */
export const ouLdif = (base: string) => `dn: ou=people,${base}
objectClass: organizationalUnit
ou: people

dn: ou=groups,${base}
objectClass: organizationalUnit
ou: groups

`;
