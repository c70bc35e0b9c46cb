import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { parse as parseQuery } from "node:querystring";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type Provider from "oidc-provider";
import type { InteractionResults } from "oidc-provider";
import type { IdentityCore, LoginFailure } from "../core.js";
import { consentPage, loginPage, messagePage } from "./pages.js";
import { PASSKEY_MESSAGES, type PasskeyInteraction } from "../passkeys/interaction.js";

const FORM_LIMIT = 16 * 1024;

export const LOGIN_MESSAGES: Record<LoginFailure, { status: number; text: string }> = {
  invalid: { status: 401, text: "Wrong user name or password." },
  totp_required: { status: 401, text: "Enter the one-time code from your authenticator app." },
  totp_invalid: { status: 401, text: "The one-time code is wrong or has expired." },
  locked: { status: 423, text: "This account is locked after too many failed sign-in attempts. Try again in 15 minutes or ask an administrator to unlock it." },
  disabled: { status: 403, text: "This account is disabled. Ask an administrator." },
  unavailable: { status: 503, text: "The directory that checks this account's password is not reachable. Try again later." },
  passkey_required: { status: 401, text: "Confirm the sign-in with your passkey." },
};

async function readForm(req: IncomingMessage): Promise<Record<string, string>> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > FORM_LIMIT) throw new Error("form too large");
    chunks.push(c);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parseQuery(Buffer.concat(chunks).toString("utf8")))) if (typeof v === "string") out[k] = v;
  return out;
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return v.join("=");
  }
  return undefined;
}

/**
 * Mounts the OIDC provider under /oidc and the sign-in/consent pages under /interaction, in an encapsulated
 * plugin whose body parser leaves the request stream unread (oidc-provider and the form reader read it).
 *
 * CSRF: each interaction page sets a random `realm_csrf` cookie (HttpOnly, SameSite=Strict, path
 * /interaction) and puts HMAC(key, cookie + uid) in a hidden field; a POST without both matching is refused
 * (403) before anything else happens.
 */
export async function mountOidc(app: FastifyInstance, core: IdentityCore, getProvider: (req: IncomingMessage) => Provider, csrfKey: () => string, passkeys?: PasskeyInteraction): Promise<void> {
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", (_req, _payload, done) => done(null, undefined));

    const toProvider = async (req: FastifyRequest, reply: FastifyReply) => {
      const raw = req.raw as IncomingMessage & { originalUrl?: string };
      const provider = getProvider(raw);
      raw.originalUrl = raw.url;
      raw.url = raw.url!.slice("/oidc".length) || "/";
      reply.hijack();
      await provider.callback()(raw, reply.raw);
    };
    scope.all("/oidc", toProvider);
    scope.all("/oidc/*", toProvider);

    const csrfFor = (token: string, uid: string) => createHmac("sha256", csrfKey()).update(`${token}:${uid}`).digest("base64url");
    const issueCsrf = (req: IncomingMessage, res: ServerResponse, uid: string, secure: boolean) => {
      let token = cookie(req, "realm_csrf");
      if (!token || !/^[A-Za-z0-9_-]{43}$/.test(token)) {
        token = randomBytes(32).toString("base64url");
        res.setHeader("set-cookie", `realm_csrf=${token}; Path=/interaction; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`);
      }
      return csrfFor(token, uid);
    };
    const csrfOk = (req: IncomingMessage, uid: string, given: string | undefined) => {
      const token = cookie(req, "realm_csrf");
      if (!token || !given) return false;
      const a = Buffer.from(csrfFor(token, uid));
      const b = Buffer.from(given);
      return a.length === b.length && timingSafeEqual(a, b);
    };
    // No inline scripts (only the realm's own passkey helper, same origin), no framing, nothing from elsewhere. (No form-action: Chromium applies it to the redirect
    // to the client's redirect_uri that follows a form post.)
    const send = (reply: FastifyReply, status: number, html: string) =>
      reply
        .code(status)
        .type("text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .header("content-security-policy", "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
        .header("x-frame-options", "DENY")
        .header("referrer-policy", "no-referrer")
        .send(html);
    const clientName = async (provider: Provider, id: unknown) => {
      const c = typeof id === "string" ? await provider.Client.find(id) : undefined;
      return c?.clientName ?? (typeof id === "string" ? id : "an application");
    };

    scope.get("/interaction/:uid", async (req, reply) => {
      const provider = getProvider(req.raw);
      let details;
      try {
        details = await provider.interactionDetails(req.raw, reply.raw);
      } catch {
        return send(reply, 400, messagePage("Sign-in expired", "This sign-in request has expired or is unknown. Go back to the application and start again."));
      }
      const uid = details.uid;
      const csrf = issueCsrf(req.raw, reply.raw, uid, req.protocol === "https");
      const client = await clientName(provider, details.params.client_id);
      if (details.prompt.name === "login") return send(reply, 200, loginPage({ uid, csrf, client, extra: await passkeys?.loginExtra(uid, csrf) }));
      const scopes = String(details.params.scope ?? "").split(" ").filter(Boolean);
      return send(reply, 200, consentPage({ uid, csrf, client, scopes, user: details.session?.accountId ?? "" }));
    });

    scope.post("/interaction/:uid/:action", async (req, reply) => {
      const { uid, action } = req.params as { uid: string; action: string };
      const provider = getProvider(req.raw);
      let form: Record<string, string>;
      try {
        form = await readForm(req.raw);
      } catch {
        return send(reply, 413, messagePage("Request too large", "The form was too large."));
      }
      if (!csrfOk(req.raw, uid, form.csrf)) return send(reply, 403, messagePage("Form expired", "This form was not sent from this sign-in page or has expired (CSRF check failed). Go back, reload the page and try again."));
      let details;
      try {
        details = await provider.interactionDetails(req.raw, reply.raw);
      } catch {
        return send(reply, 400, messagePage("Sign-in expired", "This sign-in request has expired or is unknown. Go back to the application and start again."));
      }
      if (details.uid !== uid) return send(reply, 400, messagePage("Sign-in expired", "This form belongs to another sign-in request."));
      const finish = async (result: InteractionResults, merge: boolean) => {
        reply.hijack();
        await provider.interactionFinished(req.raw, reply.raw, result, { mergeWithLastSubmission: merge });
      };
      if (action === "abort") return finish({ error: "access_denied", error_description: "the user cancelled the sign-in" }, false);
      if (action === "login" && details.prompt.name === "login") {
        const username = (form.username ?? "").trim();
        const r = await core.login(username, form.password ?? "", form.totp || undefined, { correlationId: uid }, passkeys ? { passkey: (id) => passkeys.service.has(id) } : {});
        if (!r.ok) {
          const m = LOGIN_MESSAGES[r.reason];
          const client = await clientName(provider, details.params.client_id);
          if (r.reason === "passkey_required" && passkeys) return send(reply, 200, await passkeys.secondFactor({ uid, csrf: form.csrf!, client, principal: core.dir.principals.get(username)! }));
          return send(reply, m.status, loginPage({ uid, csrf: form.csrf!, client, username, error: m.text, totp: r.reason === "totp_required" || r.reason === "totp_invalid", extra: await passkeys?.loginExtra(uid, form.csrf!) }));
        }
        return finish({ login: { accountId: r.principal.id, amr: form.totp ? ["pwd", "otp", "mfa"] : ["pwd"] } }, false);
      }
      // A passkey answer: the first factor (step login) or the second after a right password (step second-factor).
      if (action === "passkey" && details.prompt.name === "login" && passkeys) {
        const step = form.step === "second-factor" ? "second-factor" : "login";
        const check = await passkeys.service.verify(form.response ?? "", { kind: step, uid });
        const r = check.ok ? await core.passkeyLogin(check.principal, { correlationId: uid }) : undefined;
        if (!r?.ok) {
          const client = await clientName(provider, details.params.client_id);
          const error = check.ok ? LOGIN_MESSAGES[r!.ok ? "invalid" : r!.reason].text : PASSKEY_MESSAGES[check.reason];
          return send(reply, 401, loginPage({ uid, csrf: form.csrf!, client, error, extra: await passkeys.loginExtra(uid, form.csrf!) }));
        }
        return finish({ login: { accountId: r.principal.id, amr: step === "login" ? ["hwk", "user"] : ["pwd", "hwk", "mfa"] } }, false);
      }
      if (action === "confirm" && details.prompt.name === "consent") {
        const accountId = details.session?.accountId;
        if (!accountId) return send(reply, 400, messagePage("Sign-in expired", "Sign in again."));
        const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId, clientId: String(details.params.client_id) });
        if (!grant) return send(reply, 400, messagePage("Sign-in expired", "Sign in again."));
        const d = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
        if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(" "));
        if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
        for (const [indicator, s] of Object.entries(d.missingResourceScopes ?? {})) grant.addResourceScope(indicator, s.join(" "));
        const grantId = await grant.save();
        return finish({ consent: { grantId } }, true);
      }
      return send(reply, 400, messagePage("Unexpected step", "This sign-in step does not apply now. Go back to the application and start again."));
    });
  });
}
