import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import { freePort } from "../../services/nats/supervisor.js";
import { runRealm } from "../support/cli.js";
import { digA, ok, realmProcesses } from "../support/realm-processes.js";
import { opensslAsync } from "../pki/openssl.js";
import { EXIT_CODES, EXIT_USAGE } from "../../services/cli/exit-codes.js";

/**
 * A hub realm and a site realm whose nats-server is a leaf node of the hub's (docs/ARCHITECTURE.md
 * "Sites"): the site answers from its mirrors while the hub is away, refuses commands then, and catches up.
 */
const { tmp, up: upRealm, stop } = realmProcesses();

// One issuer for both: a relying party sees one realm whichever instance answers.
const ISSUER = "http://127.0.0.1/oidc";

const up = (data: string, extra: string[]) => upRealm(data, extra, { REALM_OIDC_ISSUER: ISSUER });
const dig = digA;

/** Polls `probe` until it returns `want` (a site's mirrors follow the hub within milliseconds to seconds). */
async function eventually<T>(probe: () => T | Promise<T>, want: T, what: string, ms = 30_000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const got = await probe();
    if (got === want) return Date.now() - t0;
    if (Date.now() - t0 > ms) throw new Error(`${what}: still ${JSON.stringify(got)} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("a site realm on a leaf node of its hub", () => {
  it("answers DNS, OCSP, token introspection, API keys and NATS users from its copy while the hub is away, refuses commands then, and catches up", async () => {
    const hubData = tmp("realm-hub-");
    const siteData = tmp("realm-site-");
    const work = tmp("realm-site-work-");
    const ceremonyPass = join(work, "ceremony-passphrase");
    writeFileSync(ceremonyPass, "a long offline ceremony passphrase\n", { mode: 0o600 });
    const leafPort = await freePort();
    const hubArgs = ["--leaf-listen", `127.0.0.1:${leafPort}`];

    // --- the hub, with a zone, a certificate, an OIDC client and an admin key
    let hub = await up(hubData, hubArgs);
    const admin = (await ok(["identity", "bootstrap"], hub.env)).stdout.trim();
    const hubEnv = { ...hub.env, REALM_TOKEN: admin };
    await ok(["zone", "create", "lab.example", "--ns", "ns1.lab.example"], hubEnv);
    await ok(["host", "add", "web1.lab.example", "--ip", "192.0.2.80"], hubEnv);
    await ok(["ceremony", "init", "./root", "--cn", "Site Test Root", "--passphrase-file", ceremonyPass], hubEnv, work);
    await ok(["pki", "issuer", "prepare", "ops", "--cn", "Site Test Ops CA"], hubEnv, work);
    await ok(["ceremony", "sign-intermediate", "./root", "ops.csr", "--permit", "lab.example", "--passphrase-file", ceremonyPass], hubEnv, work);
    await ok(["pki", "issuer", "import", "ops", "--cert", "ops.crt", "--root", "root/root-ca.crt"], hubEnv, work);
    await ok(["cert", "issue", "--cn", "web1.lab.example"], hubEnv, work);
    const registered = JSON.parse((await ok(["identity", "client", "register", "bot", "--name", "Bot", "--grant", "client_credentials", "-o", "json"], hubEnv)).stdout) as { clientSecret: string };
    const basic = `Basic ${Buffer.from(`bot:${registered.clientSecret}`).toString("base64")}`;
    const form = { "content-type": "application/x-www-form-urlencoded", authorization: basic };
    const tokenAt = async (httpPort: number) => {
      const r = (await (await fetch(`http://127.0.0.1:${httpPort}/oidc/token`, { method: "POST", headers: form, body: "grant_type=client_credentials" })).json()) as { access_token?: string };
      if (!r.access_token) process.stdout.write(`token endpoint of :${httpPort} answered ${JSON.stringify(r)}\n`);
      return r.access_token;
    };
    const token = (await tokenAt(hub.ports.http))!;
    expect(token).toBeTruthy();
    await ok(["account", "create", "lab"], hubEnv);
    const aliceCreds = join(work, "alice.creds");
    await ok(["user", "create", "lab", "alice", "--out", aliceCreds], hubEnv);

    // --- the site: the hub's operator, trust and seal key (instance export/join); its own nats-server, a leaf of the hub's
    const linkCreds = join(work, "site-s1.creds");
    await ok(["site", "link-creds", "s1", "--data", hubData, "--out", linkCreds], {});
    const bundle = join(work, "hub.bundle");
    const BUNDLE = { REALM_BUNDLE_PASSPHRASE: "a long instance bundle passphrase" };
    await ok(["instance", "export", "--data", hubData, "--out", bundle], BUNDLE);
    await ok(["instance", "join", bundle, "--data", siteData], BUNDLE);
    const site = await up(siteData, ["--hub", `nats-leaf://127.0.0.1:${leafPort}`, "--hub-creds", linkCreds, "--site", "s1"]);
    expect(site.stderr()).toContain("streams and buckets here mirror the hub's ($JS.hub.API)");
    const siteEnv = { ...site.env, REALM_TOKEN: admin };

    const ocsp = async (httpPort: number) =>
      (await opensslAsync(["ocsp", "-issuer", join(work, "ops.crt"), "-cert", join(work, "web1.lab.example.crt"), "-url", `http://127.0.0.1:${httpPort}/pki/ocsp`, "-CAfile", join(work, "root", "root-ca.crt")])).out;
    const introspect = async (httpPort: number, t = token) =>
      ((await (await fetch(`http://127.0.0.1:${httpPort}/oidc/token/introspection`, { method: "POST", headers: form, body: `token=${encodeURIComponent(t)}` })).json()) as { active?: boolean }).active;
    const siteServes = async () => {
      expect(dig(site.ports.dns, "web1.lab.example")).toBe("192.0.2.80");
      const answer = await ocsp(site.ports.http);
      expect(answer).toContain("Response verify OK");
      expect(answer).toContain("web1.lab.example.crt: good");
      expect(await introspect(site.ports.http)).toBe(true);
      // NATS auth: a user of an account made at the hub connects to the site's own nats-server.
      const alice = await connect({ servers: site.env.REALM_NATS_URL, authenticator: credsAuthenticator(readFileSync(aliceCreds)), reconnect: false });
      await alice.flush();
      await alice.close();
      // The admin API key, checked against the site's copy of the credentials bucket.
      expect((await ok(["zone", "list", "-o", "json"], siteEnv)).stdout).toContain("lab.example.");
    };
    const caughtUp = await eventually(() => dig(site.ports.dns, "web1.lab.example"), "192.0.2.80", "the site's DNS");
    // The site's resolver learns the hub's accounts from the mirrored events (pushed within a second or so).
    await eventually(async () => connect({ servers: site.env.REALM_NATS_URL, authenticator: credsAuthenticator(readFileSync(aliceCreds)), reconnect: false }).then((c) => c.close().then(() => true), () => false), true, "alice on the site's nats-server");
    await siteServes();
    // A command made at the site is written to the hub: both answer it.
    await ok(["record", "add", "api.lab.example.", "A", "192.0.2.81"], siteEnv);
    expect(dig(hub.ports.dns, "api.lab.example")).toBe("192.0.2.81");
    await eventually(() => dig(site.ports.dns, "api.lab.example"), "192.0.2.81", "the site's DNS after its own command");
    // So is a bucket write made at the site: a token issued there is stored in the hub's OIDC bucket.
    const siteToken = await tokenAt(site.ports.http);
    expect(siteToken).toBeTruthy();
    expect(await introspect(hub.ports.http, siteToken)).toBe(true);
    // and the site's command above had its outcome recorded in the hub's journal (a bucket write, too)
    expect(site.stdout()).not.toContain("outcome not recorded");

    // --- the hub goes away: the site keeps answering from its copy and refuses commands
    await stop(hub);
    await siteServes();
    const refused = await runRealm(["record", "add", "late.lab.example.", "A", "192.0.2.82"], siteEnv);
    expect(refused.code, refused.stderr).toBe(EXIT_CODES.UNAVAILABLE);
    expect(refused.stderr).toContain("this site's hub ($JS.hub.API) did not take the event");
    expect(dig(site.ports.dns, "late.lab.example")).toBe("");

    // --- the hub is back (same leaf port): changes made there reach the site, and the site writes again
    hub = await up(hubData, hubArgs);
    const hubEnv2 = { ...hub.env, REALM_TOKEN: admin };
    await ok(["record", "add", "back.lab.example.", "A", "192.0.2.83"], hubEnv2);
    const resumed = await eventually(() => dig(site.ports.dns, "back.lab.example"), "192.0.2.83", "the site's DNS after the hub came back");
    await eventually(async () => (await runRealm(["record", "add", "late.lab.example.", "A", "192.0.2.82"], siteEnv)).code, 0, "a command at the site after the hub came back");
    expect(dig(hub.ports.dns, "late.lab.example")).toBe("192.0.2.82");
    // Both records verify on the hub, and the site's mirrors verify the same chains.
    expect((await runRealm(["audit", "verify"], hubEnv2)).code).toBe(0);
    expect((await runRealm(["audit", "verify"], siteEnv)).code).toBe(0);
    process.stdout.write(`site: first catch-up ${caughtUp} ms; after the hub's restart a hub change reached the site in ${resumed} ms\n`);
  }, 300_000);

  it("refuses site options that cannot work, before anything starts", async () => {
    const data = tmp("realm-site-bad-");
    const x = join(tmp("realm-site-creds-"), "link.creds");
    writeFileSync(x, "not checked before the options are\n", { mode: 0o600 });
    const bad = async (args: string[], text: string) => {
      const r = await runRealm(["up", "--data", data, "--http-port", "0", ...args]);
      expect(r.code, r.stderr).toBe(EXIT_CODES.VALIDATION);
      expect(r.stderr).toContain(text);
    };
    await bad(["--hub", "nats-leaf://127.0.0.1:7422"], "--hub needs --hub-creds");
    await bad(["--hub", "http://hub.example/", "--hub-creds", x], "--hub must be the hub's leaf-node URL");
    await bad(["--hub", "nats-leaf://127.0.0.1:7422", "--hub-creds", x, "--nats", "nats://127.0.0.1:4222"], "does not go with --nats");
    await bad(["--hub", "nats-leaf://127.0.0.1:7422", "--hub-creds", x, "--site", "hub"], "must differ from the hub's");
    await bad(["--hub", "nats-leaf://127.0.0.1:7422", "--hub-creds", join(data, "missing.creds")], "no such file");
    expect((await runRealm(["up", "--leaf-listen", "nowhere"])).code).toBe(EXIT_USAGE);
    const creds = await runRealm(["site", "link-creds", "s1", "--data", data, "--out", join(data, "s1.creds")]);
    expect(creds.code).toBe(EXIT_CODES.NOT_FOUND);
    expect(creds.stderr).toContain("holds no realm operator");
  });
});
