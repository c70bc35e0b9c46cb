import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import * as dnsPacket from "dns-packet";
import { DnsClient } from "./dns-client.js";

/** A free TCP port on loopback (knot binds UDP and TCP on it). */
export async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => res(p));
    });
  });
}

export interface Knot {
  port: number;
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts knotd as the primary of `zone` (the zone file's text) on a free loopback port, in a temp dir it
 * removes on stop; it allows AXFR from loopback, as the realm does by default. Ready when it answers the zone's SOA over UDP (polled: knot has no readiness signal).
 */
export async function startKnot(zone: string, zoneText: string, timeoutMs = 15_000): Promise<Knot> {
  const dir = mkdtempSync(join(tmpdir(), "realm-knot-primary-"));
  const port = await freePort();
  writeFileSync(join(dir, "zone"), zoneText);
  writeFileSync(
    join(dir, "knot.conf"),
    `server:\n  rundir: "${dir}"\n  listen: 127.0.0.1@${port}\ndatabase:\n  storage: "${dir}/db"\nlog:\n  - target: stderr\n    any: warning\n` +
      `acl:\n  - id: loopback_transfer\n    address: 127.0.0.1\n    action: transfer\n` +
      `template:\n  - id: default\n    storage: "${dir}"\nzone:\n  - domain: ${zone}\n    file: zone\n    acl: loopback_transfer\n`,
  );
  let log = "";
  const proc: ChildProcess = spawn("/usr/sbin/knotd", ["-c", join(dir, "knot.conf")], { stdio: ["ignore", "ignore", "pipe"] });
  proc.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const client = new DnsClient("127.0.0.1", port, { timeoutMs: 200, tries: 1 });
  try {
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`knotd exited (${proc.exitCode}): ${log}`);
      const q = dnsPacket.encode({ type: "query", id: 1, questions: [{ name: zone, type: "SOA", class: "IN" }] });
      const r = await client.udp(q).catch(() => null);
      if (r && r.length >= 12 && (r.readUInt16BE(2) & 0xf) === 0 && r.readUInt16BE(6) > 0) break;
      if (Date.now() > until) throw new Error(`knotd did not serve ${zone} within ${timeoutMs} ms: ${log}`);
    }
  } catch (err) {
    await stop();
    throw err;
  } finally {
    client.close();
  }
  return { port, log: () => log, stop };
}
