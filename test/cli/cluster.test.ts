import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager, StorageType } from "@nats-io/jetstream";
import { freePort } from "../../services/nats/supervisor.js";
import { REALM_STREAMS } from "../../services/cli/identities.js";
import { streamName } from "../../services/kernel/subjects.js";
import { runRealm, startRealmProcess } from "../support/cli.js";
import { startCluster, type TestCluster } from "../support/nats-cluster.js";
import { EXIT_USAGE, EXIT_CODES } from "../../services/cli/exit-codes.js";

/** `realm up --nats <cluster> --replicas 3` on a 3-node cluster of the Debian nats-server, on loopback. */
let cluster: TestCluster;
const dirs: string[] = [];
beforeAll(async () => {
  cluster = await startCluster(3);
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});


describe("a realm on a NATS cluster", () => {
  it("--replicas gives every stream and bucket its replicas, moving those that exist with others; the realm serves", async () => {
    const nc = await cluster.connect();
    const jsm = await jetstreamManager(nc);
    // A stream made earlier with one replica (an R1 realm moving to the cluster).
    await jsm.streams.add({ name: streamName("dns"), subjects: ["realm.dns.events.>"], storage: StorageType.File, num_replicas: 1, allow_direct: true });
    const data = mkdtempSync(join(tmpdir(), "realm-cluster-"));
    dirs.push(data);
    const [httpPort, dnsPort] = [await freePort(), await freePort()];
    const realm = await startRealmProcess(["up", "--data", data, "--nats", cluster.servers.join(","), "--replicas", "3", "--http-port", String(httpPort), "--dns-port", String(dnsPort), "--insecure-no-auth"], "cim-realm is up", {}, 90_000);
    try {
      for (const s of REALM_STREAMS) expect((await jsm.streams.info(s)).config.num_replicas, `${s} (realm up said: ${realm.stderr()})`).toBe(3);
      const env = { REALM_NATS_URL: cluster.servers.join(",") };
      const zone = await runRealm(["zone", "create", "lab.example.", "--ns", "ns1.lab.example."], env);
      expect(zone.code, zone.stderr).toBe(0);
      const rec = await runRealm(["record", "add", "www.lab.example.", "A", "192.0.2.7"], env);
      expect(rec.code, rec.stderr).toBe(0);
      const list = await runRealm(["zone", "list"], env);
      expect(list.stdout).toContain("lab.example.");
      const dig = spawnSync("dig", ["@127.0.0.1", "-p", String(dnsPort), "www.lab.example.", "A", "+short", "+tries=1", "+time=2"], { encoding: "utf8" });
      expect(dig.stdout.trim()).toBe("192.0.2.7");
    } finally {
      realm.child.kill("SIGTERM");
      await realm.exited;
    }
  }, 180_000);

  it("--replicas above 1 without --nats is refused before anything starts (the local nats-server is one node)", async () => {
    const data = mkdtempSync(join(tmpdir(), "realm-cluster-"));
    dirs.push(data);
    const r = await runRealm(["up", "--data", data, "--replicas", "3", "--http-port", "0"]);
    expect(r.code).toBe(EXIT_CODES.VALIDATION);
    expect(r.stderr).toMatch(/--replicas 3 needs a NATS cluster/);
    expect((await runRealm(["up", "--replicas", "0"])).code).toBe(EXIT_USAGE);
  });
});
