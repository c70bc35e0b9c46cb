/** One DNS worker process (see workers.ts): its own projection of REALM_DNS and a server on the shared port. */
import { connect } from "@nats-io/transport-node";
import { connectAs, reconnectOptions } from "../../services/cli/connection.js";
import { EventStore, Projection, RealmTrust } from "../../services/kernel/index.js";
import { createLogger } from "../../services/host/logger.js";
import { nameProjection } from "../projection.js";
import { Authority } from "./authority.js";
import { DnsServer } from "./server.js";
import { ZoneJournal } from "./journal.js";
import { ServedZones } from "./catalog.js";
import type { DnsWorkerConfig } from "./workers.js";

async function main(): Promise<void> {
  const cfg = JSON.parse(process.env.REALM_DNS_WORKER ?? "{}") as DnsWorkerConfig;
  // As the read-only DNS reader identity (its own inbox) when the realm gives creds.
  const name = `realm-dns-worker-${process.pid}`;
  const nc = cfg.natsCreds ? await connectAs(cfg.natsUrl, cfg.natsCreds, name) : await connect({ servers: cfg.natsUrl, name, noAsyncTraces: true, ...reconnectOptions });
  const store = await EventStore.open(nc, "dns", { trust: new RealmTrust(cfg.trust) });
  let server: DnsServer | undefined;
  const journal = new ZoneJournal(cfg.journal);
  let served: ServedZones | undefined;
  const projection = new Projection(store, nameProjection((zone) => server?.changed(zone), { onStep: (zone, step) => journal.record(zone, step), onMembership: () => served?.name && server?.changed(served.name) }), { log: createLogger({ level: process.env.REALM_LOG_LEVEL ?? "warn" }).child({ component: "dns-worker", pid: process.pid }) });
  const zones = (served = new ServedZones(() => projection.state, cfg.catalog, journal));
  server = new DnsServer(new Authority(() => zones.zones()), { host: cfg.host, port: cfg.port, transferAllow: cfg.transferAllow, notify: cfg.notify, sendsNotify: cfg.sendsNotify !== false, notifyRetry: cfg.notifyRetry, journal, rateLimit: cfg.rateLimit });
  await projection.start();
  await server.start();
  process.send?.({ ready: true, port: server.port });
  // A projection that cannot recover (its connection closed for good) would serve stale answers forever.
  setInterval(() => {
    if (projection.status !== "failed") return;
    process.stderr.write(`realm dns worker ${process.pid}: ${projection.failure?.message ?? "projection failed"}; exiting\n`);
    process.exit(1);
  }, 2_000).unref();
  process.on("message", (m: { stop?: boolean }) => {
    if (!m.stop) return;
    void (async () => {
      await server?.stop();
      await projection.stop();
      await nc.close();
      process.exit(0);
    })();
  });
}

main().catch((err: unknown) => {
  process.send?.({ error: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
