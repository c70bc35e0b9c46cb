import dgram from "node:dgram";
import { spawn } from "node:child_process";
import { nameOctets } from "../../dns/server/names-wire.js";

/** An UPDATE message adding `name A ip` (TTL 300) to `zone`, unsigned. */
export function updateAddA(id: number, zone: string, name: string, ip: string): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(id, 0);
  head.writeUInt16BE(5 << 11, 2);
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(1, 8);
  const zq = Buffer.concat([nameOctets(zone), Buffer.from([0, 6, 0, 1])]);
  const rr = Buffer.alloc(10);
  rr.writeUInt16BE(1, 0);
  rr.writeUInt16BE(1, 2);
  rr.writeUInt32BE(300, 4);
  rr.writeUInt16BE(4, 8);
  return Buffer.concat([head, zq, nameOctets(name), rr, Buffer.from(ip.split(".").map(Number))]);
}

/** Sends a datagram and waits (up to 3 s) for the answer. */
export async function udpAsk(port: number, msg: Buffer): Promise<Buffer> {
  const sock = dgram.createSocket("udp4");
  try {
    return await new Promise<Buffer>((res, rej) => {
      const t = setTimeout(() => rej(new Error("no answer in 3 s")), 3000);
      sock.once("message", (m) => {
        clearTimeout(t);
        res(m);
      });
      sock.send(msg, port, "127.0.0.1");
    });
  } finally {
    sock.close();
  }
}

/** Runs a tool with a script on stdin; resolves with its exit code and output (never rejects on exit code). */
export function runTool(cmd: string, args: string[], stdin = ""): Promise<{ code: number; out: string }> {
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (out += d.toString()));
    p.on("error", rej);
    p.on("close", (code) => res({ code: code ?? -1, out }));
    // A tool that exits before it reads its script (bad arguments) answers with its exit code, not EPIPE.
    p.stdin.on("error", () => undefined);
    p.stdin.end(stdin);
  });
}
