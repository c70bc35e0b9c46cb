import { esc, page } from "../oidc/pages.js";
import type { Passkey } from "./domain.js";

/** Where the one script of the sign-in and account pages is served (same origin; the CSP allows only 'self'). */
export const SCRIPT_PATH = "/passkeys/webauthn.js";

/**
 * The browser side of both ceremonies, no dependencies: Chromium, Firefox and Safari parse the server's
 * JSON options (PublicKeyCredential.parse*OptionsFromJSON) and serialise the answer (toJSON).
 * - `form[data-passkey-get]`: a sign-in form; its button asks for an assertion with the options in the
 *   attribute and posts the answer in the hidden `response` field (a normal form post, so the OIDC redirect
 *   follows as for the password).
 * - `#passkey-register`: the account page's form; asks the server for options, creates the credential and
 *   posts it as JSON, then reloads the list.
 */
export const SCRIPT = `"use strict";
for (const form of document.querySelectorAll("form[data-passkey-get]")) {
  form.querySelector("button").addEventListener("click", async (e) => {
    e.preventDefault();
    const status = form.querySelector("[data-status]");
    try {
      const options = PublicKeyCredential.parseRequestOptionsFromJSON(JSON.parse(form.dataset.passkeyGet));
      const cred = await navigator.credentials.get({ publicKey: options });
      form.elements.response.value = JSON.stringify(cred.toJSON());
      form.submit();
    } catch (err) {
      status.textContent = "No passkey was used: " + (err && err.message ? err.message : String(err));
    }
  });
}
const reg = document.getElementById("passkey-register");
if (reg) {
  reg.addEventListener("submit", async (e) => {
    e.preventDefault();
    const status = document.getElementById("passkey-status");
    try {
      const r = await fetch("/account/passkeys/options", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
      if (!r.ok) throw new Error((await r.json()).error.message);
      const options = PublicKeyCredential.parseCreationOptionsFromJSON(await r.json());
      const cred = await navigator.credentials.create({ publicKey: options });
      const done = await fetch("/account/passkeys", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: document.getElementById("name").value, response: cred.toJSON() }) });
      if (!done.ok) throw new Error((await done.json()).error.message);
      location.reload();
    } catch (err) {
      status.textContent = "The passkey was not added: " + (err && err.message ? err.message : String(err));
    }
  });
}
`;

const script = `<script src="${SCRIPT_PATH}" defer></script>`;

/** The passkey button under the password form; `options` are the request options for this sign-in. */
export function passkeyForm(o: { uid: string; csrf: string; step: "login" | "second-factor"; options: object; label: string }): string {
  return `<form id="passkey-form" method="post" action="/interaction/${esc(o.uid)}/passkey" data-passkey-get="${esc(JSON.stringify(o.options))}">
<input type="hidden" name="csrf" value="${esc(o.csrf)}"><input type="hidden" name="step" value="${o.step}"><input type="hidden" name="response" value="">
<button type="submit" class="secondary">${esc(o.label)}</button>
<p data-status role="status"></p>
</form>
${script}
`;
}

/** After a right password: confirm with a passkey. */
export function secondFactorPage(o: { uid: string; csrf: string; client: string; user: string; options: object; error?: string | undefined; alternative?: string | undefined }): string {
  return page(
    "Confirm with your passkey",
    `<p>to continue to <strong>${esc(o.client)}</strong> as <strong>${esc(o.user)}</strong></p>
${o.error ? `<p class="error" role="alert" id="error">${esc(o.error)}</p>` : ""}
${passkeyForm({ uid: o.uid, csrf: o.csrf, step: "second-factor", options: o.options, label: "Use my passkey" })}${o.alternative ?? ""}`,
  );
}

/** The self-service page: the signed-in person's passkeys, a form to add one, a button to revoke each. */
export function accountPage(o: { user: string; passkeys: Passkey[] }): string {
  const rows = o.passkeys
    .map(
      (k) => `<li><strong class="passkey-name">${esc(k.name)}</strong> <small>added ${esc(k.registeredAt.slice(0, 10))}${k.backedUp ? ", synced" : ""}</small>
<form method="post" action="/account/passkeys/revoke"><input type="hidden" name="credentialId" value="${esc(k.credentialId)}"><button type="submit" class="secondary" aria-label="Revoke ${esc(k.name)}">Revoke</button></form></li>`,
    )
    .join("\n");
  return page(
    "Your passkeys",
    `<p>Signed in as <strong>${esc(o.user)}</strong>.</p>
${o.passkeys.length ? `<ul id="passkeys">${rows}</ul>` : `<p id="passkeys">You have no passkeys yet.</p>`}
<form id="passkey-register">
<label for="name">Name of the new passkey</label>
<input id="name" name="name" required maxlength="64" placeholder="e.g. work laptop">
<button type="submit">Add a passkey</button>
<p id="passkey-status" role="status"></p>
</form>
${script}`,
  );
}

/** For a person with TOTP as well: the password again with a one-time code, instead of the passkey. */
export function totpAlternative(uid: string, csrf: string, username: string): string {
  return `<h2>Or use a one-time code</h2>
<form method="post" action="/interaction/${esc(uid)}/login">
<input type="hidden" name="csrf" value="${esc(csrf)}"><input type="hidden" name="username" value="${esc(username)}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<label for="totp">One-time code from your authenticator app</label>
<input id="totp" name="totp" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" required>
<button type="submit">Sign in</button>
</form>
`;
}
