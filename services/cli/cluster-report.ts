/**
 * `realm cluster status`'s report and its verdict, from what the CLI gathered: the NATS server it is on,
 * the realm's `cluster` query (stream placement, services/host/stream-placement.ts) and every instance's
 * `$SRV.STATS` (services/host/instance.ts). Pure: no I/O, so the verdict's rules read in one place. The
 * realm is whole when every stream has a leader and all its configured replicas current, and every
 * instance's projections are within `maxLag` of their stream's last sequence.
 */
import type { StreamPeer, StreamPlacement } from "../host/stream-placement.js";
import type { ContextStatsData } from "../host/instance.js";
import { renderTable } from "./format.js";

/** One `$SRV.STATS` answer, as far as the report reads it. */
export interface ServiceStats {
  name: string;
  id: string;
  version?: string;
  started?: string;
  metadata?: Record<string, string> | null;
  endpoints?: { name?: string; data?: unknown }[];
}

export interface ClusterQueryAnswer {
  answeredBy: { instance: string | null; server: string | null; cluster: string | null; version: string | null; urls: string[] };
  streams: StreamPlacement[];
}

export interface ClusterInputs {
  /** The server this CLI is connected to. */
  nats: { url: string; server: string; version: string; cluster: string | null; urls: string[] };
  cluster?: ClusterQueryAnswer | undefined;
  /** Why `cluster` is missing (no instance answered it, JetStream did not list the streams). */
  clusterError?: string | undefined;
  stats: ServiceStats[];
  now: Date;
  maxLag: number;
}

export interface StreamReport extends StreamPlacement {
  /** Peers caught up with the leader (the leader included). */
  current: number;
  ok: boolean;
  problems: string[];
}

export interface ProjectionReport {
  context: string;
  projection: string;
  stream: string;
  applied: number;
  /** The stream's last sequence when the streams were listed; null when the stream is not known. */
  last: number | null;
  lag: number | null;
  status: string;
}

export interface InstanceReport {
  instance: string;
  host: string;
  pid: string;
  version: string;
  started: string | null;
  uptimeSeconds: number | null;
  /** The contexts it serves (one micro-service each). */
  contexts: string[];
  /** The micro-service ids of its contexts (what `$SRV.*.<name>.<id>` reaches). */
  services: { context: string; id: string }[];
  /** The NATS servers its contexts' connections are on. */
  servers: string[];
  projections: ProjectionReport[];
}

export interface ServerReport {
  name: string;
  /** This CLI's connection is on it. */
  connected: boolean;
  /** Streams whose copy on it leads. */
  leads: number;
  /** Streams it holds a following copy of. */
  follows: number;
  /** Of those, the copies not current (the server down, or catching up). */
  behind: number;
}

export interface ClusterStatus {
  ok: boolean;
  problems: string[];
  nats: ClusterInputs["nats"];
  servers: ServerReport[];
  streams: StreamReport[];
  instances: InstanceReport[];
}

const seconds = (ms: number | undefined) => (ms === undefined ? "" : ` (last heard ${Math.round(ms / 1000)} s ago)`);

/** What keeps one stream from being whole: no leader, replicas missing, copies not current. */
export function streamProblems(s: StreamPlacement): string[] {
  const out: string[] = [];
  if (s.problem) out.push(s.problem);
  else if (!s.leader) out.push("no leader");
  const missing = s.replicas - s.peers.length;
  if (!s.problem && missing > 0) out.push(`${missing} of ${s.replicas} replicas missing`);
  for (const p of s.peers.filter((x: StreamPeer) => !x.current || x.offline)) out.push(`replica on ${p.server} ${p.offline ? "offline" : "not current"}${p.lag ? `, ${p.lag} operations behind` : ""}${seconds(p.activeMs)}`);
  return out;
}

const isContextData = (d: unknown): d is ContextStatsData => typeof d === "object" && d !== null && Array.isArray((d as { projections?: unknown }).projections);

/** Every instance (the services that share an `instance` id), with its contexts and projections. */
export function instancesOf(stats: ServiceStats[], lastSeq: Map<string, number>, now: Date): InstanceReport[] {
  const byInstance = new Map<string, ServiceStats[]>();
  for (const s of stats) {
    if (!s.name.startsWith("realm-")) continue;
    // A service without the metadata (an older realm) is an instance of its own.
    const key = s.metadata?.instance ?? `service:${s.id}`;
    byInstance.set(key, [...(byInstance.get(key) ?? []), s]);
  }
  const out: InstanceReport[] = [];
  for (const [instance, services] of byInstance) {
    const first = services[0]!;
    const started = services.map((s) => s.started).filter((x): x is string => !!x).sort()[0] ?? null;
    const projections: ProjectionReport[] = [];
    const servers = new Set<string>();
    for (const s of services) {
      const data = (s.endpoints ?? []).map((e) => e.data).find(isContextData);
      if (!data) continue;
      if (data.server) servers.add(data.server);
      for (const p of data.projections) {
        const last = lastSeq.get(p.stream);
        projections.push({ context: s.name.slice("realm-".length), projection: p.projection, stream: p.stream, applied: p.seq, last: last ?? null, lag: last === undefined ? null : Math.max(0, last - p.seq), status: p.status });
      }
    }
    out.push({
      instance: first.metadata?.instance ?? instance,
      host: first.metadata?.host ?? "?",
      pid: first.metadata?.pid ?? "?",
      version: first.version ?? "?",
      started,
      uptimeSeconds: started ? Math.max(0, Math.round((now.getTime() - Date.parse(started)) / 1000)) : null,
      contexts: [...new Set(services.map((s) => s.name.slice("realm-".length)))].sort(),
      services: services.map((s) => ({ context: s.name.slice("realm-".length), id: s.id })).sort((a, b) => a.context.localeCompare(b.context) || a.id.localeCompare(b.id)),
      servers: [...servers].sort(),
      projections: projections.sort((a, b) => a.context.localeCompare(b.context) || a.projection.localeCompare(b.projection) || a.stream.localeCompare(b.stream)),
    });
  }
  return out.sort((a, b) => a.host.localeCompare(b.host) || Number(a.pid) - Number(b.pid) || a.instance.localeCompare(b.instance));
}

/** The NATS servers the report knows of: the one this CLI is on and every server holding a copy of a stream. */
function serversOf(nats: ClusterInputs["nats"], streams: StreamPlacement[]): ServerReport[] {
  const by = new Map<string, ServerReport>();
  const get = (name: string) => {
    let s = by.get(name);
    if (!s) by.set(name, (s = { name, connected: name === nats.server, leads: 0, follows: 0, behind: 0 }));
    return s;
  };
  get(nats.server);
  for (const st of streams)
    for (const p of st.peers) {
      const s = get(p.server);
      if (p.role === "leader") s.leads++;
      else {
        s.follows++;
        if (!p.current || p.offline) s.behind++;
      }
    }
  return [...by.values()].sort((a, b) => a.name.localeCompare(b.name));
}

export function buildClusterStatus(i: ClusterInputs): ClusterStatus {
  const placements = i.cluster?.streams ?? [];
  const streams: StreamReport[] = placements.map((s) => {
    const problems = streamProblems(s);
    return { ...s, current: s.peers.filter((p) => p.current && !p.offline).length, ok: problems.length === 0, problems };
  });
  const lastSeq = new Map(placements.filter((s) => !s.problem).map((s) => [s.stream, s.lastSeq]));
  const instances = instancesOf(i.stats, lastSeq, i.now);
  const problems: string[] = [];
  if (!i.cluster) problems.push(`the streams could not be seen: ${i.clusterError ?? "no answer"}`);
  for (const s of streams) for (const p of s.problems) problems.push(`stream ${s.stream}: ${p}`);
  if (instances.length === 0) problems.push("no realm instance answers $SRV.STATS (is `realm up` running against this NATS?)");
  for (const inst of instances)
    for (const p of inst.projections) {
      if (p.status === "failed" || p.status === "stopped") problems.push(`instance ${inst.instance} (${inst.host} pid ${inst.pid}): projection ${p.context}/${p.projection} is ${p.status}`);
      else if (p.lag !== null && p.lag > i.maxLag) problems.push(`instance ${inst.instance} (${inst.host} pid ${inst.pid}): projection ${p.context}/${p.projection} is ${p.lag} behind ${p.stream} (at ${p.applied} of ${p.last})`);
    }
  return { ok: problems.length === 0, problems, nats: i.nats, servers: serversOf(i.nats, placements), streams, instances };
}

const duration = (s: number | null) => (s === null ? "-" : s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : s < 172_800 ? `${Math.round(s / 3600)}h` : `${Math.round(s / 86_400)}d`);

/** The report as text (`-o table`). */
export function clusterStatusText(r: ClusterStatus): string {
  const n = r.nats;
  const out = [`NATS  ${n.url}  server ${n.server} v${n.version}${n.cluster ? `  cluster ${n.cluster}` : "  (no cluster)"}${n.urls.length ? `  known ${n.urls.join(",")}` : ""}`, ""];
  out.push(renderTable(["SERVER", "CONNECTED", "LEADS", "FOLLOWS", "BEHIND"], r.servers.map((s) => [s.name, s.connected ? "yes" : "", String(s.leads), String(s.follows), String(s.behind)])));
  out.push(
    renderTable(
      ["STREAM", "REPLICAS", "CURRENT", "LEADER", "PEERS", "LAST SEQ", "STATUS"],
      r.streams.map((s) => [s.stream, String(s.replicas), String(s.current), s.leader ?? "-", s.peers.map((p) => `${p.server}${p.role === "leader" ? "*" : p.current && !p.offline ? "" : "!"}`).join(",") || "-", String(s.lastSeq), s.ok ? "ok" : s.problems.join("; ")]),
    ),
  );
  if (r.instances.length) {
    out.push(renderTable(["INSTANCE", "HOST", "PID", "VERSION", "UPTIME", "NATS", "CONTEXTS"], r.instances.map((i) => [i.instance, i.host, i.pid, i.version, duration(i.uptimeSeconds), i.servers.join(",") || "-", i.contexts.join(",")])));
    out.push(
      renderTable(
        ["INSTANCE", "CONTEXT", "PROJECTION", "STREAM", "APPLIED", "LAST", "LAG", "STATUS"],
        r.instances.flatMap((i) => i.projections.map((p) => [i.instance, p.context, p.projection, p.stream, String(p.applied), p.last === null ? "-" : String(p.last), p.lag === null ? "-" : String(p.lag), p.status])),
      ),
    );
  }
  out.push(r.ok ? "ok: every stream has its leader and replicas current; every projection is caught up\n" : `NOT OK:\n${r.problems.map((p) => `  ${p}`).join("\n")}\n`);
  return out.join("\n");
}
