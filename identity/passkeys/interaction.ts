import type { PrincipalState } from "../domain/principal.js";
import { passkeyForm, secondFactorPage, totpAlternative } from "./pages.js";
import type { PasskeyFailure, PasskeyService } from "./service.js";

export const PASSKEY_MESSAGES: Record<PasskeyFailure, string> = {
  malformed: "The browser's passkey answer could not be read. Try again.",
  challenge: "This passkey request has expired or was used already. Try again.",
  binding: "This passkey answer belongs to another sign-in. Try again.",
  unknown: "This passkey is not registered with this realm.",
  revoked: "This passkey was revoked. Sign in another way.",
  origin: "This passkey answer was made for another site and is refused.",
  signature: "The passkey's signature could not be verified.",
  counter: "This passkey's signature counter went backwards, a sign of a copied authenticator. It is refused; ask an administrator.",
};

/** What the sign-in pages (identity/oidc/routes.ts) need from passkeys. */
export interface PasskeyInteraction {
  service: PasskeyService;
  /** The passkey button under the password form: a usernameless (discoverable credential) sign-in. */
  loginExtra(uid: string, csrf: string): Promise<string | undefined>;
  /** The page after a right password, for a person with a passkey. */
  secondFactor(o: { uid: string; csrf: string; client: string; principal: PrincipalState; error?: string }): Promise<string>;
}

export function passkeyInteraction(service: PasskeyService): PasskeyInteraction {
  return {
    service,
    async loginExtra(uid, csrf) {
      try {
        const options = await service.authenticationOptions({ kind: "login", uid });
        return passkeyForm({ uid, csrf, step: "login", options, label: "Use a passkey" });
      } catch {
        return undefined; // no public URL yet: the password form alone
      }
    },
    async secondFactor(o) {
      const options = await service.authenticationOptions({ kind: "second-factor", uid: o.uid, principal: o.principal.id });
      // With TOTP as well, the person may instead sign in again with the password and a code.
      const alternative = o.principal.totp === "enabled" ? totpAlternative(o.uid, o.csrf, o.principal.id) : undefined;
      return secondFactorPage({ uid: o.uid, csrf: o.csrf, client: o.client, user: o.principal.displayName, options, error: o.error, alternative });
    },
  };
}
