#!/usr/bin/env node
import { Command, Option } from "commander";
import { RealmError } from "../kernel/errors.js";
import type { AuditReport, ChainBreak } from "../kernel/audit.js";
import { createLogger } from "../host/logger.js";
import { callContext } from "./call.js";
import { startRealm } from "./runtime.js";
import { registerMaintenanceCommands } from "./maintenance.js";
import { registerContextCommands } from "./register.js";
import type { DnsContext } from "../../dns/service.js";

function dnsLine(dns: DnsContext | undefined): string[] {
  if (!dns) return [];
  if (dns.server) return [`  dns       udp+tcp ${dns.server.port} (authoritative; zones with realm zone ...)`];
  return dns.workers ? ["  dns       served by worker processes (REALM_DNS_WORKERS)"] : [];
}

const natsOption = () => new Option("--nats <url>", "NATS server of the realm").env("REALM_NATS_URL");
const credsOption = () => new Option("--creds <file>", "NATS creds file").env("REALM_NATS_CREDS");
const tokenOption = () => new Option("--token <credential>", "API key or access token for the admin API").env("REALM_TOKEN");

export function buildProgram(): Command {
  const program = new Command("realm")
    .description("cim-realm: identity, naming and secrets of a CIM, as events on NATS JetStream")
    .version("0.1.0")
    .showHelpAfterError();

  program
    .command("up")
    .description("start the whole realm: a local nats-server (JetStream) unless --nats is given, every context, the HTTP API")
    .option("--data <dir>", "data directory", "./data")
    .addOption(natsOption().default(undefined, "start a local nats-server"))
    .addOption(credsOption())
    .option("--nats-port <port>", "client port of the local nats-server", (v) => Number(v), 4222)
    .option("--http-port <port>", "HTTP API port (0 = any free port)", (v) => Number(v), 8080)
    .option("--http-host <host>", "HTTP API address", "127.0.0.1")
    .addOption(new Option("--dns-port <port>", "authoritative DNS port, UDP and TCP (0 = any free port)").env("REALM_DNS_PORT").argParser((v) => Number(v)).default(5300))
    .option("--insecure-no-auth", "serve the admin API without authentication (single-user development only)")
    .action(async (o: { data: string; nats?: string; creds?: string; natsPort: number; httpPort: number; httpHost: string; dnsPort: number; insecureNoAuth?: boolean }) => {
      const say = (l: string) => process.stderr.write(`realm: ${l}\n`);
      const realm = await startRealm({
        dataDir: o.data,
        natsPort: o.natsPort,
        httpPort: o.httpPort,
        httpHost: o.httpHost,
        dnsPort: o.dnsPort,
        noAuth: o.insecureNoAuth === true,
        log: createLogger({ level: process.env.REALM_LOG_LEVEL ?? "warn" }),
        progress: say,
        ...(o.nats ? { natsUrl: o.nats } : {}),
        ...(o.creds ? { natsCreds: o.creds } : {}),
      });
      const lines = [
        "cim-realm is up",
        `  nats      ${realm.natsUrl}${realm.nats ? ` (local nats-server pid ${realm.nats.pid}, operator mode, JetStream in ${realm.nats.storeDir}, log ${realm.nats.logFile})` : " (external)"}`,
        ...(realm.operatorCreds ? [`  creds     ${realm.operatorCreds} (the local operator: commands and queries only; the CLI uses it by default)`] : []),
        ...(realm.generatedPassphraseFile ? [`  secret    ${realm.generatedPassphraseFile} holds the generated passphrase of the operator identity bundle: move it offline`] : []),
        `  http      ${realm.httpUrl}  (/healthz /readyz /metrics /openapi.json /api/... /oidc /pki/crl /pki/ocsp)${o.insecureNoAuth ? "  WITHOUT AUTHENTICATION" : ""}`,
        ...dnsLine(realm.contexts.find((c) => c.name === "dns") as DnsContext | undefined),
        ...(o.insecureNoAuth ? [] : ["  admin     create the first admin API key with: realm identity bootstrap"]),
        `  contexts  ${realm.contexts.map((c) => c.name).join(", ")}`,
        "  stop      Ctrl-C or SIGTERM",
      ];
      process.stdout.write(lines.join("\n") + "\n");
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
        shutdown("nats-server could not be restarted", 1);
      });
    });

  const audit = program.command("audit").description("audit the realm's event record");
  audit
    .command("verify")
    .description("walk every event chain (form, CID, signature, prev links, versions, checkpoints) and report every message that fails (exit 2)")
    .addOption(natsOption())
    .addOption(credsOption())
    .addOption(tokenOption())
    .option("--context <name>", "only this context (default: every REALM_* stream)")
    .option("--json", "print the reports as JSON")
    .action(async (o: { nats?: string; creds?: string; token?: string; context?: string; json?: boolean }) => {
      process.stderr.write("realm: verifying every event of every stream (the realm's auditor does the walk)...\n");
      const r = (await callContext(o, "realm", "queries", "audit", o.context ? { context: o.context } : {}, 30 * 60_000)) as { reports: AuditReport[] };
      if (o.json) process.stdout.write(JSON.stringify(r.reports, null, 2) + "\n");
      else
        for (const rep of r.reports) {
          const cp = rep.checkpoint ? `, checkpoint seq ${rep.checkpoint.seq} ${rep.checkpoint.matched ? "matched" : "NOT matched"}` : "";
          if (rep.ok) process.stdout.write(`ok      ${rep.context}: ${rep.events} events in ${rep.aggregates} aggregates verified${cp}\n`);
          else {
            process.stdout.write(`BROKEN  ${rep.context}: ${rep.problemCount} problem(s)${cp}\n`);
            for (const p of rep.problems) process.stdout.write(`  ${p.reason.padEnd(20)} ${p.message}\n`);
            if (rep.problemCount > rep.problems.length) process.stdout.write(`  ... and ${rep.problemCount - rep.problems.length} more\n`);
          }
        }
      if (r.reports.some((x) => !x.ok)) process.exitCode = 2;
    });
  audit
    .command("quarantine")
    .description("stored messages the realm's projections did not apply (did not verify, or could not be applied); exit 2 when there are any")
    .addOption(natsOption())
    .addOption(credsOption())
    .addOption(tokenOption())
    .option("--json", "print them as JSON")
    .action(async (o: { nats?: string; creds?: string; token?: string; json?: boolean }) => {
      const r = (await callContext(o, "realm", "queries", "quarantine", {})) as { quarantined: (ChainBreak & { seenBy: string[] })[] };
      if (o.json) process.stdout.write(JSON.stringify(r.quarantined, null, 2) + "\n");
      else if (r.quarantined.length === 0) process.stdout.write("nothing quarantined\n");
      else for (const q of r.quarantined) process.stdout.write(`${q.stream} seq ${q.seq}  ${q.reason.padEnd(20)} ${q.message}  (seen by ${q.seenBy.join(", ")})\n`);
      if (r.quarantined.length) process.exitCode = 2;
    });
  audit
    .command("denials")
    .description("the latest refused requests: who, which permission, why")
    .addOption(natsOption())
    .addOption(credsOption())
    .addOption(tokenOption())
    .action(async (o: { nats?: string; creds?: string; token?: string }) => {
      const r = (await callContext(o, "realm", "queries", "denials", {})) as { denials: { at: string; principal: string; permission: string; reason: string; transport: string }[] };
      if (r.denials.length === 0) process.stdout.write("no request refused since the realm started\n");
      for (const d of r.denials) process.stdout.write(`${d.at}  ${d.principal.padEnd(20)} ${d.permission.padEnd(32)} ${d.transport.padEnd(5)} ${d.reason}\n`);
    });
  const policy = program.command("policy").description("permissions, roles and scopes (roles and bindings: realm identity role ...)");
  policy
    .command("permissions")
    .description("every command's and query's permission, and whether a scoped binding can cover it")
    .addOption(natsOption())
    .addOption(credsOption())
    .addOption(tokenOption())
    .option("--context <name>", "only this context")
    .option("--json", "print JSON")
    .action(async (o: { nats?: string; creds?: string; token?: string; context?: string; json?: boolean }) => {
      const r = (await callContext(o, "realm", "queries", "permissions", {})) as { permissions: { permission: string; kind: string; context: string; auth: string; scoped: string; description: string }[] };
      const rows = r.permissions.filter((p) => !o.context || p.context === o.context);
      if (o.json) process.stdout.write(JSON.stringify(rows, null, 2) + "\n");
      else for (const p of rows) process.stdout.write(`${p.permission.padEnd(36)} ${p.kind.padEnd(8)} ${(p.auth === "permission" ? p.scoped : p.auth).padEnd(14)} ${p.description}\n`);
    });
  audit
    .command("checkpoint")
    .description("have the auditor write a signed checkpoint (head sequence, CID, digest) of every stream now")
    .addOption(natsOption())
    .addOption(credsOption())
    .addOption(tokenOption())
    .option("--context <name>", "only this context")
    .action(async (o: { nats?: string; creds?: string; token?: string; context?: string }) => {
      const r = await callContext(o, "realm", "commands", "checkpoint.create", o.context ? { context: o.context } : {});
      process.stdout.write(JSON.stringify(r, null, 2) + "\n");
    });

  registerContextCommands(program);
  registerMaintenanceCommands(program);
  return program;
}

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (err) {
    const e = err instanceof RealmError ? err : undefined;
    // Anything else is a bug or a failure outside the realm's typed errors: one line, and the stack only
    // when asked for (REALM_DEBUG=1).
    process.stderr.write(`realm: error ${e?.code ?? "INTERNAL"}: ${err instanceof Error ? err.message : String(err)}\n`);
    if (!e && process.env.REALM_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exit(1);
  }
}

void main();
