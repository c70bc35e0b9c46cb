/**
 * `realm context add|use|list|show|remove` and `realm init`: the named contexts of the configuration file
 * (services/cli/config.ts), like `kubectl config` and `nsc env`. Nothing here reaches a realm.
 */
import { resolve } from "node:path";
import { Option, type Command } from "commander";
import { RealmError } from "../kernel/errors.js";
import { checkContextName, CONTEXT_YAML_KEY, configFile, DEFAULT_NATS_URL, emptyConfig, loadConfig, putContext, resolvedContext, saveConfig, setCurrentContext, type ContextConfig, type LoadedConfig } from "./config.js";
import { DEFAULT_REALM_URL } from "./credentials-store.js";
import { note, printResult } from "./output.js";

/** How a context points at its token, never the token itself. */
const tokenRef = (c: ContextConfig) => (c.tokenFile ? `file:${c.tokenFile}` : c.tokenEnv ? `env:${c.tokenEnv}` : c.token ? "inline" : undefined);

function row(loaded: LoadedConfig, name: string) {
  const c = loaded.config.contexts[name]!;
  return { name, current: loaded.config.currentContext === name ? "*" : "", nats: c.nats, creds: c.creds, url: c.url, data: c.data, token: tokenRef(c) };
}

function mustHave(loaded: LoadedConfig, name: string): ContextConfig {
  const c = loaded.config.contexts[name];
  if (!c) throw new RealmError("NOT_FOUND", `no context ${name} in ${loaded.file}${Object.keys(loaded.config.contexts).length ? ` (the contexts are ${Object.keys(loaded.config.contexts).join(", ")})` : " (realm context add <name> ...)"}`);
  return c;
}

interface SettingsFlags {
  nats?: string;
  creds?: string;
  url?: string;
  data?: string;
  tokenFile?: string;
  tokenEnv?: string;
}

const settingsOf = (o: SettingsFlags): ContextConfig => ({
  ...(o.nats ? { nats: o.nats } : {}),
  ...(o.creds ? { creds: resolve(o.creds) } : {}),
  ...(o.url ? { url: o.url } : {}),
  ...(o.data ? { data: resolve(o.data) } : {}),
  ...(o.tokenFile ? { tokenFile: resolve(o.tokenFile) } : {}),
  ...(o.tokenEnv ? { tokenEnv: o.tokenEnv } : {}),
});

/** The settings flags of `context add` and `init` (no REALM_* fallbacks: what is written is what was given). */
const withSettings = (c: Command) =>
  c
    .option("--nats <url>", "NATS URL of the realm")
    .option("--creds <file>", "NATS creds file")
    .option("--url <url>", "the realm's HTTP API URL")
    .option("--data <dir>", "the realm's data dir (its operator creds are the default creds)")
    .option("--token-file <file>", "a file (mode 0600) holding the API key or token")
    .option("--token-env <var>", "an environment variable holding the API key or token");

export function registerContextCommandsOfConfig(program: Command): void {
  const ctx = program
    .command("context")
    .description(`named contexts (which realm, how to reach it) in the configuration file (${configFile().replace(process.env.HOME ?? "\u0000", "~")}; REALM_CONFIG for another); --context <name> or REALM_CONTEXT picks one for a command, flags and REALM_* variables override it`);

  withSettings(ctx.command("add <name>").description("add a context (the first one becomes the current context)"))
    .option("--use", "make it the current context")
    .option("--replace", "replace a context of that name")
    .action((name: string, o: SettingsFlags & { use?: boolean; replace?: boolean }) => {
      checkContextName(name);
      const loaded = loadConfig();
      if (loaded.config.contexts[name] && !o.replace) throw new RealmError("ALREADY_EXISTS", `context ${name} exists in ${loaded.file} (--replace to replace it)`);
      const c = settingsOf(o);
      putContext(loaded, name, c);
      if (o.use || !loaded.config.currentContext) setCurrentContext(loaded, name);
      saveConfig(loaded);
      note(`realm: context ${name} written to ${loaded.file}${loaded.config.currentContext === name ? " (current)" : ""}`);
      printResult(row(loaded, name), "context");
    });
  ctx
    .command("use <name>")
    .description("make a context the current one")
    .action((name: string) => {
      const loaded = loadConfig();
      mustHave(loaded, name);
      setCurrentContext(loaded, name);
      saveConfig(loaded);
      note(`realm: current context ${name} (${loaded.file})`);
      printResult(row(loaded, name), "context");
    });
  ctx
    .command("list")
    .description("the contexts, the current one marked *")
    .action(() => {
      const loaded = loadConfig();
      printResult({ contexts: Object.keys(loaded.config.contexts).map((n) => row(loaded, n)) }, "context");
    });
  ctx
    .command("show [name]")
    .description("a context (default: the current one) and the settings a command would use with it: each value and where it comes from (flag > REALM_* variable > context > default)")
    .action((name: string | undefined) => {
      const loaded = loadConfig();
      const chosen = name ?? process.env.REALM_CONTEXT ?? loaded.config.currentContext;
      const c = chosen ? resolvedContext(loaded.file, mustHave(loaded, chosen)) : {};
      const from = (env: string, field: keyof ContextConfig, fallback?: string) =>
        process.env[env] ? { value: process.env[env], from: `$${env}` } : c[field] ? { value: c[field], from: `context ${chosen} (${CONTEXT_YAML_KEY[field]})` } : fallback ? { value: fallback, from: "default" } : { value: undefined, from: "none" };
      const data = from("REALM_DATA", "data", resolve("./data"));
      printResult(
        {
          file: loaded.file,
          context: chosen ?? null,
          nats: from("REALM_NATS_URL", "nats", DEFAULT_NATS_URL),
          creds: from("REALM_NATS_CREDS", "creds", resolve(String(data.value), "operator", "admin.creds")),
          url: from("REALM_URL", "url", DEFAULT_REALM_URL),
          data,
          token: process.env.REALM_TOKEN ? { value: "(set)", from: "$REALM_TOKEN" } : chosen && tokenRef(c) ? { value: tokenRef(c), from: `context ${chosen}` } : { value: "the token `realm login` stored for the url, if any", from: "default" },
        },
        "context",
      );
    });
  ctx
    .command("remove <name>")
    .alias("rm")
    .description("remove a context (if it was the current one, none is current then)")
    .action((name: string) => {
      const loaded = loadConfig();
      mustHave(loaded, name);
      putContext(loaded, name, undefined);
      if (loaded.config.currentContext === name) setCurrentContext(loaded, undefined);
      saveConfig(loaded);
      note(`realm: context ${name} removed from ${loaded.file}`);
      printResult({ name, removed: true }, "context");
    });

  withSettings(
    program
      .command("init")
      .description("write a starter configuration: one context (default `local`) for the realm `realm up` runs here (./data, nats://127.0.0.1:4222, http://127.0.0.1:8080), made the current one"),
  )
    .addOption(new Option("--name <context>", "name of the context").default("local"))
    .option("--force", "overwrite an existing configuration file")
    .action((o: SettingsFlags & { name: string; force?: boolean }) => {
      checkContextName(o.name);
      const file = configFile();
      const existing = loadConfig(file);
      if (existing.exists && !o.force) throw new RealmError("ALREADY_EXISTS", `${file} exists already (realm context add <name> adds a context to it; --force overwrites it)`);
      const fresh = emptyConfig(file);
      const c = settingsOf({ nats: DEFAULT_NATS_URL, url: DEFAULT_REALM_URL, data: "./data", ...o });
      putContext(fresh, o.name, c);
      setCurrentContext(fresh, o.name);
      saveConfig(fresh);
      note(`realm: wrote ${file} (mode 0600) with the context ${o.name}, now the current one: nats ${c.nats}, url ${c.url}, data ${c.data}${c.creds ? `, creds ${c.creds}` : ` (creds: ${resolve(c.data ?? "./data", "operator", "admin.creds")}, which \`realm up\` writes)`}`);
      note("realm: edit it, or add contexts with `realm context add <name> --nats <url> --creds <file> --url <url>`; `realm context list` lists them");
      printResult({ file, ...row(fresh, o.name) }, "context");
    });
}
