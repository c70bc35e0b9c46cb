import { execFile } from "node:child_process";
import { Command } from "commander";
import { vi } from "vitest";
import { registerDnsCommands } from "../../dns/cli.js";
import { promisify } from "node:util";
import type { NatsConnection } from "@nats-io/nats-core";
import { startNats, type TestNats } from "../support/nats.js";
import { startHost, type Host } from "../../services/host/host.js";
import { callRealm } from "../../services/host/client.js";
import { createLogger } from "../../services/host/logger.js";
import { createDnsContext, type DnsContext, type DnsOptions } from "../../dns/service.js";
import { testTrust } from "../support/trust.js";
import type { RealmTrust } from "../../services/kernel/trust.js";

const run = promisify(execFile);

export interface DnsHarness {
  nats: TestNats;
  trust: RealmTrust;
  nc: NatsConnection;
  dns: DnsContext;
  host: Host;
  port: number;
  command<T extends object = Record<string, unknown>>(name: string, input: unknown): Promise<T>;
  query<T extends object = Record<string, unknown>>(name: string, input: unknown): Promise<T>;
  stop(): Promise<void>;
}

/** A real nats-server, the dns context on a free DNS port, served through the realm host (NATS + HTTP). */
export async function startDns(opts: DnsOptions = {}): Promise<DnsHarness> {
  const nats = await startNats();
  const nc = await nats.connect();
  const log = createLogger({ level: "silent" });
  const dnsOpts = { port: 0, ...(opts.dns || {}), ...(opts.dns && opts.dns.workers ? { natsUrl: nats.url } : {}) };
  const trust = testTrust();
  const dns = await createDnsContext({ ...opts, dns: dnsOpts })({ nc, log, dataDir: nats.dataDir, trust });
  const host = await startHost({ nc, contexts: [dns], httpPort: 0, log });
  return {
    nats,
    trust,
    nc,
    dns,
    host,
    port: dns.server?.port ?? dns.workers!.port,
    command: (name, input) => callRealm(nc, `realm.dns.commands.${name}`, input),
    query: (name, input) => callRealm(nc, `realm.dns.queries.${name}`, input),
    async stop() {
      await host.stop();
      await dns.stop?.();
      await nats.stop();
    },
  };
}

export interface DigResult {
  status: string;
  flags: string[];
  answer: string[];
  authority: string[];
  additional: string[];
  raw: string;
}

/** Runs dig against a server and splits its output into sections (record lines with white space squeezed). */
export async function dig(port: number, args: string[]): Promise<DigResult> {
  const { stdout } = await run("dig", ["@127.0.0.1", "-p", String(port), "+norec", "+time=2", "+tries=1", ...args]);
  const status = /status: (\w+)/.exec(stdout)?.[1] ?? "";
  const flags = (/flags: ([a-z ]+);/.exec(stdout)?.[1] ?? "").trim().split(" ");
  const section = (name: string) => {
    const m = new RegExp(`;; ${name} SECTION:\\n([\\s\\S]*?)(?:\\n\\n|$)`).exec(stdout);
    return m ? m[1]!.split("\n").filter((l) => l && !l.startsWith(";")).map((l) => l.replace(/\s+/g, " ").trim()) : [];
  };
  return { status, flags, answer: section("ANSWER"), authority: section("AUTHORITY"), additional: section("ADDITIONAL"), raw: stdout };
}

export const ZONE = `$ORIGIN example.test.
$TTL 3600
@       IN SOA ns1.example.test. hostmaster.example.test. (
            2026010101 ; serial
            7200       ; refresh
            900        ; retry
            1209600    ; expire
            300 )      ; minimum
        IN NS  ns1
        IN NS  ns2.example.test.
        IN MX  10 mail
        IN TXT "v=spf1 mx -all"
        IN CAA 0 issue "letsencrypt.org"
ns1     IN A   192.0.2.1
ns2     IN A   192.0.2.2
mail    IN A   192.0.2.10
www     IN A   192.0.2.20
        IN AAAA 2001:db8::20
alias   IN CNAME www
chain1  IN CNAME chain2
chain2  IN CNAME alias
_sip._tcp IN SRV 10 60 5060 sip
sip     IN A   192.0.2.30
*.wild  IN A   192.0.2.99
*.wild  IN TXT "wildcard"
sub     IN NS  ns.sub
ns.sub  IN A   192.0.2.53
_443._tcp.www IN TLSA 3 1 1 ( 0123456789abcdef0123456789abcdef
                              0123456789abcdef0123456789abcdef )
svc     IN HTTPS 1 . alpn=h2,h3 port=8443 ipv4hint=192.0.2.20
deep.empty.nonterm IN A 192.0.2.77
big     IN TXT "${"a".repeat(200)}" "${"b".repeat(200)}"
`;

/**
 * Adds TXT records to `big` until the RRset no longer fits a 512-octet UDP answer, nor (even with its owner
 * names compressed) the 1232 octets the servers send over UDP with EDNS.
 */
export const BIG_EXTRA = Array.from({ length: 6 }, (_, i) => `big IN TXT "${String(i).repeat(250)}"`).join("\n");

/**
 * Runs `realm <args>` through the real dns command group in this process (stderr silenced), returning what
 * it printed; `--nats <natsUrl>` is appended when given. Errors propagate as the CLI would print them.
 */
export async function dnsCli(natsUrl: string | undefined, args: string[]): Promise<string> {
  const program = new Command("realm").exitOverride();
  registerDnsCommands(program);
  let out = "";
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => ((out += chunk.toString()), true));
  const err = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
  try {
    await program.parseAsync(["node", "realm", ...args, ...(natsUrl ? ["--nats", natsUrl] : [])]);
  } finally {
    spy.mockRestore();
    err.mockRestore();
  }
  return out;
}
