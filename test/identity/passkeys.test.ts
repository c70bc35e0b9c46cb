import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash, sign } from "node:crypto";
import { createServer, type Server } from "node:http";
import * as oc from "openid-client";
import { chromium, type Browser, type BrowserContext, type CDPSession, type Page } from "playwright-core";
import { startIdentity, type IdentityHarness } from "./harness.js";

/**
 * Passkeys end to end: headless Chromium with a CDP virtual authenticator (CTAP2, internal transport,
 * resident keys, user verification) registers passkeys on /account/passkeys and signs in to an OIDC
 * application with one, as the first factor (usernameless) and as the second after the password. A revoked
 * passkey, an assertion made for another origin and a signature counter that went backwards are refused.
 * The realm runs on http://localhost (a secure context; the RP ID must be a domain name).
 */
let h: IdentityHarness;
let app: Server;
let appUrl: string;
let browser: Browser;
const password = "lin's passkey test passphrase";

/** A credential as CDP's WebAuthn domain gives and takes it (privateKey: PKCS#8, base64). */
interface VirtualCredential {
  credentialId: string;
  isResidentCredential: boolean;
  rpId: string;
  privateKey: string;
  userHandle: string;
  signCount: number;
}
const saved: VirtualCredential[] = [];

/** A fresh browser profile (no realm session) with a page that has one virtual authenticator. */
async function freshPage(): Promise<{ ctx: BrowserContext; page: Page; cdp: CDPSession; authenticatorId: string }> {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const cdp = await ctx.newCDPSession(page);
  await cdp.send("WebAuthn.enable", { enableUI: false });
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  return { ctx, page, cdp, authenticatorId };
}
/** The authenticator then holds exactly `creds` (one at a time: no account chooser in headless mode). */
async function holdOnly(cdp: CDPSession, authenticatorId: string, creds: VirtualCredential[]) {
  await cdp.send("WebAuthn.clearCredentials", { authenticatorId });
  for (const c of creds) await cdp.send("WebAuthn.addCredential", { authenticatorId, credential: c });
}
const credentials = async (cdp: CDPSession, authenticatorId: string) => (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials as unknown as VirtualCredential[];
const events = async (type: string) => (await h.ctx.core.store.load({ type: "passkeys", id: "lin" })).events.filter((e) => e.type === type);

beforeAll(async () => {
  h = await startIdentity({ hostName: "localhost" });
  await h.call("principal.create", { id: "lin", kind: "person", displayName: "Lin" });
  await h.call("principal.setPassword", { id: "lin", password });
  let cfg: oc.Configuration | undefined;
  const session: { verifier?: string; state?: string } = {};
  app = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url!, appUrl);
      cfg ??= await oc.discovery(new URL(h.issuer), "notes", undefined, oc.None(), { execute: [oc.allowInsecureRequests] });
      if (url.pathname === "/login") {
        session.verifier = oc.randomPKCECodeVerifier();
        session.state = oc.randomState();
        const to = oc.buildAuthorizationUrl(cfg, { redirect_uri: `${appUrl}/cb`, scope: "openid profile", code_challenge: await oc.calculatePKCECodeChallenge(session.verifier), code_challenge_method: "S256", state: session.state, prompt: "login" });
        return res.writeHead(302, { location: to.href }).end();
      }
      if (url.pathname === "/cb") {
        const t = await oc.authorizationCodeGrant(cfg, url, { pkceCodeVerifier: session.verifier!, expectedState: session.state! });
        const c = t.claims()!;
        return res.writeHead(200, { "content-type": "text/html" }).end(`<!DOCTYPE html><p id="who">${String(c.preferred_username)}</p><p id="amr">${((c.amr as string[] | undefined) ?? []).join(",")}</p>`);
      }
      res.writeHead(404).end();
    })().catch((err: unknown) => res.writeHead(500).end(String(err)));
  });
  await new Promise<void>((r) => app.listen(0, "127.0.0.1", r));
  const a = app.address();
  appUrl = `http://127.0.0.1:${typeof a === "object" && a ? a.port : 0}`;
  await h.call("client.register", { id: "notes", displayName: "Notes", public: true, redirectUris: [`${appUrl}/cb`], grantTypes: ["authorization_code"], trusted: true });
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"] });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await new Promise((r) => app?.close(r));
  await h?.stop();
});

/** Signs in to the app with the password alone (Lin has no passkey yet) and lands on /account/passkeys. */
async function passwordSignIn(page: Page) {
  await page.goto(`${appUrl}/login`);
  await page.getByLabel("User name").fill("lin");
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
}

describe("passkeys in headless Chromium with a virtual authenticator", () => {
  it("a signed-in person registers two named passkeys on the self-service page", async () => {
    const { ctx, page, cdp, authenticatorId } = await freshPage();
    // Without a realm session the page says to sign in.
    const anon = await page.goto(`${h.url}/account/passkeys`);
    expect(anon!.status()).toBe(401);
    await passwordSignIn(page);
    await page.waitForURL(`${appUrl}/cb?**`);
    expect(await page.locator("#who").textContent()).toBe("lin");
    await page.goto(`${h.url}/account/passkeys`);
    await expect(page.locator("#passkeys").textContent()).resolves.toContain("no passkeys");
    await page.getByLabel("Name of the new passkey").fill("laptop");
    await page.getByRole("button", { name: "Add a passkey" }).click();
    await page.locator(".passkey-name", { hasText: "laptop" }).waitFor();
    const [laptop] = await credentials(cdp, authenticatorId);
    // The second on a "second device": the first credential is taken off, or excludeCredentials would refuse it.
    await holdOnly(cdp, authenticatorId, []);
    await page.getByLabel("Name of the new passkey").fill("phone");
    await page.getByRole("button", { name: "Add a passkey" }).click();
    await page.locator(".passkey-name", { hasText: "phone" }).waitFor();
    const [phone] = await credentials(cdp, authenticatorId);
    saved.push(laptop!, phone!);
    expect(laptop!.isResidentCredential).toBe(true);
    expect(Buffer.from(laptop!.userHandle, "base64").toString()).toBe("lin");
    expect(await page.locator(".passkey-name").allTextContents()).toEqual(["laptop", "phone"]);

    // Two PasskeyRegistered events with public material only; the API lists them without the key.
    const registered = await events("PasskeyRegistered");
    expect(registered.map((e) => (e.data as { name: string }).name)).toEqual(["laptop", "phone"]);
    for (const e of registered) {
      const d = e.data as Record<string, unknown>;
      expect(Object.keys(d).sort()).toEqual(["aaguid", "backedUp", "credentialId", "name", "publicKey", "registeredAt", "signCount", "transports"]);
      expect(e.actor).toBe("lin");
    }
    const listed = await h.call<{ passkeys: { name: string; publicKey?: string; credentialId: string }[] }>("passkeys", { principal: "lin" });
    expect(listed.passkeys.map((k) => k.name)).toEqual(["laptop", "phone"]);
    expect(listed.passkeys[0]!.publicKey).toBeUndefined();

    // A registration answer sent twice (its challenge is used) is refused and records nothing.
    const again = await page.evaluate(async (origin) => (await fetch(`${origin}/account/passkeys`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "x", response: { id: "x", response: { clientDataJSON: btoa(JSON.stringify({ challenge: "AAAAAAAAAAAAAAAAAAAAAAAA" })).replace(/=/g, "") } } }) })).status, h.url);
    expect(again).toBe(400);
    // A POST from another origin is refused before anything happens.
    const cross = await fetch(`${h.url}/account/passkeys/options`, { method: "POST", headers: { origin: "http://evil.localhost", "content-type": "application/json" }, body: "{}" });
    expect(cross.status).toBe(403);
    expect((await events("PasskeyRegistered")).length).toBe(2);
    await ctx.close();
  }, 60_000);

  it("signs in with a passkey as the first factor (usernameless): the OIDC flow completes and the token names the person", async () => {
    const { ctx, page, cdp, authenticatorId } = await freshPage();
    await holdOnly(cdp, authenticatorId, [saved[0]!]);
    await page.goto(`${appUrl}/login`);
    await page.getByRole("button", { name: "Use a passkey" }).click();
    await page.waitForURL(`${appUrl}/cb?**`);
    expect(await page.locator("#who").textContent()).toBe("lin");
    expect(await page.locator("#amr").textContent()).toBe("hwk,user");
    saved[0] = (await credentials(cdp, authenticatorId))[0]!; // its counter moved
    const logins = (await h.ctx.core.store.load({ type: "principal", id: "lin" })).events.filter((e) => e.type === "LoginSucceeded");
    expect(logins.at(-1)!.data).toMatchObject({ method: "passkey" });
    await ctx.close();
  }, 60_000);

  it("asks a person with a passkey for it after the password (second factor)", async () => {
    const { ctx, page, cdp, authenticatorId } = await freshPage();
    await holdOnly(cdp, authenticatorId, [saved[1]!]);
    await passwordSignIn(page);
    await page.getByRole("heading", { name: "Confirm with your passkey" }).waitFor();
    expect(page.url()).not.toContain(appUrl);
    await page.getByRole("button", { name: "Use my passkey" }).click();
    await page.waitForURL(`${appUrl}/cb?**`);
    expect(await page.locator("#who").textContent()).toBe("lin");
    expect(await page.locator("#amr").textContent()).toBe("pwd,hwk,mfa");
    saved[1] = (await credentials(cdp, authenticatorId))[0]!;
    await ctx.close();
  }, 60_000);

  /** The login page's usernameless options and a form to post a crafted answer through (real cookies, CSRF). */
  async function craftedAnswer(page: Page, o: { origin: string; counter: number; credential: VirtualCredential }) {
    await page.goto(`${appUrl}/login`);
    const options = JSON.parse((await page.locator("#passkey-form").getAttribute("data-passkey-get"))!) as { challenge: string; rpId: string };
    const clientDataJSON = Buffer.from(JSON.stringify({ type: "webauthn.get", challenge: options.challenge, origin: o.origin, crossOrigin: false }));
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(o.counter);
    const authData = Buffer.concat([createHash("sha256").update(options.rpId).digest(), Buffer.from([0x05]), counter]);
    const signature = sign(null, Buffer.concat([authData, createHash("sha256").update(clientDataJSON).digest()]), { key: Buffer.from(o.credential.privateKey, "base64"), format: "der", type: "pkcs8" });
    const id = Buffer.from(o.credential.credentialId, "base64").toString("base64url");
    const response = {
      id,
      rawId: id,
      type: "public-key",
      clientExtensionResults: {},
      response: { clientDataJSON: clientDataJSON.toString("base64url"), authenticatorData: authData.toString("base64url"), signature: signature.toString("base64url"), userHandle: Buffer.from("lin").toString("base64url") },
    };
    // The page's own form, as its script would fill it (no DOM typings in this project: structural casts).
    await page.locator('#passkey-form input[name="response"]').evaluate((el, r) => void ((el as unknown as { value: string }).value = r), JSON.stringify(response));
    await page.locator("#passkey-form").evaluate((f) => (f as unknown as { submit(): void }).submit());
    await page.waitForLoadState();
  }

  it("refuses an assertion made for another origin, and a counter that went backwards; the same answer from the right origin passes", async () => {
    const { ctx, page } = await freshPage();
    // The laptop passkey (revoked in the next test, so its counter jumping to 1000 here costs nothing).
    const laptop = saved[0]!;
    await craftedAnswer(page, { origin: h.url.replace("localhost", "evil.localhost"), counter: 1000, credential: laptop });
    await expect(page.getByRole("alert").textContent()).resolves.toContain("made for another site");
    // The counter is above 0 after the sign-ins: 0 now is a regression (WebAuthn §7.2), refused.
    await craftedAnswer(page, { origin: h.url, counter: 0, credential: laptop });
    await expect(page.getByRole("alert").textContent()).resolves.toContain("counter went backwards");
    // Control: right origin, counter forward: signed in (so the refusals above were the origin and the counter).
    await craftedAnswer(page, { origin: h.url, counter: 1000, credential: laptop });
    await page.waitForURL(`${appUrl}/cb?**`);
    expect(await page.locator("#who").textContent()).toBe("lin");
    await ctx.close();
  }, 60_000);

  it("revokes a passkey on the self-service page; it is refused from then on, the other still works", async () => {
    const { ctx, page, cdp, authenticatorId } = await freshPage();
    await holdOnly(cdp, authenticatorId, [saved[1]!]);
    await page.goto(`${appUrl}/login`);
    await page.getByRole("button", { name: "Use a passkey" }).click();
    await page.waitForURL(`${appUrl}/cb?**`);
    await page.goto(`${h.url}/account/passkeys`);
    await page.getByRole("button", { name: "Revoke laptop" }).click();
    await page.waitForURL(`${h.url}/account/passkeys`);
    expect(await page.locator(".passkey-name").allTextContents()).toEqual(["phone"]);
    const revoked = await events("PasskeyRevoked");
    expect(revoked.map((e) => (e.data as { credentialId: string }).credentialId)).toEqual([Buffer.from(saved[0]!.credentialId, "base64").toString("base64url")]);

    // The laptop passkey is refused at sign-in, as first factor.
    await holdOnly(cdp, authenticatorId, [saved[0]!]);
    await page.goto(`${appUrl}/login`);
    await page.getByRole("button", { name: "Use a passkey" }).click();
    await expect(page.getByRole("alert").textContent()).resolves.toContain("was revoked");
    expect(page.url()).toContain("/interaction/");
    // Revoking it again is NOT_FOUND and records nothing.
    await expect(h.call("passkey.revoke", { principal: "lin", credentialId: revoked[0]!.data && (revoked[0]!.data as { credentialId: string }).credentialId })).rejects.toThrow(/no passkey/);
    expect((await events("PasskeyRevoked")).length).toBe(1);
    await ctx.close();
  }, 60_000);

  it("a person lists and revokes their own passkeys through the API (self-service role), nobody else's; with none left the password alone signs in", async () => {
    await h.call("principal.create", { id: "mo", kind: "person", displayName: "Mo" });
    await h.call("policy.bind", { id: "lin-self", role: "self-service", subject: { kind: "principal", id: "lin" } });
    const { key } = await h.call<{ key: string }>("apikey.issue", { owner: "lin", label: "own", roles: ["self-service"] });
    const api = (path: string, init: RequestInit = {}) => fetch(`${h.url}/api/identity/${path}`, { ...init, headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...(init.headers ?? {}) } });
    const mine = await api("passkeys?principal=lin");
    expect(mine.status).toBe(200);
    const list = ((await mine.json()) as { passkeys: { name: string; credentialId: string }[] }).passkeys;
    expect(list.map((k) => k.name)).toEqual(["phone"]);
    expect((await api("passkeys?principal=mo")).status).toBe(403);
    expect((await api("passkey/revoke", { method: "POST", body: JSON.stringify({ principal: "mo", credentialId: list[0]!.credentialId }) })).status).toBe(403);
    // Bad input: a clear typed error, nothing recorded.
    const bad = await api("passkey/revoke", { method: "POST", body: JSON.stringify({ principal: "lin", credentialId: "no-such-passkey" }) });
    expect(bad.status).toBe(404);
    expect((await events("PasskeyRevoked")).length).toBe(1);
    const ok = await api("passkey/revoke", { method: "POST", body: JSON.stringify({ principal: "lin", credentialId: list[0]!.credentialId, reason: "phone lost" }) });
    expect(ok.status).toBe(200);
    expect((await events("PasskeyRevoked")).map((e) => (e.data as { reason: string }).reason)).toEqual(["revoked by its owner", "phone lost"]);

    const { ctx, page } = await freshPage();
    await passwordSignIn(page);
    await page.waitForURL(`${appUrl}/cb?**`);
    expect(await page.locator("#amr").textContent()).toBe("pwd");
    await ctx.close();
  }, 60_000);
});
