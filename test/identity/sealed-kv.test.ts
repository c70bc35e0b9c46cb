import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as oc from "openid-client";
import * as OTPAuth from "otpauth";
import { Kvm } from "@nats-io/kv";
import type { JWK } from "jose";
import { startIdentity, freePort, type IdentityHarness } from "./harness.js";
import { Agent, signIn } from "./agent.js";
import { ouLdif, startSlapd, type TestSlapd } from "../support/slapd.js";
import { filesUnder } from "../support/files.js";
import { startHost, type Host } from "../../services/host/host.js";
import { createLogger } from "../../services/host/logger.js";
import { Sealer } from "../../services/kernel/seal.js";
import { createIdentityContext } from "../../identity/service.js";
import { identityAuthOf } from "../../identity/auth.js";
import { CREDENTIALS_BUCKET, CredentialStore } from "../../identity/credentials.js";
import { KEYS_BUCKET, type KeyMaterial } from "../../identity/oidc/keys.js";
import { REALM_CONSOLE_CLIENT } from "../../identity/realm-clients.js";
import { registerRealmClients } from "../support/realm-clients.js";

/**
 * Secrets at rest: after a real OIDC flow, a TOTP enrollment and an LDAP directory registration, the
 * JetStream files of the nats-server hold none of the secrets in clear (keys, seeds, tokens, hashes,
 * bind passwords), while the same scan does find what is stored in clear (ids, KV subjects).
 */
const base = "dc=example,dc=org";
const LDIF = `${ouLdif(base)}dn: uid=lena,ou=people,${base}
objectClass: inetOrgPerson
uid: lena
cn: Lena Ldap
sn: Ldap

`;
const annPassword = "ann's sealed passphrase";
/** A principal id that appears in clear in the event stream (the scan's positive control). */
const marker = "sealscanmarker7q";

let h: IdentityHarness;
let ldap: TestSlapd;
let host2: Host | undefined;
let harnessHostStopped = false;
const log = createLogger({ level: "silent" });
/** What must not be found in the store, by name. */
const secrets = new Map<string, string>();

beforeAll(async () => {
  ldap = await startSlapd({ baseDn: base, ldif: LDIF });
  h = await startIdentity();
  await h.call("principal.create", { id: "ann", kind: "person", displayName: "Ann" });
  await h.call("principal.setPassword", { id: "ann", password: annPassword });
  await h.call("policy.bind", { id: "ann-admin", role: "realm-admin", subject: { kind: "principal", id: "ann" } });
  await registerRealmClients((input) => h.call("client.register", input), h.url);
});
afterAll(async () => {
  await host2?.stop();
  // The restart below stops the harness host (and its context); then only the server and its dir are left.
  if (h && !harnessHostStopped) await h.host.stop();
  await h?.nats.stop();
  await ldap?.stop();
});

// The admin API takes tokens of the realm's own clients only: realm-console (public, PKCE).
const discover = () => oc.discovery(new URL(h.issuer), REALM_CONSOLE_CLIENT, undefined, oc.None(), { execute: [oc.allowInsecureRequests] });
const api = (url: string, token: string) => fetch(`${url}/api/identity/principals`, { headers: { authorization: `Bearer ${token}` } });

describe("secrets in NATS KV are sealed at rest", () => {
  it("an access token authenticates the admin API, and still does after a restart of the context with the same Sealer", async () => {
    const cfg = await discover();
    const redirect = `${h.url}/console/callback`;
    const verifier = oc.randomPKCECodeVerifier();
    const state = oc.randomState();
    const url = oc.buildAuthorizationUrl(cfg, { redirect_uri: redirect, scope: "openid offline_access", prompt: "consent", state, code_challenge: await oc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256" });
    const end = await signIn(new Agent(), url.href, "ann", annPassword, redirect);
    expect(end.url.startsWith(redirect)).toBe(true);
    const tokens = await oc.authorizationCodeGrant(cfg, new URL(end.url), { pkceCodeVerifier: verifier, expectedState: state });
    secrets.set("access token", tokens.access_token);
    secrets.set("refresh token", tokens.refresh_token!);
    expect((await api(h.url, tokens.access_token)).status).toBe(200);

    const { otpauthUri } = await h.call<{ otpauthUri: string }>("principal.enrollTotp", { id: "ann" });
    const totp = OTPAuth.URI.parse(otpauthUri) as OTPAuth.TOTP;
    secrets.set("TOTP seed", totp.secret.base32);
    await h.call("principal.confirmTotp", { id: "ann", code: totp.generate() });
    await h.call("directory.register", { id: "corp", url: ldap.url, bindDn: ldap.adminDn, bindPassword: ldap.adminPassword, usersBase: `ou=people,${base}`, groupsBase: `ou=groups,${base}`, syncIntervalSeconds: 0 });
    secrets.set("LDAP bind password", ldap.adminPassword);
    await h.call("principal.create", { id: marker, kind: "service", displayName: "Scan marker" });

    // Restart: the same KV, the same Sealer, another host.
    await h.host.stop();
    harnessHostStopped = true;
    const ctx2 = await createIdentityContext({ issuer: h.issuer, sealer: h.sealer })({ nc: h.nc, log, dataDir: h.nats.dataDir, trust: h.trust });
    host2 = await startHost({ nc: h.nc, contexts: [ctx2], httpPort: await freePort(), log, ...identityAuthOf(ctx2) });
    expect((await api(host2.httpUrl!, tokens.access_token)).status).toBe(200);
    // The refresh token, the TOTP step and the bind password open too.
    const res = await fetch(`${host2.httpUrl}/oidc/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: tokens.refresh_token!, client_id: REALM_CONSOLE_CLIENT }),
    });
    expect(res.status).toBe(200);
    const refreshed = (await res.json()) as { access_token: string; refresh_token: string };
    secrets.set("second access token", refreshed.access_token);
    secrets.set("second refresh token", refreshed.refresh_token);
    expect((await api(host2.httpUrl!, refreshed.access_token)).status).toBe(200);
    // The next step's code passes: the seed opens, and the compare-and-set on the sealed last step works.
    expect(await ctx2.core.credentials.verifyTotp("ann", totp.generate({ timestamp: Date.now() + 30_000 }))).toBe(true);
    const { report } = await h.call<{ report: { created: number } }>("directory.sync", { id: "corp" });
    expect(report.created).toBe(1);
  });

  it("a context with a different Sealer cannot open the keys: a clear INTEGRITY error, and the running realm is unharmed", async () => {
    const other = Sealer.generate();
    await expect(createIdentityContext({ issuer: h.issuer, sealer: other })({ nc: h.nc, log, dataDir: h.nats.dataDir, trust: h.trust })).rejects.toMatchObject({ code: "INTEGRITY", message: expect.stringContaining(`${KEYS_BUCKET}/current`) });
    const creds = await CredentialStore.open(h.nc, 1, other);
    await expect(creds.verifyPassword("ann", annPassword)).rejects.toMatchObject({ code: "INTEGRITY", message: expect.stringContaining(CREDENTIALS_BUCKET) });
    expect((await api(host2!.httpUrl!, secrets.get("second access token")!)).status).toBe(200);
  });

  it("the JetStream files hold no key, seed, token, hash or bind password in clear; the same scan finds ids and KV subjects", async () => {
    const raw = await (await new Kvm(h.nc).open(KEYS_BUCKET)).get("current");
    expect(raw!.string().startsWith("s1.")).toBe(true);
    const material = JSON.parse(h.sealer.openString(raw!.string(), `${KEYS_BUCKET}/current`)) as KeyMaterial;
    material.jwks.keys.forEach((k: JWK, i) => {
      for (const m of ["d", "p", "q"] as const) {
        expect(k[m]).toBeDefined();
        secrets.set(`signing key ${i} ${m}`, k[m]!);
      }
    });
    material.cookieKeys.forEach((c, i) => secrets.set(`cookie key ${i}`, c));
    secrets.set("password hash prefix", "$argon2id$");
    expect(secrets.size).toBeGreaterThanOrEqual(11); // 4 tokens, seed, bind password, d/p/q, a cookie key, the hash prefix

    // A clean stop, so JetStream has written everything to its files.
    await host2!.stop();
    host2 = undefined;
    await h.nc.close();
    await h.nats.supervisor.stop();
    const files = filesUnder(join(h.nats.dataDir, "jetstream"));
    const bytes = files.map((f) => readFileSync(f));
    const found = (needle: string) => bytes.some((b) => b.includes(Buffer.from(needle, "utf8")));

    const controls = [marker, `$KV.${CREDENTIALS_BUCKET}.password.${Buffer.from("ann").toString("base64url")}`, `$KV.${KEYS_BUCKET}.current`, "s1."];
    for (const c of controls) expect(found(c), `positive control ${c}`).toBe(true);
    const leaked = [...secrets].filter(([, v]) => found(v)).map(([name]) => name);
    expect(leaked).toEqual([]);
  });
});
