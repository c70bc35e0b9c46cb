import { exportJWK, FlattenedSign, generateKeyPair, calculateJwkThumbprint, type CryptoKey, type JWK } from "jose";

/** A small RFC 8555 client built from jose, for the cases real clients never send (replays, bad signatures). */
export interface AcmeReply {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
  text: string;
}

export interface AccountKey {
  alg: "ES256" | "RS256" | "EdDSA";
  privateKey: CryptoKey;
  jwk: JWK;
  thumbprint: string;
}

export async function accountKey(alg: AccountKey["alg"] = "ES256"): Promise<AccountKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === "RS256" ? { modulusLength: 2048 } : {}) });
  const jwk = await exportJWK(publicKey);
  return { alg, privateKey, jwk, thumbprint: await calculateJwkThumbprint(jwk, "sha256") };
}

export async function signJws(key: AccountKey, protectedHeader: Record<string, unknown>, payload: unknown, signWith?: AccountKey): Promise<object> {
  const bytes = payload === "" ? new Uint8Array() : new TextEncoder().encode(JSON.stringify(payload));
  return new FlattenedSign(bytes).setProtectedHeader({ alg: key.alg, ...protectedHeader } as { alg: string }).sign((signWith ?? key).privateKey);
}

export class AcmeClient {
  dir!: Record<string, string>;
  kid: string | undefined;
  lastNonce: string | undefined;
  /** The Replay-Nonce of the last answer, used by the next request (as real clients do). */
  private nextNonce: string | undefined;

  constructor(
    readonly directoryUrl: string,
    public key: AccountKey,
  ) {}

  async init(): Promise<this> {
    this.dir = (await (await fetch(this.directoryUrl)).json()) as Record<string, string>;
    return this;
  }

  async nonce(): Promise<string> {
    const r = await fetch(this.dir.newNonce!, { method: "HEAD" });
    return r.headers.get("replay-nonce")!;
  }

  /** POST a JWS. `payload` "" is POST-as-GET. Options make deliberately broken requests. */
  async post(url: string, payload: unknown, o: { useJwk?: boolean; nonce?: string; signWith?: AccountKey; header?: Record<string, unknown>; rawBody?: object } = {}): Promise<AcmeReply> {
    const nonce = o.nonce ?? this.takeNonce() ?? (await this.nonce());
    this.lastNonce = nonce;
    const keyHeader = o.useJwk || !this.kid ? { jwk: this.key.jwk } : { kid: this.kid };
    const body = o.rawBody ?? (await signJws(this.key, { ...keyHeader, nonce, url, ...(o.header ?? {}) }, payload, o.signWith));
    const r = await fetch(url, { method: "POST", headers: { "content-type": "application/jose+json" }, body: JSON.stringify(body) });
    if (!o.nonce) this.nextNonce = r.headers.get("replay-nonce") ?? undefined;
    const text = await r.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      /* a certificate chain, or empty */
    }
    return { status: r.status, headers: r.headers, body: parsed, text };
  }

  private takeNonce(): string | undefined {
    const n = this.nextNonce;
    this.nextNonce = undefined;
    return n;
  }

  /** Another client for the same account (its own nonce chain, for requests in parallel). */
  fork(): AcmeClient {
    const c = new AcmeClient(this.directoryUrl, this.key);
    c.dir = this.dir;
    c.kid = this.kid;
    return c;
  }

  async newAccount(payload: object = { termsOfServiceAgreed: true }): Promise<AcmeReply> {
    const r = await this.post(this.dir.newAccount!, payload, { useJwk: true });
    if (r.status === 201 || r.status === 200) this.kid = r.headers.get("location")!;
    return r;
  }

  async poll(url: string, done: (b: Record<string, unknown>) => boolean, timeoutMs = 15_000, intervalMs = 50): Promise<Record<string, unknown>> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.post(url, "");
      if (done(r.body)) return r.body;
      if (Date.now() > until) throw new Error(`${url} stayed ${JSON.stringify(r.body)}`);
      await new Promise((res) => setTimeout(res, intervalMs));
    }
  }
}
