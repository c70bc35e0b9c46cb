import type { NatsConnection } from "@nats-io/nats-core";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { RealmContext } from "./context.js";

/** A projection behind its stream for longer than this (events seen at its end and not applied) is not ready. */
export const readyLagMs = (): number => Number(process.env.REALM_READY_LAG_MS ?? 5_000);

export interface ProjectionReadiness {
  context: string;
  projection: string;
  stream: string;
  status: string;
  applied: number;
  streamLast: number | null;
  lag: number | null;
  behindMs: number;
}

/**
 * What /readyz and /metrics say of JetStream and the projections: JetStream answers an account-info call
 * within 1.5 s (cached 1 s, so probes stay cheap), and each projection's lag against its stream's last
 * sequence (each asked at most once a second, 1.5 s timeout). Nothing is asked while NATS is disconnected.
 */
export class Readiness {
  private jsm: Promise<JetStreamManager> | undefined;
  private jetstreamAt = 0;
  private jetstreamOk = false;
  private asking: Promise<void> | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly contexts: () => RealmContext[],
  ) {}

  private async askJetStream(): Promise<void> {
    try {
      this.jsm ??= jetstreamManager(this.nc, { timeout: 1_500, checkAPI: false });
      await (await this.jsm).getAccountInfo();
      this.jetstreamOk = true;
    } catch {
      this.jetstreamOk = false;
    }
    this.jetstreamAt = Date.now();
  }

  /** "ok" when JetStream answered within the last second or so, else "unavailable". */
  async jetstream(natsConnected: boolean): Promise<"ok" | "unavailable"> {
    if (!natsConnected) {
      this.jetstreamOk = false;
      return "unavailable";
    }
    if (Date.now() - this.jetstreamAt > 1_000) {
      this.asking ??= this.askJetStream().finally(() => (this.asking = undefined));
      await this.asking;
    }
    return this.jetstreamOk ? "ok" : "unavailable";
  }

  /** Every context's projections with their lag (refreshed when NATS is connected). */
  async projections(natsConnected: boolean): Promise<ProjectionReadiness[]> {
    const all = this.contexts().flatMap((c) => (c.projections?.() ?? []).map((p) => ({ c, p })));
    if (natsConnected) await Promise.all(all.map(({ p }) => p.observeStream()));
    const now = Date.now();
    return all.map(({ c, p }) => ({ context: c.name, projection: p.def.name, stream: p.store.stream, status: p.status, ...p.lag(now) }));
  }

  /** The readiness rule (README "HTTP", docs/ARCHITECTURE.md): see `report`. */
  async report(natsConnected: boolean): Promise<{ ok: boolean; nats: string; jetstream: string; notReady: string[]; lagging: ProjectionReadiness[]; projections: ProjectionReadiness[] }> {
    const [jetstream, projections] = await Promise.all([this.jetstream(natsConnected), this.projections(natsConnected)]);
    const notReady = this.contexts().filter((c) => c.ready && !c.ready()).map((c) => c.name);
    const lagging = projections.filter((p) => p.behindMs > readyLagMs());
    const ok = natsConnected && jetstream === "ok" && notReady.length === 0 && lagging.length === 0;
    return { ok, nats: natsConnected ? "connected" : "disconnected", jetstream, notReady, lagging, projections };
  }
}
