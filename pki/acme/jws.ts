import { createPublicKey, type KeyObject } from "node:crypto";
import { calculateJwkThumbprint, flattenedVerify, importJWK, type FlattenedJWSInput, type JWK } from "jose";
import { acmeProblem } from "./problems.js";
import type { PublicJwk } from "./domain.js";

/** Signature algorithms accepted on ACME requests (RFC 8555 §6.2; RFC 8037 EdDSA). */
export const ACME_ALGORITHMS = ["ES256", "ES384", "RS256", "EdDSA"] as const;

/** The protected header of an ACME request. */
export interface AcmeProtected {
  alg: string;
  nonce?: string;
  url: string;
  jwk?: PublicJwk;
  kid?: string;
}

export interface VerifiedJws {
  header: AcmeProtected;
  /** The payload bytes: empty for POST-as-GET. */
  payload: Buffer;
}

/** Reads a flattened JWS (RFC 7515 §7.2.2) without verifying it: the header decides which key checks it. */
export function readJws(body: unknown): { jws: FlattenedJWSInput; header: AcmeProtected } {
  if (typeof body !== "object" || body === null) throw acmeProblem("malformed", "the request body is not a flattened JWS object");
  const b = body as Record<string, unknown>;
  if (typeof b.protected !== "string" || typeof b.payload !== "string" || typeof b.signature !== "string") throw acmeProblem("malformed", "a JWS needs protected, payload and signature (flattened JSON serialization)");
  if ("header" in b) throw acmeProblem("malformed", "ACME requests carry no unprotected header");
  let header: AcmeProtected;
  try {
    header = JSON.parse(Buffer.from(b.protected, "base64url").toString("utf8")) as AcmeProtected;
  } catch {
    throw acmeProblem("malformed", "the protected header is not base64url JSON");
  }
  if (typeof header !== "object" || header === null || typeof header.alg !== "string" || typeof header.url !== "string") throw acmeProblem("malformed", "the protected header needs alg and url");
  if (!(ACME_ALGORITHMS as readonly string[]).includes(header.alg)) throw acmeProblem("badSignatureAlgorithm", `algorithm ${JSON.stringify(header.alg)} is not accepted; use one of ${ACME_ALGORITHMS.join(", ")}`);
  if ((header.jwk === undefined) === (header.kid === undefined)) throw acmeProblem("malformed", "the protected header must carry exactly one of jwk and kid");
  if (header.jwk !== undefined) header.jwk = publicJwk(header.jwk);
  if (header.kid !== undefined && typeof header.kid !== "string") throw acmeProblem("malformed", "kid must be an account URL");
  return { jws: { protected: b.protected, payload: b.payload, signature: b.signature }, header };
}

/** Verifies the JWS with `jwk` (the header's own, or the account's); a signature that fails is `malformed`. */
export async function verifyJws(jws: FlattenedJWSInput, header: AcmeProtected, jwk: PublicJwk): Promise<VerifiedJws> {
  let key: Awaited<ReturnType<typeof importJWK>>;
  try {
    key = await importJWK(jwk as JWK, header.alg);
  } catch (err) {
    throw acmeProblem("badSignatureAlgorithm", `the key does not fit algorithm ${header.alg}: ${err instanceof Error ? err.message : String(err)}`, { status: 400 });
  }
  try {
    const r = await flattenedVerify(jws, key, { algorithms: [...ACME_ALGORITHMS] });
    return { header, payload: Buffer.from(r.payload) };
  } catch {
    throw acmeProblem("malformed", "the JWS signature does not verify");
  }
}

/** The public members of a JWK (a private member is refused: a client must never send its private key). */
export function publicJwk(raw: unknown): PublicJwk {
  if (typeof raw !== "object" || raw === null) throw acmeProblem("malformed", "jwk must be a JSON object");
  const j = raw as Record<string, unknown>;
  if ("d" in j || "p" in j || "q" in j || "k" in j) throw acmeProblem("malformed", "the jwk must be a public key");
  const members: Record<string, string[]> = { EC: ["kty", "crv", "x", "y"], RSA: ["kty", "n", "e"], OKP: ["kty", "crv", "x"] };
  const want = typeof j.kty === "string" ? members[j.kty] : undefined;
  if (!want) throw acmeProblem("badSignatureAlgorithm", `key type ${JSON.stringify(j.kty)} is not accepted (EC, RSA, OKP)`);
  const out: PublicJwk = {};
  for (const m of want) {
    if (typeof j[m] !== "string") throw acmeProblem("malformed", `jwk member ${m} is missing`);
    out[m] = j[m] as string;
  }
  return out;
}

export const thumbprintOf = (jwk: PublicJwk): Promise<string> => calculateJwkThumbprint(jwk as JWK, "sha256");

/** The JWK as a node:crypto key (to compare with a certificate's key). */
export function keyObjectOf(jwk: PublicJwk): KeyObject {
  try {
    return createPublicKey({ key: jwk as unknown as import("node:crypto").JsonWebKey, format: "jwk" });
  } catch {
    throw acmeProblem("malformed", "the jwk is not a usable public key");
  }
}
