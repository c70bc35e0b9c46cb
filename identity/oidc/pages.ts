/**
 * Plain, accessible HTML for sign-in, consent, device and logout pages: no inline scripts, no external assets.
 * The one script is the realm's own passkey helper (identity/passkeys/pages.ts), from the same origin.
 */

export const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const STYLE = `body{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#111}
label{display:block;margin-top:1rem;font-weight:600}input{font:inherit;width:100%;padding:.5rem;box-sizing:border-box;border:1px solid #555;border-radius:4px}
button{font:inherit;margin-top:1rem;margin-right:.5rem;padding:.5rem 1rem;border:1px solid #114;border-radius:4px;background:#1a4fd6;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#114}.error{border:2px solid #b00020;background:#fde8ea;color:#5c000f;padding:.5rem 1rem;border-radius:4px}
:focus{outline:3px solid #f5a623;outline-offset:2px}`;

export function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)}</title><style>${STYLE}</style></head>
<body><main><h1>${esc(title)}</h1>
${body}
</main></body>
</html>`;
}

const errorBox = (message?: string) => (message ? `<p class="error" role="alert" id="error">${esc(message)}</p>` : "");

/** `extra`: more sign-in options after the password form (the passkey button, identity/passkeys/pages.ts). */
export function loginPage(o: { uid: string; csrf: string; client: string; username?: string; error?: string; totp?: boolean; extra?: string | undefined }): string {
  const describedBy = o.error ? ' aria-describedby="error"' : "";
  return page(
    "Sign in",
    `<p>to continue to <strong>${esc(o.client)}</strong></p>
${errorBox(o.error)}
<form method="post" action="/interaction/${esc(o.uid)}/login">
<input type="hidden" name="csrf" value="${esc(o.csrf)}">
<label for="username">User name</label>
<input id="username" name="username" autocomplete="username" required value="${esc(o.username ?? "")}"${describedBy}${o.username ? "" : " autofocus"}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required${describedBy}${o.username ? " autofocus" : ""}>
${o.totp ? `<label for="totp">One-time code from your authenticator app</label>\n<input id="totp" name="totp" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}">` : ""}
<button type="submit">Sign in</button>
</form>
${o.extra ?? ""}<form method="post" action="/interaction/${esc(o.uid)}/abort"><input type="hidden" name="csrf" value="${esc(o.csrf)}"><button type="submit" class="secondary">Cancel</button></form>`,
  );
}

export function consentPage(o: { uid: string; csrf: string; client: string; scopes: string[]; user: string }): string {
  return page(
    "Allow access?",
    `<p><strong>${esc(o.client)}</strong> asks to use your account <strong>${esc(o.user)}</strong> for:</p>
<ul>${o.scopes.map((s) => `<li>${esc(s)}</li>`).join("")}</ul>
<form method="post" action="/interaction/${esc(o.uid)}/confirm"><input type="hidden" name="csrf" value="${esc(o.csrf)}"><button type="submit">Allow</button></form>
<form method="post" action="/interaction/${esc(o.uid)}/abort"><input type="hidden" name="csrf" value="${esc(o.csrf)}"><button type="submit" class="secondary">Deny</button></form>`,
  );
}

export function messagePage(title: string, message: string): string {
  return page(title, `<p class="error" role="alert">${esc(message)}</p>`);
}

/**
 * oidc-provider's device input form with every `<input>` that is not hidden removed and `input` put in their
 * place, before `</form>`. Throws when the form is not the shape this page relies on (a provider upgrade
 * changed it): better an error page than a form that cannot work.
 */
export function withOwnCodeInput(form: string, input: string): string {
  const open = /^\s*(<form\b[^>]*\bid="op\.deviceInputForm"[^>]*>)([\s\S]*)<\/form>\s*$/.exec(form);
  if (!open) throw new Error("oidc-provider's device input form changed: no <form id=\"op.deviceInputForm\">");
  const inner = open[2]!.replace(/<input\b[^>]*>(\s*<\/input>)?/g, (tag) => (/\btype="hidden"/.test(tag) ? tag : ""));
  if (!/\bname="xsrf"/.test(inner)) throw new Error("oidc-provider's device input form changed: no xsrf field");
  if (/<(?:input|textarea|select)\b[^>]*\bname="user_code"/.test(inner) || /\bon[a-z]+=/i.test(inner)) throw new Error("oidc-provider's device input form changed: a code field or script is left");
  return `${open[1]}${inner.replace(/\s+$/, "")}\n${input}\n</form>`;
}

/** oidc-provider passes its own `<form>` (with its xsrf field) to these; the pages add the controls. */
export const providerPages = {
  /**
   * The one code box. oidc-provider's `form` carries its own (unlabelled, with an inline onfocus script)
   * `user_code` input: a second one would send the parameter twice, which the provider refuses whatever was
   * typed. So the page keeps the provider's form element and its hidden fields (xsrf) and replaces that
   * input with a labelled one. The provider normalizes what is typed (case, dashes, spaces).
   */
  userCodeInput(form: string, error?: string): string {
    const describedBy = error ? ' aria-describedby="error"' : "";
    const input = `<label for="user_code">Code</label>
<input id="user_code" name="user_code" type="text" autocomplete="off" autocapitalize="characters" spellcheck="false" required autofocus${describedBy}>`;
    return page(
      "Connect a device",
      `${errorBox(error)}<p>Enter the code shown on your device.</p>
${withOwnCodeInput(form, input)}
<button type="submit" form="op.deviceInputForm">Continue</button>`,
    );
  },
  userCodeConfirm(form: string, client: string, userCode: string): string {
    return page(
      "Confirm the device",
      `<p><strong>${esc(client)}</strong> on a device showing the code <code>${esc(userCode)}</code> asks to sign in as you.</p>
<p>If you did not start this or the code differs, abort.</p>${form}
<button type="submit" form="op.deviceConfirmForm">Continue</button>
<button type="submit" form="op.deviceConfirmForm" name="abort" value="yes" class="secondary">Abort</button>`,
    );
  },
  deviceSuccess(client: string): string {
    return page("Device connected", `<p>You are signed in on your device with ${esc(client)}. You can close this window.</p>`);
  },
  logout(form: string, host: string): string {
    return page(
      "Sign out",
      `<p>Do you want to sign out from ${esc(host)}?</p>${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes" autofocus>Yes, sign me out</button>
<button type="submit" form="op.logoutForm" class="secondary">No, stay signed in</button>`,
    );
  },
  loggedOut(): string {
    return page("Signed out", `<p>You are signed out.</p>`);
  },
  error(out: Record<string, string>): string {
    return page(
      "Sign-in error",
      `<p class="error" role="alert">${esc(out.error ?? "error")}: ${esc(out.error_description ?? "the request could not be processed")}</p>`,
    );
  },
};
