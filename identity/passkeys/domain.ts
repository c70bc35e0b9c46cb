import type { Decider, EventEnvelope, NewEvent } from "../../services/kernel/index.js";
import { alreadyExists, invalid, notFound } from "../../services/kernel/index.js";
import { dataOf, ev } from "../domain/common.js";

/**
 * A principal's passkeys (WebAuthn credentials), as one aggregate per principal: type `passkeys`, id = the
 * principal id. Only public material is in the events: the credential id, the COSE public key, the
 * authenticator's AAGUID and transports, the name the person gave it. The signature counter of the last
 * sign-in is not an event (see counters.ts); `signCount` in PasskeyRegistered is the value at registration.
 */
export interface Passkey {
  credentialId: string;
  /** COSE_Key, base64url (public). */
  publicKey: string;
  signCount: number;
  transports: string[];
  aaguid: string;
  name: string;
  /** Multi-device (synced) credential, as the authenticator said at registration. */
  backedUp: boolean;
  registeredAt: string;
}

export interface PasskeysState {
  id: string;
  passkeys: Passkey[];
  /** Credential ids revoked, never accepted again (an id cannot be registered twice either). */
  revoked: string[];
}

export const PASSKEYS_MAX = 20;
export const PASSKEY_NAME = /^[^\u0000-\u001f\u007f]{1,64}$/;

export type PasskeysCommand = { type: "register"; passkey: Passkey } | { type: "revoke"; credentialId: string; reason: string };

export const PasskeyEvents = { Registered: "PasskeyRegistered", Revoked: "PasskeyRevoked" } as const;

export const passkeysDecider: Decider<PasskeysState, PasskeysCommand> = {
  aggregateType: "passkeys",
  initialState: (id) => ({ id, passkeys: [], revoked: [] }),
  decide(s, c): NewEvent[] {
    switch (c.type) {
      case "register": {
        const k = c.passkey;
        if (!PASSKEY_NAME.test(k.name)) throw invalid("a passkey name has 1-64 printable characters");
        if (s.passkeys.some((p) => p.credentialId === k.credentialId) || s.revoked.includes(k.credentialId)) throw alreadyExists("this passkey is already registered");
        if (s.passkeys.length >= PASSKEYS_MAX) throw invalid(`a person has at most ${PASSKEYS_MAX} passkeys; revoke one first`);
        return [ev(PasskeyEvents.Registered, { ...k })];
      }
      case "revoke": {
        if (!s.passkeys.some((p) => p.credentialId === c.credentialId)) throw notFound(`principal ${s.id} has no passkey ${c.credentialId}`);
        return [ev(PasskeyEvents.Revoked, { credentialId: c.credentialId, reason: c.reason })];
      }
    }
  },
  evolve(s, e: EventEnvelope): PasskeysState {
    switch (e.type) {
      case PasskeyEvents.Registered:
        return { ...s, passkeys: [...s.passkeys, dataOf<Passkey>(e)] };
      case PasskeyEvents.Revoked: {
        const { credentialId } = dataOf<{ credentialId: string }>(e);
        return { ...s, passkeys: s.passkeys.filter((p) => p.credentialId !== credentialId), revoked: [...s.revoked, credentialId] };
      }
      default:
        return s;
    }
  },
};
