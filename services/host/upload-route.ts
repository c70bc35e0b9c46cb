import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { invalid, RealmError } from "../kernel/errors.js";
import type { Endpoint } from "./context.js";

/**
 * The HTTP route of an endpoint's `upload` (context.ts): POST with a raw body of one of its content types,
 * handed on as a stream (never buffered, never parsed as JSON), cut at its own size limit. It is registered
 * in a scope of its own so that scope's body handling (a pass-through for every content type) leaves the
 * JSON routes and their 1 MiB limit alone.
 */
export async function registerUploadRoute(
  app: FastifyInstance,
  route: { url: string; upload: NonNullable<Endpoint["upload"]>; schema: Record<string, unknown> },
  handle: (req: FastifyRequest, reply: FastifyReply, body: AsyncIterable<Uint8Array>) => Promise<FastifyReply>,
): Promise<void> {
  const { upload } = route;
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", (_req, payload, done) => done(null, payload));
    scope.route({
      method: "POST",
      url: route.url,
      schema: { ...route.schema, consumes: upload.types, body: { type: "string", format: "binary", description: upload.description ?? "the file" } },
      handler: async (req: FastifyRequest, reply: FastifyReply) => {
        // A type another site's page could send without asking (text/plain, forms) is never one of these. The
        // type is checked when the handler reads the body, as the size is: after authentication and the
        // permission check, so that a caller without the right learns nothing but that.
        const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
        const declared = Number(req.headers["content-length"] ?? NaN);
        const raw = (req.body as AsyncIterable<Uint8Array> | undefined) ?? req.raw;
        return handle(req, reply, limitedBody(typed(raw, type, upload.types), upload.limit, Number.isFinite(declared) ? declared : undefined));
      },
    });
  });
}

/**
 * The body's bytes, refused (VALIDATION) once they pass `limit`, or at once when the declared length does:
 * only when the handler starts reading, i.e. after authentication and the permission checks.
 */
export async function* limitedBody(body: AsyncIterable<Uint8Array>, limit: number, declared?: number): AsyncGenerator<Uint8Array> {
  if (declared !== undefined && declared > limit) throw invalid(`the request body is ${declared} bytes, more than the ${limit} this route takes`);
  let n = 0;
  for await (const piece of body) {
    n += piece.length;
    if (n > limit) throw invalid(`the request body is more than the ${limit} bytes this route takes`);
    yield piece;
  }
}

/** The body, refused (MALFORMED) when it is not of one of `types`: only once someone reads it. */
export async function* typed(body: AsyncIterable<Uint8Array>, type: string, types: string[]): AsyncGenerator<Uint8Array> {
  if (!types.includes(type)) throw new RealmError("MALFORMED", `send the request body as ${types.join(" or ")} (got ${JSON.stringify(type.slice(0, 60) || "none")})`);
  yield* body;
}
