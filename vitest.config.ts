import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Each test file starts its own nats-server; two cores, so keep files in parallel but bounded.
    maxWorkers: 2,
    pool: "forks",
  },
});
