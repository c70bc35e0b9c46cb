import type { NatsConnection } from "@nats-io/nats-core";
import { startHost, type Host } from "../../services/host/host.js";
import { createLogger } from "../../services/host/logger.js";
import { callRealm } from "../../services/host/client.js";
import { startNats, type TestNats } from "../support/nats.js";
import { createIdentityContext, type IdentityContext, type IdentityOptions } from "../../identity/service.js";
import { authenticatorOf } from "../../identity/auth.js";
import { principalDecider } from "../../identity/domain/principal.js";
import { policyDecider } from "../../identity/domain/policy.js";
import { roleDecider } from "../../identity/domain/role.js";
import { newId } from "../../services/kernel/index.js";
import { createServer } from "node:net";
import { Writable } from "node:stream";

export interface IdentityHarness {
  nats: TestNats;
  nc: NatsConnection;
  host: Host;
  ctx: IdentityContext;
  url: string;
  issuer: string;
  /** Bearer credential of the bootstrap admin (an API key). */
  admin: string;
  call<T extends object = Record<string, unknown>>(name: string, input: object): Promise<T>;
  logs: string[];
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

/**
 * A realm with the identity context behind the real host, protected by its own authenticator, plus a
 * bootstrap admin (role `admin` bound to principal `root`, which holds an API key). Log lines are captured.
 */
export async function startIdentity(opts: IdentityOptions = {}): Promise<IdentityHarness> {
  const nats = await startNats();
  const nc = await nats.connect();
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const log = createLogger({ level: "debug", destination: sink });
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}/oidc`;
  const ctx = await createIdentityContext({ issuer, ...opts })({ nc, log, dataDir: nats.dataDir });
  // Bootstrap straight through the core (what `realm identity bootstrap` does with stream access).
  const meta = { commandId: newId(), actor: "bootstrap" };
  await ctx.core.run(principalDecider, "root", { type: "create", kind: "service", displayName: "Realm bootstrap admin" }, meta);
  await ctx.core.run(roleDecider, "admin", { type: "define", description: "Realm administrator", permissions: ["*"] }, { ...meta, commandId: newId() });
  await ctx.core.run(policyDecider, "root-admin", { type: "bind", role: "admin", subject: { kind: "principal", id: "root" }, conditions: {} }, { ...meta, commandId: newId() });
  const host = await startHost({ nc, contexts: [ctx], httpPort: port, log, authenticate: authenticatorOf(ctx) });
  // The first API key has to come from somewhere: issue it with an unprotected in-process call.
  const issue = ctx.endpoints.find((e) => e.name === "apikey.issue")!;
  const r = (await issue.handle({ owner: "root", label: "bootstrap", roles: ["admin"] }, { commandId: newId(), correlationId: newId(), causationId: newId(), actor: "bootstrap", log })) as { key: string };
  const admin = `Bearer ${r.key}`;
  return {
    nats,
    nc,
    host,
    ctx,
    url: host.httpUrl!,
    issuer,
    admin,
    logs,
    call: (name, input) => {
      const ep = ctx.endpoints.find((e) => e.name === name)!;
      const subject = ep.kind === "command" ? `realm.identity.commands.${name}` : `realm.identity.queries.${name}`;
      return callRealm(nc, subject, input, { authorization: admin });
    },
    async stop() {
      await host.stop();
      await nats.stop();
    },
  };
}
