import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAcme, type AcmeHarness } from "./support.js";

/** GET https://<name>:<port>/ on 127.0.0.1, trusting only the realm root: the body, or the TLS/HTTP error. */
function get(port: number, name: string, ca: string): Promise<{ status: number; body: string; issuer: string } | Error> {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, servername: name, path: "/", headers: { host: name }, ca, timeout: 3000 }, (res) => {
      let body = "";
      const issuer = (res.socket as import("node:tls").TLSSocket).getPeerCertificate().issuer?.CN ?? "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, issuer: String(issuer) }));
    });
    req.on("error", (e) => resolve(e));
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.end();
  });
}

describe("Caddy with acme_ca pointing at the realm serves HTTPS on a loopback name with a realm certificate", () => {
  let h: AcmeHarness;
  let caddy: ChildProcess | undefined;
  let out = "";
  beforeAll(async () => {
    h = await startAcme();
  }, 60_000);
  afterAll(async () => {
    if (caddy && caddy.exitCode === null) {
      caddy.kill("SIGTERM");
      await new Promise((r) => caddy!.once("exit", r));
    }
    await h?.stop();
  });

  it("obtains the certificate over ACME (the realm validates Caddy's own challenge responders) and answers TLS verified by the realm root", async () => {
    const dir = join(h.work, "caddy");
    mkdirSync(dir, { recursive: true });
    const caddyfile = join(dir, "Caddyfile");
    writeFileSync(
      caddyfile,
      `{
  admin off
  skip_install_trust
  storage file_system {
    root ${join(dir, "data")}
  }
  http_port ${h.http01Port}
  https_port ${h.tlsAlpn01Port}
  acme_ca ${h.directory}
  acme_ca_root ${h.files.root}
  email ops@example.test
}
caddy.example.test {
  bind 127.0.0.1
  respond "hello from caddy"
}
`,
    );
    caddy = spawn("caddy", ["run", "--config", caddyfile, "--adapter", "caddyfile"], { env: { ...process.env, HOME: dir, XDG_DATA_HOME: join(dir, "xdg-data"), XDG_CONFIG_HOME: join(dir, "xdg-config") }, stdio: ["ignore", "pipe", "pipe"] });
    caddy.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    caddy.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    // Bounded poll: Caddy gets its certificate in the background after it starts.
    let r: Awaited<ReturnType<typeof get>> = new Error("not tried");
    for (const until = Date.now() + 30_000; Date.now() < until && caddy.exitCode === null; ) {
      r = await get(h.tlsAlpn01Port, "caddy.example.test", h.rootPem);
      if (!(r instanceof Error)) break;
      await new Promise((res) => setTimeout(res, 250));
    }
    expect(r instanceof Error ? `${r.message}\n${out}` : r.body).toBe("hello from caddy");
    expect((r as { issuer: string }).issuer).toBe("Example Realm Ops CA");
    const orders = await h.query<{ orders: { identifiers: string[]; status: string }[] }>("acme-orders", { issuer: "ops" });
    expect(orders.orders.find((o) => o.identifiers[0] === "caddy.example.test")?.status).toBe("valid");
  }, 60_000);
});
