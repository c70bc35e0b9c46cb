/**
 * `realm status`: what runs, where, and how it is: the realm's NATS server (version, JetStream, round
 * trip), the realm's contexts as NATS micro-services (`$SRV.PING`: instances and versions) and their
 * readiness (/readyz), the HTTP API (/healthz), and this CLI (version, configuration context). Exit 10
 * (UNAVAILABLE) when the realm's NATS cannot be reached, after printing what could be seen.
 */
import type { Command } from "commander";
import { activeContext } from "./active-context.js";
import { withConnectionOptions, type ConnectionFlags } from "./call.js";
import { realmUrlOf } from "./credentials-store.js";
import { EXIT_CODES } from "./exit-codes.js";
import { renderTable } from "./format.js";
import { printResult } from "./output.js";
import { REALM_VERSION } from "./version.js";
import type { HttpProbe, NatsProbe } from "./probe.js";

interface StatusReport {
  cli: { version: string; node: string; config: string | null; context: string | null };
  nats: NatsProbe;
  http: HttpProbe;
  contexts: { name: string; service: string; instances: number; version: string; ready: "ready" | "not-ready" | "degraded" | "unknown" }[];
}

const yes = (b: boolean | undefined) => (b === undefined ? "-" : b ? "on" : "off");

function text(r: StatusReport): string {
  const lines = [`realm ${r.cli.version} (node ${r.cli.node})${r.cli.context ? `, context ${r.cli.context} (${r.cli.config})` : ", no configuration context"}`];
  const s = r.nats.server;
  lines.push(r.nats.connected && s ? `NATS     ${r.nats.url}  connected  server ${s.name} v${s.version}  JetStream ${yes(s.jetstream)}  rtt ${s.rttMs} ms` : `NATS     ${r.nats.url}  NOT CONNECTED: ${r.nats.error ?? "?"}`);
  const h = r.http;
  const status = (x: { status: number; body: unknown } | undefined) => (x ? `${x.status} ${(x.body as { status?: string; nats?: string } | null)?.status ?? (x.status === 200 ? "ok" : "")}`.trim() : "-");
  lines.push(h.error ? `HTTP     ${h.url}  NOT REACHABLE: ${h.error}` : `HTTP     ${h.url}  healthz ${status(h.healthz)}  readyz ${status(h.readyz)}${h.skewMs !== undefined ? `  clock skew ${(h.skewMs / 1000).toFixed(0)} s` : ""}`);
  lines.push("");
  if (r.contexts.length === 0) lines.push("no realm service answers $SRV.PING on this NATS (is `realm up` running against it?)\n");
  else lines.push(renderTable(["CONTEXT", "SERVICE", "INSTANCES", "VERSION", "READY"], r.contexts.map((c) => [c.name, c.service, String(c.instances), c.version, c.ready])));
  return lines.join("\n").replace(/\n*$/, "\n");
}

export function registerStatusCommand(program: Command): void {
  withConnectionOptions(program.command("status").description("what the realm runs and where: NATS server and JetStream, each context's service and readiness, the HTTP API, versions (exit 10 when the realm's NATS is not reachable)")).action(
    async (o: ConnectionFlags) => {
      const { probeHttp, probeNats } = await import("./probe.js");
      const { realmEndpoint } = await import("./connection.js");
      const ctx = activeContext();
      const url = realmUrlOf(o.realmUrl ?? ctx?.url);
      const [nats, http] = await Promise.all([probeNats(o, realmEndpoint(o).servers), probeHttp(url)]);
      const body = http.readyz?.body as { notReady?: string[]; lagging?: string[]; degraded?: { context: string }[] } | undefined;
      const contexts = (nats.services ?? [])
        .filter((s) => s.name.startsWith("realm-"))
        .map((s) => {
          const name = s.name.slice("realm-".length);
          const ready = !body ? "unknown" : body.notReady?.includes(name) || body.lagging?.some((l) => l.startsWith(`${name}/`)) ? "not-ready" : body.degraded?.some((d) => d.context === name) ? "degraded" : "ready";
          return { name, service: s.name, instances: s.instances, version: s.version, ready } as const;
        });
      const report: StatusReport = { cli: { version: REALM_VERSION, node: process.version, config: ctx?.file ?? null, context: ctx?.name ?? null }, nats, http, contexts };
      printResult(report, undefined, { table: text });
      if (!nats.connected) process.exitCode = EXIT_CODES.UNAVAILABLE;
    },
  );
}
