import dgram from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { readMessage } from "../../dns/server/message.js";
import { findTsig, TsigError, TsigResponder, verifyRequest, type TsigKey } from "../../dns/server/tsig.js";
import { runTool } from "./update-wire.js";

const SECRET = Buffer.alloc(32, 7);
const KEY: TsigKey = { name: "test-key.", algorithm: "hmac-sha256", secret: SECRET };

/** A UDP socket that hands every datagram to `answer` and sends back what it returns. */
async function fakeServer(answer: (msg: Buffer) => Buffer | null): Promise<{ port: number; seen: Buffer[]; close(): void }> {
  const s = dgram.createSocket("udp4");
  const seen: Buffer[] = [];
  s.on("message", (m, r) => {
    seen.push(m);
    const a = answer(m);
    if (a) s.send(a, r.port, r.address);
  });
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  return { port: s.address().port, seen, close: () => s.close() };
}

let close: (() => void) | undefined;
afterEach(() => close?.());

describe("TSIG against nsupdate's own messages (RFC 8945)", () => {
  it("verifies nsupdate's MAC, refuses it with another secret, and nsupdate accepts the signed answer", async () => {
    let verdicts: string[] = [];
    const srv = await fakeServer((msg) => {
      const m = readMessage(msg)!;
      const f = findTsig(msg, m);
      if (f.kind !== "tsig") return null;
      const ok = verifyRequest(msg, f.tsig, KEY);
      const wrong = verifyRequest(msg, f.tsig, { ...KEY, secret: Buffer.alloc(32, 8) });
      const unknown = verifyRequest(msg, f.tsig, { ...KEY, name: "other." });
      const late = verifyRequest(msg, f.tsig, KEY, f.tsig.timeSigned + 301);
      verdicts = [ok.ok ? "ok" : "bad", !wrong.ok && "error" in wrong ? String(wrong.error) : "?", !unknown.ok && "error" in unknown ? String(unknown.error) : "?", !late.ok && "error" in late ? String(late.error) : "?"];
      // NOERROR, zone section echoed, signed over the request's MAC.
      const q = m.questions[0]!;
      const r = Buffer.from(msg.subarray(0, q.end));
      r.writeUInt16BE(0x8000 | (5 << 11), 2);
      r.writeUInt32BE(0, 6);
      r.writeUInt16BE(0, 10);
      return new TsigResponder(KEY, f.tsig).sign(r);
    });
    close = srv.close;
    const { code, out } = await runTool("nsupdate", ["-y", `hmac-sha256:test-key:${SECRET.toString("base64")}`, "-t", "3"], `server 127.0.0.1 ${srv.port}\nzone example.test\nupdate add a.example.test 300 A 192.0.2.1\nsend\n`);
    expect(verdicts).toEqual(["ok", String(TsigError.BADSIG), String(TsigError.BADKEY), String(TsigError.BADTIME)]);
    expect(out).not.toMatch(/tsig|fail/i);
    expect(code).toBe(0);
  });

  it("nsupdate notices an answer signed with the wrong MAC", async () => {
    const srv = await fakeServer((msg) => {
      const m = readMessage(msg)!;
      const f = findTsig(msg, m);
      if (f.kind !== "tsig") return null;
      const q = m.questions[0]!;
      const r = Buffer.from(msg.subarray(0, q.end));
      r.writeUInt16BE(0x8000 | (5 << 11), 2);
      r.writeUInt32BE(0, 6);
      r.writeUInt16BE(0, 10);
      return new TsigResponder({ ...KEY, secret: Buffer.alloc(32, 9) }, f.tsig).sign(r);
    });
    close = srv.close;
    const { code } = await runTool("nsupdate", ["-y", `hmac-sha256:test-key:${SECRET.toString("base64")}`, "-t", "3"], `server 127.0.0.1 ${srv.port}\nzone example.test\nupdate add a.example.test 300 A 192.0.2.1\nsend\n`);
    expect(code).not.toBe(0);
  });
});
