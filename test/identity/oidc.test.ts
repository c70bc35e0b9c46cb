import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as oc from "openid-client";
import { decodeJwt } from "jose";
import * as OTPAuth from "otpauth";
import { startIdentity, type IdentityHarness } from "./harness.js";
import { Agent, signIn } from "./agent.js";

let h: IdentityHarness;
const redirect = "http://127.0.0.1:9/cb";
let webSecret: string;
let svcSecret: string;
const password = "ann's long passphrase";

beforeAll(async () => {
  h = await startIdentity();
  await h.call("principal.create", { id: "ann", kind: "person", displayName: "Ann", email: "ann@acme.test" });
  await h.call("principal.setPassword", { id: "ann", password });
  for (const g of ["devs", "ops"]) {
    await h.call("group.create", { id: g, displayName: g });
    await h.call("group.addMember", { id: g, principal: "ann" });
  }
  await h.call("role.define", { id: "viewer", description: "View", permissions: ["identity:principals"] });
  await h.call("policy.bind", { id: "devs-viewer", role: "viewer", subject: { kind: "group", id: "devs" } });
  await h.call("client.register", { id: "spa", displayName: "Single page app", public: true, redirectUris: [redirect], postLogoutRedirectUris: [redirect], grantTypes: ["authorization_code", "refresh_token"] });
  webSecret = (await h.call<{ clientSecret: string }>("client.register", { id: "web", displayName: "Web app", redirectUris: [redirect], grantTypes: ["authorization_code", "refresh_token"], trusted: true })).clientSecret;
  await h.call("principal.create", { id: "svc-bot", kind: "service", displayName: "Bot" });
  await h.call("policy.bind", { id: "bot-admin", role: "realm-admin", subject: { kind: "principal", id: "svc-bot" } });
  svcSecret = (await h.call<{ clientSecret: string }>("client.register", { id: "bot", displayName: "Bot", grantTypes: ["client_credentials"], principal: "svc-bot" })).clientSecret;
  await h.call("client.register", { id: "tv", displayName: "TV", public: true, grantTypes: ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"] });
});
afterAll(async () => {
  await h?.stop();
});

const opts = { execute: [oc.allowInsecureRequests] };
const discover = (id: string, secret?: string) => oc.discovery(new URL(h.issuer), id, undefined, secret ? oc.ClientSecretBasic(secret) : oc.None(), opts);

async function codeFlow(cfg: oc.Configuration, agent = new Agent(), scope = "openid profile email groups roles offline_access", redirectUri = redirect) {
  const verifier = oc.randomPKCECodeVerifier();
  const state = oc.randomState();
  const url = oc.buildAuthorizationUrl(cfg, { redirect_uri: redirectUri, scope, code_challenge: await oc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256", state, prompt: "consent" });
  const end = await signIn(agent, url.href, "ann", password, redirectUri);
  expect(end.url.startsWith(redirectUri)).toBe(true);
  return { end, verifier, state, tokens: await oc.authorizationCodeGrant(cfg, new URL(end.url), { pkceCodeVerifier: verifier, expectedState: state }) };
}

describe("OIDC with openid-client as relying party", () => {
  it("discovers the issuer with the realm's endpoints and JWKS", async () => {
    const cfg = await discover("spa");
    const md = cfg.serverMetadata();
    expect(md.issuer).toBe(h.issuer);
    expect(md.code_challenge_methods_supported).toContain("S256");
    expect(md.device_authorization_endpoint).toBeDefined();
    expect(md.end_session_endpoint).toBeDefined();
    const jwks = (await (await fetch(md.jwks_uri!)).json()) as { keys: { kid: string; d?: string }[] };
    expect(jwks.keys.length).toBeGreaterThan(0);
    expect(jwks.keys.every((k) => k.d === undefined)).toBe(true);
  });

  it("code flow with PKCE for a public client: ID token carries groups and roles; refresh rotates and a replayed refresh token is refused", async () => {
    const cfg = await discover("spa");
    const { tokens } = await codeFlow(cfg);
    const claims = tokens.claims()!;
    expect(claims.sub).toBe("ann");
    expect(claims.groups).toEqual(["devs", "ops"]);
    expect(claims.roles).toEqual(["viewer"]);
    const first = tokens.refresh_token!;
    expect(first).toBeDefined();
    const second = await oc.refreshTokenGrant(cfg, first);
    expect(second.refresh_token).toBeDefined();
    expect(second.refresh_token).not.toBe(first);
    await expect(oc.refreshTokenGrant(cfg, first)).rejects.toMatchObject({ error: "invalid_grant" });
    // Reuse of a rotated token revokes the whole grant: the newer token is dead too.
    await expect(oc.refreshTokenGrant(cfg, second.refresh_token!)).rejects.toMatchObject({ error: "invalid_grant" });
  });

  it("a trusted confidential client skips consent; its token is not for the admin API (401); a realm-console token is (403 for what its roles do not grant)", async () => {
    const cfg = await discover("web", webSecret);
    const { tokens } = await codeFlow(cfg);
    const web = await fetch(`${h.url}/api/identity/principals`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(web.status).toBe(401);
    const { tokens: own } = await codeFlow(await discover("realm-console"), new Agent(), "openid profile offline_access", `${h.url}/console/callback`);
    const r = await fetch(`${h.url}/api/identity/roles`, { headers: { authorization: `Bearer ${own.access_token}` } });
    expect(r.status).toBe(403);
    const ok = await fetch(`${h.url}/api/identity/principals`, { headers: { authorization: `Bearer ${own.access_token}` } });
    expect(ok.status).toBe(200);
    const bad = await fetch(`${h.url}/api/identity/principals`, { headers: { authorization: `Bearer ${own.access_token}x` } });
    expect(bad.status).toBe(401);
  });

  it("client credentials: a service gets a token, which the admin API does not take (401)", async () => {
    const cfg = await discover("bot", svcSecret);
    const t = await oc.clientCredentialsGrant(cfg, {});
    expect(t.access_token).toBeDefined();
    const r = await fetch(`${h.url}/api/identity/principals`, { headers: { authorization: `Bearer ${t.access_token}` } });
    expect(r.status).toBe(401);
    await expect(oc.clientCredentialsGrant(await discover("bot", "wrong-secret"), {})).rejects.toMatchObject({ status: 401, cause: [{ parameters: { error: "invalid_client" } }] });
  });

  it("device flow: the user enters the code in a browser session, the device gets tokens", async () => {
    const cfg = await discover("tv");
    const da = await oc.initiateDeviceAuthorization(cfg, { scope: "openid groups offline_access" });
    const agent = new Agent();
    let page = await agent.go(da.verification_uri);
    page = await agent.submit(page, { user_code: da.user_code }, undefined, undefined, (f) => f.includes("op.deviceInputForm"));
    expect(page.html).toContain(da.user_code);
    page = await agent.submit(page, {}, undefined, undefined, (f) => f.includes("op.deviceConfirmForm"));
    page = await agent.submit(page, { username: "ann", password }, "/login");
    if (page.html.includes("/confirm")) page = await agent.submit(page, {}, "/confirm");
    expect(page.html).toContain("Device connected");
    const t = await oc.pollDeviceAuthorizationGrant(cfg, { ...da, interval: 0 });
    expect(decodeJwt(t.id_token!).groups).toEqual(["devs", "ops"]);
  });

  it("rotates signing keys: new tokens carry the new kid, the JWKS keeps the old one", async () => {
    const before = await h.call<{ keys: { kid: string }[] }>("jwks", {});
    const r = await h.call<{ kids: string[] }>("oidc.rotateKeys", {});
    expect(r.kids[1]).toBe(before.keys[0]!.kid);
    const cfg = await discover("spa");
    const { tokens } = await codeFlow(cfg);
    const header = JSON.parse(Buffer.from(tokens.id_token!.split(".")[0]!, "base64url").toString()) as { kid: string };
    expect(header.kid).toBe(r.kids[0]);
  });
});

describe("TOTP second factor", () => {
  it("asks for the one-time code after the password and signs in with a valid one", async () => {
    await h.call("principal.create", { id: "tom", kind: "person", displayName: "Tom" });
    await h.call("principal.setPassword", { id: "tom", password: "tom's long passphrase" });
    const { otpauthUri } = await h.call<{ otpauthUri: string }>("principal.enrollTotp", { id: "tom" });
    const totp = OTPAuth.URI.parse(otpauthUri) as OTPAuth.TOTP;
    await expect(h.call("principal.confirmTotp", { id: "tom", code: totp.generate() === "000000" ? "111111" : "000000" })).rejects.toMatchObject({ code: "VALIDATION" });
    await h.call("principal.confirmTotp", { id: "tom", code: totp.generate() });
    for await (const m of h.ctx.core.store.read()) expect(new TextDecoder().decode(m.data)).not.toContain(totp.secret.base32);
    const cfg = await discover("web", webSecret);
    const url = oc.buildAuthorizationUrl(cfg, { redirect_uri: redirect, scope: "openid", code_challenge: await oc.calculatePKCECodeChallenge(oc.randomPKCECodeVerifier()), code_challenge_method: "S256" });
    const agent = new Agent();
    const login = await agent.go(url.href);
    const ask = await agent.submit(login, { username: "tom", password: "tom's long passphrase" }, "/login");
    expect(ask.status).toBe(401);
    expect(ask.html).toContain("one-time code");
    expect(ask.html).toContain('name="totp"');
    const wrong = await agent.submit(ask, { username: "tom", password: "tom's long passphrase", totp: "12345x" }, "/login");
    expect(wrong.status).toBe(401);
    // The confirmation used the current step; the next step's code (within the allowed drift) signs in.
    const next = totp.generate({ timestamp: Date.now() + 30_000 });
    const ok = await agent.submit(ask, { username: "tom", password: "tom's long passphrase", totp: next }, "/login", redirect);
    expect(ok.url.startsWith(redirect)).toBe(true);
    // The same code again is a replay.
    const agent2 = new Agent();
    const login2 = await agent2.go(url.href);
    const replay = await agent2.submit(login2, { username: "tom", password: "tom's long passphrase", totp: next }, "/login");
    expect(replay.status).toBe(401);
    expect(replay.html).toContain("wrong or has expired");
    const audit = await h.call<{ entries: { type: string; actor: string; correlationId: string }[] }>("audit", { aggregateType: "principal", aggregateId: "tom" });
    const success = audit.entries.find((e) => e.type === "LoginSucceeded")!;
    expect(success.actor).toBe("tom");
    expect(audit.entries.filter((e) => e.type === "LoginFailed").every((e) => e.actor === "anonymous")).toBe(true);
  });
});

describe("OIDC attacks and bad input", () => {
  it("refuses a wrong redirect_uri without redirecting to it", async () => {
    const cfg = await discover("spa");
    const url = oc.buildAuthorizationUrl(cfg, { redirect_uri: "http://127.0.0.1:9/evil", scope: "openid", code_challenge: await oc.calculatePKCECodeChallenge(oc.randomPKCECodeVerifier()), code_challenge_method: "S256" });
    const res = await fetch(url, { redirect: "manual" });
    expect(res.status).toBe(400);
    expect(res.headers.get("location")).toBeNull();
    expect(await res.text()).toContain("redirect_uri");
  });

  it("refuses a public client's authorization request without PKCE", async () => {
    const cfg = await discover("spa");
    const url = oc.buildAuthorizationUrl(cfg, { redirect_uri: redirect, scope: "openid" });
    const res = await fetch(url, { redirect: "manual" });
    const loc = new URL(res.headers.get("location")!);
    expect(loc.searchParams.get("error")).toBe("invalid_request");
    expect(loc.searchParams.get("error_description")).toMatch(/PKCE|code_challenge/i);
  });

  it("refuses a reused authorization code and revokes what it issued", async () => {
    const cfg = await discover("spa");
    const { end, verifier, state, tokens } = await codeFlow(cfg);
    await expect(oc.authorizationCodeGrant(cfg, new URL(end.url), { pkceCodeVerifier: verifier, expectedState: state })).rejects.toMatchObject({ error: "invalid_grant" });
    await expect(oc.refreshTokenGrant(cfg, tokens.refresh_token!)).rejects.toMatchObject({ error: "invalid_grant" });
  });

  it("refuses a login form without its CSRF token", async () => {
    const cfg = await discover("spa");
    const url = oc.buildAuthorizationUrl(cfg, { redirect_uri: redirect, scope: "openid", code_challenge: await oc.calculatePKCECodeChallenge(oc.randomPKCECodeVerifier()), code_challenge_method: "S256" });
    const agent = new Agent();
    const page = await agent.go(url.href);
    expect(page.html).toContain('name="csrf"');
    const action = /action="(\/interaction\/[^"]+\/login)"/.exec(page.html)![1]!;
    const res = await agent.go(new URL(action, h.url).href, { form: { username: "ann", password } });
    expect(res.status).toBe(403);
    expect(res.html).toContain("CSRF");
    const forged = await agent.go(new URL(action, h.url).href, { form: { username: "ann", password, csrf: "forged" } });
    expect(forged.status).toBe(403);
  });

  it("1,000 wrong passwords: clear errors, lockout after five, no hashing once locked, nothing leaked in logs", async () => {
    await h.call("principal.create", { id: "eve", kind: "person", displayName: "Eve" });
    const good = "eve's correct passphrase";
    await h.call("principal.setPassword", { id: "eve", password: good });
    const cfg = await discover("spa");
    const url = oc.buildAuthorizationUrl(cfg, { redirect_uri: redirect, scope: "openid", code_challenge: await oc.calculatePKCECodeChallenge(oc.randomPKCECodeVerifier()), code_challenge_method: "S256" });
    const agent = new Agent();
    const login = await agent.go(url.href);
    const statuses: number[] = [];
    let last = login;
    for (let i = 0; i < 1000; i++) {
      last = await agent.submit(login, { username: "eve", password: `guess-number-${i}` }, "/login");
      statuses.push(last.status);
    }
    expect(statuses.slice(0, 4)).toEqual([401, 401, 401, 401]);
    expect(statuses.slice(4).every((s) => s === 423)).toBe(true);
    expect(last.html).toContain("locked");
    expect(last.html).not.toContain("guess-number");
    // Even the right password is refused while locked.
    const right = await agent.submit(login, { username: "eve", password: good }, "/login");
    expect(right.status).toBe(423);
    const audit = await h.call<{ entries: { type: string }[] }>("audit", { aggregateType: "principal", aggregateId: "eve" });
    expect(audit.entries.filter((e) => e.type === "LoginFailed")).toHaveLength(5);
    expect(audit.entries.filter((e) => e.type === "PrincipalLocked")).toHaveLength(1);
    const logs = h.logs.join("");
    expect(logs).not.toContain("guess-number");
    expect(logs).not.toContain(good);
    // An admin unlocks; the right password works again.
    await h.call("principal.unlock", { id: "eve" });
    const after = await agent.submit(login, { username: "eve", password: good }, "/login", redirect);
    expect(after.url.startsWith(redirect) || after.html.includes("/confirm")).toBe(true);
  });

  it("wrong password and unknown user get the same message", async () => {
    const cfg = await discover("spa");
    const url = oc.buildAuthorizationUrl(cfg, { redirect_uri: redirect, scope: "openid", code_challenge: await oc.calculatePKCECodeChallenge(oc.randomPKCECodeVerifier()), code_challenge_method: "S256" });
    const agent = new Agent();
    const login = await agent.go(url.href);
    const a = await agent.submit(login, { username: "ann", password: "not her password" }, "/login");
    const b = await agent.submit(login, { username: "nobody", password: "not her password" }, "/login");
    expect(a.status).toBe(401);
    expect(b.status).toBe(401);
    expect(a.html).toContain("Wrong user name or password.");
    expect(b.html).toContain("Wrong user name or password.");
    await h.call("principal.unlock", { id: "ann" });
  });
});
