import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { invalid, malformed } from "../kernel/errors.js";

// ajv-formats ships CommonJS with a default export; under NodeNext the callable sits on `.default`.
const addFormats = (addFormatsModule as unknown as { default: (ajv: Ajv) => Ajv }).default;

const strict = new Ajv({ allErrors: true, strict: false, useDefaults: true });
addFormats(strict);
/** Query strings carry only strings: coerce them to the schema's types. */
const coercing = new Ajv({ allErrors: true, strict: false, useDefaults: true, coerceTypes: true });
addFormats(coercing);

export interface InputValidator {
  body: ValidateFunction;
  query: ValidateFunction;
}

export function compileInput(schema: object): InputValidator {
  return { body: strict.compile(schema), query: coercing.compile(schema) };
}

function describe(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .slice(0, 5)
    .map((e) => `${e.instancePath || "input"} ${e.message ?? "is invalid"}${e.keyword === "additionalProperties" ? `: ${(e.params as { additionalProperty?: string }).additionalProperty}` : ""}`)
    .join("; ");
}

/** Validates (and fills defaults into) an input object; a schema violation is a VALIDATION error. */
export function validateInput(v: ValidateFunction, input: unknown): void {
  if (!v(input)) {
    throw invalid(`invalid input: ${describe(v.errors)}`, (v.errors ?? []).slice(0, 5).map((e) => ({ path: e.instancePath, message: e.message })));
  }
}

/** Parses a JSON request body; anything but a JSON object is MALFORMED. */
export function parseJsonObject(bytes: Uint8Array | string): Record<string, unknown> {
  const text = typeof bytes === "string" ? bytes : new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw malformed(`request is not valid JSON: ${err instanceof Error ? err.message : "parse error"}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw malformed("request must be a JSON object");
  return value as Record<string, unknown>;
}
