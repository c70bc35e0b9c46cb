import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../../services/nats/supervisor.js";
import { REALM_STREAMS } from "../../services/cli/identities.js";
import { EXIT_CODES, EXIT_DEGRADED } from "../../services/cli/exit-codes.js";
import type { ClusterStatus } from "../../services/cli/cluster-report.js";
import { runRealm, startRealmProcess } from "../support/cli.js";
import { startCluster, type TestCluster } from "../support/nats-cluster.js";

/**
 * `realm cluster status` against running realms: the default local one (one server, R1 streams, one
 * instance), and two instances on a 3-node cluster with R3 streams, through a node's crash and return.
 */
const dirs: string[] = [];
const realms: Awaited<ReturnType<typeof startRealmProcess>>[] = [];
let cluster: TestCluster | undefined;
afterAll(async () => {
  for (const r of realms) {
    r.child.kill("SIGTERM");
    await r.exited;
  }
  await cluster?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 60_000);

const tempDir = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};

/** `realm cluster status -o json`: its exit status and report (the report is printed whatever the verdict). */
async function clusterStatus(env: Record<string, string>): Promise<{ code: number | null; report: ClusterStatus; stderr: string }> {
  const r = await runRealm(["cluster", "status", "-o", "json"], env);
  if (r.code !== 0 && r.code !== EXIT_DEGRADED) throw new Error(`realm cluster status exited ${r.code}: ${r.stderr}`);
  return { code: r.code, report: JSON.parse(r.stdout) as ClusterStatus, stderr: r.stderr };
}

/** Asks again until `done` holds for an answer (each answer is a new look at the realm), or fails at the deadline with the last one. */
async function until(env: Record<string, string>, done: (s: Awaited<ReturnType<typeof clusterStatus>>) => boolean, ms: number, what: string) {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = await clusterStatus(env);
    if (done(s)) return s;
    if (Date.now() > deadline) throw new Error(`${what} not seen within ${ms / 1000} s; last report (exit ${s.code}): ${JSON.stringify({ problems: s.report.problems, instances: s.report.instances.length })}`);
  }
}

const everyLagZero = (r: ClusterStatus) => r.instances.length > 0 && r.instances.every((i) => i.projections.length > 0 && i.projections.every((p) => p.lag === 0));

describe("realm cluster status", () => {
  it("on the default local realm: one server, every stream with 1 replica led by it, one instance, every projection caught up after a write", async () => {
    const data = tempDir("realm-cs-local-");
    const xdg = tempDir("realm-cs-xdg-");
    const [natsPort, httpPort, dnsPort] = [await freePort(), await freePort(), await freePort()];
    const realm = await startRealmProcess(["up", "--data", data, "--nats-port", String(natsPort), "--http-port", String(httpPort), "--dns-port", String(dnsPort)], "cim-realm is up", {}, 90_000);
    realms.push(realm);
    const base = { REALM_DATA: data, REALM_NATS_URL: `nats://127.0.0.1:${natsPort}`, REALM_URL: `http://127.0.0.1:${httpPort}`, XDG_CONFIG_HOME: xdg };

    // The streams come from an admin query: without a credential the realm says so (exit 8), no report.
    const anon = await runRealm(["cluster", "status", "-o", "json"], base);
    expect(anon.code, anon.stderr).toBe(EXIT_CODES.UNAUTHORIZED);
    expect(anon.stderr).toMatch(/^error: UNAUTHORIZED: /m);

    const key = await runRealm(["identity", "bootstrap", "-q"], base);
    expect(key.code, key.stderr).toBe(0);
    const env = { ...base, REALM_TOKEN: key.stdout.trim() };
    const zone = await runRealm(["zone", "create", "lab.example.", "--ns", "ns1.lab.example."], env);
    expect(zone.code, zone.stderr).toBe(0);

    // Every projection of the instance reaches its stream's end (the auditor's and pki's follow REALM_DNS too).
    const { code, report } = await until(env, (s) => s.code === 0 && everyLagZero(s.report), 30_000, "every projection at lag 0");
    expect(code).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.problems).toEqual([]);
    const server = report.nats.server;
    expect(report.nats.cluster).toBeNull();
    expect(report.servers).toEqual([{ name: server, connected: true, leads: REALM_STREAMS.length, follows: 0, behind: 0 }]);
    expect(report.streams.map((s) => s.stream).sort()).toEqual([...REALM_STREAMS].sort());
    for (const s of report.streams) expect(s, s.stream).toMatchObject({ replicas: 1, current: 1, leader: server, ok: true, peers: [{ server, role: "leader", current: true }] });
    const dns = report.streams.find((s) => s.stream === "REALM_DNS")!;
    expect(dns.lastSeq).toBeGreaterThanOrEqual(1);

    expect(report.instances).toHaveLength(1);
    const [inst] = report.instances;
    expect(inst!.contexts).toEqual(expect.arrayContaining(["dns", "identity", "pki", "realm"]));
    expect(inst!.pid).toBe(String(realm.child.pid));
    expect(inst!.uptimeSeconds).toBeGreaterThanOrEqual(0);
    expect(inst!.servers).toEqual([server]);
    // the dns context's projection of REALM_DNS has applied the zone's event: at the stream's last sequence
    const dnsProjections = inst!.projections.filter((p) => p.context === "dns" && p.stream === "REALM_DNS");
    expect(dnsProjections.length).toBeGreaterThan(0);
    for (const p of dnsProjections) expect(p).toMatchObject({ applied: dns.lastSeq, last: dns.lastSeq, lag: 0, status: "live" });

    // the same report as a table and as YAML
    const table = await runRealm(["cluster", "status", "-o", "table"], env);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^STREAM +REPLICAS +CURRENT +LEADER/m);
    expect(table.stdout).toMatch(new RegExp(`^REALM_DNS +1 +1 +${server} +${server}\\* +\\d+ +ok$`, "m"));
    expect(table.stdout).toMatch(/^ok: /m);
    const yaml = await runRealm(["cluster", "status", "-o", "yaml"], env);
    expect(yaml.stdout).toMatch(/^ok: true$/m);

    realm.child.kill("SIGTERM");
    await realm.exited;
    // NATS gone with the realm: exit 10
    const down = await runRealm(["cluster", "status", "-o", "json"], env);
    expect(down.code).toBe(EXIT_CODES.UNAVAILABLE);
  }, 180_000);

  it("on a 3-node cluster with two instances: both listed with their contexts, every stream R3 with a leader; a node's crash is reported (exit 13) until it is back (exit 0); so is a lost quorum", async () => {
    cluster = await startCluster(3);
    const c = cluster;
    const up = async (data: string) => {
      const [httpPort, dnsPort] = [await freePort(), await freePort()];
      const r = await startRealmProcess(["up", "--data", data, "--nats", c.servers.join(","), "--replicas", "3", "--http-port", String(httpPort), "--dns-port", String(dnsPort), "--insecure-no-auth"], "cim-realm is up", {}, 90_000);
      realms.push(r);
      return r;
    };
    const a = tempDir("realm-cs-a-");
    const b = tempDir("realm-cs-b-");
    const first = await up(a);
    // The second instance shares the realm's trust, event keys and seal key (a copy of the data dir).
    rmSync(b, { recursive: true, force: true });
    cpSync(a, b, { recursive: true, filter: (src) => !src.endsWith("realm.lock") });
    const second = await up(b);
    const env = { REALM_NATS_URL: c.servers.join(","), XDG_CONFIG_HOME: tempDir("realm-cs-xdg-") };

    const whole = await until(env, (s) => s.code === 0 && s.report.instances.length === 2, 60_000, "both instances and a whole realm");
    const pids = whole.report.instances.map((i) => i.pid).sort();
    expect(pids).toEqual([String(first.child.pid), String(second.child.pid)].sort());
    for (const i of whole.report.instances) {
      expect(i.contexts).toEqual(expect.arrayContaining(["dns", "identity", "pki", "realm"]));
      expect(i.projections.length).toBeGreaterThan(0);
      expect(i.projections.every((p) => p.lag !== null && p.lag <= 100)).toBe(true);
    }
    expect(whole.report.nats.cluster).toBe("realm-test");
    expect(whole.report.servers.map((s) => s.name)).toEqual(["n1", "n2", "n3"]);
    expect(whole.report.streams.map((s) => s.stream).sort()).toEqual([...REALM_STREAMS].sort());
    for (const s of whole.report.streams) {
      expect(s, s.stream).toMatchObject({ replicas: 3, current: 3, ok: true });
      expect(s.leader, s.stream).toMatch(/^n[123]$/);
      expect(s.peers.map((p) => p.server).sort(), s.stream).toEqual(["n1", "n2", "n3"]);
    }

    await c.kill("n2");
    // Each stream goes on with a leader on n1 or n3; n2's copies are reported not current, and the verdict is 13.
    const crashed = await until(
      env,
      (s) => s.code === EXIT_DEGRADED && s.report.streams.length === REALM_STREAMS.length && s.report.streams.every((st) => st.leader !== null && st.leader !== "n2" && st.peers.some((p) => p.server === "n2" && !p.current)),
      60_000,
      "n2's replicas not current",
    );
    expect(crashed.report.ok).toBe(false);
    for (const s of crashed.report.streams) {
      expect(s, s.stream).toMatchObject({ replicas: 3, current: 2, ok: false });
      expect(s.problems.join(";"), s.stream).toMatch(/replica on n2 (not current|offline)/);
    }
    expect(crashed.report.servers.find((s) => s.name === "n2")).toMatchObject({ leads: 0, follows: REALM_STREAMS.length, behind: REALM_STREAMS.length });
    expect(crashed.report.problems).toEqual(expect.arrayContaining([expect.stringMatching(/^stream REALM_DNS: replica on n2 /)]));

    await c.start("n2");
    const back = await until(env, (s) => s.code === 0, 90_000, "a whole realm after n2's return");
    expect(back.report.streams.every((s) => s.current === 3 && s.ok)).toBe(true);
    expect(back.report.instances).toHaveLength(2);

    // Two of three nodes down: no quorum, no stream (nor the meta leader) has a leader; the verdict is 13, said why.
    await c.kill("n2");
    await c.kill("n3");
    const leaderless = await until(env, (s) => s.code === EXIT_DEGRADED && s.report.problems.some((p) => /^(the streams could not be seen: |stream \S+: (no leader|its leader did not answer))/.test(p)), 60_000, "the streams without a leader");
    expect(leaderless.report.ok).toBe(false);
    await c.start("n2");
    await c.start("n3");
    await until(env, (s) => s.code === 0, 90_000, "a whole realm after n2's and n3's return");
  }, 420_000);
});
