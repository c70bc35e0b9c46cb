import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as oc from "openid-client";
import { chromium, type BrowserContext } from "playwright-core";
import { startIdentity, type IdentityHarness } from "./harness.js";

/**
 * A real browser signs in to an app registered as an OIDC client. The app is a small relying party
 * (openid-client, authorization code + PKCE) that shows the groups of the ID token it got.
 */
let h: IdentityHarness;
let app: Server;
let appUrl: string;
let browser: BrowserContext;
let profile: string;

beforeAll(async () => {
  h = await startIdentity();
  await h.call("principal.create", { id: "maya", kind: "person", displayName: "Maya" });
  await h.call("principal.setPassword", { id: "maya", password: "maya's browser passphrase" });
  for (const g of ["editors", "readers"]) {
    await h.call("group.create", { id: g, displayName: g });
    await h.call("group.addMember", { id: g, principal: "maya" });
  }
  const session: { verifier?: string; state?: string; idToken?: string; groups?: string[] } = {};
  let cfg: oc.Configuration | undefined;
  app = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url!, appUrl);
      const html = (body: string) => res.writeHead(200, { "content-type": "text/html" }).end(`<!DOCTYPE html><html><body>${body}</body></html>`);
      cfg ??= await oc.discovery(new URL(h.issuer), "notes", undefined, oc.None(), { execute: [oc.allowInsecureRequests] });
      if (url.pathname === "/login") {
        session.verifier = oc.randomPKCECodeVerifier();
        session.state = oc.randomState();
        const to = oc.buildAuthorizationUrl(cfg, { redirect_uri: `${appUrl}/cb`, scope: "openid profile groups", code_challenge: await oc.calculatePKCECodeChallenge(session.verifier), code_challenge_method: "S256", state: session.state });
        return res.writeHead(302, { location: to.href }).end();
      }
      if (url.pathname === "/cb") {
        const t = await oc.authorizationCodeGrant(cfg, url, { pkceCodeVerifier: session.verifier!, expectedState: session.state! });
        session.idToken = t.id_token!;
        session.groups = t.claims()!.groups as string[];
        return res.writeHead(302, { location: "/" }).end();
      }
      if (url.pathname === "/logout") {
        const to = oc.buildEndSessionUrl(cfg, { id_token_hint: session.idToken!, post_logout_redirect_uri: `${appUrl}/bye` });
        session.idToken = undefined;
        session.groups = undefined;
        return res.writeHead(302, { location: to.href }).end();
      }
      if (url.pathname === "/bye") return html(`<p id="bye">Signed out of the app</p>`);
      return html(session.groups ? `<p id="groups">${session.groups.join(",")}</p><a id="logout" href="/logout">Sign out</a>` : `<a href="/login">Sign in</a>`);
    })().catch((err: unknown) => res.writeHead(500).end(String(err)));
  });
  await new Promise<void>((r) => app.listen(0, "127.0.0.1", r));
  const a = app.address();
  appUrl = `http://127.0.0.1:${typeof a === "object" && a ? a.port : 0}`;
  await h.call("client.register", { id: "notes", displayName: "Notes", public: true, redirectUris: [`${appUrl}/cb`], postLogoutRedirectUris: [`${appUrl}/bye`], grantTypes: ["authorization_code"] });
  profile = mkdtempSync(join(tmpdir(), "realm-chromium-"));
  // A fresh profile dir per run (playwright passes it as --user-data-dir).
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});
afterAll(async () => {
  await browser?.close();
  await new Promise((r) => app?.close(r));
  await h?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

describe("headless Chromium signs in through the realm", () => {
  it("logs in with PKCE, the app's ID token has the user's groups, logout ends the session", async () => {
    const page = await browser.newPage();
    await page.goto(`${appUrl}/login`);
    await page.getByLabel("User name").fill("maya");
    await page.getByLabel("Password").fill("wrong password!!");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByRole("alert").textContent()).resolves.toContain("Wrong user name or password");
    await page.getByLabel("Password").fill("maya's browser passphrase");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("button", { name: "Allow" }).click();
    await page.waitForURL(`${appUrl}/`);
    expect(await page.locator("#groups").textContent()).toBe("editors,readers");

    await page.click("#logout");
    await page.getByRole("button", { name: "Yes, sign me out" }).click();
    await page.waitForURL(`${appUrl}/bye`);
    // The realm session is gone: signing in again asks for the password.
    await page.goto(`${appUrl}/login`);
    await expect(page.getByLabel("Password").isVisible()).resolves.toBe(true);
    await page.close();
  });
});
