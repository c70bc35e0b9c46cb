/**
 * `realm doctor`: checks what a working `realm` needs, each with ok / warn / fail and what to do: the
 * configuration file, the creds file (readable, private, not expired), NATS (reachable, server version,
 * JetStream), the realm's services, the HTTP API (health, readiness), the clock against the realm host's,
 * the ports `realm up` uses, and the data dir's permissions. Exits with the class of the first failure
 * (README "Exit codes": 10 when NATS is down, 4 for a bad file, ...), 0 when nothing failed.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { createSocket } from "node:dgram";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { RealmError } from "../kernel/errors.js";
import { activeContext } from "./active-context.js";
import { withConnectionOptions, type ConnectionFlags } from "./call.js";
import { configFile } from "./config.js";
import { realmUrlOf } from "./credentials-store.js";
import { selfSettled, settleContext } from "./edge.js";
import { exitCodeOf } from "./exit-codes.js";
import { renderTable } from "./format.js";
import { printResult } from "./output.js";

type Status = "ok" | "warn" | "fail";
export interface Check {
  check: string;
  status: Status;
  detail: string;
  fix?: string;
  /** The error class of a failure (its exit status). */
  code?: string;
}

/** The oldest nats-server the realm is tested with (operator mode, JetStream, deny_delete streams). */
const MIN_NATS = [2, 9, 0];
const olderThan = (v: string, min: number[]) => {
  const p = v.split(/[.-]/).map((x) => Number.parseInt(x, 10));
  for (let i = 0; i < min.length; i++) if ((p[i] ?? 0) !== min[i]) return (p[i] ?? 0) < min[i]!;
  return false;
};

const modeOf = (f: string) => statSync(f).mode & 0o777;
const octal = (m: number) => m.toString(8).padStart(3, "0");

/** The expiry (epoch seconds) of the user JWT in a creds file, if it says. */
function credsExpiry(text: string): number | undefined {
  const jwt = /-{3,}BEGIN NATS USER JWT-{3,}\s*\n\s*(\S+)/.exec(text)?.[1];
  if (!jwt) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString("utf8")) as { exp?: number };
    return typeof claims.exp === "number" ? claims.exp : undefined;
  } catch {
    return undefined;
  }
}

function checkCreds(file: string | undefined, local: string): Check[] {
  if (!file) return [{ check: "creds", status: "warn", detail: `no creds file: ${local} does not exist and none is given`, fix: "give --creds <file>, REALM_NATS_CREDS, REALM_DATA=<data dir>, or a context's creds (realm context add ... --creds <file>)" }];
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    return [{ check: "creds", status: "fail", code: "VALIDATION", detail: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, fix: "point --creds, REALM_NATS_CREDS or the context's creds at a readable creds file" }];
  }
  const out: Check[] = [];
  const mode = modeOf(file);
  out.push(mode & 0o077 ? { check: "creds mode", status: "warn", detail: `${file} is mode ${octal(mode)}: others may read its private key`, fix: `chmod 600 ${file}` } : { check: "creds mode", status: "ok", detail: `${file} is mode ${octal(mode)}` });
  const exp = credsExpiry(text);
  const left = exp === undefined ? undefined : exp - Date.now() / 1000;
  if (left === undefined) out.push({ check: "creds expiry", status: "ok", detail: "the user JWT does not expire" });
  else if (left <= 0) out.push({ check: "creds expiry", status: "fail", code: "UNAUTHORIZED", detail: `the user JWT expired at ${new Date(exp! * 1000).toISOString()}`, fix: "issue new creds (realm creds issue <account> <name>, or restart `realm up` for the local operator's)" });
  else out.push({ check: "creds expiry", status: left < 7 * 86400 ? "warn" : "ok", detail: `the user JWT expires at ${new Date(exp! * 1000).toISOString()}`, ...(left < 7 * 86400 ? { fix: "issue new creds before then" } : {}) });
  return out;
}

/** Is something listening on host:port (TCP), or bound (UDP)? Tried by binding: what cannot be bound is in use. */
function inUse(host: string, port: number, udp = false): Promise<boolean> {
  return new Promise((done) => {
    if (udp) {
      const s = createSocket(host.includes(":") ? "udp6" : "udp4");
      s.once("error", () => done(true));
      s.bind(port, host, () => s.close(() => done(false)));
      return;
    }
    const srv = createServer();
    srv.once("error", () => done(true));
    srv.listen({ port, host, exclusive: true }, () => {
      void (srv.address() as AddressInfo);
      srv.close(() => done(false));
    });
  });
}

const loopback = (h: string) => h === "127.0.0.1" || h === "localhost" || h === "::1" || h === "[::1]";

async function checkPorts(natsUrl: string, httpUrl: string, natsUp: boolean, httpUp: boolean): Promise<Check[]> {
  const out: Check[] = [];
  const ports: { what: string; host: string; port: number; udp?: boolean; ours: boolean }[] = [];
  const n = URL.canParse(natsUrl.replace(/^(tls|ws|wss):/, "nats:")) ? new URL(natsUrl.replace(/^(tls|ws|wss):/, "nats:")) : undefined;
  if (n && loopback(n.hostname)) ports.push({ what: "NATS", host: "127.0.0.1", port: Number(n.port || 4222), ours: natsUp });
  const h = new URL(httpUrl);
  if (loopback(h.hostname)) ports.push({ what: "HTTP API", host: "127.0.0.1", port: Number(h.port || (h.protocol === "https:" ? 443 : 80)), ours: httpUp });
  const dnsPort = Number(process.env.REALM_DNS_PORT ?? 5300);
  const dnsHost = process.env.REALM_DNS_HOST ?? "127.0.0.1";
  if (Number.isInteger(dnsPort) && dnsPort > 0) ports.push({ what: "DNS", host: dnsHost, port: dnsPort, udp: true, ours: natsUp });
  for (const p of ports) {
    const used = await inUse(p.host, p.port, p.udp);
    const where = `${p.host}:${p.port}/${p.udp ? "udp" : "tcp"}`;
    if (!used) out.push({ check: `port ${p.what}`, status: "ok", detail: `${where} is free (realm up can listen there)` });
    else if (p.ours) out.push({ check: `port ${p.what}`, status: "ok", detail: `${where} is in use by the running realm` });
    else out.push({ check: `port ${p.what}`, status: "warn", detail: `${where} is in use, and not by a realm this CLI reaches`, fix: `find the process (ss -lntup | grep ${p.port}) or start the realm on other ports (realm up --${p.what === "DNS" ? "dns" : p.what === "NATS" ? "nats" : "http"}-port <port>)` });
  }
  return out;
}

function checkDataDir(dir: string): Check[] {
  if (!existsSync(dir)) return [{ check: "data dir", status: "ok", detail: `${dir} does not exist (realm up makes it, mode 0700)` }];
  const out: Check[] = [];
  const mode = modeOf(dir);
  out.push(mode & 0o077 ? { check: "data dir", status: "warn", detail: `${dir} is mode ${octal(mode)}`, fix: `chmod 700 ${dir}` } : { check: "data dir", status: "ok", detail: `${dir} is mode ${octal(mode)}` });
  const op = join(dir, "operator");
  const secrets = [
    join(op, "seal.key"),
    join(op, "operator.json"),
    join(op, "admin.creds"),
    join(op, "operator-identity.bundle.json"),
    join(op, "operator-passphrase"),
    ...["keys", "identities"].flatMap((d) => (existsSync(join(op, d)) ? readdirSync(join(op, d)).map((f) => join(op, d, f)) : [])),
  ].filter((f) => existsSync(f));
  const open = secrets.filter((f) => modeOf(f) & 0o077);
  if (secrets.length) out.push(open.length ? { check: "data dir keys", status: "fail", code: "VALIDATION", detail: `others may read ${open.join(", ")}`, fix: `chmod 600 ${open.join(" ")} (and rotate what was exposed)` } : { check: "data dir keys", status: "ok", detail: `${secrets.length} key and creds files, each readable by the owner only` });
  const pass = join(op, "operator-passphrase");
  if (existsSync(pass)) out.push({ check: "operator passphrase", status: "warn", detail: `${pass} holds the operator bundle's passphrase on this host`, fix: "move it offline (a password manager or paper) and delete it here" });
  return out;
}

/** One line per check (ok, WARN, FAIL), each fix under its check, and a summary. */
function table(r: { checks: Check[] }): string {
  const mark = { ok: "ok", warn: "WARN", fail: "FAIL" } as const;
  const lines = renderTable(["", "CHECK", "DETAIL"], r.checks.map((c) => [mark[c.status], c.check, c.detail])).trimEnd().split("\n");
  const out = [lines[0]!, ...r.checks.flatMap((c, i) => [lines[i + 1]!, ...(c.fix ? [`      fix: ${c.fix}`] : [])])];
  const fails = r.checks.filter((c) => c.status === "fail").length;
  const warns = r.checks.filter((c) => c.status === "warn").length;
  return `${out.join("\n")}\n${fails ? `${fails} failed` : "nothing failed"}${warns ? `, ${warns} warning(s)` : ""}\n`;
}

export function registerDoctorCommand(program: Command): void {
  const doctor = withConnectionOptions(program.command("doctor").description("check creds, NATS (reachable, version, JetStream), the realm's services and HTTP API, the clock, ports and the data dir; say what to fix (exit status: the class of the first failure)"));
  selfSettled.add(doctor);
  doctor.action(async (o: ConnectionFlags, cmd: Command) => {
    const checks: Check[] = [];
    // The configuration is a check here, not a precondition: a broken file is reported, not thrown.
    const file = configFile();
    try {
      settleContext(cmd);
      const ctx = activeContext();
      if (!existsSync(file)) checks.push({ check: "config", status: "ok", detail: `no configuration file ${file} (flags, REALM_* variables and defaults are used)`, fix: "realm init writes one" });
      else {
        const mode = modeOf(file);
        checks.push({ check: "config", status: mode & 0o077 ? "warn" : "ok", detail: `${file} parses${ctx ? `; context ${ctx.name}` : "; no current context"}${mode & 0o077 ? `; mode ${octal(mode)}` : ""}`, ...(mode & 0o077 ? { fix: `chmod 600 ${file}` } : {}) });
      }
    } catch (err) {
      const e = err instanceof RealmError ? err : new RealmError("VALIDATION", String(err));
      checks.push({ check: "config", status: "fail", code: e.code, detail: e.message, fix: `correct ${file} at that line (or move it away and run realm init)` });
    }
    const [{ realmEndpoint }, { probeNats, probeHttp }] = await Promise.all([import("./connection.js"), import("./probe.js")]);
    const ctx = activeContext();
    const ep = realmEndpoint(o);
    checks.push(...checkCreds(ep.credsFile, ep.local));
    const nats = await probeNats(o, ep.servers);
    if (!nats.connected) checks.push({ check: "nats", status: "fail", code: nats.code ?? "UNAVAILABLE", detail: nats.error ?? `cannot reach ${ep.servers}`, fix: "start the realm (realm up) or point --nats / REALM_NATS_URL / the context's nats at it" });
    else {
      const s = nats.server!;
      checks.push({ check: "nats", status: "ok", detail: `${nats.url} reachable (server ${s.name}, rtt ${s.rttMs} ms)` });
      checks.push(olderThan(s.version, MIN_NATS) ? { check: "nats version", status: "warn", detail: `nats-server ${s.version} is older than ${MIN_NATS.join(".")}`, fix: "upgrade nats-server (scripts/setup.sh installs a current one)" } : { check: "nats version", status: "ok", detail: `nats-server ${s.version}` });
      checks.push(s.jetstream ? { check: "jetstream", status: "ok", detail: "JetStream is enabled" } : { check: "jetstream", status: "fail", code: "UNAVAILABLE", detail: "the server has no JetStream: the realm keeps its events in JetStream streams", fix: "enable JetStream (jetstream { store_dir: ... } in the server's configuration)" });
      const realm = (nats.services ?? []).filter((x) => x.name.startsWith("realm-"));
      checks.push(realm.length ? { check: "realm services", status: "ok", detail: realm.map((x) => `${x.name} x${x.instances}`).join(", ") } : { check: "realm services", status: "warn", detail: "no realm service answers $SRV.PING on this NATS", fix: "start the realm (realm up) against this NATS" });
    }
    const url = realmUrlOf(o.realmUrl ?? ctx?.url);
    const http = await probeHttp(url);
    if (http.error) checks.push({ check: "http api", status: nats.connected ? "warn" : "fail", code: "UNAVAILABLE", detail: `${url}: ${http.error}`, fix: "point --realm-url / REALM_URL / the context's url at the realm's HTTP API" });
    else {
      const ready = http.readyz?.body as { status?: string; notReady?: string[] } | undefined;
      checks.push(http.healthz?.status === 200 ? { check: "http api", status: "ok", detail: `${url}/healthz 200` } : { check: "http api", status: "fail", code: "UNAVAILABLE", detail: `${url}/healthz ${http.healthz?.status}: the API host has lost NATS`, fix: "see the realm's log" });
      checks.push(ready?.status === "ready" ? { check: "readiness", status: "ok", detail: "/readyz ready" } : { check: "readiness", status: "warn", detail: `/readyz ${ready?.status ?? http.readyz?.status}${ready?.notReady?.length ? `: not ready ${ready.notReady.join(", ")}` : ""}`, fix: ready?.status === "degraded" ? "realm audit quarantine lists what a projection did not apply" : "wait for the projections to catch up, or see the realm's log" });
      if (http.skewMs !== undefined) {
        const s = Math.abs(http.skewMs) / 1000;
        checks.push({ check: "clock", status: s >= 30 ? "fail" : s >= 2 ? "warn" : "ok", ...(s >= 30 ? { code: "VALIDATION" } : {}), detail: `this machine's clock is ${s.toFixed(0)} s ${http.skewMs > 0 ? "behind" : "ahead of"} the realm host's (HTTP Date header; NATS INFO carries no time)`, ...(s >= 2 ? { fix: "synchronize the clocks (chrony or systemd-timesyncd): tokens, one-time codes and JWT expiry depend on them" } : {}) });
      }
    }
    checks.push(...(await checkPorts(ep.servers, url, nats.connected, !http.error)));
    checks.push(...checkDataDir(resolve(process.env.REALM_DATA ?? ctx?.data ?? "./data")));
    const r = { checks };
    printResult(r, "check", { table });
    const failed = checks.find((c) => c.status === "fail");
    if (failed) process.exitCode = exitCodeOf(failed.code);
  });
}
