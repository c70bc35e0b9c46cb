import { randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/nats-core";
import { Kvm, type KV } from "@nats-io/kv";
import { flattenedVerify } from "jose";
import type { Sealer } from "../../services/kernel/seal.js";
import { PKI_KEYS_BUCKET } from "../contract.js";
import { acmeProblem } from "./problems.js";
import { publicJwk, thumbprintOf } from "./jws.js";
import type { PublicJwk } from "./domain.js";

/**
 * The HMAC keys of external account bindings (RFC 8555 §7.3.4), sealed with the realm's seal key in the PKI's
 * key bucket (`realm_pki_keys`, entries `eab.<key id>`, beside the intermediate keys under `k.`), written
 * before the AcmeEabKeyCreated event that names the key id (never the key), purged when the key is revoked.
 */
export class EabKeys {
  private constructor(
    private readonly kv: KV,
    private readonly sealer: Sealer,
  ) {}

  /** Opens the bucket the PKI's key store made (IssuerKeyStore.open runs first). */
  static async open(nc: NatsConnection, sealer: Sealer): Promise<EabKeys> {
    const kv = await new Kvm(nc).open(PKI_KEYS_BUCKET);
    return new EabKeys(kv, sealer);
  }

  /** A new key id and 256-bit HMAC key, stored sealed. */
  async create(): Promise<{ keyId: string; hmacKey: Buffer }> {
    const keyId = randomBytes(12).toString("base64url");
    const hmacKey = randomBytes(32);
    const name = `eab.${keyId}`;
    await this.kv.create(name, this.sealer.seal(hmacKey, `${PKI_KEYS_BUCKET}/${name}`));
    return { keyId, hmacKey };
  }

  async get(keyId: string): Promise<Buffer | null> {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(keyId)) return null;
    const name = `eab.${keyId}`;
    const e = await this.kv.get(name);
    if (!e || e.operation !== "PUT") return null;
    return this.sealer.open(e.string(), `${PKI_KEYS_BUCKET}/${name}`);
  }

  async purge(keyId: string): Promise<void> {
    await this.kv.purge(`eab.${keyId}`);
  }
}

/**
 * Verifies an externalAccountBinding (a flattened JWS, HS256/384/512 under the EAB HMAC key, kid = key id,
 * url = the newAccount URL, payload = the account's JWK). Returns the key id; refusals are
 * `unauthorized` or `malformed`, naming nothing about the key.
 */
export async function verifyEab(binding: unknown, accountJwk: PublicJwk, url: string, keyOf: (keyId: string) => Promise<Buffer | null>): Promise<string> {
  const { jws, header } = readEabJws(binding);
  if (header.url !== url) throw acmeProblem("malformed", "the external account binding's url is not the newAccount URL");
  const key = await keyOf(header.kid);
  if (!key) throw acmeProblem("unauthorized", "the external account binding names an unknown or revoked key id");
  let payload: Uint8Array;
  try {
    payload = (await flattenedVerify(jws, key, { algorithms: ["HS256", "HS384", "HS512"] })).payload;
  } catch {
    throw acmeProblem("unauthorized", "the external account binding's MAC does not verify");
  }
  let bound: PublicJwk;
  try {
    bound = publicJwk(JSON.parse(Buffer.from(payload).toString("utf8")));
  } catch {
    throw acmeProblem("malformed", "the external account binding's payload is not the account's JWK");
  }
  if ((await thumbprintOf(bound)) !== (await thumbprintOf(accountJwk))) throw acmeProblem("unauthorized", "the external account binding is for another account key");
  return header.kid;
}

function readEabJws(binding: unknown): { jws: { protected: string; payload: string; signature: string }; header: { alg: string; kid: string; url: string } } {
  const b = binding as Record<string, unknown> | null;
  if (typeof b !== "object" || b === null || typeof b.protected !== "string" || typeof b.payload !== "string" || typeof b.signature !== "string") throw acmeProblem("malformed", "externalAccountBinding must be a flattened JWS");
  let header: { alg?: unknown; kid?: unknown; url?: unknown; nonce?: unknown };
  try {
    header = JSON.parse(Buffer.from(b.protected, "base64url").toString("utf8")) as typeof header;
  } catch {
    throw acmeProblem("malformed", "the external account binding's protected header is not base64url JSON");
  }
  if (typeof header.alg !== "string" || !["HS256", "HS384", "HS512"].includes(header.alg)) throw acmeProblem("badSignatureAlgorithm", "an external account binding is MACed with HS256, HS384 or HS512");
  if (typeof header.kid !== "string" || typeof header.url !== "string") throw acmeProblem("malformed", "the external account binding needs kid and url");
  if (header.nonce !== undefined) throw acmeProblem("malformed", "the external account binding must not carry a nonce");
  return { jws: { protected: b.protected, payload: b.payload, signature: b.signature }, header: { alg: header.alg, kid: header.kid, url: header.url } };
}
