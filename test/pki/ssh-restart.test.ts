import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPkiContext, type PkiContext } from "../../pki/service.js";
import { createLogger } from "../../services/host/logger.js";
import { Sealer } from "../../services/kernel/seal.js";
import { newId } from "../../services/kernel/index.js";
import { testTrust } from "../support/trust.js";
import { startPki, type PkiHarness } from "./harness.js";
import { sshKeygen, sshTool } from "./ssh-tools.js";

/** A PKI restarted on the same stream and key bucket: the SSH CA signs again, the KRL still lists what was revoked. */
describe("SSH CA across a restart", () => {
  let h: PkiHarness;
  let again: PkiContext | undefined;
  const trust = testTrust();
  const sealer = Sealer.generate();
  beforeAll(async () => {
    h = await startPki({ trust, sealer });
  }, 60_000);
  afterAll(async () => {
    await again?.stop?.();
    await h?.stop();
  });

  it("a second PKI instance (started from the snapshot the first took at stop) has the CA key, the certificates and the revocations", async () => {
    await h.command("ssh-ca.create", { issuer: "ops" });
    const key = sshKeygen(h.work, "restart");
    const a = await h.command<{ serial: string; certificate: string }>("ssh.sign-user", { publicKey: key.pub, principals: ["x"] });
    await h.command("ssh.revoke", { serial: a.serial });
    await h.command("ssh.revoke", { keyId: "someone" });
    const before = await h.query<{ krl: string; version: number }>("ssh-krl", {});
    await h.pki.stop?.();
    again = await createPkiContext({ ownedZones: () => ["example.test."], sealer })({ nc: h.nc, log: createLogger({ level: "silent" }), dataDir: h.nats.dataDir, trust });
    const ssh = again.projections!().find((p) => p.def.name === "pki-ssh")!;
    expect(ssh.resumedFrom).toBeDefined();
    const krl = (await again.endpoints.find((e) => e.name === "ssh-krl")!.handle({}, { commandId: newId(), actor: "test", correlationId: "q", causationId: "q", log: createLogger({ level: "silent" }) })) as { krl: string; version: number; revokedSerials: string[]; revokedKeyIds: string[] };
    expect(krl.version).toBe(before.version);
    expect(krl.revokedSerials).toEqual([a.serial]);
    expect(krl.revokedKeyIds).toEqual(["someone"]);
    const krlFile = join(h.work, "after.krl");
    writeFileSync(krlFile, Buffer.from(krl.krl, "base64"));
    const certFile = join(h.work, "a-cert.pub");
    writeFileSync(certFile, a.certificate);
    expect(sshTool("ssh-keygen", ["-Q", "-f", krlFile, certFile]).out).toContain("REVOKED");
    // The CA key came back from the sealed bucket: the new instance signs with the same CA.
    const commandId = newId();
    const ctx = { commandId, actor: "test", correlationId: commandId, causationId: commandId, log: createLogger({ level: "silent" }) };
    const b = (await again.endpoints.find((e) => e.name === "ssh.sign-user")!.handle({ publicKey: key.pub, principals: ["x"] }, ctx)) as { certificate: string };
    const shownA = sshTool("ssh-keygen", ["-L", "-f", certFile]).out;
    const bFile = join(h.work, "b-cert.pub");
    writeFileSync(bFile, b.certificate);
    const ca = (s: string) => /Signing CA: (.*)/.exec(s)?.[1];
    expect(ca(sshTool("ssh-keygen", ["-L", "-f", bFile]).out)).toBe(ca(shownA));
  });
});
