import { readFileSync } from "node:fs";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDnsContext, type DnsContext } from "../../../dns/service.js";
import { startHost, type Host } from "../../../services/host/host.js";
import { callRealm } from "../../../services/host/client.js";
import { createLogger } from "../../../services/host/logger.js";
import { Sealer } from "../../../services/kernel/seal.js";
import { ZONE } from "../../dns/harness.js";
import { testTrust } from "../../support/trust.js";
import { opensslAsync } from "../openssl.js";
import { startPki, type PkiHarness } from "../harness.js";
import { freePort } from "../../../services/nats/supervisor.js";
import { accountKey, AcmeClient } from "./client.js";
import { run } from "./support.js";
import { Resolver } from "node:dns/promises";
import { createHash } from "node:crypto";
import { startKnot, type Knot } from "../../dns/knot.js";

const ERR = "urn:ietf:params:acme:error:";

/**
 * dns-01 with the realm as the authority: the PKI and the DNS context on one nats-server; the PKI follows
 * REALM_DNS for its zones and the `_acme-challenge` TXT records (no static zone list); lego's rfc2136
 * provider writes the record to the realm's DNS server with a realm TSIG key.
 */
describe("dns-01 against the realm's own zones (lego rfc2136 with a realm TSIG key)", () => {
  let h: PkiHarness;
  let dns: DnsContext;
  let dnsHost: Host;
  let dnsPort: number;
  let tsigSecret = "";
  let knot: Knot | undefined;
  /** TXT lookups for names outside the realm's zones go to this DNS server (knot, started by a test). */
  const resolveTxt = async (name: string) => {
    const r = new Resolver({ timeout: 1000, tries: 1 });
    r.setServers([`127.0.0.1:${knot?.port ?? 9}`]);
    return (await r.resolveTxt(name)).map((parts) => parts.join(""));
  };
  const dnsCommand = <T extends object>(name: string, input: object) => callRealm<T>(h.nc, `realm.dns.commands.${name}`, input);

  beforeAll(async () => {
    const trust = testTrust();
    h = await startPki({ trust, ownedZones: undefined, permittedDns: ["example.test", "partner.test"], acme: { timeoutMs: 2000, attempts: 3, retryDelayMs: 200, resolveTxt } });
    await h.command("issuer.policy", { issuer: "ops", allowDomains: ["partner.test"], allowIps: ["127.0.0.0/8"] });
    dns = await createDnsContext({ dns: { port: 0 }, sealer: Sealer.generate() })({ nc: h.nc, log: createLogger({ level: "silent" }), dataDir: h.nats.dataDir, trust });
    dnsHost = await startHost({ nc: h.nc, contexts: [dns], log: createLogger({ level: "silent" }) });
    dnsPort = dns.server!.port;
    await dnsCommand("zone.import", { zone: "example.test", text: ZONE });
    tsigSecret = (await dnsCommand<{ secret: string }>("tsig.create", { name: "acme.example.test", zones: ["example.test"], principal: "user:lego" })).secret;
    await h.command("acme.configure", { issuer: "ops", enabled: true, http01Port: await freePort() });
  }, 60_000);
  afterAll(async () => {
    await knot?.stop();
    await dnsHost?.stop();
    await dns?.stop?.();
    await h?.stop();
  });

  it("lego obtains a certificate for a name and a wildcard; the realm read the TXT records from its DNS projection", async () => {
    const path = join(h.work, "lego-dns");
    const directory = `${h.baseUrl}/acme/ops/directory`;
    const r = await run(
      "lego",
      ["--server", directory, "--accept-tos", "--email", "ops@example.test", "--key-type", "ec256", "--path", path, "--domains", "dns01.example.test", "--domains", "*.dns01.example.test", "--dns", "rfc2136", "--dns.resolvers", `127.0.0.1:${dnsPort}`, "--dns.disable-cp", "run"],
      { RFC2136_NAMESERVER: `127.0.0.1:${dnsPort}`, RFC2136_TSIG_KEY: "acme.example.test.", RFC2136_TSIG_SECRET: tsigSecret, RFC2136_TSIG_ALGORITHM: "hmac-sha256.", RFC2136_PROPAGATION_TIMEOUT: "20", RFC2136_POLLING_INTERVAL: "1", RFC2136_TTL: "60", RFC2136_SEQUENCE_INTERVAL: "1" },
      40_000,
    );
    expect(r.code, r.out).toBe(0);
    const cert = join(path, "certificates", "dns01.example.test.crt");
    const v = await opensslAsync(["verify", "-CAfile", h.files.root, "-untrusted", join(path, "certificates", "dns01.example.test.issuer.crt"), cert]);
    expect(v.out).toMatch(/: OK/);
    expect(new X509Certificate(readFileSync(cert)).subjectAltName).toBe("DNS:dns01.example.test, DNS:*.dns01.example.test");
    const o = [...h.pki.projection.state.acme.orders.values()].find((x) => x.identifiers?.[0]?.value === "dns01.example.test")!;
    expect(o.certificate).toBeTruthy();
    expect(o.authorizations!.map((a) => a.challenges.find((c) => c.status === "valid")?.type)).toEqual(["dns-01", "dns-01"]);
    // lego removed its records after validation: the realm's zone holds no challenge TXT any more.
    const records = await callRealm<{ records: { name: string; type: string }[] }>(h.nc, "realm.dns.queries.records", { zone: "example.test" });
    expect(records.records.filter((x) => x.name.startsWith("_acme-challenge"))).toEqual([]);
  }, 60_000);

  it("without the TXT record, dns-01 fails with incorrectResponse after its bounded attempts", async () => {
    const c = await new AcmeClient(`${h.baseUrl}/acme/ops/directory`, await accountKey()).init();
    await c.newAccount();
    const o = await c.post(c.dir.newOrder!, { identifiers: [{ type: "dns", value: "missing.example.test" }] });
    const authzUrl = (o.body.authorizations as string[])[0]!;
    const ch = ((await c.post(authzUrl, "")).body.challenges as { type: string; url: string }[]).find((x) => x.type === "dns-01")!;
    await c.post(ch.url, {});
    const az = await c.poll(authzUrl, (b) => b.status !== "pending");
    expect(az.status).toBe("invalid");
    expect((az.challenges as { type: string; error?: { type: string; detail: string } }[]).find((x) => x.type === "dns-01")!.error).toMatchObject({ type: `${ERR}incorrectResponse`, detail: expect.stringMatching(/realm's zone/) });
  });

  it("a name the realm only allows (not one of its zones) is checked through DNS: a TXT record served by knot", async () => {
    const c = await new AcmeClient(`${h.baseUrl}/acme/ops/directory`, await accountKey()).init();
    await c.newAccount();
    const o = await c.post(c.dir.newOrder!, { identifiers: [{ type: "dns", value: "www.partner.test" }] });
    expect(o.status, o.text).toBe(201);
    const authzUrl = (o.body.authorizations as string[])[0]!;
    const ch = ((await c.post(authzUrl, "")).body.challenges as { type: string; url: string; token: string }[]).find((x) => x.type === "dns-01")!;
    const digest = createHash("sha256").update(`${ch.token}.${c.key.thumbprint}`).digest("base64url");
    knot = await startKnot("partner.test", `$ORIGIN partner.test.\n$TTL 60\n@ IN SOA ns1 hostmaster 1 7200 900 1209600 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\n_acme-challenge.www IN TXT "${digest}"\n`);
    await c.post(ch.url, {});
    const az = await c.poll(authzUrl, (b) => b.status !== "pending");
    expect(az.status, JSON.stringify(az)).toBe("valid");
  }, 30_000);

  it("a name outside the realm's zones (followed from REALM_DNS) is rejectedIdentifier", async () => {
    const c = await new AcmeClient(`${h.baseUrl}/acme/ops/directory`, await accountKey()).init();
    await c.newAccount();
    const o = await c.post(c.dir.newOrder!, { identifiers: [{ type: "dns", value: "*.elsewhere.test" }] });
    expect(o.body.type).toBe(`${ERR}rejectedIdentifier`);
  });
});
