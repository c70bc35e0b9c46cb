import { describe, expect, it } from "vitest";
import { LagTracker } from "../../services/kernel/projection-lag.js";

describe("LagTracker: how long a projection has been behind its stream", () => {
  it("counts from the first observed stream end not applied, and stops once it is applied", () => {
    const t = new LagTracker();
    expect(t.lag(0)).toBeUndefined();
    expect(t.behindMs(0, 1_000)).toBe(0);
    t.observe(10, 10, 1_000);
    expect(t.lag(10)).toBe(0);
    expect(t.behindMs(10, 2_000)).toBe(0);
    t.observe(15, 10, 3_000);
    expect(t.lag(10)).toBe(5);
    expect(t.behindMs(10, 9_000)).toBe(6_000);
    // Progress that does not reach the end seen at 3 000 keeps counting from then.
    t.observe(20, 14, 10_000);
    expect(t.behindMs(14, 11_000)).toBe(8_000);
    // Reaching it counts again from the latest observation of a further end.
    expect(t.behindMs(15, 11_000)).toBe(1_000);
    expect(t.behindMs(20, 12_000)).toBe(0);
  });

  it("a projection that keeps up under load is never behind for long", () => {
    const t = new LagTracker();
    for (let i = 1; i <= 100; i++) {
      t.observe(i * 10, (i - 1) * 10, i * 1_000);
      expect(t.behindMs((i - 1) * 10, i * 1_000 + 500)).toBeLessThanOrEqual(1_500);
    }
  });
});
