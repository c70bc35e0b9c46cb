import { pino, type Logger, type LoggerOptions } from "pino";

/**
 * JSON logs with secrets redacted. The paths cover the field names the realm uses for private material;
 * handlers must still never put a secret in a message string.
 */
export const REDACT_PATHS = [
  "password",
  "*.password",
  "secret",
  "*.secret",
  "*.clientSecret",
  "privateKey",
  "*.privateKey",
  "*.privateKeyPem",
  "token",
  "*.token",
  "*.accessToken",
  "*.refreshToken",
  "creds",
  "*.creds",
  "*.seed",
  "*.passphrase",
  "req.headers.authorization",
  "req.headers.cookie",
  "headers.authorization",
];

export function createLogger(opts: LoggerOptions & { destination?: NodeJS.WritableStream } = {}): Logger {
  const { destination, ...rest } = opts;
  const options: LoggerOptions = { level: process.env.REALM_LOG_LEVEL ?? "info", redact: { paths: REDACT_PATHS, censor: "[redacted]" }, ...rest };
  return destination ? pino(options, destination) : pino(options);
}
