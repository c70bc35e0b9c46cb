import { createPrivateKey, X509Certificate } from "node:crypto";
import { createServer as createHttpsServer, get as httpsGet, type Server } from "node:https";
import { connect as tlsConnect, createServer, type TLSSocket } from "node:tls";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { filesUnder } from "../support/files.js";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect as natsConnect } from "@nats-io/transport-node";
import { createLogger } from "../../services/host/logger.js";
import { NatsSupervisor } from "../../services/nats/supervisor.js";
import { Files, initCeremony, revokeIntermediate } from "../../pki/ceremony/ceremony.js";
import { RealmError } from "../../services/kernel/errors.js";
import { openKey, type SealedKey } from "../../pki/ceremony/bundle.js";
import { CEREMONY_PASSPHRASE, startPki, TEST_SCRYPT, type PkiHarness } from "./harness.js";
import { openssl } from "./openssl.js";

interface Issued {
  serial: string;
  certPem: string;
  privateKeyPem?: string;
}

describe("realm certificates in real TLS: node https/tls, mutual TLS with revocation, nats-server", () => {
  let h: PkiHarness;
  const logLines: string[] = [];
  let server: Issued;
  let client: Issued;
  let clockOffset = 0;
  beforeAll(async () => {
    const sink = new Writable({ write: (chunk, _e, cb) => (logLines.push(String(chunk)), cb()) });
    // The ceremony ran a month ago and the realm's clock can be turned back, to make an expired certificate.
    h = await startPki({ log: createLogger({ level: "debug", destination: sink }), ceremonyAt: new Date(Date.now() - 30 * 86_400_000), clock: () => new Date(Date.now() + clockOffset) });
    server = await h.command<Issued>("certificate.issue", { profile: "server", commonName: "tls.example.test", ip: ["127.0.0.1"] });
    client = await h.command<Issued>("certificate.issue", { profile: "client", commonName: "alice.example.test", principal: "alice" });
  }, 60_000);
  afterAll(async () => h?.stop());

  /** A TLS server with the realm's server certificate (and the intermediate after it); answers "hello <peer CN>". */
  async function tlsServer(opts: { requestCert?: boolean; crl?: string[] } = {}) {
    const srv = createServer(
      { key: server.privateKeyPem, cert: server.certPem + h.intermediatePem, ca: [h.rootPem], requestCert: opts.requestCert ?? false, rejectUnauthorized: false, ...(opts.crl ? { crl: opts.crl } : {}) },
      (s) => {
        // The server decides itself (rather than rejectUnauthorized) so the test can read why it refused.
        if (opts.requestCert && !s.authorized) return void s.end(`refused ${String(s.authorizationError)}`);
        const peer = s.getPeerCertificate();
        s.end(`hello ${peer && "subject" in peer && peer.subject ? peer.subject.CN : "anonymous"}`);
      },
    );
    const refusals: string[] = [];
    srv.on("tlsClientError", (err: Error) => refusals.push(err.message));
    srv.listen(0, "127.0.0.1");
    await once(srv, "listening");
    const port = (srv.address() as { port: number }).port;
    return { port, refusals, close: () => new Promise<void>((r) => srv.close(() => r())) };
  }

  /** Connects trusting the realm root only; resolves with what the server said, rejects with the TLS error. */
  function talk(port: number, o: { servername?: string; cert?: string; key?: string } = {}): Promise<string> {
    return new Promise((resolve, reject) => {
      const s: TLSSocket = tlsConnect({ host: "127.0.0.1", port, ca: [h.rootPem], servername: o.servername ?? "tls.example.test", ...(o.cert ? { cert: o.cert, key: o.key } : {}) });
      let data = "";
      s.on("data", (d: Buffer) => (data += d.toString()));
      s.on("end", () => resolve(data));
      s.on("error", reject);
    });
  }

  it("https: a client that trusts only the root accepts the realm server certificate; a wrong name or an expired certificate fails", async () => {
    const serve = (cert: Issued) =>
      new Promise<Server>((resolve) => {
        const srv = createHttpsServer({ key: cert.privateKeyPem, cert: cert.certPem + h.intermediatePem }, (_req, res) => res.end("hello over https"));
        srv.listen(0, "127.0.0.1", () => resolve(srv));
      });
    const get = (srv: Server, servername = "tls.example.test") =>
      new Promise<string>((resolve, reject) => {
        const req = httpsGet({ host: "127.0.0.1", port: (srv.address() as { port: number }).port, path: "/", ca: [h.rootPem], servername, agent: false }, (res) => {
          let body = "";
          res.on("data", (d: Buffer) => (body += d.toString()));
          res.on("end", () => resolve(body));
        });
        req.on("error", reject);
      });
    const srv = await serve(server);
    try {
      expect(await get(srv)).toBe("hello over https");
      await expect(get(srv, "other.example.test")).rejects.toMatchObject({ code: "ERR_TLS_CERT_ALTNAME_INVALID" });
    } finally {
      srv.close();
    }
    // Issued twenty days ago for one day.
    clockOffset = -20 * 86_400_000;
    const old = await h.command<Issued>("certificate.issue", { profile: "server", commonName: "tls.example.test", days: 1 });
    clockOffset = 0;
    expect(new Date(new X509Certificate(old.certPem).validTo).getTime()).toBeLessThan(Date.now());
    const stale = await serve(old);
    try {
      await expect(get(stale)).rejects.toMatchObject({ code: "CERT_HAS_EXPIRED" });
    } finally {
      stale.close();
    }
    const listed = await h.query<{ certificates: { serial: string }[] }>("certificates", { status: "expired" });
    expect(listed.certificates.map((c) => c.serial)).toEqual([old.serial]);
  });

  it("mutual TLS: the realm client certificate is accepted; after revocation the CRLs the realm publishes make the server refuse it", async () => {
    const chain = client.certPem + h.intermediatePem;
    const plain = await tlsServer({ requestCert: true });
    try {
      expect(await talk(plain.port, { cert: chain, key: client.privateKeyPem! })).toBe("hello alice.example.test");
      expect(await talk(plain.port)).toMatch(/^refused /);
    } finally {
      await plain.close();
    }
    // The root CRL comes from the offline ceremony; node checks every level once a CRL is given (CRL_CHECK_ALL).
    const rootCrl = readFileSync(join(h.ceremonyDir, Files.rootCrl));
    await h.command("issuer.root-crl", { issuer: "ops", crl: rootCrl.toString("base64") });
    await h.command("certificate.revoke", { serial: client.serial, reason: "affiliationChanged" });
    const pem = async (path: string) => openssl(["crl", "-inform", "DER"], Buffer.from(await (await fetch(`${h.baseUrl}${path}`)).arrayBuffer())).out;
    const crl = [await pem("/pki/crl/ops.crl"), await pem("/pki/crl/root.crl")];
    expect(crl.every((c) => c.startsWith("-----BEGIN X509 CRL-----"))).toBe(true);
    const checked = await tlsServer({ requestCert: true, crl });
    try {
      expect(await talk(checked.port, { cert: chain, key: client.privateKeyPem! })).toBe("refused CERT_REVOKED");
      // A fresh client certificate still gets through the same CRL-checking server.
      const bob = await h.command<Issued>("certificate.issue", { profile: "client", commonName: "bob.example.test" });
      const fresh = [await pem("/pki/crl/ops.crl"), await pem("/pki/crl/root.crl")];
      const again = await tlsServer({ requestCert: true, crl: fresh });
      try {
        expect(await talk(again.port, { cert: bob.certPem + h.intermediatePem, key: bob.privateKeyPem! })).toBe("hello bob.example.test");
      } finally {
        await again.close();
      }
    } finally {
      await checked.close();
    }
  });

  it("nats-server serves TLS with a realm certificate and verifies realm client certificates", async () => {
    const svc = await h.command<Issued>("certificate.issue", { profile: "service", commonName: "svc.example.test" });
    const nats = new NatsSupervisor({
      dataDir: join(h.work, "nats-tls-data"),
      host: "127.0.0.1",
      port: 0,
      jetstream: false,
      tls: { certFile: h.file("nats-cert.pem", server.certPem + h.intermediatePem), keyFile: h.file("nats-key.pem", server.privateKeyPem!), caFile: h.files.chain, verify: true },
    });
    await nats.start();
    try {
      // nats.js upgrades an existing socket, so without a servername node checks the name "localhost":
      // name the server as its certificate does.
      const tls = { ca: h.rootPem, servername: "tls.example.test" };
      const nc = await natsConnect({ servers: nats.url, tls: { ...tls, cert: svc.certPem, key: svc.privateKeyPem! } });
      const sub = nc.subscribe("hello", { max: 1 });
      nc.publish("hello", "realm");
      for await (const m of sub) expect(m.string()).toBe("realm");
      expect(nc.info?.tls_required).toBe(true);
      expect(nc.info?.tls_verify).toBe(true);
      await nc.close();
      await expect(natsConnect({ servers: nats.url, tls, reconnect: false, timeout: 3000 })).rejects.toThrow();
    } finally {
      await nats.stop();
    }
  });

  it("a revoked intermediate shows on the root CRL the realm serves", async () => {
    const inter = openssl(["x509", "-noout", "-serial", "-in", h.files.intermediate]).out.trim().split("=")[1]!.toLowerCase();
    const r = revokeIntermediate({ dir: h.ceremonyDir, passphrase: CEREMONY_PASSPHRASE, serial: inter, reason: "superseded" });
    await h.command("issuer.root-crl", { issuer: "ops", crl: Buffer.from(r.crlDer).toString("base64") });
    const der = Buffer.from(await (await fetch(`${h.baseUrl}/pki/crl/root.crl`)).arrayBuffer());
    const text = openssl(["crl", "-inform", "DER", "-noout", "-text", "-CAfile", h.files.root], der).out;
    expect(text).toContain("verify OK");
    expect(text.toLowerCase().replace(/:/g, "")).toContain(inter.replace(/^0+/, ""));
    // A CRL another root signed is refused, and nothing is recorded.
    const other = join(h.work, "other-ceremony");
    await initCeremony({ dir: other, passphrase: CEREMONY_PASSPHRASE, subject: { CN: "Someone Else Root" }, scrypt: TEST_SCRYPT });
    const before = await h.pki.store.lastSequence();
    const err = await h.command("issuer.root-crl", { issuer: "ops", crl: readFileSync(join(other, Files.rootCrl)).toString("base64") }).catch((e: RealmError) => e);
    expect(err).toBeInstanceOf(RealmError);
    expect((err as RealmError).code).toBe("VALIDATION");
    expect(await h.pki.store.lastSequence()).toBe(before);
  });

  it("no private key reaches the event stream, the logs or any file; the intermediate key is only in its bucket, sealed", async () => {
    const root = openKey(JSON.parse(readFileSync(join(h.ceremonyDir, Files.rootKey), "utf8")) as SealedKey, CEREMONY_PASSPHRASE);
    const rootDer = root.export({ format: "der", type: "pkcs8" });
    const leafKeys = [server, client].map((c) => c.privateKeyPem!);
    const needles = [rootDer, Buffer.from(rootDer.toString("base64")), ...leafKeys.flatMap((k) => [Buffer.from(k.split("\n")[1]!), createPrivateKey(k).export({ format: "der", type: "pkcs8" })])];
    const files = filesUnder(h.nats.dataDir);
    expect(files.some((f) => f.includes("jetstream"))).toBe(true);
    // The intermediate key: sealed in realm_pki_keys (JetStream's files hold it only sealed), and it opens.
    const intermediate = (await h.intermediateKeys()).map((pem) => createPrivateKey(pem).export({ format: "der", type: "pkcs8" }));
    expect(intermediate.length).toBeGreaterThan(0);
    for (const f of files) {
      const bytes = readFileSync(f);
      for (const n of [...needles, ...intermediate]) expect(bytes.includes(n), `${f} holds private key material`).toBe(false);
      expect(bytes.includes(Buffer.from("PRIVATE KEY")), `${f} holds a PEM private key`).toBe(false);
    }
    // Events: every one read back, none carries key material.
    const events: string[] = [];
    for await (const e of h.pki.store.read()) events.push(JSON.stringify(e));
    expect(events.length).toBeGreaterThan(3);
    const all = events.join("\n");
    expect(all).not.toContain("PRIVATE KEY");
    for (const k of leafKeys) expect(all).not.toContain(k.split("\n")[1]!);
    expect(logLines.length).toBeGreaterThan(0);
    const logs = logLines.join("");
    expect(logs).not.toContain("PRIVATE KEY");
    for (const k of leafKeys) expect(logs).not.toContain(k.split("\n")[1]!);
  });
});
