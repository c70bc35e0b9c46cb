#!/usr/bin/env node
import { Command, Option } from "commander";
import { RealmError } from "../kernel/errors.js";
import { verifyRealm } from "../kernel/audit-all.js";
import { createLogger } from "../host/logger.js";
import { connectRealm } from "./connection.js";
import { startRealm } from "./runtime.js";
import { registerContextCommands } from "./register.js";
import type { DnsContext } from "../../dns/service.js";

function dnsLine(dns: DnsContext | undefined): string[] {
  if (!dns) return [];
  if (dns.server) return [`  dns       udp+tcp ${dns.server.port} (authoritative; zones with realm zone ...)`];
  return dns.workers ? ["  dns       served by worker processes (REALM_DNS_WORKERS)"] : [];
}

const natsOption = () => new Option("--nats <url>", "NATS server of the realm").env("REALM_NATS_URL");
const credsOption = () => new Option("--creds <file>", "NATS creds file").env("REALM_NATS_CREDS");

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
        onGeneratedPassphrase: (passphrase, file) =>
          process.stdout.write(`operator identity bundle ${file} sealed with a generated passphrase (shown once, store it offline):\n${passphrase}\n`),
        ...(o.nats ? { natsUrl: o.nats } : {}),
        ...(o.creds ? { natsCreds: o.creds } : {}),
      });
      const lines = [
        "cim-realm is up",
        `  nats      ${realm.natsUrl}${realm.nats ? ` (local nats-server pid ${realm.nats.pid}, operator mode, JetStream in ${realm.nats.storeDir}, log ${realm.nats.logFile})` : " (external)"}`,
        ...(realm.natsCreds ? [`  creds     ${realm.natsCreds} (the realm account's service user; the CLI uses it by default)`] : []),
        `  http      ${realm.httpUrl}  (/healthz /readyz /metrics /openapi.json /api/... /oidc /pki/crl /pki/ocsp)${o.insecureNoAuth ? "  WITHOUT AUTHENTICATION" : ""}`,
        ...dnsLine(realm.contexts.find((c) => c.name === "dns") as DnsContext | undefined),
        ...(o.insecureNoAuth ? [] : ["  admin     create the first admin API key with: realm identity bootstrap --help"]),
        `  contexts  ${realm.contexts.map((c) => c.name).join(", ")}`,
        "  stop      Ctrl-C or SIGTERM",
      ];
      process.stdout.write(lines.join("\n") + "\n");
      let stopping = false;
      const shutdown = (sig: string) => {
        if (stopping) return;
        stopping = true;
        say(`${sig}: stopping`);
        realm.stop().then(
          () => {
            say("stopped");
            process.exit(0);
          },
          (err: unknown) => {
            say(`stop failed: ${err instanceof Error ? err.message : String(err)}`);
            process.exit(1);
          },
        );
      };
      process.on("SIGINT", () => shutdown("SIGINT"));
      process.on("SIGTERM", () => shutdown("SIGTERM"));
    });

  const audit = program.command("audit").description("audit the realm's event record");
  audit
    .command("verify")
    .description("walk every event chain (CID of each event, prev links, versions) and report the first break")
    .addOption(natsOption())
    .addOption(credsOption())
    .option("--context <name...>", "only these contexts (default: every REALM_* stream)")
    .option("--json", "print the reports as JSON")
    .action(async (o: { nats?: string; creds?: string; context?: string[]; json?: boolean }) => {
      const nc = await connectRealm({ ...(o.nats ? { nats: o.nats } : {}), ...(o.creds ? { creds: o.creds } : {}) });
      try {
        const reports = await verifyRealm(nc, o.context, (c, n) => process.stderr.write(`realm: ${c}: ${n} events checked\n`));
        if (o.json) process.stdout.write(JSON.stringify(reports, null, 2) + "\n");
        else
          for (const r of reports)
            process.stdout.write(r.ok ? `ok      ${r.context}: ${r.events} events in ${r.aggregates} aggregates verified\n` : `BROKEN  ${r.firstBreak?.message}\n`);
        if (reports.some((r) => !r.ok)) process.exitCode = 2;
      } finally {
        await nc.close();
      }
    });

  registerContextCommands(program);
  return program;
}

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (err) {
    if (err instanceof RealmError) {
      process.stderr.write(`realm: error ${err.code}: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

void main();
