import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { randomBytes } from "node:crypto";
import { decode, type Packet } from "../../identity/radius/packet.js";

/** Runs FreeRADIUS's radclient (freeradius-utils) with `input` as its attribute list; stdout and stderr together. */
export function radclient(target: string, kind: "auth" | "acct", secret: string, input: string): Promise<{ code: number | null; out: string }> {
  return run("radclient", ["-x", "-t", "2", "-r", "1", target, kind, secret], input);
}

/** `radtest user password host:port nas-port secret [-t pap|mschap]` (freeradius-utils). */
export function radtest(user: string, password: string, target: string, secret: string, type: "pap" | "mschap" = "pap"): Promise<{ code: number | null; out: string }> {
  return run("radtest", ["-t", type, user, password, target, "0", secret], "");
}

function run(cmd: string, args: string[], input: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (out += d.toString()));
    p.on("error", reject);
    p.on("close", (code) => resolve({ code, out }));
    p.stdin.end(input);
  });
}

/** Sends one datagram from `bindAddress` and resolves with the first answer, or undefined after `waitMs`. */
export function exchange(packet: Buffer, port: number, opts: { bindAddress?: string; waitMs?: number } = {}): Promise<Packet | undefined> {
  return new Promise((resolve, reject) => {
    const s = createSocket("udp4");
    const done = (p: Packet | undefined) => {
      clearTimeout(t);
      s.close();
      resolve(p);
    };
    const t = setTimeout(() => done(undefined), opts.waitMs ?? 1500);
    s.on("message", (m) => done(decode(m)));
    s.on("error", (err) => {
      clearTimeout(t);
      s.close();
      reject(err);
    });
    s.bind(0, opts.bindAddress ?? "127.0.0.1", () => s.send(packet, port, "127.0.0.1"));
  });
}

export const requestAuthenticator = (): Buffer => randomBytes(16);

/** Polls `cond` every 20 ms for up to `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
