import { createHash } from "node:crypto";
import { BlockList, isIPv4, isIPv6 } from "node:net";
import type { Decider, EventEnvelope, NewEvent, ProjectionDefinition } from "../../services/kernel/index.js";
import { alreadyExists, invalid, notFound } from "../../services/kernel/index.js";
import { assertName, dataOf, ev } from "../domain/common.js";

/**
 * Reply attributes a NAS gets for a person in `group` (the first allowed group of the person, in the
 * client's order, that has one): a VLAN (RFC 3580: Tunnel-Type VLAN, Tunnel-Medium-Type 802,
 * Tunnel-Private-Group-ID) and a Filter-Id.
 */
export interface GroupReply {
  group: string;
  vlan?: string | undefined;
  filterId?: string | undefined;
}

/**
 * A RADIUS client (NAS): where its packets come from (an address or CIDR) and which groups may sign in
 * through it. Its shared secret is never in an event: it is sealed in the credential store
 * (`radius-client:<id>`) and shown once when the client is added.
 */
export interface RadiusClientState {
  id: string;
  exists: boolean;
  /** An address or CIDR (`10.0.0.0/24`, `2001:db8::/64`, `127.0.0.1`). */
  address: string;
  allowedGroups: string[];
  replies: GroupReply[];
  addedAt?: string | undefined;
}

export type RadiusClientCommand = { type: "add"; address: string; allowedGroups: string[]; replies: GroupReply[]; at: string } | { type: "remove" };

export const RadiusEvents = {
  ClientAdded: "RadiusClientAdded",
  ClientRemoved: "RadiusClientRemoved",
  AccountingRecorded: "RadiusAccountingRecorded",
} as const;

/** `addr` or `addr/prefix`, normalized; INVALID otherwise. */
export function parseCidr(text: string): { address: string; prefix: number; family: "ipv4" | "ipv6" } {
  const [address = "", prefixText, ...rest] = text.split("/");
  const family = isIPv4(address) ? "ipv4" : isIPv6(address) ? "ipv6" : undefined;
  const max = family === "ipv4" ? 32 : 128;
  const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!family || rest.length > 0 || !(prefix >= 0 && prefix <= max)) throw invalid(`address ${JSON.stringify(text)} is not an IP address or CIDR (e.g. 10.0.0.0/24)`);
  return { address, prefix, family };
}

const VLAN = /^[A-Za-z0-9._-]{1,64}$/;
const FILTER = /^[\x21-\x7e]{1,64}$/;

export const radiusClientDecider: Decider<RadiusClientState, RadiusClientCommand> = {
  aggregateType: "radius-client",
  initialState: (id) => ({ id, exists: false, address: "", allowedGroups: [], replies: [] }),
  decide(s, c): NewEvent[] {
    if (c.type === "add") {
      if (s.exists) throw alreadyExists(`RADIUS client ${s.id} already exists`);
      assertName("RADIUS client name", s.id);
      parseCidr(c.address);
      if (c.allowedGroups.length === 0) throw invalid("a RADIUS client needs at least one allowed group (nobody could sign in through it)");
      for (const g of c.allowedGroups) assertName("group", g);
      const seen = new Set<string>();
      for (const r of c.replies) {
        if (!c.allowedGroups.includes(r.group)) throw invalid(`reply attributes for group ${r.group}, which is not allowed on this client`);
        if (seen.has(r.group)) throw invalid(`two reply settings for group ${r.group}`);
        seen.add(r.group);
        if (r.vlan !== undefined && !VLAN.test(r.vlan)) throw invalid(`VLAN ${JSON.stringify(r.vlan)} must be 1-64 letters, digits, '.', '_', '-'`);
        if (r.filterId !== undefined && !FILTER.test(r.filterId)) throw invalid(`Filter-Id ${JSON.stringify(r.filterId)} must be 1-64 printable ASCII characters without spaces`);
      }
      return [ev(RadiusEvents.ClientAdded, { address: c.address, allowedGroups: c.allowedGroups, replies: c.replies, at: c.at })];
    }
    if (!s.exists) throw notFound(`no RADIUS client ${s.id}`);
    return [ev(RadiusEvents.ClientRemoved, {})];
  },
  evolve(s, e) {
    switch (e.type) {
      case RadiusEvents.ClientAdded: {
        const d = dataOf<{ address: string; allowedGroups: string[]; replies: GroupReply[]; at: string }>(e);
        return { ...s, exists: true, address: d.address, allowedGroups: d.allowedGroups, replies: d.replies, addedAt: d.at };
      }
      case RadiusEvents.ClientRemoved:
        return radiusClientDecider.initialState(s.id);
      default:
        return s;
    }
  },
};

/** Acct-Status-Type values (RFC 2866 5.1) the realm records. */
export const STATUS_TYPES: Record<number, string> = { 1: "Start", 2: "Stop", 3: "Interim-Update", 7: "Accounting-On", 8: "Accounting-Off" };

/** What one Accounting-Request says about a session: no secret, no password, only counters and names. */
export interface AccountingRecord {
  client: string;
  sessionId: string;
  statusType: string;
  user?: string | undefined;
  nasIdentifier?: string | undefined;
  nasAddress: string;
  sessionTime?: number | undefined;
  inputOctets?: number | undefined;
  outputOctets?: number | undefined;
  inputPackets?: number | undefined;
  outputPackets?: number | undefined;
  terminateCause?: number | undefined;
  at: string;
}

export interface RadiusSessionState {
  id: string;
  records: number;
  last?: AccountingRecord | undefined;
}

/** The `radius-session` aggregate id of a client's Acct-Session-Id (a hash: session ids are any octets). */
export const sessionAggregateId = (client: string, sessionId: string): string => createHash("sha256").update(`${client}\0${sessionId}`).digest("base64url").slice(0, 32);

/** One aggregate per (client, Acct-Session-Id): its Start, Interim-Updates and Stop, in order. */
export const radiusSessionDecider: Decider<RadiusSessionState, { type: "record"; record: AccountingRecord }> = {
  aggregateType: "radius-session",
  initialState: (id) => ({ id, records: 0 }),
  decide(_s, c) {
    return [ev(RadiusEvents.AccountingRecorded, c.record)];
  },
  evolve(s, e) {
    return e.type === RadiusEvents.AccountingRecorded ? { ...s, records: s.records + 1, last: dataOf<AccountingRecord>(e) } : s;
  },
};

/** The RADIUS read model: the clients, with a BlockList each for matching a packet's source address. */
export interface RadiusClients {
  clients: Map<string, RadiusClientState>;
}

export const radiusProjection: ProjectionDefinition<RadiusClients> = {
  name: "identity-radius-clients",
  version: 1,
  initial: () => ({ clients: new Map() }),
  apply(m, e: EventEnvelope) {
    if (e.aggregate.type !== radiusClientDecider.aggregateType) return m;
    const id = e.aggregate.id;
    const next = radiusClientDecider.evolve(m.clients.get(id) ?? radiusClientDecider.initialState(id), e);
    if (next.exists) m.clients.set(id, next);
    else m.clients.delete(id);
    return m;
  },
};

/** Client states are replaced, never changed, by `evolve`: a matcher per state object is made once. */
const matchers = new WeakMap<RadiusClientState, { cidr: ReturnType<typeof parseCidr>; list: BlockList }>();
function matcherOf(c: RadiusClientState): { cidr: ReturnType<typeof parseCidr>; list: BlockList } {
  let m = matchers.get(c);
  if (!m) {
    const cidr = parseCidr(c.address);
    const list = new BlockList();
    list.addSubnet(cidr.address, cidr.prefix, cidr.family);
    m = { cidr, list };
    matchers.set(c, m);
  }
  return m;
}

/** The client whose address or CIDR holds `source`; the longest prefix wins, then the name (a stable order). */
export function clientFor(clients: Iterable<RadiusClientState>, source: string): RadiusClientState | undefined {
  const family = isIPv4(source) ? "ipv4" : isIPv6(source) ? "ipv6" : undefined;
  if (!family) return undefined;
  let best: { c: RadiusClientState; prefix: number } | undefined;
  for (const c of clients) {
    const { cidr, list } = matcherOf(c);
    if (cidr.family !== family || !list.check(source, family)) continue;
    if (!best || cidr.prefix > best.prefix || (cidr.prefix === best.prefix && c.id < best.c.id)) best = { c, prefix: cidr.prefix };
  }
  return best?.c;
}
