import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as oc from "openid-client";
import { callRealm } from "../../services/host/client.js";
import { ADMIN_RESOURCE, REALM_CLI_CLIENT, REALM_CONSOLE_CLIENT } from "../../identity/realm-clients.js";
import { registerRealmClients } from "../support/realm-clients.js";
import { startIdentity, type IdentityHarness } from "./harness.js";
import { Agent, signIn, type Page } from "./agent.js";

/**
 * Admin tokens have an audience: the admin API takes an access token only when it was issued to one of the
 * realm's own clients for ADMIN_RESOURCE. An admin person's token from any other application, a
 * client-credentials token and a realm-cli token without that audience are all refused (401).
 */
let h: IdentityHarness;
const redirect = "http://127.0.0.1:9/cb";
const password = "ada's long admin passphrase";
let botSecret: string;
const opts = { execute: [oc.allowInsecureRequests] };
const discover = (id: string, secret?: string) => oc.discovery(new URL(h.issuer), id, undefined, secret ? oc.ClientSecretBasic(secret) : oc.None(), opts);
const api = (token: string) => fetch(`${h.url}/api/identity/principals`, { headers: { authorization: `Bearer ${token}` } });

beforeAll(async () => {
  h = await startIdentity();
  await registerRealmClients((input) => h.call("client.register", input), h.url);
  await h.call("principal.create", { id: "ada", kind: "person", displayName: "Ada" });
  await h.call("principal.setPassword", { id: "ada", password });
  await h.call("policy.bind", { id: "ada-admin", role: "realm-admin", subject: { kind: "principal", id: "ada" } });
  await h.call("client.register", { id: "spa", displayName: "Single page app", public: true, redirectUris: [redirect], grantTypes: ["authorization_code", "refresh_token"] });
  await h.call("principal.create", { id: "svc-bot", kind: "service", displayName: "Bot" });
  await h.call("policy.bind", { id: "bot-admin", role: "realm-admin", subject: { kind: "principal", id: "svc-bot" } });
  botSecret = (await h.call<{ clientSecret: string }>("client.register", { id: "bot", displayName: "Bot", grantTypes: ["client_credentials"], principal: "svc-bot" })).clientSecret;
});
afterAll(async () => {
  await h?.stop();
});

/** Code flow with PKCE for `client` as ada; the tokens. */
async function codeFlow(client: string, redirectUri: string, extra: Record<string, string> = {}) {
  const cfg = await discover(client);
  const verifier = oc.randomPKCECodeVerifier();
  const state = oc.randomState();
  const url = oc.buildAuthorizationUrl(cfg, { redirect_uri: redirectUri, scope: "openid profile offline_access", code_challenge: await oc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256", state, prompt: "consent", ...extra });
  const end = await signIn(new Agent(), url.href, "ada", password, redirectUri);
  expect(end.url.startsWith(redirectUri)).toBe(true);
  return { cfg, tokens: await oc.authorizationCodeGrant(cfg, new URL(end.url), { pkceCodeVerifier: verifier, expectedState: state }) };
}

/** The device flow as a person does it at the verification page: `typed` is what they type into the one box. */
async function approveDevice(verificationUri: string, typed: string): Promise<Page> {
  const agent = new Agent();
  let page = await agent.go(verificationUri);
  expect(page.html.match(/name="user_code"/g)).toHaveLength(1);
  page = await agent.submit(page, { user_code: typed }, undefined, undefined, (f) => f.includes("op.deviceInputForm"));
  page = await agent.submit(page, {}, undefined, undefined, (f) => f.includes("op.deviceConfirmForm"));
  page = await agent.submit(page, { username: "ada", password }, "/login");
  if (page.html.includes("/confirm")) page = await agent.submit(page, {}, "/confirm");
  expect(page.html).toContain("Device connected");
  return page;
}

async function expectNotForAdmin(token: string): Promise<void> {
  const r = await api(token);
  expect(r.status).toBe(401);
  const body = (await r.json()) as { error: { code: string; message: string } };
  expect(body.error.code).toBe("UNAUTHORIZED");
  expect(body.error.message).toContain("not issued for the realm's admin API");
  expect(body.error.message).not.toContain(token);
  // The same over NATS.
  await expect(callRealm(h.nc, "realm.identity.queries.principals", {}, { authorization: `Bearer ${token}` })).rejects.toMatchObject({ code: "UNAUTHORIZED" });
}

describe("the admin API takes only tokens issued for it to the realm's own clients", () => {
  it("an admin person's token from an ordinary SPA (code + PKCE) is 401, though the person holds realm-admin", async () => {
    const { tokens } = await codeFlow("spa", redirect);
    expect(tokens.access_token).toBeDefined();
    // It is a good token for what it was issued for: the userinfo endpoint.
    const info = await fetch(`${h.issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(info.status).toBe(200);
    await expectNotForAdmin(tokens.access_token);
    // And an ordinary client cannot ask for the admin resource.
    const cfg = await discover("spa");
    const url = oc.buildAuthorizationUrl(cfg, { redirect_uri: redirect, scope: "openid", resource: ADMIN_RESOURCE, code_challenge: await oc.calculatePKCECodeChallenge(oc.randomPKCECodeVerifier()), code_challenge_method: "S256" });
    const res = await fetch(url, { redirect: "manual" });
    expect(new URL(res.headers.get("location")!).searchParams.get("error")).toBe("invalid_target");
  });

  it("a client-credentials token is 401, though its service principal holds realm-admin", async () => {
    const cfg = await discover("bot", botSecret);
    const t = await oc.clientCredentialsGrant(cfg, {});
    await expectNotForAdmin(t.access_token);
    await expect(oc.clientCredentialsGrant(cfg, { resource: ADMIN_RESOURCE })).rejects.toMatchObject({ error: "invalid_target" });
  });

  it("realm-cli through the device flow with resource ADMIN_RESOURCE: 200; the refreshed token keeps the audience", async () => {
    const cfg = await discover(REALM_CLI_CLIENT);
    const da = await oc.initiateDeviceAuthorization(cfg, { scope: "openid profile offline_access", resource: ADMIN_RESOURCE });
    // A person types the code in lower case and without the dash.
    await approveDevice(da.verification_uri, da.user_code.toLowerCase().replace("-", ""));
    const t = await oc.pollDeviceAuthorizationGrant(cfg, { ...da, interval: 0 });
    expect(t.access_token.split(".")).toHaveLength(1); // opaque, looked up in the realm's KV store
    expect((await api(t.access_token)).status).toBe(200);
    const who = await callRealm<{ via: string; roles: string[] }>(h.nc, "realm.identity.queries.whoami", {}, { authorization: `Bearer ${t.access_token}` });
    expect(who).toMatchObject({ via: `token:${REALM_CLI_CLIENT}`, roles: ["realm-admin"] });
    expect(t.refresh_token).toBeDefined();
    const next = await oc.refreshTokenGrant(cfg, t.refresh_token!);
    expect(next.refresh_token).not.toBe(t.refresh_token);
    expect((await api(next.access_token)).status).toBe(200);
  });

  it("realm-cli without naming a resource gets the admin audience by default; another resource is refused", async () => {
    const cfg = await discover(REALM_CLI_CLIENT);
    const da = await oc.initiateDeviceAuthorization(cfg, { scope: "openid profile offline_access" });
    await approveDevice(da.verification_uri, ` ${da.user_code} `);
    const t = await oc.pollDeviceAuthorizationGrant(cfg, { ...da, interval: 0 });
    expect((await api(t.access_token)).status).toBe(200);
    await expect(oc.initiateDeviceAuthorization(cfg, { scope: "openid", resource: "https://elsewhere.example/api" })).rejects.toMatchObject({ error: "invalid_target" });
  });

  it("realm-console (code + PKCE) gets an admin token", async () => {
    const { tokens } = await codeFlow(REALM_CONSOLE_CLIENT, `${h.url}/console/callback`);
    expect((await api(tokens.access_token)).status).toBe(200);
  });

  it("a realm-cli access token without the admin audience (as one stored before the rule) is 401", async () => {
    const provider = h.ctx.provider()!;
    const client = await provider.Client.find(REALM_CLI_CLIENT);
    const grant = new provider.Grant({ accountId: "ada", clientId: REALM_CLI_CLIENT });
    grant.addOIDCScope("openid profile");
    const at = new provider.AccessToken({ accountId: "ada", client: client!, grantId: await grant.save(), gty: "device_code", scope: "openid profile" });
    const token = await at.save();
    await expectNotForAdmin(token);
  });
});
