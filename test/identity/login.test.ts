import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT_CODES } from "../../services/cli/exit-codes.js";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { chromium, type BrowserContext } from "playwright-core";
import { freePort } from "../../services/nats/supervisor.js";
import { callRealm } from "../../services/host/client.js";
import { inboxPrefixOf } from "../../services/host/creds.js";
import { repoRoot, runRealm, startRealmProcess } from "../support/cli.js";
import { registerRealmClients } from "../support/realm-clients.js";

/**
 * `realm login` end to end: a whole realm (`realm up`), a person with a password and a role that lists
 * zones, `realm login` in a child process, a headless Chromium at the verification page doing what the
 * person does (type the code, sign in), then the CLI works with the stored token, refreshes it, and
 * `realm logout` ends it.
 */
const data = mkdtempSync(join(tmpdir(), "realm-login-"));
const xdg = mkdtempSync(join(tmpdir(), "realm-login-xdg-"));
const profile = mkdtempSync(join(tmpdir(), "realm-login-chromium-"));
const password = "ada's long login passphrase";
let natsUrl: string;
let httpUrl: string;
let realm: Awaited<ReturnType<typeof startRealmProcess>>;
let key: string;
let nc: NatsConnection | undefined;
let browser: BrowserContext | undefined;
/** Everything the CLI printed, to check no token is in it. */
const printed: string[] = [];

/** The local operator's environment, without an admin credential, with the test's own config dir. */
const env = () => ({ REALM_DATA: data, REALM_NATS_URL: natsUrl, XDG_CONFIG_HOME: xdg, REALM_URL: httpUrl, REALM_TOKEN: "" });
const cli = async (args: string[], extra: Record<string, string> = {}, input?: string) => {
  const r = await runRealm(args, { ...env(), ...extra }, input);
  printed.push(r.stdout, r.stderr);
  return r;
};
const admin = async (...args: string[]) => {
  const r = await cli(args, { REALM_TOKEN: key });
  if (r.code !== 0) throw new Error(`realm ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r;
};
const credentialsFile = join(xdg, "cim-realm", "credentials.json");
const stored = () => (JSON.parse(readFileSync(credentialsFile, "utf8")) as { realms: Record<string, { accessToken: string; refreshToken: string; expiresAt: string; principal: string }> }).realms;

beforeAll(async () => {
  natsUrl = `nats://127.0.0.1:${await freePort()}`;
  httpUrl = `http://127.0.0.1:${await freePort()}`;
  realm = await startRealmProcess(["up", "--data", data, "--nats-port", new URL(natsUrl).port, "--http-port", new URL(httpUrl).port, "--dns-port", String(await freePort())], "cim-realm is up", {}, 60_000);
  const boot = await runRealm(["identity", "bootstrap"], { REALM_DATA: data, REALM_NATS_URL: natsUrl });
  key = boot.stdout.trim();
  expect(key).toMatch(/^rk_/);
  // The realm's own clients, exactly as the identity context registers them (a no-op when it did).
  const creds = readFileSync(join(data, "operator", "admin.creds"));
  const inboxPrefix = inboxPrefixOf(creds);
  nc = await connect({ servers: natsUrl, authenticator: credsAuthenticator(creds), reconnect: false, ...(inboxPrefix ? { inboxPrefix } : {}) });
  await registerRealmClients((input) => callRealm(nc!, "realm.identity.commands.client.register", input, { authorization: `Bearer ${key}` }), httpUrl);
  // A person who may list zones: the built-in role that grants everything, whichever name it has here.
  const roles = JSON.parse((await admin("identity", "role", "list")).stdout) as { roles: { id: string }[] };
  const role = ["realm-admin", "admin"].find((r) => roles.roles.some((x) => x.id === r));
  expect(role).toBeDefined();
  await admin("identity", "principal", "create", "ada", "--name", "Ada");
  const pw = await cli(["identity", "principal", "set-password", "ada"], { REALM_TOKEN: key }, `${password}\n`);
  expect(pw.code).toBe(0);
  await admin("identity", "role", "bind", "ada-admin", role!, "--principal", "ada");
  await admin("zone", "create", "lab.example", "--ns", "ns1.lab.example");
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await nc?.close();
  realm?.child.kill("SIGTERM");
  await realm?.exited;
  for (const d of [data, xdg, profile]) rmSync(d, { recursive: true, force: true });
});

/** `realm login` as a child process; resolves with the code and address once it printed them. */
function startLogin() {
  const child = spawn(process.execPath, ["--import", "tsx", resolve(repoRoot, "services/cli/main.ts"), "login", "--url", httpUrl], { cwd: repoRoot, env: { ...process.env, ...env() } });
  child.stdin.end();
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
  const prompt = new Promise<{ code: string; uri: string; complete: string }>((res, rej) => {
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      const code = /^realm: {5}(\S+)$/m.exec(stderr)?.[1];
      const uri = /^realm: open (\S+) in a browser/m.exec(stderr)?.[1];
      const complete = /^realm: or open (\S+)$/m.exec(stderr)?.[1];
      if (code && uri && complete) res({ code, uri, complete });
    });
    void exited.then((c) => rej(new Error(`realm login exited ${c} before printing a code: ${stderr}`)));
  });
  return { prompt, exited, stdout: () => stdout, stderr: () => stderr };
}

describe("realm login / whoami / logout", () => {
  it("without a sign-in the CLI is UNAUTHORIZED and says to run realm login", async () => {
    const r = await cli(["zone", "list"]);
    expect(r.code).toBe(EXIT_CODES.UNAUTHORIZED);
    expect(r.stderr).toContain("UNAUTHORIZED");
    expect(r.stderr).toContain(`realm login --url ${httpUrl}`);
  });

  it("every new command documents its options", async () => {
    const helps = await Promise.all(["login", "logout", "whoami"].map((c) => cli([c, "--help"])));
    for (const h of helps) {
      expect(h.code).toBe(0);
      expect(h.stdout).toContain("--url <url>");
      expect(h.stdout).toContain("REALM_URL");
    }
    expect(helps[1]!.stdout).toContain("--local");
    expect(helps[2]!.stdout).toContain("--token <credential>");
  });

  it("a person signs in through the device page in Chromium; the CLI then works with the stored token, refreshes it, and logout ends it", async () => {
    const login = startLogin();
    const { code, uri, complete } = await login.prompt;
    expect(code).toMatch(/^[A-Z]{4}-[A-Z]{4}$/);
    expect(complete).toContain(encodeURIComponent(code));

    const page = await browser!.newPage();
    await page.goto(uri);
    // One labelled box for the code, inside the provider's form (with its xsrf field), no scripts.
    expect(await page.locator('input[name="user_code"]').count()).toBe(1);
    expect(await page.locator('form#op\\.deviceInputForm input[name="xsrf"][type="hidden"]').count()).toBe(1);
    expect(await page.locator("script").count()).toBe(0);
    // The person types the code in lower case, as it came to mind.
    await page.getByLabel("Code").pressSequentially(code.toLowerCase());
    await page.getByRole("button", { name: "Continue" }).click();
    await expect(page.getByRole("heading", { name: "Confirm the device" }).isVisible()).resolves.toBe(true);
    expect(await page.locator("code").textContent()).toBe(code);
    await page.getByRole("button", { name: "Continue" }).click();
    await page.getByLabel("User name").fill("ada");
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Device connected" }).waitFor();
    await page.close();

    expect(await login.exited).toBe(0);
    printed.push(login.stdout(), login.stderr());
    expect(JSON.parse(login.stdout())).toMatchObject({ url: httpUrl, principal: "ada", issuer: `${httpUrl}/oidc`, file: credentialsFile });

    // The tokens are in the credentials file, 0600 in a 0700 directory.
    expect(statSync(credentialsFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(xdg, "cim-realm")).mode & 0o777).toBe(0o700);
    const first = stored()[httpUrl]!;
    expect(first.principal).toBe("ada");

    // No REALM_TOKEN: the stored token is used.
    const zones = await cli(["zone", "list"]);
    expect(zones.code).toBe(0);
    expect(zones.stdout).toContain("lab.example");
    const show = await cli(["identity", "principal", "show", "ada"]);
    expect(show.code).toBe(0);
    const who = await cli(["whoami", "--url", httpUrl]);
    expect(who.code).toBe(0);
    expect(who.stdout).toContain('"ada"');

    // As `step ssh login`: with the stored token, an SSH user certificate for herself (pki/README.md).
    await admin("ssh", "ca", "create", "ops");
    const sshKey = join(xdg, "id_ed25519");
    expect(spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", sshKey]).status).toBe(0);
    const ssh = await cli(["ssh", "login", "--key", `${sshKey}.pub`]);
    expect(ssh.code, ssh.stderr).toBe(0);
    expect(JSON.parse(ssh.stdout)).toMatchObject({ keyId: "ada", principals: ["ada"], file: `${sshKey}-cert.pub` });
    expect(spawnSync("ssh-keygen", ["-L", "-f", `${sshKey}-cert.pub`], { encoding: "utf8" }).stdout).toMatch(/Principals: \n\s+ada\n/);

    // A token that expires within a minute is refreshed first; the rotated refresh token is stored.
    writeFileSync(credentialsFile, JSON.stringify({ version: 1, realms: { [httpUrl]: { ...first, expiresAt: new Date(Date.now() + 30_000).toISOString() } } }));
    const again = await cli(["zone", "list"]);
    expect(again.code).toBe(0);
    const second = stored()[httpUrl]!;
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect(second.accessToken).not.toBe(first.accessToken);
    expect(Date.parse(second.expiresAt)).toBeGreaterThan(Date.now() + 60_000);
    expect(statSync(credentialsFile).mode & 0o777).toBe(0o600);

    const out = await cli(["logout", "--url", httpUrl]);
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ signedOut: true, revoked: true, principal: "ada" });
    expect(stored()[httpUrl]).toBeUndefined();
    const after = await cli(["zone", "list"]);
    expect(after.code).toBe(EXIT_CODES.UNAUTHORIZED);
    expect(after.stderr).toContain("UNAUTHORIZED");
    // Revoked at the realm, not only forgotten here.
    const direct = await fetch(`${httpUrl}/api/dns/zones`, { headers: { authorization: `Bearer ${second.accessToken}` } });
    expect(direct.status).toBe(401);

    // No token went to any output or log.
    const logs = [...printed, realm.stdout(), realm.stderr(), readFileSync(join(data, "nats", "nats-server.log"), "utf8")].join("\n");
    for (const t of [first.accessToken, first.refreshToken, second.accessToken, second.refreshToken]) {
      expect(t.length).toBeGreaterThan(20);
      expect(logs).not.toContain(t);
    }
  }, 120_000);
});
