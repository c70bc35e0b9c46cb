import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/nats-core";
import { startHost, type Host } from "../../services/host/host.js";
import { callRealm } from "../../services/host/client.js";
import { createLogger } from "../../services/host/logger.js";
import { Sealer } from "../../services/kernel/seal.js";
import { RealmError } from "../../services/kernel/errors.js";
import { createIdentityContext, type IdentityContext } from "../../identity/service.js";
import { identityAuthOf } from "../../identity/auth.js";
import { startNats, type TestNats } from "../support/nats.js";
import { testTrust } from "../support/trust.js";

let nats: TestNats;
let nc: NatsConnection;
let host: Host;
let ctx: IdentityContext;

beforeAll(async () => {
  nats = await startNats();
  nc = await nats.connect();
  const log = createLogger({ level: "silent" });
  ctx = await createIdentityContext({ issuer: "http://127.0.0.1/oidc", sealer: Sealer.generate() })({ nc, log, dataDir: nats.dataDir, trust: testTrust() });
  host = await startHost({ nc, contexts: [ctx], httpPort: 0, log, ...identityAuthOf(ctx) });
});
afterAll(async () => {
  await host?.stop();
  await nats?.stop();
});

describe("admin.bootstrap", () => {
  it("lets exactly one of ten racing first bootstraps win; the rest are FORBIDDEN and mint nothing", async () => {
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => callRealm<{ key: string }>(nc, "realm.identity.commands.admin.bootstrap", { principal: `admin${i}` })));
    const won = results.filter((r): r is PromiseFulfilledResult<{ key: string }> => r.status === "fulfilled");
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    expect(won).toHaveLength(1);
    for (const l of lost) expect(l.reason).toMatchObject({ code: "FORBIDDEN" });
    expect([...ctx.core.dir.apiKeys.values()].filter((k) => k.exists)).toHaveLength(1);
    // the winner's key drives the API
    const who = await callRealm<{ principals: { id: string }[] }>(nc, "realm.identity.queries.principals", {}, { authorization: `Bearer ${won[0]!.value.key}` });
    expect(who.principals).toHaveLength(1);
  });

  it("is not on the HTTP API, and a retried command id gets no second key", async () => {
    const res = await fetch(`${host.httpUrl}/api/identity/admin/bootstrap`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(res.status).toBe(404);
    const err = await callRealm(nc, "realm.identity.commands.admin.bootstrap", {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RealmError);
    expect((err as RealmError).code).toBe("FORBIDDEN");
  });
});
