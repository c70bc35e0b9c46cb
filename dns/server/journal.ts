import type { ZoneStep } from "../domain/zone-diff.js";

export interface JournalLimits {
  /** Serial steps kept per zone (default 1,000). */
  stepsPerZone?: number;
  /** Records (deleted + added) kept per zone across its steps (default 10,000). */
  recordsPerZone?: number;
  /** Records kept across every zone (default 200,000): past it the zone holding the most loses its oldest step. */
  records?: number;
}

interface ZoneSteps {
  steps: ZoneStep[];
  records: number;
}

const size = (s: ZoneStep) => s.deleted.length + s.added.length + 2;

/**
 * The recent serial steps of each zone, in memory, for IXFR (RFC 1995): filled by the dns-names projection
 * as it applies the zone events (so a process that replays REALM_DNS from its start holds the last steps of
 * the history again), bounded per zone and in all. A zone replaced whole (create, delete, import) loses its
 * steps: no secondary can follow it incrementally. A secondary whose serial is older than the oldest step
 * kept is answered the whole zone, which is what IXFR does then anyway.
 */
export class ZoneJournal {
  private readonly zones = new Map<string, ZoneSteps>();
  private total = 0;
  private readonly stepsPerZone: number;
  private readonly recordsPerZone: number;
  private readonly maxRecords: number;

  constructor(limits: JournalLimits = {}) {
    this.stepsPerZone = limits.stepsPerZone ?? 1_000;
    this.recordsPerZone = limits.recordsPerZone ?? 10_000;
    this.maxRecords = limits.records ?? 200_000;
  }

  /** Records one step (a reset forgets the zone's steps). */
  record(zone: string, step: ZoneStep | "reset"): void {
    if (step === "reset") return this.forget(zone);
    let z = this.zones.get(zone);
    if (z && z.steps.length > 0 && z.steps[z.steps.length - 1]!.to !== step.from) this.forget(zone);
    z = this.zones.get(zone);
    if (!z) this.zones.set(zone, (z = { steps: [], records: 0 }));
    const n = size(step);
    // A step bigger than the zone's budget is never kept: the history restarts after it.
    if (n > this.recordsPerZone) return this.forget(zone);
    z.steps.push(step);
    z.records += n;
    this.total += n;
    while (z.steps.length > this.stepsPerZone || z.records > this.recordsPerZone) this.dropOldest(z);
    while (this.total > this.maxRecords) {
      let biggest: ZoneSteps | undefined;
      for (const other of this.zones.values()) if (!biggest || other.records > biggest.records) biggest = other;
      if (!biggest || biggest.steps.length === 0) break;
      this.dropOldest(biggest);
    }
  }

  private dropOldest(z: ZoneSteps): void {
    const s = z.steps.shift();
    if (!s) return;
    z.records -= size(s);
    this.total -= size(s);
  }

  forget(zone: string): void {
    const z = this.zones.get(zone);
    if (!z) return;
    this.total -= z.records;
    this.zones.delete(zone);
  }

  /**
   * The steps from `serial` to `current`, in order, or null when the journal does not reach back to
   * `serial` or does not end at `current` (then only the whole zone answers).
   */
  since(zone: string, serial: number, current: number): ZoneStep[] | null {
    const steps = this.zones.get(zone)?.steps;
    if (!steps || steps.length === 0 || steps[steps.length - 1]!.to !== current) return null;
    const i = steps.findIndex((s) => s.from === serial);
    return i < 0 ? null : steps.slice(i);
  }

  /** Steps and records held (for /metrics and tests). */
  get held(): { zones: number; steps: number; records: number } {
    let steps = 0;
    for (const z of this.zones.values()) steps += z.steps.length;
    return { zones: this.zones.size, steps, records: this.total };
  }
}
