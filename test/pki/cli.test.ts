import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { RealmError } from "../../services/kernel/errors.js";
import { registerPkiCommands } from "../../pki/cli.js";
import { registerCeremonyCommands } from "../../pki/ceremony/cli.js";
import { CEREMONY_PASSPHRASE, startPki, type PkiHarness } from "./harness.js";
import { openssl, opensslAsync, opensslCsr } from "./openssl.js";

let h: PkiHarness;
let dir: string;
let passFile: string;
beforeAll(async () => {
  h = await startPki();
  dir = mkdtempSync(join(tmpdir(), "realm-pki-cli-"));
  passFile = join(dir, "passphrase");
  writeFileSync(passFile, `${CEREMONY_PASSPHRASE}\n`, { mode: 0o600 });
}, 60_000);
afterAll(async () => {
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `realm <args>` in this process (cert, pki and ceremony groups); online verbs get --nats. */
async function realm(...args: string[]): Promise<{ out: string; err: string }> {
  const program = new Command("realm").exitOverride();
  registerPkiCommands(program);
  registerCeremonyCommands(program);
  let out = "";
  let err = "";
  const o = vi.spyOn(process.stdout, "write").mockImplementation((c: string | Uint8Array) => ((out += c.toString()), true));
  const e = vi.spyOn(process.stderr, "write").mockImplementation((c: string | Uint8Array) => ((err += c.toString()), true));
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    await program.parseAsync(["node", "realm", ...args, ...(args[0] === "ceremony" || args.includes("--help") ? [] : ["--nats", h.nats.url])]);
  } catch (x) {
    // What the verb said before it failed goes with the error (a test can check nothing was started).
    if (x instanceof Error) Object.assign(x, { stderr: err });
    throw x;
  } finally {
    process.chdir(cwd);
    o.mockRestore();
    e.mockRestore();
  }
  return { out, err };
}
const json = async (...args: string[]) => JSON.parse((await realm(...args)).out) as Record<string, unknown>;

describe("realm ceremony / pki issuer / cert", () => {
  it("the whole path on the command line: ceremony init, issuer prepare, sign, import, issue, OCSP good, revoke, OCSP revoked", async () => {
    const cdir = join(dir, "root");
    const init = await json("ceremony", "init", cdir, "--cn", "CLI Root CA", "--org", "Example", "--passphrase-file", passFile);
    expect(init.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(await json("pki", "issuer", "prepare", "web", "--cn", "Example Web CA")).toMatchObject({ issuer: "web", csr: "web.csr" });
    const signed = await json("ceremony", "sign-intermediate", cdir, join(dir, "web.csr"), "--permit", "example.test", "--passphrase-file", passFile);
    expect(signed.permittedDns).toEqual(["example.test"]);
    expect(await json("pki", "issuer", "import", "web", "--cert", join(dir, "web.crt"), "--root", join(cdir, "root-ca.crt"))).toMatchObject({ issuer: "web" });
    const issuers = (await json("pki", "issuer", "list")).issuers as { issuer: string }[];
    expect(issuers.map((i) => i.issuer).sort()).toEqual(["ops", "web"]);

    // From a CSR: the key never leaves the caller.
    const csr = opensslCsr("shop.example.test", ["DNS:shop.example.test"]);
    writeFileSync(join(dir, "shop.csr"), csr.csrPem);
    const issued = await json("cert", "issue", "--issuer", "web", "--csr", "shop.csr", "--out", "shop");
    expect(JSON.stringify(issued)).not.toContain("-----BEGIN");
    const serial = issued.serial as string;
    const crt = join(dir, "shop.crt");
    expect(openssl(["verify", "-CAfile", join(cdir, "root-ca.crt"), "-untrusted", join(dir, "web.crt"), crt]).code).toBe(0);
    const ocsp = ["ocsp", "-issuer", join(dir, "web.crt"), "-cert", crt, "-url", `${h.baseUrl}/pki/ocsp`, "-CAfile", join(cdir, "root-ca.crt")];
    expect((await opensslAsync(ocsp)).out).toContain(`${crt}: good`);
    // Any spelling of the serial (a leading zero byte, colons, upper case) revokes that certificate and is
    // reported in the realm's normal form, the one `cert issue` and `cert list` print.
    const spelled = `00:${serial.toUpperCase().match(/../g)!.join(":")}`;
    expect(await json("cert", "revoke", spelled, "--reason", "superseded")).toMatchObject({ serial, revoked: { reason: "superseded" } });
    const after = await opensslAsync(ocsp);
    expect(after.out).toContain(`${crt}: revoked`);
    expect(after.out).toContain("Reason: superseded");
    const crlFile = join(dir, "web.crl.pem");
    await realm("cert", "crl", "--issuer", "web", "-o", crlFile);
    expect(openssl(["crl", "-in", crlFile, "-noout", "-text"]).out.toUpperCase()).toContain(serial.toUpperCase());

    // A generated key lands in a 0600 file and nowhere in the printed reply.
    const gen = await realm("cert", "issue", "--issuer", "web", "--profile", "client", "--cn", "carol.example.test");
    expect(gen.out).not.toContain("PRIVATE KEY");
    expect(gen.err).toContain("carol.example.test.key");
    expect(statSync(join(dir, "carol.example.test.key")).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, "carol.example.test.key"), "utf8")).toContain("BEGIN PRIVATE KEY");

    const listed = (await json("cert", "list", "--issuer", "web")).certificates as { serial: string; status: string }[];
    expect(listed.find((c) => c.serial === serial)?.status).toBe("revoked");
    expect((await json("cert", "list", "--status", "revoked")).certificates).toEqual(expect.arrayContaining([expect.objectContaining({ serial })]));
    expect((await realm("cert", "show", serial, "--pem")).out).toContain("-----BEGIN CERTIFICATE-----");
    const shown = await json("ceremony", "show", cdir);
    expect(shown).toMatchObject({ manifest: { ok: true } });
  });

  it("errors are typed and name the problem: wrong ceremony passphrase, no passphrase, unreadable CSR, unknown serial", async () => {
    const cdir = join(dir, "root");
    const bad = join(dir, "bad-pass");
    writeFileSync(bad, "not the passphrase at all");
    await expect(realm("ceremony", "crl", cdir, "--passphrase-file", bad)).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    const saved = process.env.REALM_CEREMONY_PASSPHRASE;
    delete process.env.REALM_CEREMONY_PASSPHRASE;
    try {
      await expect(realm("ceremony", "crl", cdir)).rejects.toThrow(/passphrase-file/);
    } finally {
      if (saved !== undefined) process.env.REALM_CEREMONY_PASSPHRASE = saved;
    }
    // A passphrase too short to seal with is refused before any key is generated or file written.
    const short = join(dir, "short-pass");
    writeFileSync(short, "short\n");
    const fresh = join(dir, "root-short");
    await expect(realm("ceremony", "init", fresh, "--cn", "Short Root", "--passphrase-file", short)).rejects.toMatchObject({
      code: "VALIDATION",
      message: expect.stringContaining("at least 12 characters"),
      stderr: expect.not.stringContaining("generating the root key"),
    });
    expect(existsSync(fresh)).toBe(false);
    await expect(realm("cert", "issue", "--csr", "missing.csr")).rejects.toThrow(RealmError);
    await expect(realm("cert", "show", "abcdef")).rejects.toMatchObject({ code: "NOT_FOUND" });
    // The error names the serial as given and its normal form (whole bytes: 0x0112ab stays 0112ab, not 112ab).
    await expect(realm("cert", "revoke", "0x000112AB")).rejects.toMatchObject({ code: "NOT_FOUND", message: "no certificate with serial 0x000112AB (0112ab in normal form)" });
    await expect(realm("cert", "show", "0112ab")).rejects.toMatchObject({ code: "NOT_FOUND", message: "no certificate with serial 0112ab" });
  });

  it("every verb has --help", async () => {
    for (const path of [["cert", "issue"], ["cert", "list"], ["cert", "revoke"], ["cert", "show"], ["pki", "issuer", "prepare"], ["ceremony", "init"], ["ceremony", "sign-intermediate"], ["ceremony", "revoke-intermediate"], ["ceremony", "crl"]]) {
      const r = await realm(...path, "--help").catch((e: { code?: string }) => e);
      expect((r as { code?: string }).code).toBe("commander.helpDisplayed");
    }
  });

  it("realm acme configure|eab create|eab list|accounts|orders (and --help): the HMAC key is printed once", async () => {
    const conf = await json("acme", "configure", "ops", "--enable", "--require-eab", "--validation-network", "127.0.0.0/8", "--http01-port", "8088");
    expect(conf).toMatchObject({ issuer: "ops", acme: { enabled: true, externalAccountRequired: true, validationNetworks: ["127.0.0.0/8"], http01Port: 8088 }, directory: "/acme/ops/directory" });
    const dir = (await (await fetch(`${h.baseUrl}/acme/ops/directory`)).json()) as { meta: { externalAccountRequired: boolean } };
    expect(dir.meta.externalAccountRequired).toBe(true);
    const key = (await json("acme", "eab", "create", "ops", "--principal", "svc-web")).hmacKey as string;
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const list = await json("acme", "eab", "list", "ops");
    expect(list.keys).toEqual([expect.objectContaining({ principal: "svc-web", revoked: false })]);
    expect(JSON.stringify(list)).not.toContain(key);
    expect(await json("acme", "accounts", "ops")).toEqual({ accounts: [] });
    expect(await json("acme", "orders", "ops")).toEqual({ orders: [] });
    expect((await json("acme", "configure", "ops", "--no-require-eab")).acme).toMatchObject({ externalAccountRequired: false, enabled: true });
    await expect(realm("acme", "configure", "nope", "--enable")).rejects.toMatchObject({ code: "NOT_FOUND" });
    for (const path of [["acme", "configure"], ["acme", "eab", "create"], ["acme", "eab", "revoke"], ["acme", "eab", "list"], ["acme", "accounts"], ["acme", "orders"]]) {
      const r = await realm(...path, "--help").catch((e: { code?: string }) => e);
      expect((r as { code?: string }).code).toBe("commander.helpDisplayed");
    }
  });
});
