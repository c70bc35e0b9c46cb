import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDns, ZONE, type DnsHarness } from "./harness.js";
import { startCloudflareDouble, type CloudflareDouble } from "./cloudflare-double.js";

let cf: CloudflareDouble;
let h: DnsHarness;

type PlanReply = { creates: number; updates: number; deletes: number; conflicts: number; unchanged: number; changes: { action: string; reason: string; record: { name: string; type: string; ttl: number; proxied?: boolean } }[]; conflictsWith: { name: string; type: string }[] };

beforeAll(async () => {
  cf = await startCloudflareDouble({ zone: "example.test" });
  // Someone else's records: one clashes with the realm's www A, 250 others make the listing span pages.
  cf.records.set("foreign-www", { id: "foreign-www", type: "A", name: "www.example.test", content: "203.0.113.5", ttl: 300, proxied: false });
  for (let i = 0; i < 250; i++) cf.records.set(`other${i}`, { id: `other${i}`, type: "TXT", name: `other${i}.example.test`, content: `"not the realm's"`, ttl: 1 });
  h = await startDns({ cloudflare: { token: cf.token, baseUrl: cf.url, fetch: cf.fetch, owner: "realm-test", maxWaitMs: 1500 } });
  await h.command("zone.import", { zone: "example.test", text: ZONE });
});
afterAll(async () => {
  await h?.stop();
  await cf?.stop();
});

describe("Cloudflare mirror (API v4 double over HTTPS)", () => {
  it("plans creates with ownership markers and leaves records owned by others alone", async () => {
    const plan = await h.query<PlanReply>("cloudflare-plan", { zone: "example.test" });
    expect(plan.conflictsWith).toEqual([{ name: "www.example.test", type: "A", reason: expect.any(String) }]);
    expect(plan.updates).toBe(0);
    expect(plan.deletes).toBe(0);
    const markers = plan.changes.filter((c) => c.reason === "ownership marker");
    expect(markers.length).toBeGreaterThan(10);
    expect(markers.some((m) => m.record.name === "_realm-mx.example.test")).toBe(true);
    expect(plan.changes.some((c) => c.record.type === "NS" && c.record.name === "example.test")).toBe(false);
    expect(plan.changes.filter((c) => c.record.type === "SRV")).toHaveLength(1);
  });

  it("applies through 429s (Retry-After), then a second plan is empty", async () => {
    cf.rateLimitEvery = 25;
    const r = await h.command<{ applied: number; creates: number; rateLimited: number }>("cloudflare.apply", { zone: "example.test" });
    cf.rateLimitEvery = 0;
    expect(r.applied).toBe(r.creates);
    expect(r.rateLimited).toBeGreaterThan(0);
    expect(cf.records.get("foreign-www")).toMatchObject({ content: "203.0.113.5" });
    expect([...cf.records.values()].filter((x) => x.name.startsWith("other"))).toHaveLength(250);
    const again = await h.query<PlanReply>("cloudflare-plan", { zone: "example.test" });
    expect(again.changes).toEqual([]);
    expect(again.unchanged).toBeGreaterThanOrEqual(20);
  });

  it("proxied names get TTL 1 (automatic); removed records are deleted with their marker", async () => {
    await h.command("record.remove", { name: "sip.example.test.", type: "A" });
    await h.command("record.remove", { name: "_sip._tcp.example.test.", type: "SRV" });
    const plan = await h.query<PlanReply>("cloudflare-plan", { zone: "example.test", proxied: ["mail.example.test"] });
    expect(plan.changes.filter((c) => c.action === "update")).toEqual([{ action: "update", id: expect.any(String), reason: "ttl 3600 -> 1, proxied false -> true", record: expect.objectContaining({ name: "mail.example.test", ttl: 1, proxied: true }) }]);
    expect(plan.changes.filter((c) => c.action === "delete").map((c) => c.record.name).sort()).toEqual(["_realm-a.sip.example.test", "_realm-srv._sip._tcp.example.test", "_sip._tcp.example.test", "sip.example.test"]);
    await h.command("cloudflare.apply", { zone: "example.test", proxied: ["mail.example.test"] });
    expect([...cf.records.values()].find((x) => x.name === "mail.example.test")).toMatchObject({ ttl: 1, proxied: true });
    expect([...cf.records.values()].some((x) => x.name === "sip.example.test")).toBe(false);
    expect(cf.records.get("foreign-www")).toBeDefined();
  });

  it("records each apply as an event, without the token", async () => {
    const events = [];
    for await (const { event } of h.dns.store.readEvents()) events.push(event);
    const applied = events.filter((e) => e.type === "CloudflareMirrorApplied");
    expect(applied).toHaveLength(2);
    expect(applied[0]!.data).toMatchObject({ zone: "example.test.", complete: true });
    expect(JSON.stringify(events)).not.toContain(cf.token);
  });

  it("a wrong token is a typed error naming Cloudflare's answer", async () => {
    const other = await startDns({ cloudflare: { token: "wrong", baseUrl: cf.url, fetch: cf.fetch } });
    try {
      await other.command("zone.import", { zone: "example.test", text: ZONE });
      const err = await other.query("cloudflare-plan", { zone: "example.test" }).catch((e: unknown) => e as { code: string; message: string });
      expect(err).toMatchObject({ code: "UNAUTHORIZED" });
      expect((err as { message: string }).message).toContain("10000: Authentication error");
    } finally {
      await other.stop();
    }
  });
});
