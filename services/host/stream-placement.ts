/**
 * Where the realm's streams live and how their copies are: each stream's configured replicas, its RAFT
 * leader and every peer (current or behind, how long since it was heard from), and its last sequence, from
 * one paged `$JS.API.STREAM.LIST` (configs and state, no messages: what the realm-system identity may ask).
 * A single server has no `cluster` block: the server answering is then the stream's one copy. A stream
 * whose leader did not answer the list is reported without peers and with the problem said.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import type { ApiError, StreamInfo } from "@nats-io/jetstream";
import { RealmError, toRealmError } from "../kernel/errors.js";

export interface StreamPeer {
  server: string;
  role: "leader" | "replica";
  /** Caught up with the leader (the leader itself always is). */
  current: boolean;
  /** The group considers the peer offline. */
  offline: boolean;
  /** Operations the peer is behind the leader (replicas only; 0 when the server leaves it out). */
  lag: number;
  /** Milliseconds since the leader last heard from the peer (replicas only). */
  activeMs?: number;
}

export interface StreamPlacement {
  stream: string;
  /** The replicas the stream is configured with (num_replicas). */
  replicas: number;
  /** The server whose copy leads, null when none does (no leader elected, or it did not answer). */
  leader: string | null;
  /** The leader first, then its followers; a configured replica the server does not list is missing. */
  peers: StreamPeer[];
  messages: number;
  lastSeq: number;
  /** What keeps the stream from being placed as configured: absent, its leader not answering. */
  problem?: string;
}

interface StreamListResponse {
  total?: number;
  offset?: number;
  limit?: number;
  streams?: StreamInfo[] | null;
  /** Streams whose leader did not answer the meta leader's collection (a clustered server). */
  missing?: string[];
  error?: ApiError;
}

const nanosToMs = (n: number | undefined) => (typeof n === "number" ? Math.round(n / 1e6) : undefined);

/** One stream's placement from its info; `server` is the answering server's name (a single server's only copy). */
export function placementOf(info: StreamInfo, server: string): StreamPlacement {
  const c = info.cluster;
  const base = { stream: info.config.name, replicas: info.config.num_replicas ?? 1, messages: info.state.messages, lastSeq: info.state.last_seq };
  if (!c) return { ...base, leader: server, peers: [{ server, role: "leader", current: true, offline: false, lag: 0 }] };
  const leader = c.leader ?? null;
  const followers: StreamPeer[] = (c.replicas ?? []).map((p) => {
    const activeMs = nanosToMs(p.active);
    return { server: p.name, role: "replica" as const, current: p.current === true, offline: p.offline === true, lag: p.lag ?? 0, ...(activeMs !== undefined ? { activeMs } : {}) };
  });
  const peers: StreamPeer[] = [...(leader ? [{ server: leader, role: "leader" as const, current: true, offline: false, lag: 0 }] : []), ...followers];
  return { ...base, leader, peers, ...(leader ? {} : { problem: "no leader elected" }) };
}

/**
 * The placement of the named streams (default every stream of the account), in the order asked. A stream
 * the account does not hold is `absent`; one whose leader did not answer is reported as such. Throws
 * UNAVAILABLE when JetStream does not answer the list at all (no meta leader, NATS down).
 */
export async function streamPlacements(nc: NatsConnection, opts: { streams?: readonly string[]; timeoutMs?: number } = {}): Promise<StreamPlacement[]> {
  const server = nc.info?.server_name ?? "?";
  const found = new Map<string, StreamPlacement>();
  const missing = new Set<string>();
  for (let offset = 0; ; ) {
    let r: StreamListResponse;
    try {
      r = (await nc.request("$JS.API.STREAM.LIST", JSON.stringify({ offset }), { timeout: opts.timeoutMs ?? 5_000 })).json<StreamListResponse>();
    } catch (err) {
      const e = toRealmError(err);
      throw new RealmError("UNAVAILABLE", `JetStream did not list the streams: ${e.message} (no JetStream meta leader, or NATS unreachable)`);
    }
    if (r.error) throw new RealmError("UNAVAILABLE", `JetStream refused the stream list: ${r.error.description} (${r.error.err_code})`);
    const page = r.streams ?? [];
    for (const s of page) found.set(s.config.name, placementOf(s, server));
    for (const m of r.missing ?? []) missing.add(m);
    offset += page.length;
    if (page.length === 0 || offset >= (r.total ?? 0)) break;
  }
  const names = opts.streams ?? [...new Set([...found.keys(), ...missing])].sort();
  return names.map(
    (name) =>
      found.get(name) ?? {
        stream: name,
        replicas: 0,
        leader: null,
        peers: [],
        messages: 0,
        lastSeq: 0,
        problem: missing.has(name) ? "its leader did not answer (no leader, or its server is down)" : "absent: the account holds no such stream",
      },
  );
}
