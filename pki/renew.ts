import { spawn } from "node:child_process";
import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from "node:crypto";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { invalid, RealmError } from "../services/kernel/errors.js";
import { buildName } from "./x509/cert.js";
import { createCsr } from "./x509/csr.js";
import { normalSerial, toPem } from "./x509/der.js";
import { signerFor } from "./x509/keys.js";

/**
 * `realm cert renew`: renews a certificate file the realm issued, with the key it already has (a new CSR
 * signed by that key; the key never leaves the machine), keeping its profile, names, issuer and lifetime.
 * As a daemon it renews at two thirds of the lifetime, with jitter of +-5% of the lifetime so that a fleet
 * issued at once does not renew at once, then runs a command or signals a process.
 */

const DAY_MS = 86_400_000;
/** setTimeout's longest delay (about 24.8 days): longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** When a certificate valid from `notBefore` to `notAfter` is renewed: 2/3 of its life, +-5% of it at random. */
export function renewalTime(notBefore: Date, notAfter: Date, random: () => number = Math.random): Date {
  const life = notAfter.getTime() - notBefore.getTime();
  const jitter = (random() * 2 - 1) * 0.05 * life;
  return new Date(notBefore.getTime() + (2 / 3) * life + jitter);
}

export interface CertOnDisk {
  cert: X509Certificate;
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

/** Reads the first certificate of a PEM file (a leaf followed by its chain, as `realm cert issue` writes it). */
export function readCertFile(file: string): CertOnDisk {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    throw invalid(`cannot read certificate ${file}`);
  }
  const m = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(m?.[0] ?? "");
  } catch {
    throw invalid(`${file} holds no readable PEM certificate`);
  }
  return { cert, serial: normalSerial(cert.serialNumber), notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo) };
}

function readKeyFile(file: string): KeyObject {
  try {
    return createPrivateKey(readFileSync(file, "utf8"));
  } catch {
    throw invalid(`cannot read the private key ${file} (PEM, unencrypted)`);
  }
}

/** What the realm knows of a certificate (query `certificate`). */
interface Known {
  serial: string;
  issuer: string;
  profile: string;
  commonName: string;
  sans: { dns: string[]; ip: string[]; email: string[]; uri: string[] };
  notBefore: string;
  notAfter: string;
  status: string;
}

export type PkiCall = (kind: "commands" | "queries", name: string, input: object) => Promise<unknown>;

/**
 * Renews once: asks the realm what it issued under this serial, signs a CSR with the key, has the same
 * profile, names and issuer issued for the same number of days, and replaces the file (written beside it,
 * then renamed: a reader never sees half a file). Refuses a key that is not the certificate's.
 */
export async function renewOnce(certFile: string, keyFile: string, call: PkiCall): Promise<CertOnDisk & { previous: string }> {
  const current = readCertFile(certFile);
  const key = readKeyFile(keyFile);
  if (!current.cert.checkPrivateKey(key)) throw invalid(`${keyFile} is not the key of ${certFile}`);
  const known = (await call("queries", "certificate", { serial: current.serial })) as Known;
  if (known.status === "revoked") throw invalid(`certificate ${current.serial} is revoked: it is not renewed`);
  const days = Math.max(1, Math.round((current.notAfter.getTime() - current.notBefore.getTime()) / DAY_MS));
  const csrPem = toPem(createCsr(buildName({ CN: known.commonName }), createPublicKey(key), signerFor(key)), "CERTIFICATE REQUEST");
  const r = (await call("commands", "certificate.issue", {
    profile: known.profile,
    issuer: known.issuer,
    csr: csrPem,
    commonName: known.commonName,
    days,
    ...(known.sans.dns.length ? { dns: known.sans.dns } : {}),
    ...(known.sans.ip.length ? { ip: known.sans.ip } : {}),
    ...(known.sans.email.length ? { email: known.sans.email } : {}),
    ...(known.sans.uri.length ? { uri: known.sans.uri } : {}),
  })) as { certPem: string; chainPem: string };
  const tmp = `${certFile}.renew-${process.pid}`;
  writeFileSync(tmp, r.certPem + r.chainPem);
  renameSync(tmp, certFile);
  return { ...readCertFile(certFile), previous: current.serial };
}

export interface RenewHooks {
  /** Shell command run after each renewal (env REALM_CERT_FILE, REALM_KEY_FILE, REALM_CERT_SERIAL). */
  exec?: string | undefined;
  /** Process signalled after each renewal (a server that reloads its certificate on SIGHUP). */
  signalPid?: number | undefined;
  signal?: NodeJS.Signals | undefined;
}

/** Runs the hooks after a renewal; a failing hook is reported, it does not stop the daemon. */
export async function afterRenewal(hooks: RenewHooks, env: Record<string, string>, say: (line: string) => void): Promise<void> {
  if (hooks.exec) {
    const code = await new Promise<number>((resolve) => {
      const p = spawn("/bin/sh", ["-c", hooks.exec!], { stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, ...env } });
      p.on("error", () => resolve(-1));
      p.on("close", (c) => resolve(c ?? -1));
    });
    say(code === 0 ? `ran: ${hooks.exec}` : `the command after renewal exited with ${code}: ${hooks.exec}`);
  }
  if (hooks.signalPid !== undefined) {
    try {
      process.kill(hooks.signalPid, hooks.signal ?? "SIGHUP");
      say(`sent ${hooks.signal ?? "SIGHUP"} to ${hooks.signalPid}`);
    } catch (err) {
      say(`could not signal ${hooks.signalPid}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

/** Waits `ms` or until `signal` aborts (true when aborted). */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(true);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(false);
    }, Math.max(0, Math.min(ms, MAX_TIMER_MS)));
    const onAbort = () => {
      clearTimeout(timer);
      resolve(true);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * The renewal daemon: until `signal` aborts, waits for the certificate's renewal time (read from the file
 * each round, so a certificate replaced by hand is followed), renews, runs the hooks. A failed renewal is
 * tried again after a tenth of the time left (between 10 s and 5 minutes) and reported each time.
 */
export async function renewDaemon(certFile: string, keyFile: string, call: PkiCall, hooks: RenewHooks, say: (line: string) => void, signal: AbortSignal, now: () => Date = () => new Date()): Promise<void> {
  while (!signal.aborted) {
    const current = readCertFile(certFile);
    const at = renewalTime(current.notBefore, current.notAfter);
    const wait = at.getTime() - now().getTime();
    if (wait > 0) {
      say(`${certFile}: serial ${current.serial} valid until ${current.notAfter.toISOString()}; renewing at ${at.toISOString()}`);
      // Long waits in steps (the timer's limit), then the file and the clock are read again.
      if (await sleep(Math.min(wait, MAX_TIMER_MS), signal)) return;
      if (wait > MAX_TIMER_MS) continue;
    }
    try {
      const r = await renewOnce(certFile, keyFile, call);
      say(`${certFile}: renewed, serial ${r.previous} -> ${r.serial}, valid until ${r.notAfter.toISOString()}`);
      await afterRenewal(hooks, { REALM_CERT_FILE: certFile, REALM_KEY_FILE: keyFile, REALM_CERT_SERIAL: r.serial }, say);
      // A new certificate already due (a clock far off, a lifetime shorter than the round trip): no hot loop.
      if (renewalTime(r.notBefore, r.notAfter).getTime() <= now().getTime()) {
        say(`${certFile}: the renewed certificate is already due for renewal (is the clock right?); waiting a minute`);
        if (await sleep(60_000, signal)) return;
      }
    } catch (err) {
      const e = err instanceof RealmError ? err : new RealmError("INTERNAL", err instanceof Error ? err.message : String(err));
      const left = current.notAfter.getTime() - now().getTime();
      const retry = Math.min(5 * 60_000, Math.max(10_000, left / 10));
      say(`${certFile}: renewal failed (${e.code}: ${e.message}); trying again in ${Math.round(retry / 1000)} s`);
      if (await sleep(retry, signal)) return;
    }
  }
}
