/**
 * `realm cluster status`: the realm beyond one machine. The NATS server this CLI is on and the servers
 * holding the realm's streams; every realm stream and bucket stream with its replicas, leader and peers
 * (the `realm.realm.queries.cluster` query: the JetStream API is the realm-system identity's, not the
 * operator's); every running instance with its contexts, uptime and projections (each answers
 * `$SRV.STATS` itself), each projection's lag behind its stream. Exit 0 when whole, 13 (EXIT_DEGRADED)
 * when a stream lacks a leader or a current replica or a projection is behind, 10 when NATS is unreachable.
 */
import { Option, type Command } from "commander";
import type { NatsConnection } from "@nats-io/nats-core";
import { RealmError } from "../kernel/errors.js";
import { callContext, withConnectionOptions, type ConnectionFlags } from "./call.js";
import { buildClusterStatus, clusterStatusText, type ClusterQueryAnswer, type ServiceStats } from "./cluster-report.js";
import { EXIT_DEGRADED } from "./exit-codes.js";
import { nonNegativeInt, printResult } from "./output.js";

/** Every realm service's `$SRV.STATS` answer: each instance's services answer once each; gathered until none for `stallMs`. */
async function serviceStats(nc: NatsConnection, stallMs = 500, maxWaitMs = 5_000): Promise<ServiceStats[]> {
  const out: ServiceStats[] = [];
  try {
    for await (const m of await nc.requestMany("$SRV.STATS", "", { strategy: "stall", stall: stallMs, maxWait: maxWaitMs })) {
      try {
        const s = m.json<ServiceStats>();
        if (typeof s.name === "string" && typeof s.id === "string") out.push(s);
      } catch {
        // not a micro-service's answer
      }
    }
  } catch {
    // no responders: no services
  }
  return out;
}

/** The `cluster` query's answer, or why there is none (no instance answered, JetStream did not list). */
async function clusterQuery(o: ConnectionFlags, nc: NatsConnection): Promise<{ cluster?: ClusterQueryAnswer; error?: string }> {
  try {
    return { cluster: (await callContext(o, "realm", "queries", "cluster", {}, 15_000, nc)) as unknown as ClusterQueryAnswer };
  } catch (err) {
    // A credential the realm refuses is the caller's to fix: that is the error, not a degraded realm.
    if (err instanceof RealmError && err.code !== "UNAVAILABLE" && err.code !== "INTERNAL") throw err;
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

interface ClusterStatusFlags extends ConnectionFlags {
  maxLag: number;
}

export function registerClusterCommands(program: Command): void {
  const cluster = program.command("cluster").description("the realm across NATS servers and instances");
  withConnectionOptions(
    cluster
      .command("status")
      .description(
        "NATS servers, every realm stream's replicas and leader (each copy current or behind), every instance with its contexts and each projection's lag (exit 13 when a stream lacks a leader or a current replica or a projection is behind, 10 when NATS is unreachable)",
      ),
  )
    .addOption(new Option("--max-lag <events>", "a projection this many events or fewer behind its stream still counts as caught up").argParser(nonNegativeInt).default(100))
    .action(async (o: ClusterStatusFlags) => {
      const { connectRealm } = await import("./connection.js");
      // Unreachable NATS throws UNAVAILABLE here: exit 10.
      const nc = await connectRealm({ ...(o.nats ? { nats: o.nats } : {}), ...(o.creds ? { creds: o.creds } : {}), name: "realm-cli cluster status" });
      let report;
      try {
        // The streams first, then the projections: a write in between makes a projection look ahead (lag 0), never behind.
        const q = await clusterQuery(o, nc);
        const stats = await serviceStats(nc);
        const info = nc.info;
        report = buildClusterStatus({
          nats: { url: `nats://${nc.getServer()}`, server: info?.server_name ?? "?", version: info?.version ?? "?", cluster: info?.cluster ?? null, urls: info?.connect_urls ?? [] },
          cluster: q.cluster,
          clusterError: q.error,
          stats,
          now: new Date(),
          maxLag: o.maxLag,
        });
      } finally {
        await nc.close();
      }
      printResult(report, undefined, { table: clusterStatusText });
      if (!report.ok) process.exitCode = EXIT_DEGRADED;
    });
}
