/**
 * Writes nats-server configuration. The config is built from typed parts (listen, JetStream, operator-mode
 * resolver, TLS) so that operator mode is one more part, not a rewrite.
 */
export interface JetStreamPart {
  storeDir: string;
  /**
   * JetStream domain: set on a hub that leaf sites reach (`$JS.<domain>.API`) and on every site (its own
   * JetStream, apart from the hub's). Unset: the server's JetStream has no domain.
   */
  domain?: string;
  maxMemory?: string;
  maxFile?: string;
}

/** Operator mode with the full (directory) account resolver; see shared/reference/nats-jwt.md section 3. */
export interface OperatorPart {
  /** The operator JWT, inline. */
  operatorJwt: string;
  systemAccount: string;
  resolverDir: string;
  /** Account JWTs that must exist at boot, at least the system account's. */
  preload: Record<string, string>;
  allowDelete?: boolean;
}

/** Leaf-node links (docs/ARCHITECTURE.md "Sites"): a hub listens for sites, a site dials its hub. */
export interface LeafPart {
  /** A hub: where sites' nats-servers connect (`host:port`). */
  listen?: { host: string; port: number };
  /** A site: its hub, the creds of the link's user there, and the local account the link carries. */
  remotes?: { url: string; credentials: string; account: string }[];
}

/**
 * One node of a nats-server cluster: its cluster's name, where it listens for routes, and the routes to
 * every node (its own among them is fine: nats-server skips a route to itself).
 */
export interface ClusterPart {
  name: string;
  host: string;
  port: number;
  /** `nats-route://host:port` of the nodes. */
  routes: string[];
}

export interface TlsPart {
  certFile: string;
  keyFile: string;
  caFile?: string;
  verify?: boolean;
}

export interface NatsServerConfig {
  /** The first line's comment (default: the supervisor's "edits are overwritten"). */
  comment?: string;
  serverName: string;
  host: string;
  port: number;
  /** HTTP monitoring port (0 = off). */
  httpPort?: number;
  /** Address the monitoring port listens on (default: nats-server's, every address). */
  httpHost?: string;
  /** Where nats-server writes its ports file (the supervisor waits for it); none when unset. */
  portsFileDir?: string;
  jetstream?: JetStreamPart;
  cluster?: ClusterPart;
  operator?: OperatorPart;
  leaf?: LeafPart;
  tls?: TlsPart;
  maxPayload?: number;
  /**
   * Longest protocol line (CONNECT carries the user JWT). The default 4 KiB is too short for a user JWT that
   * lists a realm service's least-privilege permissions; cim-realm writes 32 KiB.
   */
  maxControlLine?: number;
}

const q = (s: string) => JSON.stringify(s);

export function renderConfig(c: NatsServerConfig): string {
  const lines: string[] = [
    `# ${c.comment ?? "written by cim-realm (services/nats); edits are overwritten on the next start"}`,
    `server_name: ${q(c.serverName)}`,
    `host: ${q(c.host)}`,
    `port: ${c.port}`,
  ];
  if (c.portsFileDir) lines.push(`ports_file_dir: ${q(c.portsFileDir)}`);
  if (c.httpPort && c.httpHost) lines.push(`http: ${q(`${c.httpHost.includes(":") ? `[${c.httpHost}]` : c.httpHost}:${c.httpPort}`)}`);
  else if (c.httpPort) lines.push(`http_port: ${c.httpPort}`);
  if (c.maxPayload) lines.push(`max_payload: ${c.maxPayload}`);
  lines.push(`max_control_line: ${c.maxControlLine ?? 32_768}`);
  if (c.jetstream) {
    lines.push("jetstream {", `  store_dir: ${q(c.jetstream.storeDir)}`);
    if (c.jetstream.domain) lines.push(`  domain: ${q(c.jetstream.domain)}`);
    if (c.jetstream.maxMemory) lines.push(`  max_memory_store: ${c.jetstream.maxMemory}`);
    if (c.jetstream.maxFile) lines.push(`  max_file_store: ${c.jetstream.maxFile}`);
    lines.push("}");
  }
  if (c.cluster) {
    const k = c.cluster;
    lines.push("cluster {", `  name: ${q(k.name)}`, `  host: ${q(k.host)}`, `  port: ${k.port}`, "  routes: [", ...k.routes.map((r) => `    ${q(r)}`), "  ]", "}");
  }
  if (c.operator) {
    const o = c.operator;
    lines.push(
      `operator: ${q(o.operatorJwt)}`,
      `system_account: ${q(o.systemAccount)}`,
      "resolver {",
      "  type: full",
      `  dir: ${q(o.resolverDir)}`,
      `  allow_delete: ${o.allowDelete ?? true}`,
      '  interval: "2m"',
      '  timeout: "1.9s"',
      "}",
      "resolver_preload {",
      ...Object.entries(o.preload).map(([k, v]) => `  ${k}: ${q(v)}`),
      "}",
    );
  }
  if (c.leaf && (c.leaf.listen || c.leaf.remotes?.length)) {
    lines.push("leafnodes {");
    if (c.leaf.listen) lines.push(`  listen: ${q(`${c.leaf.listen.host}:${c.leaf.listen.port}`)}`);
    if (c.leaf.remotes?.length) {
      lines.push("  remotes: [");
      for (const r of c.leaf.remotes) lines.push(`    { url: ${q(r.url)}, credentials: ${q(r.credentials)}, account: ${q(r.account)} }`);
      lines.push("  ]");
    }
    lines.push("}");
  }
  if (c.tls) {
    lines.push("tls {", `  cert_file: ${q(c.tls.certFile)}`, `  key_file: ${q(c.tls.keyFile)}`);
    if (c.tls.caFile) lines.push(`  ca_file: ${q(c.tls.caFile)}`);
    if (c.tls.verify) lines.push("  verify: true");
    lines.push("}");
  }
  return lines.join("\n") + "\n";
}
