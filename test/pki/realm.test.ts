import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { NatsConnection } from "@nats-io/nats-core";
import { contextFactories } from "../../services/cli/contexts.js";
import { createLogger } from "../../services/host/logger.js";
import type { RealmContext } from "../../services/host/context.js";
import { newId } from "../../services/kernel/index.js";
import { RealmError } from "../../services/kernel/errors.js";
import { Sealer } from "../../services/kernel/seal.js";
import type { PkiContext } from "../../pki/service.js";
import { initCeremony, signIntermediate } from "../../pki/ceremony/ceremony.js";
import { startNats, type TestNats } from "../support/nats.js";
import { testTrust } from "../support/trust.js";
import { freePort } from "../../services/nats/supervisor.js";
import { join } from "node:path";
import { CEREMONY_PASSPHRASE, TEST_SCRYPT } from "./harness.js";

/**
 * `realm up`'s own wiring of the dns and pki contexts: the PKI owns exactly the zones of the name domain,
 * which it learns from the DNS context's events (not from its in-process state).
 */
describe("the PKI in the realm: names come from the DNS context's zones", () => {
  let nats: TestNats;
  let nc: NatsConnection;
  const contexts: RealmContext[] = [];
  beforeAll(async () => {
    nats = await startNats();
    nc = await nats.connect();
    const log = createLogger({ level: "silent" });
    const trust = testTrust();
    for (const f of contextFactories({ natsUrl: nats.url, dnsPort: await freePort(), sealer: Sealer.generate() }).filter((f) => f.name === "dns" || f.name === "pki")) {
      contexts.push(await f.factory({ nc, log, dataDir: join(nats.dataDir, f.name), trust }));
    }
  }, 60_000);
  afterAll(async () => {
    for (const c of contexts) await c.stop?.();
    await nats?.stop();
  });

  const endpoint = (ctx: string, name: string) => contexts.find((c) => c.name === ctx)!.endpoints.find((e) => e.name === name)!;
  const call = (ctx: string, name: string, input: object) => {
    const id = newId();
    return endpoint(ctx, name).handle(input as never, { commandId: id, actor: "test", correlationId: id, causationId: id } as never) as Promise<Record<string, unknown>>;
  };

  it("refuses a name until its zone exists in the name domain, then issues for it", async () => {
    const pki = contexts.find((c) => c.name === "pki") as PkiContext;
    const dir = join(nats.dataDir, "ceremony");
    await initCeremony({ dir, passphrase: CEREMONY_PASSPHRASE, subject: { CN: "Wiring Root" }, scrypt: TEST_SCRYPT });
    const { csrPem } = await call("pki", "issuer.prepare", { issuer: "ops", commonName: "Wiring CA" });
    const signed = signIntermediate({ dir, passphrase: CEREMONY_PASSPHRASE, csrPem: csrPem as string, permittedDns: ["lab.example"] });
    await call("pki", "issuer.import", { issuer: "ops", certificate: signed.certPem, root: signed.rootPem });

    const err = await call("pki", "certificate.issue", { profile: "server", commonName: "web1.lab.example" }).catch((e: RealmError) => e);
    expect(err).toBeInstanceOf(RealmError);
    expect((err as RealmError).message).toContain("web1.lab.example");
    await call("dns", "zone.create", { zone: "lab.example", ns: ["ns1.lab.example"] });
    const ok = await call("pki", "certificate.issue", { profile: "server", commonName: "web1.lab.example" });
    expect(pki.ownedZones()).toEqual(["lab.example."]);
    expect(ok.sans).toMatchObject({ dns: ["web1.lab.example"] });
    expect(pki.projection.state.certificates.size).toBe(1);
    // The PKI follows the zone's events: once the zone is deleted the name is not the realm's any more.
    await call("dns", "zone.delete", { zone: "lab.example" });
    await vi.waitFor(() => expect(pki.ownedZones()).not.toContain("lab.example."));
    await expect(call("pki", "certificate.issue", { profile: "server", commonName: "web2.lab.example" })).rejects.toMatchObject({ code: "VALIDATION" });
  });
});
