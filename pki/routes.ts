import type { FastifyInstance, FastifyReply } from "fastify";
import type { PkiModel } from "./projection.js";
import type { CrlCache, OcspResponder } from "./revocation.js";
import { toRealmError } from "../services/kernel/errors.js";
import { tryLaterResponse } from "./x509/ocsp.js";

/** Largest OCSP request accepted (a request for a handful of certificates is a few hundred bytes). */
const MAX_OCSP_REQUEST = 16 * 1024;

/**
 * Public PKI routes relying parties use without credentials: CRLs (DER), the CA chain (PEM) and the OCSP
 * responder (RFC 6960 GET and POST). Errors are answered as RFC 6960 status-only responses or plain text,
 * never with key material.
 */
export function registerPkiRoutes(
  app: FastifyInstance,
  d: {
    model: () => PkiModel;
    crls: CrlCache;
    ocsp: OcspResponder;
    now: () => Date;
    /**
     * Why the PKI's record may be missing revocations (a quarantined PKI event, a stream that differs from
     * its checkpoint), or undefined. While set, OCSP answers `tryLater` and CRLs 503: the realm does not
     * vouch for a status it may have lost.
     */
    revocationGap?: () => string | undefined;
  },
): Promise<void> {
  const ocsp = (body: Buffer) => (d.revocationGap?.() ? tryLaterResponse() : d.ocsp.answer(body));
  const sendCrl = (reply: FastifyReply, issuer: string, intermediateSerial?: string) => {
    const gap = d.revocationGap?.();
    if (gap) return reply.code(503).type("text/plain").header("retry-after", "300").send(`the realm's revocation record is incomplete (${gap}); no CRL until it is repaired\n`);
    try {
      const crl = d.crls.forIssuer(issuer, intermediateSerial);
      const maxAge = Math.max(0, Math.floor((crl.nextUpdate.getTime() - d.now().getTime()) / 1000 / 2));
      return reply.type("application/pkix-crl").header("cache-control", `max-age=${Math.min(maxAge, 300)}`).header("last-modified", crl.thisUpdate.toUTCString()).send(crl.der);
    } catch (err) {
      const e = toRealmError(err);
      return reply.code(e.code === "NOT_FOUND" ? 404 : 500).type("text/plain").send(`${e.message}\n`);
    }
  };
  return registerOn(app, async (scope) => {
    scope.addContentTypeParser(["application/ocsp-request", "application/octet-stream"], { parseAs: "buffer", bodyLimit: MAX_OCSP_REQUEST }, (_req, body, done) => done(null, body));

    scope.get<{ Params: { file: string } }>("/pki/crl/:file", async (req, reply) => {
      const m = /^([a-z][a-z0-9-]{0,31})\.crl$/.exec(req.params.file);
      if (!m) return reply.code(404).type("text/plain").send("no such CRL\n");
      const id = m[1]!;
      if (id !== "root") return sendCrl(reply, id);
      const root = [...d.model().issuers.values()].map((s) => s.rootCrl).filter((c) => c !== undefined).sort((a, b) => b.crlNumber - a.crlNumber)[0];
      if (!root) return reply.code(404).type("text/plain").send("no root CRL has been published\n");
      return reply.type("application/pkix-crl").header("cache-control", "max-age=300").send(Buffer.from(root.der, "base64"));
    });

    // One intermediate's CRL (what leaves point at; stays served after the issuer rotates).
    scope.get<{ Params: { issuer: string; file: string } }>("/pki/crl/:issuer/:file", async (req, reply) => {
      const issuer = /^[a-z][a-z0-9-]{0,31}$/.exec(req.params.issuer)?.[0];
      const serial = /^([0-9a-f]{1,40})\.crl$/.exec(req.params.file)?.[1];
      if (!issuer || !serial) return reply.code(404).type("text/plain").send("no such CRL\n");
      return sendCrl(reply, issuer, serial);
    });

    scope.get<{ Params: { file: string } }>("/pki/ca/:file", async (req, reply) => {
      const m = /^([a-z][a-z0-9-]{0,31})\.pem$/.exec(req.params.file);
      const st = m ? d.model().issuers.get(m[1]!) : undefined;
      if (!st?.active) return reply.code(404).type("text/plain").send("no such issuer\n");
      return reply.type("application/x-pem-file").send(st.active.certPem + st.active.rootPem);
    });

    scope.post("/pki/ocsp", async (req, reply) => {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      return reply.type("application/ocsp-response").send(ocsp(body));
    });

    // GET form: the base64 (then URL-encoded) DER request is the rest of the path (RFC 6960 A.1).
    scope.get<{ Params: { "*": string } }>("/pki/ocsp/*", async (req, reply) => {
      const raw = decodeURIComponent(req.params["*"] ?? "");
      const der = /^[A-Za-z0-9+/=_-]+$/.test(raw) && raw.length <= (MAX_OCSP_REQUEST * 4) / 3 ? Buffer.from(raw.replace(/-/g, "+").replace(/_/g, "/"), "base64") : Buffer.alloc(0);
      return reply.type("application/ocsp-response").header("cache-control", "max-age=60").send(ocsp(der));
    });
  });
}

async function registerOn(app: FastifyInstance, plugin: (scope: FastifyInstance) => Promise<void>): Promise<void> {
  await app.register(plugin);
}
