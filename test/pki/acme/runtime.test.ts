import { join } from "node:path";
import { FlattenedSign } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/nats-core";
import { contextFactories } from "../../../services/cli/contexts.js";
import { createLogger } from "../../../services/host/logger.js";
import type { RealmContext } from "../../../services/host/context.js";
import { startHost, type Host } from "../../../services/host/host.js";
import { newId } from "../../../services/kernel/index.js";
import { Sealer } from "../../../services/kernel/seal.js";
import { initCeremony, signIntermediate } from "../../../pki/ceremony/ceremony.js";
import { startNats, type TestNats } from "../../support/nats.js";
import { testTrust } from "../../support/trust.js";
import { freePort } from "../../../services/nats/supervisor.js";
import { CEREMONY_PASSPHRASE, TEST_SCRYPT } from "../harness.js";
import { accountKey, AcmeClient } from "./client.js";

const ERR = "urn:ietf:params:acme:error:";

/**
 * `realm up`'s wiring (services/cli/contexts.ts): an ACME account bound by EAB to a principal orders under
 * the grants the identity context hosted beside the PKI gives that principal.
 */
describe("ACME in the realm's own wiring: EAB accounts order under identity's grants", () => {
  let nats: TestNats;
  let nc: NatsConnection;
  let host: Host;
  const contexts: RealmContext[] = [];
  const log = createLogger({ level: "silent" });
  const call = (ctx: string, name: string, input: object) => {
    const id = newId();
    return contexts.find((c) => c.name === ctx)!.endpoints.find((e) => e.name === name)!.handle(input as never, { commandId: id, actor: "test", correlationId: id, causationId: id, log } as never) as Promise<Record<string, unknown>>;
  };
  beforeAll(async () => {
    nats = await startNats();
    nc = await nats.connect();
    const trust = testTrust();
    for (const f of contextFactories({ natsUrl: nats.url, dnsPort: await freePort(), sealer: Sealer.generate() })) contexts.push(await f.factory({ nc, log, dataDir: join(nats.dataDir, f.name), trust }));
    host = await startHost({ nc, contexts, httpPort: await freePort(), httpHost: "127.0.0.1", log });
  }, 60_000);
  afterAll(async () => {
    await host?.stop();
    for (const c of [...contexts].reverse()) await c.stop?.();
    await nats?.stop();
  });

  it("a name inside the principal's zone-scoped binding is ordered; one outside is unauthorized", async () => {
    const dir = join(nats.dataDir, "ceremony");
    await initCeremony({ dir, passphrase: CEREMONY_PASSPHRASE, subject: { CN: "Wiring Root" }, scrypt: TEST_SCRYPT });
    const { csrPem } = await call("pki", "issuer.prepare", { issuer: "ops", commonName: "Wiring CA" });
    const signed = signIntermediate({ dir, passphrase: CEREMONY_PASSPHRASE, csrPem: csrPem as string, permittedDns: ["lab.example"] });
    await call("pki", "issuer.import", { issuer: "ops", certificate: signed.certPem, root: signed.rootPem });
    await call("dns", "zone.create", { zone: "lab.example", ns: ["ns1.lab.example"] });
    await call("pki", "acme.configure", { issuer: "ops", enabled: true, externalAccountRequired: true });
    await call("identity", "principal.create", { id: "svc-web", kind: "service", displayName: "Web" });
    await call("identity", "policy.bind", { id: "web-certs", role: "pki-operator", subject: { kind: "principal", id: "svc-web" }, scope: { kind: "zone", id: "web.lab.example" } });
    const k = (await call("pki", "acme-eab.create", { issuer: "ops", principal: "svc-web" })) as { keyId: string; hmacKey: string };

    const c = await new AcmeClient(`${host.httpUrl}/acme/ops/directory`, await accountKey()).init();
    const eab = await new FlattenedSign(new TextEncoder().encode(JSON.stringify(c.key.jwk))).setProtectedHeader({ alg: "HS256", kid: k.keyId, url: c.dir.newAccount! }).sign(Buffer.from(k.hmacKey, "base64url"));
    expect((await c.newAccount({ termsOfServiceAgreed: true, externalAccountBinding: eab })).status).toBe(201);
    const ok = await c.post(c.dir.newOrder!, { identifiers: [{ type: "dns", value: "a.web.lab.example" }] });
    expect(ok.status, ok.text).toBe(201);
    const refused = await c.post(c.dir.newOrder!, { identifiers: [{ type: "dns", value: "db.lab.example" }] });
    expect(refused.body.type).toBe(`${ERR}unauthorized`);
    expect(refused.body.detail).toMatch(/svc-web/);
  });
});
