import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Logger } from "pino";
import { startNats, type TestNats } from "../support/nats.js";
import { startHost, type Host } from "../../services/host/host.js";
import { callRealm } from "../../services/host/client.js";
import { createLogger } from "../../services/host/logger.js";
import { freePort } from "../../services/nats/supervisor.js";
import { createPkiContext, type PkiContext, type PkiOptions } from "../../pki/service.js";
import { initCeremony, signIntermediate } from "../../pki/ceremony/ceremony.js";
import { testTrust } from "../support/trust.js";
import type { RealmTrust } from "../../services/kernel/trust.js";
import { Sealer } from "../../services/kernel/seal.js";
import { Kvm } from "@nats-io/kv";
import { PKI_KEYS_BUCKET } from "../../pki/contract.js";

export const CEREMONY_PASSPHRASE = "correct horse battery staple";
/** Cheaper scrypt for tests only (the ceremony default is N=2^17). */
export const TEST_SCRYPT = { N: 2 ** 14, r: 8, p: 1 };

export interface PkiHarness {
  nats: TestNats;
  nc: NatsConnection;
  pki: PkiContext;
  host: Host;
  /** http://127.0.0.1:<port> the leaves' CRL and OCSP pointers name. */
  baseUrl: string;
  /** The offline ceremony directory (root cert, sealed key, CRL, manifest). */
  ceremonyDir: string;
  /** A scratch dir the harness removes on stop. */
  work: string;
  /** PEM files: root, intermediate, and both as a chain. */
  files: { root: string; intermediate: string; chain: string };
  rootPem: string;
  intermediatePem: string;
  /** The seal key the intermediate keys are sealed with in realm_pki_keys. */
  sealer: Sealer;
  /** The online intermediate keys as PEM, opened from the bucket (what openssl needs to sign as the realm). */
  intermediateKeys(): Promise<string[]>;
  command<T extends object = Record<string, unknown>>(name: string, input: unknown, commandId?: string): Promise<T>;
  query<T extends object = Record<string, unknown>>(name: string, input: unknown): Promise<T>;
  /** Writes text into the scratch dir and returns its path. */
  file(name: string, text: string | Buffer): string;
  stop(): Promise<void>;
}

/**
 * The whole PKI as it runs: an offline ceremony in a temp dir makes the root, the online pki context (on a
 * real nats-server, served by the realm host over NATS and HTTP) prepares issuer "ops", the ceremony signs
 * its CSR (name constraint example.test), the realm imports it. The realm owns zone example.test.
 */
export async function startPki(opts: PkiOptions & { zones?: string[]; permittedDns?: string[]; log?: Logger; ceremonyAt?: Date; trust?: RealmTrust } = {}): Promise<PkiHarness> {
  const work = mkdtempSync(join(tmpdir(), "realm-pki-"));
  const ceremonyDir = join(work, "ceremony");
  await initCeremony({ dir: ceremonyDir, passphrase: CEREMONY_PASSPHRASE, subject: { CN: "Example Realm Root CA", O: "Example" }, scrypt: TEST_SCRYPT, ...(opts.ceremonyAt ? { now: opts.ceremonyAt } : {}) });
  const nats = await startNats();
  const nc = await nats.connect();
  const log = opts.log ?? createLogger({ level: "silent" });
  const httpPort = await freePort();
  const baseUrl = `http://127.0.0.1:${httpPort}`;
  const zones = opts.zones ?? ["example.test."];
  const { zones: _z, permittedDns: _p, log: _l, ceremonyAt: _c, trust: _t, ...pkiOpts } = opts;
  const sealer = pkiOpts.sealer ?? Sealer.generate();
  const pki = await createPkiContext({ publicUrl: baseUrl, ownedZones: () => zones, ...pkiOpts, sealer })({ nc, log, dataDir: nats.dataDir, trust: opts.trust ?? testTrust() });
  const host = await startHost({ nc, contexts: [pki], httpPort, httpHost: "127.0.0.1", log });
  const command = <T extends object>(name: string, input: unknown, commandId?: string) => callRealm<T>(nc, `realm.pki.commands.${name}`, input, commandId ? { commandId } : {});
  const query = <T extends object>(name: string, input: unknown) => callRealm<T>(nc, `realm.pki.queries.${name}`, input);
  const { csrPem } = await command<{ csrPem: string }>("issuer.prepare", { issuer: "ops", commonName: "Example Realm Ops CA", organization: "Example" });
  const signed = signIntermediate({ dir: ceremonyDir, passphrase: CEREMONY_PASSPHRASE, csrPem, permittedDns: opts.permittedDns ?? ["example.test"], ...(opts.ceremonyAt ? { now: opts.ceremonyAt } : {}) });
  await command("issuer.import", { issuer: "ops", certificate: signed.certPem, root: signed.rootPem });
  await command("issuer.policy", { issuer: "ops", allowIps: ["127.0.0.0/8", "::1/128"] });
  const file = (name: string, text: string | Buffer) => {
    const p = join(work, name);
    writeFileSync(p, text);
    return p;
  };
  const files = { root: file("root.pem", signed.rootPem), intermediate: file("intermediate.pem", signed.certPem), chain: file("chain.pem", signed.certPem + signed.rootPem) };
  const intermediateKeys = async () => {
    const kv = await new Kvm(nc).open(PKI_KEYS_BUCKET);
    const out: string[] = [];
    for await (const k of await kv.keys("k.>")) out.push(sealer.openString((await kv.get(k))!.string(), `${PKI_KEYS_BUCKET}/${k}`));
    return out;
  };
  return {
    nats,
    nc,
    pki,
    host,
    sealer,
    intermediateKeys,
    baseUrl,
    ceremonyDir,
    work,
    files,
    rootPem: signed.rootPem,
    intermediatePem: signed.certPem,
    command,
    query,
    file,
    async stop() {
      await host.stop();
      await pki.stop?.();
      await nats.stop();
      rmSync(work, { recursive: true, force: true });
    },
  };
}
