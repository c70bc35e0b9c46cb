import type { Logger } from "pino";
import { newId } from "../../services/kernel/envelope.js";
import { dueChanges, RESIGN_INTERVAL_S, rolling, type DnssecCommand, type DnssecState } from "../domain/dnssec.js";
import type { ZoneState } from "../domain/zone.js";
import { maxTtl, newKey } from "../dnssec-endpoints.js";
import type { DnssecKeyStore } from "./key-store.js";

export interface TickerDeps {
  states(): Map<string, DnssecState>;
  zones(): Map<string, ZoneState>;
  keys: DnssecKeyStore;
  run(zone: string, cmd: DnssecCommand, ctx: { commandId: string; actor: string; correlationId: string; causationId: string }): Promise<unknown>;
  /** Steps the zone's SOA serial (a `zone.soa` with no change). */
  bumpSerial(zone: string, ctx: { commandId: string; actor: string; correlationId: string; causationId: string }): Promise<unknown>;
  log: Logger;
  now?: () => Date;
}

const meta = () => {
  const id = newId();
  return { commandId: id, actor: DNSSEC_ACTOR, correlationId: id, causationId: id };
};

/** The actor of the key changes the schedule makes. */
export const DNSSEC_ACTOR = "realm-dnssec";

/**
 * One pass of the key schedule over every signed zone: the state changes that are due (a published key
 * becomes active, a retired one removed: `advance`), a ZSK rollover when the active ZSK has signed for the
 * policy's `zskLifetime`, the private halves of removed keys purged from the store, and once a week the
 * zone's serial stepped (then `DnssecZoneResigned`): a secondary transfers again and gets fresh signatures
 * before the ones it holds (14 days) run out, and cached answers are made again with fresh ones.
 */
export async function dnssecTick(d: TickerDeps): Promise<void> {
  const now = (d.now?.() ?? new Date()).toISOString();
  for (const [zone, s] of d.states()) {
    const z = d.zones().get(zone);
    if (!s.enabled || !z) continue;
    try {
      const due = dueChanges(s, now, maxTtl(z, s));
      if (due.length > 0) await d.run(zone, { type: "advance", now, maxTtl: maxTtl(z, s) }, meta());
      for (const c of due) if (c.to === "removed") await d.keys.purge(zone, c.id);
      if (s.resignedAt && Date.parse(now) >= Date.parse(s.resignedAt) + RESIGN_INTERVAL_S * 1000) {
        await d.bumpSerial(zone, meta());
        await d.run(zone, { type: "resigned", now }, meta());
      }
      const cur = d.states().get(zone)!;
      const life = cur.policy.zskLifetime;
      const active = cur.keys.find((k) => k.role === "zsk" && k.state === "active");
      if (life > 0 && active?.activeAt && !rolling(cur, "zsk") && Date.parse(now) >= Date.parse(active.activeAt) + life * 1000) {
        const key = await newKey(d.keys, zone, "zsk", cur.policy.algorithm, "published", now);
        await d.run(zone, { type: "publish", key, reason: "schedule" }, meta());
      }
    } catch (err) {
      d.log.warn({ zone, err: err instanceof Error ? err.message : String(err) }, "dnssec key schedule failed (retried at the next tick)");
    }
  }
}

/** Runs `dnssecTick` every `everyMs` (one pass at a time); returns the stop function. */
export function startDnssecTicker(d: TickerDeps, everyMs: number): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void dnssecTick(d).finally(() => (running = false));
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
