import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as oc from "openid-client";
import { startIdentity, freePort, type IdentityHarness } from "./harness.js";
import { Agent, signIn } from "./agent.js";
import { startHost, type Host } from "../../services/host/host.js";
import { createLogger } from "../../services/host/logger.js";
import { createIdentityContext } from "../../identity/service.js";
import { kvAdapter, openOidcBucket } from "../../identity/oidc/kv-adapter.js";

/** Two realm replicas on one NATS: any replica serves any step, because grants, codes and keys live in KV. */
let h: IdentityHarness;
let b: Host;
const redirect = "http://127.0.0.1:9/cb";

beforeAll(async () => {
  h = await startIdentity();
  const log = createLogger({ level: "silent" });
  const ctxB = await createIdentityContext({ issuer: h.issuer, sealer: h.sealer })({ nc: await h.nats.connect(), log, dataDir: h.nats.dataDir, trust: h.trust });
  b = await startHost({ nc: ctxB.core.nc, contexts: [ctxB], httpPort: await freePort(), log });
  await h.call("principal.create", { id: "rita", kind: "person", displayName: "Rita" });
  await h.call("principal.setPassword", { id: "rita", password: "rita's long passphrase" });
  await h.call("client.register", { id: "spa", displayName: "SPA", public: true, redirectUris: [redirect], grantTypes: ["authorization_code", "refresh_token"], trusted: true });
});
afterAll(async () => {
  await b?.stop();
  await h?.stop();
});

describe("OIDC state shared through JetStream KV", () => {
  it("a code issued by replica A is redeemed at replica B, and B's refresh token rotates at A", async () => {
    const cfg = await oc.discovery(new URL(h.issuer), "spa", undefined, oc.None(), { execute: [oc.allowInsecureRequests] });
    const verifier = oc.randomPKCECodeVerifier();
    const url = oc.buildAuthorizationUrl(cfg, { redirect_uri: redirect, scope: "openid offline_access", prompt: "consent", code_challenge: await oc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256" });
    const end = await signIn(new Agent(), url.href, "rita", "rita's long passphrase", redirect);
    const code = new URL(end.url).searchParams.get("code")!;
    const token = async (base: string, body: Record<string, string>) => {
      const res = await fetch(`${base}/oidc/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ client_id: "spa", ...body }) });
      return { status: res.status, body: (await res.json()) as Record<string, string> };
    };
    const atB = await token(b.httpUrl!, { grant_type: "authorization_code", code, code_verifier: verifier, redirect_uri: redirect });
    expect(atB.status).toBe(200);
    expect(atB.body.refresh_token).toBeDefined();
    // The same code at A: already consumed (the consumption is in KV, not in B's memory).
    expect((await token(h.url, { grant_type: "authorization_code", code, code_verifier: verifier, redirect_uri: redirect })).body.error).toBe("invalid_grant");
    const again = await token(h.url, { grant_type: "refresh_token", refresh_token: atB.body.refresh_token! });
    expect(again.body.error).toBe("invalid_grant"); // the code replay revoked the grant
  });

  it("honours each entry's TTL on read (nats-server 2.9 has no per-message TTL)", async () => {
    const kv = await openOidcBucket(h.nc);
    const Adapter = kvAdapter(kv, () => undefined, h.sealer, h.nc);
    const a = new Adapter("Session");
    await a.upsert("short", { uid: "u-short", accountId: "rita" }, 1);
    await a.upsert("long", { uid: "u-long", accountId: "rita" }, 3600);
    expect(await a.find("short")).toMatchObject({ accountId: "rita" });
    expect(await a.findByUid("u-short")).toMatchObject({ accountId: "rita" });
    await new Promise((r) => setTimeout(r, 2100));
    expect(await a.find("short")).toBeUndefined();
    expect(await a.findByUid("u-short")).toBeUndefined();
    expect(await a.find("long")).toMatchObject({ accountId: "rita" });
  });
});
