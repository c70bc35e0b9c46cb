/**
 * The `realm` command line. Registering the commands loads only light modules (commander, the NATS client,
 * the option parsers): the contexts, oidc-provider, Fastify and the PKI's ASN.1 codecs load inside the
 * actions that need them, so `realm --help` and a verb that talks to a running realm start fast.
 */
import { Command, Option } from "commander";
import { RealmError, toRealmError } from "../kernel/errors.js";
import type { AuditReport, ChainBreak } from "../kernel/audit.js";
import type { DnsContext } from "../../dns/service.js";
import { callContext } from "./call.js";
import { EXIT_CODES, exitCodeOf } from "./exit-codes.js";
import { hostPort, ipAddress, outputOption, port, positiveInt, printResult, quietOption } from "./output.js";
import { registerMaintenanceCommands } from "./maintenance.js";
import { registerBackupCommands } from "./backup-cli.js";
import { registerSiteCommands } from "./site.js";
import { registerInstanceCommands } from "./instance-cli.js";
import { registerContextCommands } from "./register.js";
import { registerContextCommandsOfConfig } from "./context-commands.js";
import { registerStatusCommand } from "./status.js";
import { registerClusterCommands } from "./cluster-status.js";
import { registerDoctorCommand } from "./doctor.js";
import { registerCompletionCommand } from "./completion.js";
import { atTheEdge } from "./edge.js";
import { REALM_VERSION } from "./version.js";

/**
 * Loads modules with oidc-provider's one load-time line "Unsupported runtime. Use Node.js v22.x LTS" held
 * back: the realm supports Node 20.19 (README "Node 20 notes"; the whole suite runs there), so the line
 * tells an operator nothing to do. Every other warning passes.
 */
async function quietly<T>(load: () => Promise<T>): Promise<T> {
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === "string" && args[0].includes("oidc-provider WARNING: Unsupported runtime")) return;
    warn(...args);
  };
  try {
    return await load();
  } finally {
    console.warn = warn;
  }
}

function dnsLine(dns: DnsContext | undefined): string[] {
  if (!dns) return [];
  if (dns.server) return [`  dns       udp+tcp ${dns.server.host}:${dns.server.port} (authoritative; zones with realm zone ...)`];
  return dns.workers ? ["  dns       served by worker processes (REALM_DNS_WORKERS)"] : [];
}

const natsOption = () => new Option("--nats <url>", "NATS server of the realm").env("REALM_NATS_URL");
const credsOption = () => new Option("--creds <file>", "NATS creds file").env("REALM_NATS_CREDS");
const tokenOption = () => new Option("--token <credential>", "API key or access token for the admin API").env("REALM_TOKEN");
const realmUrlOption = () => new Option("--realm-url <url>", "the realm's HTTP URL; without --token, the access token `realm login` stored for it is used").env("REALM_URL");
/** One bounded context of the realm (before configuration contexts existed this was --context). */
const onlyOption = () => new Option("--only <context>", "only this context of the realm (identity, dns, pki, secrets, realm)");
/** The old `--json` of the report verbs: `-o json` now; kept, hidden, for one release. */
const jsonAlias = () => new Option("--json", "same as -o json").hideHelp();

/** Verbs that print no result of their own (`up` prints its banner, `completion` a script): no -o/-q. */
const NO_RESULT = new Set(["up", "completion"]);

/**
 * Gives every verb what the command line's conventions promise, from the tree: -o/--output and -q on each
 * verb that prints a result (a verb that declares its own keeps it), --context / REALM_CONTEXT on each
 * that talks to a realm. Run once the tree is complete.
 */
function addConventionOptions(program: Command): void {
  const leaves = (c: Command): Command[] => (c.commands.length ? c.commands.flatMap(leaves) : [c]);
  const has = (c: Command, long: string) => c.options.some((o) => o.long === long);
  for (const c of leaves(program)) {
    if (NO_RESULT.has(c.name()) && c.parent === program) continue;
    if (!has(c, "--output")) c.addOption(outputOption());
    if (!has(c, "--quiet") && !c.options.some((o) => o.short === "-q")) c.addOption(quietOption());
    // (`realm context add` and `realm init` take --nats and --url as settings to write, not to connect with)
    const writesSettings = c.parent?.name() === "context" || (c.name() === "init" && c.parent === program);
    const talks = !writesSettings && (has(c, "--nats") || has(c, "--realm-url") || (has(c, "--url") && c.parent === program));
    if (talks && !has(c, "--context")) c.addOption(new Option("--context <name>", "configuration context to use (realm context list)").env("REALM_CONTEXT"));
  }
}

/** The whole command line (every group registers light: heavy modules load inside the actions). */
export async function buildProgram(): Promise<Command> {
  const program = new Command("realm")
    .description("cim-realm: identity, naming and secrets of a CIM, as events on NATS JetStream")
    .version(REALM_VERSION)
    // Set before any subcommand exists: every subcommand inherits them. A usage error is one line
    // (`error: USAGE: ...`), a hint, and exit 2; commander throws instead of exiting, main() decides.
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(str.replace(/^error: /, "error: USAGE: ")) })
    .showHelpAfterError("(add --help for usage)");

  program
    .command("up")
    .description("start the whole realm: a local nats-server (JetStream) unless --nats is given, every context, the HTTP API")
    .option("--data <dir>", "data directory", "./data")
    .addOption(natsOption().default(undefined, "start a local nats-server"))
    .addOption(credsOption())
    .addOption(new Option("--public-url <url>", "the realm's one public base URL (a load balancer before every instance): OIDC issuer <url>/oidc, CRL and OCSP under <url>; REALM_OIDC_ISSUER and REALM_PKI_URL still win").env("REALM_PUBLIC_URL"))
    .option("--nats-port <port>", "client port of the local nats-server", port, 4222)
    .option("--http-port <port>", "HTTP API port (0 = any free port)", port, 8080)
    .option("--http-host <host>", "HTTP API address", "127.0.0.1")
    .addOption(new Option("--dns-port <port>", "authoritative DNS port, UDP and TCP (0 = any free port; below 1024 needs CAP_NET_BIND_SERVICE)").env("REALM_DNS_PORT").argParser(port).default(5300))
    .addOption(new Option("--dns-host <address>", "address the authoritative DNS listens on (0.0.0.0 or :: for every address)").env("REALM_DNS_HOST").argParser(ipAddress).default("127.0.0.1"))
    .addOption(new Option("--replicas <n>", "replicas of every stream and bucket, applied to existing ones at start (with --nats <cluster>; 3 for a 3-node cluster)").env("REALM_REPLICAS").argParser(positiveInt))
    .addOption(new Option("--leaf-listen <host:port>", "a hub: the local nats-server listens here for sites' leaf links (its JetStream in domain --hub-domain)").env("REALM_LEAF_LISTEN").argParser(hostPort))
    .addOption(new Option("--hub <url>", "a site: the local nats-server is a leaf of the hub at this leaf-node URL (nats-leaf://host:port); streams here mirror the hub's, commands are written to the hub").env("REALM_HUB"))
    .addOption(new Option("--hub-creds <file>", "a site: the link user's creds (realm site link-creds on the hub)").env("REALM_HUB_CREDS"))
    .addOption(new Option("--hub-domain <name>", "the hub's JetStream domain").env("REALM_HUB_DOMAIN"))
    .addOption(new Option("--site <name>", "a site: its own JetStream domain (default site)").env("REALM_SITE"))
    .option("--insecure-no-auth", "serve the admin API without authentication (single-user development only)")
    .addHelpText(
      "after",
      [
        "",
        "With --nats <urls> the data dir decides the mode, by one rule: it holds an operator when",
        "<data>/operator/operator.json exists (made by `realm up` without --nats, `realm nats server-config`",
        "or `realm instance join`). Then the realm runs in operator mode against that cluster (which must",
        "trust the operator: realm nats server-config): every identity issued from the operator, the NATS",
        "accounts context, creds renewed; --creds is refused. Without an operator every context uses the",
        "one identity of --creds.",
      ].join("\n"),
    )
    .action(async (o: { data: string; nats?: string; creds?: string; publicUrl?: string; natsPort: number; httpPort: number; httpHost: string; dnsPort: number; dnsHost: string; replicas?: number; leafListen?: { host: string; port: number }; hub?: string; hubCreds?: string; hubDomain?: string; site?: string; insecureNoAuth?: boolean }) => {
      const say = (l: string) => process.stderr.write(`realm: ${l}\n`);
      const options = {
        dataDir: o.data,
        natsPort: o.natsPort,
        httpPort: o.httpPort,
        httpHost: o.httpHost,
        dnsPort: o.dnsPort,
        dnsHost: o.dnsHost,
        noAuth: o.insecureNoAuth === true,
        progress: say,
        ...(o.nats ? { natsUrl: o.nats } : {}),
        ...(o.creds ? { natsCreds: o.creds } : {}),
        ...(o.publicUrl !== undefined ? { publicUrl: o.publicUrl } : {}),
        ...(o.replicas !== undefined ? { replicas: o.replicas } : {}),
        ...(o.leafListen ? { leafListen: o.leafListen } : {}),
        ...(o.hubDomain && !o.hub ? { hubDomain: o.hubDomain } : {}),
        ...(o.hub || o.hubCreds ? { hub: { url: o.hub ?? "", creds: o.hubCreds ?? "", ...(o.hubDomain ? { domain: o.hubDomain } : {}), ...(o.site ? { site: o.site } : {}) } } : {}),
      };
      // The whole realm (every context, oidc-provider, Fastify, the supervisor) loads here, and only here.
      const [{ startRealm, checkRealmOptions }, { createLogger }] = await quietly(() => Promise.all([import("./runtime.js"), import("../host/logger.js")]));
      const level = process.env.REALM_LOG_LEVEL ?? "warn";
      const levels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
      if (!levels.includes(level)) throw new RealmError("VALIDATION", `REALM_LOG_LEVEL must be one of ${levels.join(", ")}, not ${JSON.stringify(level)}`);
      checkRealmOptions(options);
      const realm = await startRealm({ ...options, log: createLogger({ level }) });
      const lines = [
        "cim-realm is up",
        `  nats      ${realm.natsUrl}${realm.nats ? ` (local nats-server pid ${realm.nats.pid}, operator mode, JetStream in ${realm.nats.storeDir}, log ${realm.nats.logFile})` : ` (external${realm.operatorMode ? ", operator mode: identities issued from this data dir's operator" : ", one identity from --creds"})`}`,
        ...(realm.operatorCreds ? [`  creds     ${realm.operatorCreds} (the local operator: commands and queries only; the CLI uses it by default)`] : []),
        ...(realm.generatedPassphraseFile ? [`  secret    ${realm.generatedPassphraseFile} holds the generated passphrase of the operator identity bundle: move it offline`] : []),
        ...(o.publicUrl !== undefined ? [`  public    ${realm.pkiUrl ?? ""} (OIDC issuer ${realm.issuer ?? ""}; CRL and OCSP pointers)`] : []),
        `  http      ${realm.httpUrl}  (/healthz /readyz /metrics /openapi.json /api/... /oidc /pki/crl /pki/ocsp)${o.insecureNoAuth ? "  WITHOUT AUTHENTICATION" : ""}`,
        ...dnsLine(realm.contexts.find((c) => c.name === "dns") as DnsContext | undefined),
        ...(o.insecureNoAuth || !realm.needsAdmin() ? [] : ["  admin     create the first admin API key with: realm identity bootstrap"]),
        // The NATS accounts context serves under `identity` too: each name once.
        `  contexts  ${[...new Set(realm.contexts.map((c) => c.name))].join(", ")}`,
        "  stop      Ctrl-C or SIGTERM",
      ];
      let stopping = false;
      const shutdown = (why: string, code: number) => {
        if (stopping) return;
        stopping = true;
        say(`${why}: stopping`);
        realm.stop().then(
          () => {
            say("stopped");
            process.exit(code);
          },
          (err: unknown) => {
            say(`stop failed: ${err instanceof Error ? err.message : String(err)}`);
            process.exit(1);
          },
        );
      };
      process.on("SIGINT", () => shutdown("SIGINT", 0));
      process.on("SIGTERM", () => shutdown("SIGTERM", 0));
      realm.failed.catch((err: unknown) => {
        say(`error ${err instanceof RealmError ? err.code : "INTERNAL"}: ${err instanceof Error ? err.message : String(err)}`);
        shutdown("the realm cannot go on", 1);
      });
      // The banner says the realm is up: only once Ctrl-C and SIGTERM stop it cleanly (a supervisor or a
      // test may signal as soon as it reads the banner).
      process.stdout.write(lines.join("\n") + "\n");
    });

  const audit = program.command("audit").description("audit the realm's event record");
  audit
    .command("verify")
    .description("walk every event chain (form, CID, signature, prev links, versions, checkpoints) and report every message that fails (exit 11, INTEGRITY)")
    .addOption(natsOption())
    .addOption(credsOption())
    .addOption(tokenOption())
    .addOption(realmUrlOption())
    .addOption(onlyOption().default(undefined, "every REALM_* stream"))
    .addOption(jsonAlias())
    .action(async (o: { nats?: string; creds?: string; token?: string; realmUrl?: string; only?: string }) => {
      process.stderr.write("realm: verifying every event of every stream (the realm's auditor does the walk)...\n");
      const r = (await callContext(o, "realm", "queries", "audit", o.only ? { context: o.only } : {}, 30 * 60_000)) as { reports: AuditReport[] };
      const report = (reports: AuditReport[]) =>
        reports
          .map((rep) => {
            const cp = rep.checkpoint ? `, checkpoint seq ${rep.checkpoint.seq} ${rep.checkpoint.matched ? "matched" : "NOT matched"}` : "";
            if (rep.ok) return `ok      ${rep.context}: ${rep.events} events in ${rep.aggregates} aggregates verified${cp}\n`;
            return [
              `BROKEN  ${rep.context}: ${rep.problemCount} problem(s)${cp}\n`,
              ...rep.problems.map((p) => `  ${p.reason.padEnd(20)} ${p.message}\n`),
              ...(rep.problemCount > rep.problems.length ? [`  ... and ${rep.problemCount - rep.problems.length} more\n`] : []),
            ].join("");
          })
          .join("");
      printResult(r.reports, "report", { table: report, textByDefault: true });
      if (r.reports.some((x) => !x.ok)) process.exitCode = EXIT_CODES.INTEGRITY;
    });
  audit
    .command("quarantine")
    .description("stored messages the realm's projections did not apply (did not verify, or could not be applied); exit 11 (INTEGRITY) when there are any")
    .addOption(natsOption())
    .addOption(credsOption())
    .addOption(tokenOption())
    .addOption(realmUrlOption())
    .addOption(jsonAlias())
    .action(async (o: { nats?: string; creds?: string; token?: string; realmUrl?: string }) => {
      const r = (await callContext(o, "realm", "queries", "quarantine", {})) as { quarantined: (ChainBreak & { seenBy: string[] })[] };
      const text = (qs: (ChainBreak & { seenBy: string[] })[]) => (qs.length === 0 ? "nothing quarantined\n" : qs.map((q) => `${q.stream} seq ${q.seq}  ${q.reason.padEnd(20)} ${q.message}  (seen by ${q.seenBy.join(", ")})\n`).join(""));
      printResult(r.quarantined, "quarantined", { table: text, textByDefault: true });
      if (r.quarantined.length) process.exitCode = EXIT_CODES.INTEGRITY;
    });
  audit
    .command("denials")
    .description("the latest refused requests: who, which permission, why")
    .addOption(natsOption())
    .addOption(credsOption())
    .addOption(tokenOption())
    .addOption(realmUrlOption())
    .action(async (o: { nats?: string; creds?: string; token?: string; realmUrl?: string }) => {
      type Denial = { at: string; principal: string; permission: string; reason: string; transport: string };
      const r = (await callContext(o, "realm", "queries", "denials", {})) as { denials: Denial[] };
      const text = (x: { denials: Denial[] }) =>
        x.denials.length === 0 ? "no request refused since the realm started\n" : x.denials.map((d) => `${d.at}  ${d.principal.padEnd(20)} ${d.permission.padEnd(32)} ${d.transport.padEnd(5)} ${d.reason}\n`).join("");
      printResult(r, "denial", { table: text, textByDefault: true });
    });
  const policy = program.command("policy").description("permissions, roles and scopes (roles and bindings: realm identity role ...)");
  policy
    .command("permissions")
    .description("every command's and query's permission, and whether a scoped binding can cover it")
    .addOption(natsOption())
    .addOption(credsOption())
    .addOption(tokenOption())
    .addOption(realmUrlOption())
    .addOption(onlyOption())
    .addOption(jsonAlias())
    .action(async (o: { nats?: string; creds?: string; token?: string; realmUrl?: string; only?: string }) => {
      type Permission = { permission: string; kind: string; context: string; auth: string; scoped: string; description: string };
      const r = (await callContext(o, "realm", "queries", "permissions", {})) as { permissions: Permission[] };
      const rows = r.permissions.filter((p) => !o.only || p.context === o.only);
      const text = (ps: Permission[]) => ps.map((p) => `${p.permission.padEnd(36)} ${p.kind.padEnd(8)} ${(p.auth === "permission" ? p.scoped : p.auth).padEnd(14)} ${p.description}\n`).join("");
      printResult(rows, "permission", { table: text, textByDefault: true });
    });
  audit
    .command("checkpoint")
    .description("have the auditor write a signed checkpoint (head sequence, CID, digest) of every stream now")
    .addOption(natsOption())
    .addOption(credsOption())
    .addOption(tokenOption())
    .addOption(realmUrlOption())
    .addOption(onlyOption())
    .action(async (o: { nats?: string; creds?: string; token?: string; realmUrl?: string; only?: string }) => {
      const r = await callContext(o, "realm", "commands", "checkpoint.create", o.only ? { context: o.only } : {});
      printResult(r, "checkpoint");
    });

  await registerContextCommands(program);
  registerMaintenanceCommands(program);
  registerStatusCommand(program);
  registerClusterCommands(program);
  registerDoctorCommand(program);
  registerContextCommandsOfConfig(program);
  registerCompletionCommand(program);
  registerBackupCommands(program);
  registerSiteCommands(program);
  registerInstanceCommands(program);
  // Last, once every group has registered (another group added after this gets no -o/-q/--context).
  addConventionOptions(program);
  // The edge: output mode and configuration context, settled once before any verb runs (services/cli/edge.ts).
  program.hook("preAction", (_program, action) => atTheEdge(action));
  return program;
}

/**
 * The one line an error prints (`error: <CODE>: <message>`) and its exit status (services/cli/exit-codes.ts,
 * README "Exit codes"). A RealmError keeps its code; a NATS outage is UNAVAILABLE; a file that is not there
 * NOT_FOUND; anything else INTERNAL with its message, the stack only with REALM_DEBUG=1.
 */
export function describeError(err: unknown): { code: string; message: string; exit: number } {
  let e: RealmError | undefined = err instanceof RealmError ? err : undefined;
  if (!e) {
    const outage = toRealmError(err);
    if (outage.code === "UNAVAILABLE") e = outage;
    else if ((err as NodeJS.ErrnoException | undefined)?.code === "ENOENT") e = new RealmError("NOT_FOUND", (err as Error).message);
  }
  const code = e?.code ?? "INTERNAL";
  const message = (e?.message ?? (err instanceof Error ? err.message : String(err))).replace(/\s*\n\s*/g, " ");
  return { code, message, exit: exitCodeOf(code) };
}
