import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Kvm } from "@nats-io/kv";
import { RealmError } from "../../services/kernel/errors.js";
import { newId } from "../../services/kernel/index.js";
import { callRealm } from "../../services/host/client.js";
import { startHost, type Host } from "../../services/host/host.js";
import { createLogger } from "../../services/host/logger.js";
import { Sealer } from "../../services/kernel/seal.js";
import { createIdentityContext } from "../../identity/service.js";
import { PKI_KEYS_BUCKET } from "../../pki/contract.js";
import { readSshCertificate } from "../../pki/ssh/cert.js";
import { testTrust } from "../support/trust.js";
import { rejectionOf } from "../support/errors.js";
import { startPki, type PkiHarness } from "./harness.js";
import { sshKeygen, sshTool } from "./ssh-tools.js";

interface Signed {
  serial: string;
  keyId: string;
  principals: string[];
  validAfter: string;
  validBefore: string;
  certificate: string;
  replayed?: boolean;
}

const codeOf = async (p: Promise<unknown>): Promise<string> => (await rejectionOf(p, RealmError)).code;

describe("SSH CA: user and host certificates, checked by ssh-keygen; KRL", () => {
  let h: PkiHarness;
  let identityHost: Host;
  let skewMs = 0;
  const trust = testTrust();
  beforeAll(async () => {
    h = await startPki({ clock: () => new Date(Date.now() + skewMs), trust });
    // The real identity context beside the PKI: the SSH CA follows its principals and groups from REALM_IDENTITY.
    const log = createLogger({ level: "silent" });
    const identity = await createIdentityContext({ issuer: "http://127.0.0.1/oidc", sealer: Sealer.generate() })({ nc: h.nc, log, dataDir: h.nats.dataDir, trust });
    identityHost = await startHost({ nc: h.nc, contexts: [identity], httpPort: 0, log });
    const id = (name: string, input: object) => callRealm(h.nc, `realm.identity.commands.${name}`, input);
    await id("principal.create", { id: "alice", kind: "person", displayName: "Alice" });
    await id("principal.create", { id: "bob", kind: "person", displayName: "Bob" });
    await id("group.create", { id: "admins", displayName: "Admins" });
    await id("group.addMember", { id: "admins", principal: "alice" });
    await id("principal.disable", { id: "bob", reason: "left" });
  }, 60_000);
  afterAll(async () => {
    await identityHost?.stop();
    await h?.stop();
  });

  const certFile = (line: string) => {
    const p = join(h.work, `c-${newId()}-cert.pub`);
    writeFileSync(p, line);
    return p;
  };
  const eventCount = () => h.pki.store.lastSequence();

  it("creates an Ed25519 SSH CA: public key in SshCaCreated, private half sealed in realm_pki_keys, in no event", async () => {
    const ca = await h.command<{ publicKey: string; fingerprint: string; keySpec: string }>("ssh-ca.create", { issuer: "ops" });
    expect(ca.keySpec).toBe("ed25519");
    expect(ca.publicKey).toMatch(/^ssh-ed25519 AAAA/);
    // ssh-keygen reads the public key and prints the same fingerprint.
    const pub = h.file("ca.pub", `${ca.publicKey}\n`);
    expect(sshTool("ssh-keygen", ["-l", "-f", pub]).out).toContain(ca.fingerprint);
    // A second CA for the issuer is refused, and nothing is recorded.
    const before = await eventCount();
    expect(await codeOf(h.command("ssh-ca.create", { issuer: "ops" }))).toBe("ALREADY_EXISTS");
    expect(await eventCount()).toBe(before);
    // The events carry the public key only; the bucket entry is sealed.
    const types: string[] = [];
    for await (const s of h.pki.store.readEvents()) {
      types.push(s.event.type);
      expect(JSON.stringify(s.event.data)).not.toMatch(/PRIVATE KEY/);
    }
    expect(types).toContain("SshCaCreated");
    const kv = await new Kvm(h.nc).open(PKI_KEYS_BUCKET);
    for await (const k of await kv.keys("k.>")) expect((await kv.get(k))!.string()).not.toContain("PRIVATE KEY");
    expect((await h.intermediateKeys()).some((pem) => pem.includes("PRIVATE KEY"))).toBe(true);
  });

  it("user certificate for a realm principal: its login name and groups as principals, hours, extensions, force-command, source-address", async () => {
    const key = sshKeygen(h.work, "alice");
    const r = await h.command<Signed>("ssh.sign-user", { publicKey: key.pub, principal: "alice", hours: 8, extensions: ["permit-pty"], forceCommand: "/usr/bin/id", sourceAddress: ["127.0.0.0/8"] });
    expect(r.principals).toEqual(["alice", "admins"]);
    const file = certFile(r.certificate);
    const out = sshTool("ssh-keygen", ["-L", "-f", file]);
    expect(out.code).toBe(0);
    expect(out.out).toContain("ssh-ed25519-cert-v01@openssh.com user certificate");
    expect(out.out).toContain(`Serial: ${r.serial}`);
    expect(out.out).toContain('Key ID: "alice"');
    expect(out.out).toMatch(/Principals: \n\s+alice\n\s+admins\n/);
    expect(out.out).toMatch(/Critical Options: \n\s+force-command \/usr\/bin\/id\n\s+source-address 127\.0\.0\.0\/8\n/);
    expect(out.out).toMatch(/Extensions: \n\s+permit-pty\n/);
    const c = readSshCertificate(r.certificate);
    expect(c.signatureValid).toBe(true);
    expect(c.validBefore - c.validAfter).toBe(8 * 3600 + 300);
    expect(out.out).toContain(`Valid: from ${fmt(c.validAfter)} to ${fmt(c.validBefore)}`);
    // A resent command (same id) is answered with the same certificate, not a second one.
    const commandId = newId();
    const again = await h.command<Signed>("ssh.sign-user", { publicKey: key.pub, principal: "alice" }, commandId);
    const replay = await h.command<Signed>("ssh.sign-user", { publicKey: key.pub, principal: "alice" }, commandId);
    expect(replay.serial).toBe(again.serial);
    expect(replay.certificate).toBe(again.certificate);
  });

  it("default extensions from the policy; ECDSA and RSA subject keys; the policy narrows what may be granted", async () => {
    const ec = sshKeygen(h.work, "ec", "ecdsa");
    const r = await h.command<Signed>("ssh.sign-user", { publicKey: ec.pub, principals: ["deploy"] });
    const out = sshTool("ssh-keygen", ["-L", "-f", certFile(r.certificate)]).out;
    expect(out).toContain("ecdsa-sha2-nistp256-cert-v01@openssh.com user certificate");
    for (const x of ["permit-X11-forwarding", "permit-agent-forwarding", "permit-port-forwarding", "permit-pty", "permit-user-rc"]) expect(out).toContain(x);
    const rsa = sshKeygen(h.work, "rsa", "rsa");
    expect(sshTool("ssh-keygen", ["-L", "-f", certFile((await h.command<Signed>("ssh.sign-user", { publicKey: rsa.pub, principals: ["deploy"] })).certificate)]).out).toContain("ssh-rsa-cert-v01@openssh.com");
    await h.command("ssh-ca.policy", { issuer: "ops", userExtensions: ["permit-pty"], userMaxHours: 12, userDefaultHours: 8 });
    const before = await eventCount();
    expect(await codeOf(h.command("ssh.sign-user", { publicKey: ec.pub, principals: ["deploy"], extensions: ["permit-agent-forwarding"] }))).toBe("VALIDATION");
    expect(await codeOf(h.command("ssh.sign-user", { publicKey: ec.pub, principals: ["deploy"], hours: 13 }))).toBe("VALIDATION");
    expect(await eventCount()).toBe(before);
    const narrowed = sshTool("ssh-keygen", ["-L", "-f", certFile((await h.command<Signed>("ssh.sign-user", { publicKey: ec.pub, principals: ["deploy"] })).certificate)]).out;
    expect(narrowed).toMatch(/Extensions: \n\s+permit-pty\n/);
    await h.command("ssh-ca.policy", { issuer: "ops", userExtensions: ["permit-X11-forwarding", "permit-agent-forwarding", "permit-port-forwarding", "permit-pty", "permit-user-rc"], userMaxHours: 168, userDefaultHours: 16 });
  });

  it("refuses with a typed error and records nothing: another person's principal, a disabled or unknown person, bad keys, bad options", async () => {
    const key = sshKeygen(h.work, "mallory");
    const before = await eventCount();
    const refused = async (input: object, code = "VALIDATION") => expect(await codeOf(h.command("ssh.sign-user", { publicKey: key.pub, ...input }))).toBe(code);
    await refused({ principal: "alice", principals: ["root"] });
    await refused({ principal: "bob" });
    await refused({ principal: "nobody" }, "NOT_FOUND");
    await refused({ principals: ["a,b"] });
    await refused({ principals: ["has space"] });
    await refused({ principals: ["ok"], sourceAddress: ["not-a-cidr"] });
    await refused({ principals: ["ok"], forceCommand: "two\nlines" });
    await refused({});
    expect(await codeOf(h.command("ssh.sign-user", { publicKey: "ssh-ed25519 AAAA", principals: ["ok"] }))).toBe("VALIDATION");
    expect(await codeOf(h.command("ssh.sign-user", { publicKey: "ssh-dss AAAAB3NzaC1kc3MAAACBAP", principals: ["ok"] }))).toBe("VALIDATION");
    const small = sshTool("ssh-keygen", ["-q", "-t", "rsa", "-b", "1024", "-N", "", "-f", join(h.work, "small")]);
    expect(small.code).toBe(0);
    expect(await codeOf(h.command("ssh.sign-user", { publicKey: (await import("node:fs")).readFileSync(join(h.work, "small.pub"), "utf8"), principals: ["ok"] }))).toBe("VALIDATION");
    expect(await codeOf(h.command("ssh.sign-user", { publicKey: key.pub.replace("ssh-ed25519", "ecdsa-sha2-nistp256"), principals: ["ok"] }))).toBe("VALIDATION");
    expect(await eventCount()).toBe(before);
  });

  it("host certificates only for names the realm owns; ssh-keygen shows a host certificate", async () => {
    const hostKey = sshKeygen(h.work, "web1-host");
    const r = await h.command<Signed>("ssh.sign-host", { publicKey: hostKey.pub, names: ["web1.example.test", "127.0.0.1"], days: 7 });
    const out = sshTool("ssh-keygen", ["-L", "-f", certFile(r.certificate)]).out;
    expect(out).toContain("ssh-ed25519-cert-v01@openssh.com host certificate");
    expect(out).toMatch(/Principals: \n\s+web1\.example\.test\n\s+127\.0\.0\.1\n/);
    expect(out).toMatch(/Critical Options: \(none\)/);
    expect(out).toMatch(/Extensions: \(none\)/);
    const before = await eventCount();
    expect(await codeOf(h.command("ssh.sign-host", { publicKey: hostKey.pub, names: ["web1.example.org"] }))).toBe("VALIDATION");
    expect(await codeOf(h.command("ssh.sign-host", { publicKey: hostKey.pub, names: ["10.1.2.3"] }))).toBe("VALIDATION");
    expect(await codeOf(h.command("ssh.sign-host", { publicKey: hostKey.pub, names: ["web1.example.test"], days: 3000 }))).toBe("VALIDATION");
    expect(await eventCount()).toBe(before);
  });

  it("revocation by serial and by key id: SshCertificateRevoked, the KRL served over HTTP, ssh-keygen -Q says REVOKED", async () => {
    const key = sshKeygen(h.work, "carol");
    const a = await h.command<Signed>("ssh.sign-user", { publicKey: key.pub, principals: ["carol"] });
    const b = await h.command<Signed>("ssh.sign-user", { publicKey: key.pub, principals: ["carol"], keyId: "carol-laptop" });
    const fa = certFile(a.certificate);
    const fb = certFile(b.certificate);
    const krl = async () => {
      const res = await fetch(`${h.baseUrl}/pki/ssh/ops.krl`);
      expect(res.status).toBe(200);
      return h.file(`krl-${newId()}`, Buffer.from(await res.arrayBuffer()));
    };
    const k0 = await krl();
    expect(sshTool("ssh-keygen", ["-Q", "-f", k0, fa]).out).toMatch(/: ok/);
    expect(sshTool("ssh-keygen", ["-Q", "-f", k0, fb]).code).toBe(0);
    await h.command("ssh.revoke", { serial: a.serial, reason: "keyCompromise" });
    const k1 = await krl();
    const qa = sshTool("ssh-keygen", ["-Q", "-f", k1, fa]);
    expect(qa.out).toContain("REVOKED");
    expect(qa.code).not.toBe(0);
    expect(sshTool("ssh-keygen", ["-Q", "-f", k1, fb]).out).toMatch(/: ok/);
    expect(sshTool("ssh-keygen", ["-Q", "-l", "-f", k1]).out).toContain(`serial: ${a.serial}`);
    await h.command("ssh.revoke", { keyId: "carol-laptop" });
    const k2 = await krl();
    expect(sshTool("ssh-keygen", ["-Q", "-f", k2, fb]).out).toContain("REVOKED");
    expect(sshTool("ssh-keygen", ["-Q", "-l", "-f", k2]).out).toContain("id: carol-laptop");
    // Twice is refused; an unknown serial is NOT_FOUND.
    expect(await codeOf(h.command("ssh.revoke", { serial: a.serial }))).toBe("ALREADY_EXISTS");
    expect(await codeOf(h.command("ssh.revoke", { serial: "123" }))).toBe("NOT_FOUND");
    const listed = await h.query<{ certificates: { serial: string; status: string }[] }>("ssh-certificates", { status: "revoked" });
    expect(listed.certificates.map((c) => c.serial).sort()).toEqual([a.serial, b.serial].sort());
    const events: string[] = [];
    for await (const s of h.pki.store.readEvents()) events.push(s.event.type);
    expect(events).toContain("SshCertificateRevoked");
    expect(events).toContain("SshKeyIdRevoked");
    expect((await fetch(`${h.baseUrl}/pki/ssh/nope.krl`)).status).toBe(404);
  });

  it("an expired certificate: ssh-keygen shows its past validity; listing tells it expired", async () => {
    const key = sshKeygen(h.work, "dave");
    skewMs = -3 * 3600_000;
    const r = await h.command<Signed>("ssh.sign-user", { publicKey: key.pub, principals: ["dave"], hours: 1 });
    skewMs = 0;
    expect(new Date(r.validBefore).getTime()).toBeLessThan(Date.now());
    const list = await h.query<{ certificates: { serial: string; status: string }[] }>("ssh-certificates", { principal: "dave" });
    expect(list.certificates).toEqual([expect.objectContaining({ serial: r.serial, status: "expired" })]);
  });

  it("an ECDSA P-256 CA for a second issuer; config gives the sshd lines and the @cert-authority line", async () => {
    const ca = await h.command<{ publicKey: string }>("ssh-ca.create", { issuer: "lab", keySpec: "ecdsa-p256" });
    expect(ca.publicKey).toMatch(/^ecdsa-sha2-nistp256 AAAA/);
    const key = sshKeygen(h.work, "erin");
    const r = await h.command<Signed>("ssh.sign-user", { issuer: "lab", publicKey: key.pub, principals: ["erin"] });
    const out = sshTool("ssh-keygen", ["-L", "-f", certFile(r.certificate)]).out;
    expect(out).toMatch(/Signing CA: ECDSA SHA256:\S+ \(using ecdsa-sha2-nistp256\)/);
    // With two CAs the issuer must be named.
    expect(await codeOf(h.command("ssh.sign-user", { publicKey: key.pub, principals: ["erin"] }))).toBe("VALIDATION");
    const cfg = await h.query<{ sshd: string[]; knownHosts: string; caPublicKey: string; krlUrl: string }>("ssh-config", { issuer: "lab" });
    expect(cfg.sshd).toEqual(["TrustedUserCAKeys /etc/ssh/realm-lab-user-ca.pub", "RevokedKeys /etc/ssh/realm-lab.krl"]);
    expect(cfg.knownHosts).toBe(`@cert-authority *.example.test,example.test ${ca.publicKey} realm-lab`);
    expect(cfg.krlUrl).toBe(`${h.baseUrl}/pki/ssh/lab.krl`);
    expect(await (await fetch(`${h.baseUrl}/pki/ssh/lab.pub`)).text()).toBe(`${ca.publicKey} realm-lab\n`);
    const metrics = await (await fetch(`${h.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/realm_pki_ssh_certificates \d+/);
  });
});

/** ssh-keygen -L's time format (local time; the test machine's zone). */
function fmt(seconds: number): string {
  const d = new Date(seconds * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
