import { RealmError } from "../../services/kernel/index.js";

export const ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error";

/** RFC 7644 §3.12 scimType values this server answers with. */
export type ScimType = "invalidFilter" | "tooMany" | "uniqueness" | "mutability" | "invalidSyntax" | "invalidPath" | "noTarget" | "invalidValue" | "invalidVers" | "sensitive";

/** A SCIM error: HTTP status, optional scimType, and a detail that never repeats a credential or password. */
export class ScimError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly scimType?: ScimType,
  ) {
    super(detail);
  }

  body(): object {
    return { schemas: [ERROR_SCHEMA], status: String(this.status), ...(this.scimType ? { scimType: this.scimType } : {}), detail: this.detail };
  }
}

export const badRequest = (scimType: ScimType, detail: string) => new ScimError(400, detail, scimType);

const STATUS_OF: Record<string, number> = { UNAUTHORIZED: 401, FORBIDDEN: 403, NOT_FOUND: 404, ALREADY_EXISTS: 409, CONFLICT: 409, VALIDATION: 400, MALFORMED: 400 };

/** The SCIM error for anything a handler throws: realm errors keep their meaning, the rest is a 500 without detail. */
export function toScimError(err: unknown): ScimError {
  if (err instanceof ScimError) return err;
  if (err instanceof RealmError) {
    const status = STATUS_OF[err.code] ?? 500;
    const type: ScimType | undefined = err.code === "ALREADY_EXISTS" ? "uniqueness" : err.code === "VALIDATION" ? "invalidValue" : err.code === "MALFORMED" ? "invalidSyntax" : undefined;
    return new ScimError(status, status === 500 ? "internal error" : err.message, type);
  }
  return new ScimError(500, "internal error");
}
