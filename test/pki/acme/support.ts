import { spawn } from "node:child_process";
import { freePort } from "../../../services/nats/supervisor.js";
import { systemResolve, type Resolve } from "../../../pki/acme/validator.js";
import { startPki, type PkiHarness } from "../harness.js";
import type { PkiOptions } from "../../../pki/service.js";
import type { RealmTrust } from "../../../services/kernel/trust.js";

/**
 * Names under example.test (the harness realm's zone) resolve to 127.0.0.1 for the validator, as a hosts
 * file would: the SSRF guard still only lets validation reach loopback because the issuer's ACME
 * configuration lists 127.0.0.0/8.
 */
export const loopbackResolve: Resolve = async (name) => (name === "example.test" || name.endsWith(".example.test") ? ["127.0.0.1"] : systemResolve(name));

export interface AcmeHarness extends PkiHarness {
  directory: string;
  /** Port the http-01 validator connects to (a client's standalone server listens there). */
  http01Port: number;
  /** Port the tls-alpn-01 validator connects to. */
  tlsAlpn01Port: number;
}

/** The PKI harness with ACME enabled at issuer ops: loopback allowed for validation, a free http-01 port. */
export async function startAcme(opts: { externalAccountRequired?: boolean; validationNetworks?: string[]; trust?: RealmTrust; principalGrants?: PkiOptions["principalGrants"] } = {}): Promise<AcmeHarness> {
  const h = await startPki({ acme: { resolve: loopbackResolve, timeoutMs: 2000, attempts: 2, retryDelayMs: 100 }, ...(opts.trust ? { trust: opts.trust } : {}), ...(opts.principalGrants ? { principalGrants: opts.principalGrants } : {}) });
  const http01Port = await freePort();
  const tlsAlpn01Port = await freePort();
  await h.command("acme.configure", { issuer: "ops", enabled: true, validationNetworks: opts.validationNetworks ?? ["127.0.0.0/8"], http01Port, tlsAlpn01Port, ...(opts.externalAccountRequired ? { externalAccountRequired: true } : {}) });
  return Object.assign(h, { directory: `${h.baseUrl}/acme/ops/directory`, http01Port, tlsAlpn01Port });
}

/** Runs a client process without blocking the event loop (the realm answers it from this process). */
export function run(cmd: string, args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    let out = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out });
    });
  });
}
