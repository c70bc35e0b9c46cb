import { createHash } from "node:crypto";
import { request } from "node:http";
import { connect as tlsConnect } from "node:tls";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import { SubjectAlternativeName } from "@peculiar/asn1-x509";
import { parseCertificate, sansOf } from "../x509/cert.js";
import { lookup, resolveTxt } from "node:dns/promises";
import { isIP } from "node:net";
import { validationAddressAllowed, type ChallengeType } from "./domain.js";
import { ACME_ERROR_PREFIX, ACME_ERRORS, type AcmeErrorType, type ProblemDocument } from "./problems.js";

/** Host name -> addresses. Default: the system resolver (getaddrinfo). */
export type Resolve = (name: string) => Promise<string[]>;

export const systemResolve: Resolve = async (name) => (await lookup(name, { all: true, verbatim: true })).map((a) => a.address);

/** Name -> its TXT values (each record's strings joined). Default: the system resolver. */
export type ResolveTxt = (name: string) => Promise<string[]>;
export const systemResolveTxt: ResolveTxt = async (name) => (await resolveTxt(name)).map((parts) => parts.join(""));

export interface ValidatorOptions {
  resolve?: Resolve | undefined;
  /** Per connection attempt (connect + response). Default 5 s. */
  timeoutMs?: number | undefined;
  /** TXT lookups for dns-01 names the realm does not hold in its own zones. */
  resolveTxt?: ResolveTxt | undefined;
  /** Attempts when the peer cannot be reached or a dns-01 record is not there yet (a wrong answer is not retried). Default 3. */
  attempts?: number | undefined;
  /** Pause between attempts. Default 1 s. */
  retryDelayMs?: number | undefined;
}

export interface ChallengeCheck {
  type: ChallengeType;
  /** The DNS identifier being validated. */
  name: string;
  token: string;
  keyAuthorization: string;
  /** CIDR ranges the issuer lets validation reach besides public addresses. */
  networks: string[];
  http01Port: number;
  tlsAlpn01Port: number;
  /**
   * TXT values at a name when a zone of the realm holds it (read from the PKI's view of the DNS projection,
   * caught up first), or undefined when no realm zone holds it and DNS must be asked.
   */
  ownTxt?: ((name: string) => Promise<string[] | undefined>) | undefined;
}

export type ValidationOutcome = { ok: true; addresses: string[] } | { ok: false; error: ProblemDocument; retryable: boolean };

/** Longest http-01 answer read: a key authorization is ~87 bytes. */
const MAX_BODY = 8 * 1024;

const problem = (type: AcmeErrorType, detail: string, name: string): ProblemDocument => ({ type: ACME_ERROR_PREFIX + type, detail, status: ACME_ERRORS[type], identifier: { type: "dns", value: name } });

/**
 * Checks one challenge against the peer, with bounded attempts and time. The name is resolved once per
 * attempt and the connection goes to the resolved address itself (no second lookup a rebinding DNS could
 * answer differently), only to addresses the SSRF guard allows; redirects are not followed.
 */
export async function validateChallenge(c: ChallengeCheck, opts: ValidatorOptions = {}): Promise<ValidationOutcome> {
  const attempts = opts.attempts ?? 3;
  let last: ValidationOutcome | undefined;
  for (let i = 0; i < attempts; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, opts.retryDelayMs ?? 1000));
    last = await attempt(c, opts);
    if (last.ok || !last.retryable) return last;
  }
  return last!;
}

async function attempt(c: ChallengeCheck, opts: ValidatorOptions): Promise<ValidationOutcome> {
  if (c.type === "dns-01") return dns01(c, opts);
  let addresses: string[];
  try {
    addresses = isIP(c.name) ? [c.name] : await withTimeout((opts.resolve ?? systemResolve)(c.name), opts.timeoutMs ?? 5000, "DNS lookup");
  } catch (err) {
    return { ok: false, error: problem("dns", `cannot resolve ${c.name}: ${err instanceof Error ? err.message : String(err)}`, c.name), retryable: true };
  }
  const allowed = addresses.filter((a) => validationAddressAllowed(a, c.networks));
  if (allowed.length === 0) {
    return { ok: false, error: problem("rejectedIdentifier", `${c.name} resolves to ${addresses.join(", ") || "no address"}: none is an address this issuer lets validation reach`, c.name), retryable: false };
  }
  if (c.type === "http-01") return http01(c, allowed, opts.timeoutMs ?? 5000);
  if (c.type === "tls-alpn-01") return tlsAlpn01(c, allowed, opts.timeoutMs ?? 5000);
  return { ok: false, error: problem("malformed", `challenge type ${c.type} is not validated here`, c.name), retryable: false };
}

async function http01(c: ChallengeCheck, addresses: string[], timeoutMs: number): Promise<ValidationOutcome> {
  let lastError: ValidationOutcome | undefined;
  for (const address of addresses) {
    const r = await httpGet(address, c.http01Port, c.name, `/.well-known/acme-challenge/${c.token}`, timeoutMs).catch((err: unknown) => err as Error);
    if (r instanceof Error) {
      lastError = { ok: false, error: problem("connection", `http-01: cannot fetch http://${c.name}:${c.http01Port}/.well-known/acme-challenge/${c.token} from ${address}: ${r.message}`, c.name), retryable: true };
      continue;
    }
    if (r.status !== 200) return { ok: false, error: problem("incorrectResponse", `http-01: ${address} answered HTTP ${r.status}`, c.name), retryable: false };
    // RFC 8555 §8.3: trailing white space is ignored.
    if (r.body.replace(/[\s]+$/, "") !== c.keyAuthorization) return { ok: false, error: problem("incorrectResponse", "http-01: the answer is not the key authorization", c.name), retryable: false };
    return { ok: true, addresses: [address] };
  }
  return lastError!;
}

/**
 * RFC 8555 §8.4: a TXT record at `_acme-challenge.<name>` holding base64url(SHA-256(key authorization)).
 * In the realm's own zones it is read from the DNS projection (the realm is their authority: no query to
 * make, none to spoof); for other names (an issuer's allow-list, zones it forwards) from DNS.
 */
async function dns01(c: ChallengeCheck, opts: ValidatorOptions): Promise<ValidationOutcome> {
  const fqdn = `_acme-challenge.${c.name}`;
  const want = createHash("sha256").update(c.keyAuthorization).digest("base64url");
  let values: string[] | undefined;
  let source = "the realm's zone";
  try {
    values = await c.ownTxt?.(fqdn);
    if (values === undefined) {
      source = "DNS";
      values = await withTimeout((opts.resolveTxt ?? systemResolveTxt)(fqdn), opts.timeoutMs ?? 5000, "TXT lookup");
    }
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "ENODATA" || code === "ENOTFOUND") values = [];
    else return { ok: false, error: problem("dns", `dns-01: cannot read TXT ${fqdn}: ${err instanceof Error ? err.message : String(err)}`, c.name), retryable: true };
  }
  if (values.includes(want)) return { ok: true, addresses: [] };
  // Not there (yet): the client may have just written it; retried within the attempts.
  return { ok: false, error: problem("incorrectResponse", `dns-01: ${source} holds no TXT ${fqdn} with the expected digest (${values.length} TXT value(s) there)`, c.name), retryable: true };
}

/** RFC 8737 §3: the acmeIdentifier extension, critical, holding SHA-256 of the key authorization. */
const ACME_IDENTIFIER_OID = "1.3.6.1.5.5.7.1.31";

async function tlsAlpn01(c: ChallengeCheck, addresses: string[], timeoutMs: number): Promise<ValidationOutcome> {
  let lastError: ValidationOutcome | undefined;
  const want = createHash("sha256").update(c.keyAuthorization).digest();
  for (const address of addresses) {
    const r = await tlsHandshake(address, c.tlsAlpn01Port, c.name, timeoutMs).catch((err: unknown) => err as Error);
    if (r instanceof Error) {
      lastError = { ok: false, error: problem("connection", `tls-alpn-01: cannot complete a TLS handshake with ALPN acme-tls/1 to ${address}:${c.tlsAlpn01Port}: ${r.message}`, c.name), retryable: true };
      continue;
    }
    if (r.alpn !== "acme-tls/1") return { ok: false, error: problem("tls", `tls-alpn-01: ${address} did not negotiate ALPN acme-tls/1`, c.name), retryable: false };
    const why = checkAlpnCertificate(r.der, c.name, want);
    if (why) return { ok: false, error: problem("incorrectResponse", `tls-alpn-01: ${why}`, c.name), retryable: false };
    return { ok: true, addresses: [address] };
  }
  return lastError!;
}

/** Why the self-signed challenge certificate does not answer the challenge, or undefined when it does (RFC 8737 §3). */
export function checkAlpnCertificate(der: Buffer, name: string, want: Buffer): string | undefined {
  let cert: ReturnType<typeof parseCertificate>;
  try {
    cert = parseCertificate(der);
  } catch {
    return "the certificate does not parse";
  }
  const exts = cert.tbsCertificate.extensions ?? [];
  const san = exts.find((e) => e.extnID === "2.5.29.17");
  if (!san) return "the certificate has no subjectAltName";
  let names: ReturnType<typeof sansOf>;
  try {
    names = sansOf(AsnConvert.parse(san.extnValue, SubjectAlternativeName));
  } catch {
    return "the subjectAltName does not parse";
  }
  if (names.dns.length !== 1 || names.dns[0]!.toLowerCase() !== name || names.ip.length + names.email.length + names.uri.length > 0) return `the certificate must name exactly ${name} (it names ${[...names.dns, ...names.ip].join(", ")})`;
  const id = exts.find((e) => e.extnID === ACME_IDENTIFIER_OID);
  if (!id) return "the certificate has no acmeIdentifier extension";
  if (!id.critical) return "the acmeIdentifier extension is not critical";
  let value: Buffer;
  try {
    value = Buffer.from(AsnConvert.parse(id.extnValue, OctetString).buffer);
  } catch {
    return "the acmeIdentifier extension is not an OCTET STRING";
  }
  if (!value.equals(want)) return "the acmeIdentifier is not the SHA-256 of the key authorization";
  return undefined;
}

function tlsHandshake(address: string, port: number, name: string, timeoutMs: number): Promise<{ alpn: string | false; der: Buffer }> {
  return new Promise((resolve, reject) => {
    // The challenge certificate is self-signed by design: its content is what is checked, not its chain.
    const socket = tlsConnect({ host: address, port, servername: name, ALPNProtocols: ["acme-tls/1"], rejectUnauthorized: false, timeout: timeoutMs });
    const timer = setTimeout(() => socket.destroy(new Error(`no handshake within ${timeoutMs} ms`)), timeoutMs);
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      const peer = socket.getPeerCertificate();
      const alpn = socket.alpnProtocol ?? false;
      socket.end();
      if (!peer?.raw) return reject(new Error("the peer sent no certificate"));
      resolve({ alpn, der: peer.raw });
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

function httpGet(address: string, port: number, host: string, path: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port, path, method: "GET", headers: { host: port === 80 ? host : `${host}:${port}`, "user-agent": "cim-realm-acme-validator", accept: "*/*" }, timeout: timeoutMs, family: isIP(address) });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (d: Buffer) => {
        size += d.length;
        if (size > MAX_BODY) return req.destroy(new Error(`answer longer than ${MAX_BODY} bytes`));
        chunks.push(d);
      });
      res.on("end", () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") });
      });
      res.on("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    req.end();
  });
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms))) ]).finally(() => clearTimeout(timer));
}
