import { spawn, type ChildProcess } from "node:child_process";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { registerPkiCommands } from "../../pki/cli.js";
import { renewalTime } from "../../pki/renew.js";
import { startPki, type PkiHarness } from "./harness.js";
import { openssl } from "./openssl.js";
import { sshKeygen } from "./ssh-tools.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));

/** Polls `check` every 100 ms until it returns a value, for at most `ms` (then fails naming `what`). */
async function until<T>(what: string, check: () => T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("renewal at two thirds of the lifetime", () => {
  it("renewalTime is 2/3 of the lifetime with +-5% jitter", () => {
    const nb = new Date("2026-01-01T00:00:00Z");
    const na = new Date(nb.getTime() + 90 * 86_400_000);
    expect(renewalTime(nb, na, () => 0.5).toISOString()).toBe(new Date(nb.getTime() + 60 * 86_400_000).toISOString());
    expect(renewalTime(nb, na, () => 0).getTime()).toBe(nb.getTime() + 60 * 86_400_000 - 4.5 * 86_400_000);
    expect(renewalTime(nb, na, () => 1).getTime()).toBe(nb.getTime() + 60 * 86_400_000 + 4.5 * 86_400_000);
    for (let i = 0; i < 100; i++) {
      const t = renewalTime(nb, na).getTime();
      expect(t).toBeGreaterThanOrEqual(nb.getTime() + 55.5 * 86_400_000);
      expect(t).toBeLessThanOrEqual(nb.getTime() + 64.5 * 86_400_000);
    }
  });
});

describe("realm cert renew --daemon, realm cert list --expiring, expiry metrics", () => {
  let h: PkiHarness;
  let skewMs = 0;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    h = await startPki({ clock: () => new Date(Date.now() + skewMs) });
  }, 60_000);
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    await h?.stop();
  });

  it("a certificate past two thirds of its life is renewed by the daemon: the new file appears (same key and names), the command ran, the PID was signalled", async () => {
    // Issued as if 20 hours ago for one day: its renewal time (about 16 h after issuance) has passed.
    skewMs = -20 * 3600_000;
    const issued = await h.command<{ serial: string; certPem: string; chainPem: string; privateKeyPem: string }>("certificate.issue", { profile: "server", commonName: "renew.example.test", ip: ["127.0.0.1"], days: 1 });
    skewMs = 0;
    const certFile = h.file("renew.crt", issued.certPem + issued.chainPem);
    const keyFile = h.file("renew.key", issued.privateKeyPem);
    const marker = join(h.work, "exec-ran");
    const hupFile = join(h.work, "hup-received");
    // A process that reloads on SIGHUP, as a server would: it writes a file when signalled.
    const server = spawn(process.execPath, ["-e", `process.on("SIGHUP", () => { require("fs").writeFileSync(${JSON.stringify(hupFile)}, "hup"); process.exit(0); }); setInterval(() => {}, 1000); process.stdout.write("ready\\n");`], { stdio: ["ignore", "pipe", "ignore"] });
    children.push(server);
    await new Promise<void>((resolve) => server.stdout!.once("data", () => resolve()));
    const daemon = spawn(
      process.execPath,
      ["--import", "tsx", "services/cli/main.ts", "cert", "renew", "--daemon", certFile, keyFile, "--exec", `echo "$REALM_CERT_SERIAL" > ${marker}`, "--signal-pid", String(server.pid), "--nats", h.nats.url],
      { cwd: REPO, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, REALM_CONFIG: join(h.work, "no-config.yaml") } },
    );
    children.push(daemon);
    let log = "";
    daemon.stderr!.on("data", (d: Buffer) => (log += d.toString()));
    const newSerial = await until("the command after renewal", () => (existsSync(marker) ? readFileSync(marker, "utf8").trim() || undefined : undefined));
    await until("SIGHUP in the server", () => (existsSync(hupFile) ? true : undefined));
    const renewed = new X509Certificate(readFileSync(certFile, "utf8"));
    expect(newSerial).not.toBe(issued.serial);
    expect(renewed.serialNumber.toLowerCase()).toContain(newSerial);
    expect(renewed.checkPrivateKey(createPrivateKey(readFileSync(keyFile, "utf8")))).toBe(true);
    expect(renewed.subjectAltName).toBe("DNS:renew.example.test, IP Address:127.0.0.1");
    const life = new Date(renewed.validTo).getTime() - new Date(renewed.validFrom).getTime();
    expect(Math.round(life / 86_400_000)).toBe(1);
    expect(new Date(renewed.validTo).getTime()).toBeGreaterThan(Date.now() + 23 * 3600_000);
    // The file is the leaf and its chain, and verifies to the root.
    expect(openssl(["verify", "-CAfile", h.files.root, "-untrusted", h.files.intermediate, certFile]).code).toBe(0);
    // It goes on: the next renewal is scheduled about 16 hours out.
    const next = await until("the next schedule", () => /renewing at (\S+)/g.exec(log.split("renewed")[1] ?? "")?.[1]);
    const hoursOut = (new Date(next).getTime() - Date.now()) / 3600_000;
    expect(hoursOut).toBeGreaterThan(14);
    expect(hoursOut).toBeLessThan(18);
    // SIGTERM stops it cleanly.
    const code = await new Promise<number | null>((resolve) => {
      daemon.once("exit", (c) => resolve(c));
      daemon.kill("SIGTERM");
    });
    expect(code, log).toBe(0);
  }, 60_000);

  it("a key that is not the certificate's is refused and the file is left as it was", async () => {
    const issued = await h.command<{ certPem: string; chainPem: string; privateKeyPem: string }>("certificate.issue", { profile: "server", commonName: "other.example.test", days: 1 });
    const other = await h.command<{ privateKeyPem: string }>("certificate.issue", { profile: "server", commonName: "third.example.test", days: 1 });
    const certFile = h.file("other.crt", issued.certPem + issued.chainPem);
    const keyFile = h.file("other.key", other.privateKeyPem);
    await expect(realm("cert", "renew", certFile, keyFile)).rejects.toMatchObject({ code: "VALIDATION" });
    expect(readFileSync(certFile, "utf8")).toBe(issued.certPem + issued.chainPem);
  });

  it("cert list --expiring lists leaves, intermediates and SSH certificates within the horizon; /metrics has the soonest expiries", async () => {
    await h.command("ssh-ca.create", { issuer: "ops" });
    const key = sshKeygen(h.work, "exp-user");
    const ssh = await h.command<{ serial: string }>("ssh.sign-user", { publicKey: key.pub, principals: ["ops"], hours: 2 });
    const soon = JSON.parse((await realm("cert", "list", "--expiring", "3h")).out) as { expiring: { kind: string; serial: string }[] };
    expect(soon.expiring.map((e) => e.kind)).toEqual(["ssh-certificate"]);
    expect(soon.expiring[0]!.serial).toBe(ssh.serial);
    const day = JSON.parse((await realm("cert", "list", "--expiring", "2d")).out) as { expiring: { kind: string }[] };
    expect(new Set(day.expiring.map((e) => e.kind))).toEqual(new Set(["ssh-certificate", "certificate"]));
    const years = JSON.parse((await realm("cert", "list", "--expiring", "2000d")).out) as { expiring: { kind: string; name: string }[] };
    expect(years.expiring.some((e) => e.kind === "intermediate" && e.name.includes("Example Realm Ops CA"))).toBe(true);
    await expect(realm("cert", "list", "--expiring", "soon")).rejects.toThrow(/Expected a duration/);
    const metrics = await (await fetch(`${h.baseUrl}/metrics`)).text();
    const soonest = /realm_pki_soonest_expiry_seconds\{kind="ssh-certificate",issuer="ops",serial="(\d+)"\} (\d+)/.exec(metrics);
    expect(soonest?.[1]).toBe(ssh.serial);
    expect(Number(soonest?.[2])).toBeGreaterThan(3600);
    expect(Number(soonest?.[2])).toBeLessThanOrEqual(2 * 3600);
    expect(metrics).toMatch(/realm_pki_soonest_expiry_seconds\{kind="intermediate",issuer="ops",serial="[0-9a-f]+"\} \d+/);
    expect(metrics).toMatch(/realm_pki_expiring_30d\{kind="ssh-certificate"\} 1\n/);
  });

  /** Runs `realm <args>` in this process with --nats. */
  async function realm(...args: string[]): Promise<{ out: string; err: string }> {
    const program = new Command("realm").exitOverride();
    registerPkiCommands(program);
    let out = "";
    let err = "";
    const o = vi.spyOn(process.stdout, "write").mockImplementation((c: string | Uint8Array) => ((out += c.toString()), true));
    const e = vi.spyOn(process.stderr, "write").mockImplementation((c: string | Uint8Array) => ((err += c.toString()), true));
    try {
      await program.parseAsync(["node", "realm", ...args, "--nats", h.nats.url]);
    } finally {
      o.mockRestore();
      e.mockRestore();
    }
    return { out, err };
  }
});
