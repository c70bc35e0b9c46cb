import type { NatsConnection } from "@nats-io/nats-core";
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type AuthenticatorTransport,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from "@simplewebauthn/server";
import type { Logger } from "pino";
import { fold, invalid, newId, RealmError, type CommandMeta, type EventStore, execute } from "../../services/kernel/index.js";
import { passkeysDecider, type Passkey, type PasskeysState } from "./domain.js";
import { PasskeyStore, type ChallengePurpose } from "./store.js";

/** Why a passkey sign-in was refused (each has a message on the sign-in page, routes.ts). */
export type PasskeyFailure = "malformed" | "challenge" | "binding" | "unknown" | "revoked" | "origin" | "signature" | "counter";

export type PasskeyCheck = { ok: true; principal: string; credentialId: string } | { ok: false; reason: PasskeyFailure; principal?: string };

/** The relying party: RP ID and expected origin, both from the realm's public URL. */
export interface RelyingParty {
  id: string;
  origin: string;
  name: string;
}

/** The realm's public URL (the issuer without /oidc) as a WebAuthn relying party: RP ID = its host name. */
export function relyingPartyOf(publicUrl: string): RelyingParty {
  const u = new URL(publicUrl);
  return { id: u.hostname, origin: u.origin, name: `cim-realm ${u.hostname}` };
}


/** The challenge (base64url) a response answers, from its clientDataJSON; undefined when unreadable. */
function challengeOf(clientDataJSON: unknown): string | undefined {
  if (typeof clientDataJSON !== "string" || clientDataJSON.length > 4096) return undefined;
  try {
    const c = JSON.parse(Buffer.from(clientDataJSON, "base64url").toString("utf8")) as { challenge?: unknown };
    return typeof c.challenge === "string" && /^[A-Za-z0-9_-]{16,128}$/.test(c.challenge) ? c.challenge : undefined;
  } catch {
    return undefined;
  }
}

const sameBinding = (issued: ChallengePurpose, expected: ChallengePurpose): boolean => JSON.stringify(issued) === JSON.stringify(expected);

/**
 * Passkeys of the realm's people: WebAuthn registration and assertion with @simplewebauthn/server,
 * attestation `none` (the realm trusts the person who is signed in, not an authenticator vendor), user
 * verification required. The WebAuthn user handle is the principal id (UTF-8), so a discoverable
 * credential names its principal and a usernameless sign-in needs no lookup table.
 */
export class PasskeyService {
  private constructor(
    private readonly store: EventStore,
    readonly kv: PasskeyStore,
    private readonly rp: () => RelyingParty | undefined,
    private readonly log: Logger,
  ) {}

  static async open(nc: NatsConnection, store: EventStore, log: Logger, rp: () => RelyingParty | undefined, replicas = 1): Promise<PasskeyService> {
    return new PasskeyService(store, await PasskeyStore.open(nc, replicas), rp, log);
  }

  private relyingParty(): RelyingParty {
    const rp = this.rp();
    if (!rp) throw new RealmError("UNAVAILABLE", "the realm's public URL is not known yet (set REALM_OIDC_ISSUER)");
    return rp;
  }

  async state(principal: string): Promise<PasskeysState> {
    const h = await this.store.load({ type: passkeysDecider.aggregateType, id: principal });
    return fold(passkeysDecider, principal, h.events);
  }

  async list(principal: string): Promise<Passkey[]> {
    return (await this.state(principal)).passkeys;
  }

  async has(principal: string): Promise<boolean> {
    return (await this.list(principal)).length > 0;
  }

  async registrationOptions(principal: string, displayName: string): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const rp = this.relyingParty();
    const existing = await this.list(principal);
    const options = await generateRegistrationOptions({
      rpName: rp.name,
      rpID: rp.id,
      userName: principal,
      userID: new TextEncoder().encode(principal),
      userDisplayName: displayName,
      attestationType: "none",
      excludeCredentials: existing.map((k) => ({ id: k.credentialId, transports: k.transports as AuthenticatorTransport[] })),
      authenticatorSelection: { residentKey: "required", userVerification: "required" },
    });
    await this.kv.issue(options.challenge, { kind: "register", principal });
    return options;
  }

  /** Verifies a registration answer and records PasskeyRegistered; bad input is VALIDATION and records nothing. */
  async register(principal: string, response: RegistrationResponseJSON, name: string, meta: CommandMeta): Promise<Passkey> {
    const rp = this.relyingParty();
    const challenge = challengeOf(response?.response?.clientDataJSON);
    const rec = challenge ? await this.kv.consume(challenge) : undefined;
    if (!rec || !sameBinding(rec.purpose, { kind: "register", principal })) throw invalid("this registration answers no open challenge of yours (expired, used, or not issued): start again");
    let v;
    try {
      v = await verifyRegistrationResponse({ response, expectedChallenge: challenge!, expectedOrigin: rp.origin, expectedRPID: rp.id, requireUserVerification: true });
    } catch (err) {
      throw invalid(`the passkey registration was refused: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!v.verified) throw invalid("the passkey registration was refused");
    const c = v.registrationInfo.credential;
    const passkey: Passkey = {
      credentialId: c.id,
      publicKey: Buffer.from(c.publicKey).toString("base64url"),
      signCount: c.counter,
      transports: c.transports ?? [],
      aaguid: v.registrationInfo.aaguid,
      name,
      backedUp: v.registrationInfo.credentialBackedUp,
      registeredAt: new Date().toISOString(),
    };
    await execute(this.store, passkeysDecider, principal, { type: "register", passkey }, meta);
    return passkey;
  }

  async revoke(principal: string, credentialId: string, reason: string, meta: CommandMeta): Promise<void> {
    await execute(this.store, passkeysDecider, principal, { type: "revoke", credentialId, reason }, meta);
  }

  /**
   * Options for a sign-in answered on interaction `uid`: usernameless (any discoverable credential of this
   * realm) when `principal` is undefined, else that principal's passkeys only.
   */
  async authenticationOptions(purpose: Exclude<ChallengePurpose, { kind: "register" }>): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const rp = this.relyingParty();
    const allow = purpose.principal ? await this.list(purpose.principal) : [];
    const options = await generateAuthenticationOptions({
      rpID: rp.id,
      userVerification: "required",
      allowCredentials: allow.map((k) => ({ id: k.credentialId, transports: k.transports as AuthenticatorTransport[] })),
    });
    await this.kv.issue(options.challenge, purpose);
    return options;
  }

  /**
   * Checks an assertion against the challenge it names, which must have been issued for `expected`
   * (the same interaction, and the same principal for a second factor). Then: the credential must be a
   * current passkey of the principal its user handle names (a revoked one is refused), the origin and RP ID
   * the realm's, the signature good, user verification done, and the signature counter must move forward
   * when the authenticator keeps one (WebAuthn §7.2 step 22: a counter not above the stored one is a sign
   * of a cloned authenticator; this realm refuses the sign-in and logs it).
   */
  async verify(raw: string, expected: { kind: "login" | "second-factor"; uid: string }): Promise<PasskeyCheck> {
    const rp = this.relyingParty();
    let response: AuthenticationResponseJSON;
    try {
      response = JSON.parse(raw) as AuthenticationResponseJSON;
    } catch {
      return { ok: false, reason: "malformed" };
    }
    if (typeof response !== "object" || response === null || typeof response.id !== "string" || typeof response.response !== "object" || response.response === null) return { ok: false, reason: "malformed" };
    const challenge = challengeOf(response.response.clientDataJSON);
    if (!challenge) return { ok: false, reason: "malformed" };
    const rec = await this.kv.consume(challenge);
    if (!rec) return { ok: false, reason: "challenge" };
    const issued = rec.purpose;
    if (issued.kind !== expected.kind || issued.uid !== expected.uid) return { ok: false, reason: "binding" };
    let principal: string | undefined;
    try {
      principal = response.response.userHandle ? Buffer.from(response.response.userHandle, "base64url").toString("utf8") : issued.principal;
    } catch {
      return { ok: false, reason: "malformed" };
    }
    if (!principal || (issued.principal !== undefined && principal !== issued.principal)) return { ok: false, reason: "unknown" };
    const state = await this.state(principal);
    const key = state.passkeys.find((k) => k.credentialId === response.id);
    if (!key) return { ok: false, reason: state.revoked.includes(response.id) ? "revoked" : "unknown" };
    const stored = await this.kv.counter(key.credentialId);
    const counter = Math.max(stored?.value ?? 0, key.signCount);
    let v;
    try {
      v = await verifyAuthenticationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: rp.origin,
        expectedRPID: rp.id,
        requireUserVerification: true,
        credential: { id: key.credentialId, publicKey: new Uint8Array(Buffer.from(key.publicKey, "base64url")), counter, transports: key.transports as AuthenticatorTransport[] },
      });
    } catch (err) {
      const m = err instanceof Error ? err.message : String(err);
      if (/origin/i.test(m)) return { ok: false, reason: "origin" };
      if (/counter/i.test(m)) {
        this.log.warn({ principal, credential: key.credentialId, stored: counter }, "passkey signature counter did not move forward: possibly a cloned authenticator; sign-in refused");
        return { ok: false, reason: "counter" };
      }
      this.log.info({ principal, credential: key.credentialId, err: m }, "passkey assertion refused");
      return { ok: false, reason: "signature" };
    }
    if (!v.verified) return { ok: false, reason: "signature" };
    const next = v.authenticationInfo.newCounter;
    if (next > 0 && !(await this.kv.raiseCounter(key.credentialId, next, stored?.revision ?? 0))) return { ok: false, reason: "counter" };
    return { ok: true, principal, credentialId: key.credentialId };
  }
}

export const commandMeta = (actor: string, correlationId?: string): CommandMeta => ({ commandId: newId(), actor, ...(correlationId ? { correlationId } : {}) });
