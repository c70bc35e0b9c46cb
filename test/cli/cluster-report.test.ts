import { describe, expect, it } from "vitest";
import type { StreamInfo } from "@nats-io/jetstream";
import { placementOf } from "../../services/host/stream-placement.js";
import { buildClusterStatus, streamProblems } from "../../services/cli/cluster-report.js";

/**
 * The verdict's rules on the stream-info shapes nats-server 2.9.10 answers (a clustered stream's `cluster`
 * block lists the leader by name and the followers as replicas; a single server sends none), for the cases
 * the running-cluster test does not reach: a replica the server no longer lists, no leader, a projection
 * behind. cluster-status.test.ts covers the rest against real servers.
 */
const info = (name: string, replicas: number, cluster: StreamInfo["cluster"], last = 10): StreamInfo =>
  ({ config: { name, num_replicas: replicas }, state: { messages: last, last_seq: last }, cluster, created: "", ts: "" }) as unknown as StreamInfo; // the fields placementOf reads

const peer = (name: string, current = true) => ({ name, current, offline: false, active: 2_000_000_000, lag: current ? 0 : 5 });

describe("cluster status rules", () => {
  it("a stream with its leader and every configured copy current is whole; a copy not listed, not current or no leader is not", () => {
    expect(streamProblems(placementOf(info("S", 3, { name: "c", leader: "n1", replicas: [peer("n2"), peer("n3")] }), "n1"))).toEqual([]);
    expect(streamProblems(placementOf(info("S", 3, { name: "c", leader: "n1", replicas: [peer("n2")] }), "n1"))).toEqual(["1 of 3 replicas missing"]);
    expect(streamProblems(placementOf(info("S", 3, { name: "c", leader: "n1", replicas: [peer("n2"), peer("n3", false)] }), "n1"))).toEqual(["replica on n3 not current, 5 operations behind (last heard 2 s ago)"]);
    expect(streamProblems(placementOf(info("S", 3, { name: "c", replicas: [peer("n2"), peer("n3")] }), "n1"))[0]).toBe("no leader elected");
    // a single server: no cluster block, the answering server holds the one copy
    expect(placementOf(info("S", 1, undefined), "solo")).toMatchObject({ leader: "solo", peers: [{ server: "solo", role: "leader", current: true }] });
  });

  it("a projection more than --max-lag behind its stream, or stopped, makes the realm not whole; within it, it is", () => {
    const stats = (seq: number, status = "live") => [
      { name: "realm-dns", id: "s1", version: "1", started: "2026-01-01T00:00:00.000Z", metadata: { instance: "i1", host: "h", pid: "7" }, endpoints: [{ name: "q", data: { server: "n1", projections: [{ projection: "dns-names", stream: "S", seq, status, quarantined: 0 }] } }] },
    ];
    const base = { nats: { url: "nats://x", server: "n1", version: "2.9.10", cluster: "c", urls: [] }, now: new Date("2026-01-01T00:01:00.000Z") };
    const cluster = { answeredBy: { instance: "i1", server: "n1", cluster: "c", version: "2.9.10", urls: [] }, streams: [placementOf(info("S", 1, undefined, 200), "n1")] };
    const behind = buildClusterStatus({ ...base, cluster, stats: stats(50), maxLag: 100 });
    expect(behind.ok).toBe(false);
    expect(behind.problems).toEqual(["instance i1 (h pid 7): projection dns/dns-names is 150 behind S (at 50 of 200)"]);
    expect(behind.instances[0]).toMatchObject({ instance: "i1", uptimeSeconds: 60, contexts: ["dns"], servers: ["n1"], projections: [{ applied: 50, last: 200, lag: 150 }] });
    expect(buildClusterStatus({ ...base, cluster, stats: stats(150), maxLag: 100 }).ok).toBe(true);
    expect(buildClusterStatus({ ...base, cluster, stats: stats(200, "failed"), maxLag: 100 }).problems).toEqual(["instance i1 (h pid 7): projection dns/dns-names is failed"]);
    // no instance, no stream list: not whole, and said why
    expect(buildClusterStatus({ ...base, clusterError: "no responders", stats: [], maxLag: 100 }).problems).toEqual(["the streams could not be seen: no responders", "no realm instance answers $SRV.STATS (is `realm up` running against this NATS?)"]);
  });
});
