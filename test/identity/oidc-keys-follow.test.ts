import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OidcKeys, type KeyMaterial } from "../../identity/oidc/keys.js";
import { Sealer } from "../../services/kernel/seal.js";
import { reconnectOptions } from "../../services/cli/connection.js";
import { startNats, type TestNats } from "../support/nats.js";

let nats: TestNats;
beforeAll(async () => {
  nats = await startNats();
});
afterAll(async () => nats?.stop());

describe("OIDC keys followed by another replica", () => {
  it("a rotation after nats-server was killed and restarted reaches the other replica's watch", async () => {
    const sealer = Sealer.generate();
    const a = await OidcKeys.open(await nats.connect(reconnectOptions), 1, sealer);
    const b = await OidcKeys.open(await nats.connect(reconnectOptions), 1, sealer);
    const seen: KeyMaterial[] = [];
    const unwatch = await b.watch((m) => seen.push(m));
    try {
      await a.rotate();
      const deadline = Date.now() + 30_000;
      while (seen.length < 1) {
        if (Date.now() > deadline) throw new Error("the first rotation did not reach replica B");
        await new Promise((r) => setTimeout(r, 50));
      }
      const t0 = performance.now();
      process.kill(nats.supervisor.pid!, "SIGKILL");
      // The supervisor restarts it on the same port; a rotation goes through once JetStream answers again.
      let kid: string | undefined;
      while (!kid) {
        if (Date.now() > deadline) throw new Error("no rotation succeeded after the restart");
        kid = await a.rotate().then((m) => m.jwks.keys[0]!.kid, () => undefined);
        if (!kid) await new Promise((r) => setTimeout(r, 200));
      }
      while (seen.at(-1)?.jwks.keys[0]?.kid !== kid) {
        if (Date.now() > deadline) throw new Error("the rotation after the restart did not reach replica B");
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(b.material.jwks.keys[0]!.kid).toBe(kid);
      process.stdout.write(`oidc keys: nats-server killed -> rotation seen by the other replica after ${Math.round(performance.now() - t0)} ms\n`);
    } finally {
      unwatch();
    }
  }, 60_000);
});
