import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/nats-core";
import { v7 as uuidv7 } from "uuid";
import { startHost, type Host } from "../../services/host/host.js";
import { callRealm } from "../../services/host/client.js";
import { createLogger } from "../../services/host/logger.js";
import { startNats, type TestNats } from "../support/nats.js";
import { ledgerContext } from "../fixtures/ledger-context.js";
import { testTrust } from "../support/trust.js";

let nats: TestNats;
let nc: NatsConnection;
let host: Host;

beforeAll(async () => {
  nats = await startNats();
  nc = await nats.connect();
  host = await startHost({ nc, contexts: [await ledgerContext(nc, testTrust(["ledgers"]))], httpPort: 0, log: createLogger({ level: "silent" }) });
});
afterAll(async () => {
  await host?.stop();
  await nats?.stop();
});

const raw = async (subject: string, body: string) => (await nc.request(subject, body, { timeout: 5000 })).json<{ ok: boolean; error?: { code: string; message: string } }>();
const http = async (method: string, path: string, body?: string, headers: Record<string, string> = {}) => {
  const res = await fetch(`${host.httpUrl}${path}`, { method, body, headers: body !== undefined ? { "content-type": "application/json", ...headers } : headers });
  return { status: res.status, body: (await res.json()) as { ok: boolean; error?: { code: string; message: string }; [k: string]: unknown } };
};

describe("service host over NATS", () => {
  it("serves a command and a query on realm.<context> subjects", async () => {
    await callRealm(nc, "realm.ledgers.commands.ledger.open", { id: "n1" });
    const r = await callRealm<{ balance: number }>(nc, "realm.ledgers.commands.ledger.deposit", { id: "n1", amount: 7 });
    expect(r.balance).toBe(7);
    expect((await callRealm<{ balance: number }>(nc, "realm.ledgers.queries.balance", { id: "n1" })).balance).toBe(7);
  });

  it("answers malformed JSON and schema violations with typed errors and keeps serving", async () => {
    expect(await raw("realm.ledgers.commands.ledger.open", "{not json")).toMatchObject({ ok: false, error: { code: "MALFORMED" } });
    expect(await raw("realm.ledgers.commands.ledger.open", "[1,2]")).toMatchObject({ ok: false, error: { code: "MALFORMED" } });
    expect(await raw("realm.ledgers.commands.ledger.deposit", JSON.stringify({ id: "n1", amount: -3 }))).toMatchObject({ ok: false, error: { code: "VALIDATION" } });
    const extra = await raw("realm.ledgers.commands.ledger.open", JSON.stringify({ id: "n2", evil: true }));
    expect(extra).toMatchObject({ ok: false, error: { code: "VALIDATION" } });
    expect(extra.error?.message).toContain("evil");
    await expect(callRealm(nc, "realm.ledgers.queries.balance", { id: "nope" })).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(callRealm(nc, "realm.ledgers.commands.ledger.open", { id: "n3" }, { commandId: "not-a-uuid" })).rejects.toMatchObject({ code: "VALIDATION" });
    // still serving
    await callRealm(nc, "realm.ledgers.commands.ledger.open", { id: "n4" });
    expect((await callRealm<{ balance: number }>(nc, "realm.ledgers.queries.balance", { id: "n4" })).balance).toBe(0);
  });

  it("treats a retried command id as one command", async () => {
    await callRealm(nc, "realm.ledgers.commands.ledger.open", { id: "n5" });
    const commandId = uuidv7();
    const a = await callRealm<{ eventId: string }>(nc, "realm.ledgers.commands.ledger.deposit", { id: "n5", amount: 2 }, { commandId });
    const b = await callRealm<{ eventId: string; balance: number }>(nc, "realm.ledgers.commands.ledger.deposit", { id: "n5", amount: 2 }, { commandId });
    expect(b.eventId).toBe(a.eventId);
    expect(b.balance).toBe(2);
  });

  it("is discoverable with $SRV.PING / INFO / STATS", async () => {
    const ping = (await nc.request("$SRV.PING.realm-ledgers", "", { timeout: 2000 })).json<{ name: string; type: string }>();
    expect(ping.name).toBe("realm-ledgers");
    const info = (await nc.request("$SRV.INFO.realm-ledgers", "", { timeout: 2000 })).json<{ endpoints: { subject: string }[] }>();
    expect(info.endpoints.map((e) => e.subject)).toEqual(expect.arrayContaining(["realm.ledgers.commands.ledger.open", "realm.ledgers.queries.balance"]));
    const stats = (await nc.request("$SRV.STATS.realm-ledgers", "", { timeout: 2000 })).json<{ endpoints: { name: string; num_requests: number }[] }>();
    const open = stats.endpoints.find((e) => e.name === "command-ledger-open");
    expect(open?.num_requests).toBeGreaterThan(0);
  });
});

describe("service host over HTTP", () => {
  it("serves the same handlers as routes", async () => {
    expect((await http("POST", "/api/ledgers/ledger/open", JSON.stringify({ id: "h1" }))).status).toBe(200);
    const d = await http("POST", "/api/ledgers/ledger/deposit", JSON.stringify({ id: "h1", amount: 5 }));
    expect(d).toMatchObject({ status: 200, body: { ok: true, balance: 5 } });
    expect(await http("GET", "/api/ledgers/ledgers/h1/balance")).toMatchObject({ status: 200, body: { ok: true, balance: 5 } });
  });

  it("answers malformed JSON and schema violations with typed errors and keeps serving", async () => {
    expect(await http("POST", "/api/ledgers/ledger/open", "{oops")).toMatchObject({ status: 400, body: { ok: false, error: { code: "MALFORMED" } } });
    expect(await http("POST", "/api/ledgers/ledger/deposit", JSON.stringify({ id: "h1", amount: "lots" }))).toMatchObject({ status: 400, body: { ok: false, error: { code: "VALIDATION" } } });
    expect(await http("GET", "/api/ledgers/ledgers/missing/balance")).toMatchObject({ status: 404, body: { error: { code: "NOT_FOUND" } } });
    expect(await http("POST", "/api/ledgers/ledger/open", JSON.stringify({ id: "h1" }))).toMatchObject({ status: 400, body: { error: { code: "VALIDATION" } } });
    expect((await http("GET", "/api/ledgers/ledgers/h1/balance")).body.balance).toBe(5);
  });

  it("serves health, readiness, Prometheus metrics and OpenAPI", async () => {
    expect((await http("GET", "/healthz")).status).toBe(200);
    expect((await http("GET", "/readyz")).body).toMatchObject({ ok: true });
    const m = await fetch(`${host.httpUrl}/metrics`);
    const text = await m.text();
    expect(m.headers.get("content-type")).toContain("text/plain");
    expect(text).toMatch(/realm_requests_total\{context="ledgers",endpoint="ledger.open",outcome="ok"\} \d+/);
    expect(text).toMatch(/realm_requests_total\{context="ledgers",endpoint="ledger.open",outcome="MALFORMED"\} \d+/);
    const api = (await (await fetch(`${host.httpUrl}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(api.paths)).toEqual(expect.arrayContaining(["/api/ledgers/ledger/open", "/api/ledgers/ledgers/{id}/balance"]));
  });
});
