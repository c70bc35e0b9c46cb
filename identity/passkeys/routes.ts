import type { IncomingMessage } from "node:http";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type Provider from "oidc-provider";
import type { RegistrationResponseJSON } from "@simplewebauthn/server";
import { RealmError, toRealmError } from "../../services/kernel/index.js";
import type { IdentityCore } from "../core.js";
import { messagePage } from "../oidc/pages.js";
import { accountPage, SCRIPT, SCRIPT_PATH } from "./pages.js";
import { commandMeta, type PasskeyService, type RelyingParty } from "./service.js";

/** Security headers of the account page: only the realm's own script, fetches to the realm itself. */
const CSP = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/**
 * The self-service page `/account/passkeys`: who is signed in is the realm's OIDC session (the `_session`
 * cookie oidc-provider sets at sign-in, read back through the provider), so a person who signed in to any
 * application of the realm can manage their passkeys; without a session the page says to sign in.
 *
 * CSRF: every POST must carry an `Origin` header equal to the realm's own origin (the relying party's; the page
 * has `referrer-policy: same-origin`, with `no-referrer` Chromium sends `Origin: null` on its form posts);
 * browsers send it on every cross-origin and same-origin POST, so a form or fetch from another site is
 * refused before anything happens. The JSON endpoints also need `content-type: application/json`, which no
 * cross-site form can send without a CORS preflight (which this server never answers).
 */
export async function mountPasskeyAccount(app: FastifyInstance, core: IdentityCore, passkeys: PasskeyService, getProvider: (req: IncomingMessage) => Provider, rp: () => RelyingParty | undefined): Promise<void> {
  await app.register(async (scope) => {
    scope.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string", bodyLimit: 16 * 1024 }, (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(String(body)))));
    const html = (reply: FastifyReply, status: number, body: string) =>
      reply.code(status).type("text/html; charset=utf-8").header("cache-control", "no-store").header("content-security-policy", CSP).header("x-frame-options", "DENY").header("referrer-policy", "same-origin").send(body);
    // The admin API's error shape ({ok: false, error: {code, message}}), with its HTTP status.
    const problem = (reply: FastifyReply, err: RealmError) => reply.code(err.httpStatus).header("cache-control", "no-store").send({ ok: false, error: err.toBody() });

    /** The signed-in person, from the OIDC session; undefined when nobody is (or the person is disabled). */
    const signedIn = async (req: FastifyRequest, reply: FastifyReply): Promise<string | undefined> => {
      const provider = getProvider(req.raw);
      // never: Session.get only reads ctx.req/ctx.res (and ctx.oidc when present) of a Koa context.
      const session = await provider.Session.get({ req: req.raw, res: reply.raw } as never);
      const id = session.accountId;
      const p = id ? core.dir.principals.get(id) : undefined;
      return p?.exists && !p.disabled && p.kind === "person" ? p.id : undefined;
    };
    const sameOrigin = (req: FastifyRequest) => {
      const want = rp()?.origin;
      return want !== undefined && req.headers.origin === want;
    };

    scope.get(SCRIPT_PATH, async (_req, reply) => reply.type("text/javascript; charset=utf-8").header("cache-control", "no-cache").header("x-content-type-options", "nosniff").send(SCRIPT));

    scope.get("/account/passkeys", async (req, reply) => {
      const who = await signedIn(req, reply);
      if (!who) return html(reply, 401, messagePage("Sign in first", "Sign in to an application of this realm, then come back to manage your passkeys."));
      return html(reply, 200, accountPage({ user: who, passkeys: await passkeys.list(who) }));
    });

    scope.post("/account/passkeys/options", async (req, reply) => {
      if (!sameOrigin(req)) return problem(reply, new RealmError("FORBIDDEN", "this request did not come from the realm's own page"));
      const who = await signedIn(req, reply);
      if (!who) return problem(reply, new RealmError("UNAUTHORIZED", "sign in first"));
      try {
        return reply.header("cache-control", "no-store").send(await passkeys.registrationOptions(who, core.dir.principals.get(who)!.displayName));
      } catch (err) {
        return problem(reply, toRealmError(err));
      }
    });

    scope.post("/account/passkeys", async (req, reply) => {
      if (!sameOrigin(req) || !String(req.headers["content-type"] ?? "").startsWith("application/json")) return problem(reply, new RealmError("FORBIDDEN", "this request did not come from the realm's own page"));
      const who = await signedIn(req, reply);
      if (!who) return problem(reply, new RealmError("UNAUTHORIZED", "sign in first"));
      // The host hands JSON bodies over as text (host.ts parses them in one place for its endpoints).
      let body: { name?: unknown; response?: unknown } | undefined;
      try {
        body = JSON.parse(String(req.body)) as typeof body;
      } catch {
        return problem(reply, new RealmError("MALFORMED", "the body is not JSON"));
      }
      if (typeof body?.name !== "string" || typeof body.response !== "object" || body.response === null) return problem(reply, new RealmError("VALIDATION", "send {name, response}: the passkey's name and the browser's registration answer"));
      try {
        const k = await passkeys.register(who, body.response as RegistrationResponseJSON, body.name.trim(), commandMeta(who));
        return reply.code(201).send({ credentialId: k.credentialId, name: k.name, aaguid: k.aaguid, registeredAt: k.registeredAt });
      } catch (err) {
        return problem(reply, toRealmError(err));
      }
    });

    scope.post("/account/passkeys/revoke", async (req, reply) => {
      if (!sameOrigin(req)) return html(reply, 403, messagePage("Refused", "This form was not sent from the realm's own page."));
      const who = await signedIn(req, reply);
      if (!who) return html(reply, 401, messagePage("Sign in first", "Sign in to an application of this realm, then come back to manage your passkeys."));
      const id = (req.body as { credentialId?: unknown } | undefined)?.credentialId;
      if (typeof id !== "string" || !id) return html(reply, 400, messagePage("Which passkey?", "No passkey was named."));
      try {
        await passkeys.revoke(who, id, "revoked by its owner", commandMeta(who));
      } catch (err) {
        const e = toRealmError(err);
        return html(reply, e.code === "NOT_FOUND" ? 404 : 400, messagePage("Not revoked", e.message));
      }
      return reply.code(303).header("location", "/account/passkeys").send();
    });
  });
}
