import { isIP } from "node:net";
import { isAbsolute, join, resolve } from "node:path";
import { RealmError } from "../kernel/errors.js";
import { renderConfig, type NatsServerConfig } from "../nats/config.js";
import { operatorPart, type OperatorState } from "../../identity/nats/bootstrap.js";

/**
 * `realm nats server-config`: the nats-server config of one node of an operator-mode cluster that trusts
 * the data dir's operator. The operator part (operator JWT, system account, full resolver, the SYS and realm
 * account JWTs preloaded) is the one the realm's own supervisor runs with (`operatorPart`), the cluster part
 * is `ClusterPart`: the same renderer writes both.
 */
export interface ServerConfigFlags {
  name?: string;
  listen?: string;
  clusterName?: string;
  clusterListen?: string;
  routes?: string;
  storeDir?: string;
  /** Parsed as a port by the command line (a usage error otherwise); 0 is refused here. */
  httpPort?: number | string;
}

/** What the flags say, checked: every value typed, nothing written yet. */
export interface ServerConfigSpec {
  name: string;
  listen: { host: string; port: number };
  clusterName: string;
  clusterListen: { host: string; port: number };
  routes: string[];
  storeDir: string;
  httpPort?: number;
}

const bad = (message: string) => new RealmError("VALIDATION", message);
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function portOf(flag: string, raw: string | number): number {
  const v = String(raw);
  if (!/^\d{1,5}$/.test(v) || Number(v) < 1 || Number(v) > 65535) throw bad(`${flag} needs a port from 1 to 65535, not ${JSON.stringify(v)}`);
  return Number(v);
}

/** `host:port` (an IPv6 address in brackets: `[::1]:4222`). */
export function hostPort(flag: string, v: string | undefined): { host: string; port: number } {
  if (!v) throw bad(`${flag} <host:port> is required`);
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(v) ?? /^([^:[\]]+):(\d+)$/.exec(v);
  if (!m) throw bad(`${flag} must be host:port (an IPv6 address in brackets), not ${JSON.stringify(v)}`);
  const host = m[1]!;
  if (isIP(host) === 0 && !HOSTNAME.test(host)) throw bad(`${flag}: ${JSON.stringify(host)} is not an IP address or host name`);
  if (v.startsWith("[") && isIP(host) !== 6) throw bad(`${flag}: only an IPv6 address goes in brackets, not ${JSON.stringify(host)}`);
  return { host, port: portOf(flag, m[2]!) };
}

function route(v: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw bad(`--routes: ${JSON.stringify(v)} is not a nats-route://host:port URL`);
  }
  if (u.protocol !== "nats-route:") throw bad(`--routes: ${JSON.stringify(v)} must be a nats-route://host:port URL`);
  if (u.username || u.password) throw bad(`--routes: a route carries no user or password (${u.host})`);
  if (!u.hostname || !u.port || (u.pathname !== "" && u.pathname !== "/") || u.search || u.hash) throw bad(`--routes: ${JSON.stringify(v)} must be nats-route://host:port and nothing more`);
  portOf("--routes", u.port);
  return `nats-route://${u.host}`;
}

/** Checks every flag (VALIDATION naming it on the first that is wrong). */
export function checkServerConfigFlags(o: ServerConfigFlags): ServerConfigSpec {
  if (!o.name || !NAME.test(o.name)) throw bad(`--name <server name> is required: letters, digits, '.', '_' or '-' (at most 64), not ${JSON.stringify(o.name ?? "")}`);
  const listen = hostPort("--listen", o.listen);
  if (!o.clusterName || !NAME.test(o.clusterName)) throw bad(`--cluster-name is required: letters, digits, '.', '_' or '-' (at most 64), not ${JSON.stringify(o.clusterName ?? "")}`);
  const clusterListen = hostPort("--cluster-listen", o.clusterListen);
  const routes = (o.routes ?? "").split(",").map((r) => r.trim()).filter(Boolean).map(route);
  if (routes.length === 0) throw bad("--routes <nats-route urls> is required: the route URL of every node, comma separated");
  if (!o.storeDir) throw bad("--store-dir <dir> is required: the node's JetStream directory");
  if (/[\n\r"\\]/.test(o.storeDir)) throw bad("--store-dir must not hold a quote, backslash or line break");
  const httpPort = o.httpPort === undefined ? undefined : portOf("--http-port", o.httpPort);
  const taken = new Map<string, string>();
  for (const [flag, host, port] of [["--listen", listen.host, listen.port], ["--cluster-listen", clusterListen.host, clusterListen.port], ["--http-port", listen.host, httpPort]] as const) {
    if (port === undefined) continue;
    const key = `${host}:${port}`;
    if (taken.has(key)) throw bad(`${flag} uses ${key}, as ${taken.get(key)} does`);
    taken.set(key, flag);
  }
  return { name: o.name, listen, clusterName: o.clusterName, clusterListen, routes, storeDir: isAbsolute(o.storeDir) ? o.storeDir : resolve(o.storeDir), ...(httpPort ? { httpPort } : {}) };
}

/**
 * The node's config: JetStream in the store dir, the full account resolver in `<store dir>/jwt` (nodes sync
 * the account JWTs the realm pushes among themselves), the operator and system account of `state`.
 */
export function serverConfigOf(spec: ServerConfigSpec, state: OperatorState): string {
  const config: NatsServerConfig = {
    comment: `written by \`realm nats server-config\` for node ${spec.name} of cluster ${spec.clusterName}; trusts operator ${state.operatorPublicKey}`,
    serverName: spec.name,
    host: spec.listen.host,
    port: spec.listen.port,
    // Monitoring on the client address only (nats-server's own default is every address).
    ...(spec.httpPort ? { httpPort: spec.httpPort, httpHost: spec.listen.host } : {}),
    jetstream: { storeDir: spec.storeDir },
    cluster: { name: spec.clusterName, host: spec.clusterListen.host, port: spec.clusterListen.port, routes: spec.routes },
    operator: operatorPart(state, join(spec.storeDir, "jwt")),
  };
  return renderConfig(config);
}
