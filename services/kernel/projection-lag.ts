/**
 * How long a projection has been behind its stream, from observations of the stream's last sequence: the
 * time since a stream end it has not reached yet was first seen (0 when it has reached every end seen).
 * A projection that keeps up under load is never behind for long; one whose consumer is stuck is.
 */
export class LagTracker {
  /** The stream's last sequence at the latest observation (undefined before the first one). */
  streamLast: number | undefined;
  observedAt = 0;
  private unmet: { seq: number; at: number } | undefined;

  observe(streamLast: number, applied: number, now = Date.now()): void {
    this.streamLast = streamLast;
    this.observedAt = now;
    this.settle(applied);
  }

  /** Milliseconds since the oldest observed stream end the projection has not applied was seen. */
  behindMs(applied: number, now = Date.now()): number {
    this.settle(applied);
    return this.unmet ? now - this.unmet.at : 0;
  }

  /** Events of the stream (as last observed) not applied yet; undefined before the first observation. */
  lag(applied: number): number | undefined {
    return this.streamLast === undefined ? undefined : Math.max(0, this.streamLast - applied);
  }

  private settle(applied: number): void {
    if (this.unmet && applied >= this.unmet.seq) this.unmet = undefined;
    if (!this.unmet && this.streamLast !== undefined && applied < this.streamLast) this.unmet = { seq: this.streamLast, at: this.observedAt };
  }
}
