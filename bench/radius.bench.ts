/**
 * RADIUS benchmark: PAP Access-Requests per second answered by the realm's RADIUS server (Message-Authenticator
 * checked, Argon2id password check, LoginSucceeded appended, signed Access-Accept with VLAN), from a node
 * client over UDP on loopback with N requests in flight, beside the raw cost of one Argon2id verification
 * with the realm's parameters (the dominant cost of a PAP decision) in the same process.
 *   npx tsx bench/radius.bench.ts [--seconds 10] [--inflight 16]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createSocket } from "node:dgram";
import { randomBytes } from "node:crypto";
import { argon2Verify } from "hash-wasm";
import { connect } from "@nats-io/transport-node";
import { NatsSupervisor } from "../services/nats/supervisor.js";
import { createLogger } from "../services/host/logger.js";
import { newId } from "../services/kernel/index.js";
import { createIdentityContext } from "../identity/service.js";
import { hashPassword } from "../identity/credentials.js";
import { radiusServer } from "../identity/radius/service.js";
import type { RadiusServer } from "../identity/radius/server.js";
import { Attr, checkResponseAuthenticator, Code, decode, encodeAccessRequest, hidePassword, str } from "../identity/radius/packet.js";
import { Sealer } from "../services/kernel/seal.js";
import { testTrust } from "../test/support/trust.js";

const { values } = parseArgs({ options: { seconds: { type: "string", default: "10" }, inflight: { type: "string", default: "16" } } });
const SECONDS = Number(values.seconds);
const INFLIGHT = Math.min(255, Number(values.inflight));
const say = (s: string) => process.stderr.write(`bench: ${s}\n`);
const PASSWORD = "correct horse battery";

const dir = mkdtempSync(join(tmpdir(), "realm-bench-radius-"));
const nats = new NatsSupervisor({ dataDir: dir });
await nats.start();
const nc = await connect({ servers: nats.url, noAsyncTraces: true });
const log = createLogger({ level: "silent" });
let server: RadiusServer | undefined;
const ctx = await createIdentityContext({
  issuer: "http://127.0.0.1/oidc",
  sealer: Sealer.generate(),
  extensions: [
    async (core) => {
      const r = await radiusServer({ port: 0, host: "127.0.0.1" })(core);
      server = r.server;
      return r;
    },
  ],
})({ nc, log, dataDir: dir, trust: testTrust() });
const call = (name: string, input: object) => ctx.endpoints.find((e) => e.name === name)!.handle(input, { commandId: newId(), correlationId: newId(), causationId: newId(), actor: "bench", log }) as Promise<Record<string, unknown>>;
await call("group.create", { id: "staff", displayName: "staff" });
await call("principal.create", { id: "alice", kind: "person", displayName: "alice" });
await call("principal.setPassword", { id: "alice", password: PASSWORD });
await call("group.addMember", { id: "staff", principal: "alice" });
const secret = Buffer.from((await call("radiusClient.add", { id: "bench", address: "127.0.0.1", allowedGroups: ["staff"], replies: [{ group: "staff", vlan: "42" }] })).secret as string);
const port = server!.ports.auth;

// The reference: Argon2id verifications with the realm's parameters, back to back, in this process; run
// before and after the RADIUS phase so a change in machine load shows as two different figures.
const hash = await hashPassword(PASSWORD);
async function argonRate(ms: number): Promise<number> {
  let verifies = 0;
  const a0 = performance.now();
  while (performance.now() - a0 < ms) {
    await argon2Verify({ password: PASSWORD, hash });
    verifies++;
  }
  return verifies / ((performance.now() - a0) / 1000);
}
const argonBefore = await argonRate((SECONDS * 1000) / 4);

// The client: one socket, INFLIGHT outstanding requests, each identifier reused once answered.
const sock = createSocket("udp4");
await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
const pending = new Map<number, Buffer>();
let accepts = 0;
let others = 0;
let running = true;
const send = (id: number) => {
  const ra = randomBytes(16);
  pending.set(id, ra);
  sock.send(encodeAccessRequest(id, ra, [str(Attr.UserName, "alice"), { type: Attr.UserPassword, value: hidePassword(PASSWORD, secret, ra) }], secret), port, "127.0.0.1");
};
sock.on("message", (m) => {
  const p = decode(m);
  const ra = pending.get(p.identifier);
  if (!ra) return;
  pending.delete(p.identifier);
  if (p.code === Code.AccessAccept && checkResponseAuthenticator(p, ra, secret)) accepts++;
  else others++;
  if (running) send(p.identifier);
});
say(`PAP Access-Requests for ${SECONDS} s, ${INFLIGHT} in flight...`);
const t0 = performance.now();
for (let i = 0; i < INFLIGHT; i++) send(i);
await new Promise((r) => setTimeout(r, SECONDS * 1000));
running = false;
const elapsed = (performance.now() - t0) / 1000;
await new Promise((r) => setTimeout(r, 500));
sock.close();
const argonAfter = await argonRate((SECONDS * 1000) / 4);
const argonPerSecond = (argonBefore + argonAfter) / 2;


console.log(`radius PAP Access-Accept (Message-Authenticator, Argon2id, LoginSucceeded event, signed answer): ${(accepts / elapsed).toFixed(1)} req/s (${accepts} accepts, ${others} other answers, ${INFLIGHT} in flight, ${elapsed.toFixed(1)} s)`);
console.log(`raw Argon2id verification (m=19 MiB, t=2, p=1; hash-wasm, one thread): ${argonBefore.toFixed(1)} /s before, ${argonAfter.toFixed(1)} /s after (${(1000 / argonPerSecond).toFixed(1)} ms each on average)`);
console.log(`radius throughput is ${((accepts / elapsed / argonPerSecond) * 100).toFixed(0)} % of the bare Argon2id rate`);

await ctx.stop?.();
await nc.close();
await nats.stop();
rmSync(dir, { recursive: true, force: true });
