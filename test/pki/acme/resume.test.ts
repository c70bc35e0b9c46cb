import { createServer as createTcpServer, type Server as TcpServer, type Socket } from "node:net";
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPkiContext, type PkiContext } from "../../../pki/service.js";
import { createLogger } from "../../../services/host/logger.js";
import { testTrust } from "../../support/trust.js";
import { accountKey, AcmeClient } from "./client.js";
import { loopbackResolve, startAcme, type AcmeHarness } from "./support.js";

/**
 * A validation cut off by its instance stopping leaves the challenge `processing` (the response recorded,
 * no outcome); the next PKI instance on the same streams validates it again at start.
 */
describe("ACME validation resumed by the next instance", () => {
  const trust = testTrust();
  let h: AcmeHarness;
  let next: PkiContext | undefined;
  let hang: TcpServer | undefined;
  let web: Server | undefined;
  const held: Socket[] = [];
  beforeAll(async () => {
    h = await startAcme({ trust });
  }, 60_000);
  afterAll(async () => {
    for (const s of held) s.destroy();
    hang?.close();
    web?.close();
    await next?.stop?.();
    await h?.stop();
  });

  it("a challenge left processing when the PKI stopped is validated by the instance that starts next", async () => {
    // A peer that accepts the validator's connection and never answers: the validation is under way.
    hang = createTcpServer((s) => held.push(s));
    await new Promise<void>((r) => hang!.listen(h.http01Port, "127.0.0.1", () => r()));
    const c = await new AcmeClient(h.directory, await accountKey()).init();
    await c.newAccount();
    const o = await c.post(c.dir.newOrder!, { identifiers: [{ type: "dns", value: "resume.example.test" }] });
    const authzUrl = (o.body.authorizations as string[])[0]!;
    const ch = ((await c.post(authzUrl, "")).body.challenges as { type: string; url: string; token: string }[]).find((x) => x.type === "http-01")!;
    expect((await c.post(ch.url, {})).body.status).toBe("processing");
    const until = Date.now() + 5000;
    while (held.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(held.length).toBeGreaterThan(0);
    // The instance stops mid-validation: it records no outcome.
    await h.pki.stop?.();
    for (const s of held) s.destroy();
    await new Promise<void>((r) => hang!.close(() => r()));
    hang = undefined;
    const orderId = o.headers.get("location")!.split("/").pop()!;
    // Now the client's responder answers; a new instance starts on the same streams.
    web = createServer((_req, res) => res.writeHead(200).end(`${ch.token}.${c.key.thumbprint}`));
    await new Promise<void>((r) => web!.listen(h.http01Port, "127.0.0.1", () => r()));
    next = await createPkiContext({ publicUrl: h.baseUrl, ownedZones: () => ["example.test."], sealer: h.sealer, acme: { resolve: loopbackResolve, timeoutMs: 2000, attempts: 2, retryDelayMs: 100 } })({ nc: h.nc, log: createLogger({ level: "silent" }), dataDir: h.nats.dataDir, trust });
    const status = () => next!.projection.state.acme.orders.get(orderId)?.authorizations?.[0]?.challenges.find((x) => x.type === "http-01")?.status;
    expect(["processing", "valid"]).toContain(status());
    const deadline = Date.now() + 10_000;
    while (status() !== "valid" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(status()).toBe("valid");
  }, 30_000);
});
