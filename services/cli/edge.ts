/**
 * The command line's edge: before a verb runs, what the run's flags, environment and configuration file
 * say is settled once, here: the output mode (-o, -q, the old --json) and the configuration context
 * (--context / REALM_CONTEXT, else the file's current-context). Verbs and the connection code then read
 * typed settings (services/cli/output.ts, services/cli/active-context.ts), never the file.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import type { Command } from "commander";
import { RealmError } from "../kernel/errors.js";
import { setActiveContext, type ActiveContext } from "./active-context.js";
import { configFile, readConfig, resolvedContext, type ContextConfig } from "./config.js";
import { isFormat, note, setOutputMode } from "./output.js";

/** The realm's bounded contexts: `--context dns` on `realm audit verify` meant one of these before --only. */
const BOUNDED_CONTEXTS = ["identity", "dns", "pki", "secrets", "realm"];

/** Verbs that settle the configuration context themselves (`realm doctor` reports a broken file as a check). */
export const selfSettled = new WeakSet<Command>();

const hasOption = (c: Command, long: string) => c.options.some((o) => o.long === long);

/** The run's output mode from the verb's options. */
export function settleOutput(action: Command): void {
  const o = action.opts<{ output?: unknown; quiet?: boolean; json?: unknown }>();
  const jsonFlag = action.options.find((x) => x.long === "--json")?.isBoolean() === true && o.json === true;
  setOutputMode({ format: isFormat(o.output) ? o.output : jsonFlag ? "json" : undefined, quiet: o.quiet === true });
}

/** Reads a context's token file: it must be there and private. */
function tokenFromFile(context: string, file: string): string {
  let text: string;
  try {
    const mode = statSync(file).mode & 0o777;
    if (mode & 0o077) throw new RealmError("VALIDATION", `the token file ${file} of context ${context} may be read by others (mode ${mode.toString(8)}): chmod 600 ${file}`);
    text = readFileSync(file, "utf8").trim();
  } catch (err) {
    if (err instanceof RealmError) throw err;
    throw new RealmError("VALIDATION", `cannot read the token file ${file} of context ${context} (token-file in ${configFile()})`);
  }
  if (!text) throw new RealmError("VALIDATION", `the token file ${file} of context ${context} is empty`);
  return text;
}

export function toActive(name: string, file: string, raw: ContextConfig): ActiveContext {
  const c = resolvedContext(file, raw);
  const token = c.token
    ? () => c.token
    : c.tokenFile
      ? () => tokenFromFile(name, c.tokenFile!)
      : c.tokenEnv
        ? () => {
            const v = process.env[c.tokenEnv!];
            if (!v) throw new RealmError("VALIDATION", `context ${name} takes its token from $${c.tokenEnv}, which is not set`);
            return v;
          }
        : undefined;
  return { name, file, nats: c.nats, creds: c.creds, url: c.url, data: c.data, token };
}

/**
 * Picks the configuration context of a verb that talks to a realm: --context / REALM_CONTEXT, else the
 * file's current-context, else none (flags, REALM_* variables and the built-in defaults, as before any
 * configuration existed). The file is read only when it exists or a context is asked for.
 */
export function settleContext(action: Command): void {
  setActiveContext(undefined);
  if (!hasOption(action, "--context")) return;
  let name = action.opts<{ context?: string }>().context;
  const file = configFile();
  const loaded = existsSync(file) || name ? readConfig(file) : undefined;
  const legacy = action.getOptionValueSource("context") === "cli" && hasOption(action, "--only") && BOUNDED_CONTEXTS.includes(name ?? "");
  if (name && loaded && !loaded.config.contexts[name] && legacy) {
    note(`realm: --context ${name} names a configuration context now; for the ${name} context alone use --only ${name}`);
    action.setOptionValue("only", name);
    name = undefined;
  }
  if (!loaded) return;
  const chosen = name ?? loaded.config.currentContext;
  if (!chosen) return;
  const c = loaded.config.contexts[chosen];
  if (!c) {
    const known = Object.keys(loaded.config.contexts);
    throw new RealmError("NOT_FOUND", `no context ${chosen} in ${file}${loaded.exists ? "" : " (there is no such file: `realm init` writes one)"}; ${known.length ? `the contexts are ${known.join(", ")}` : "add one with `realm context add <name> ...`"}`);
  }
  setActiveContext(toActive(chosen, file, c));
}

/** Everything the edge settles, as a preAction hook of the whole program. */
export function atTheEdge(action: Command): void {
  settleOutput(action);
  if (!selfSettled.has(action)) settleContext(action);
}
