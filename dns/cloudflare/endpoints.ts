import type { Endpoint, RequestContext } from "../../services/host/context.js";
import { RealmError } from "../../services/kernel/errors.js";
import { zoneRecords, type ZoneState } from "../domain/zone.js";
import { CloudflareClient, type CloudflareClientOptions } from "./client.js";
import { planMirror, type MirrorPlan, type MirrorSettings } from "./plan.js";

export interface CloudflareConfig extends Omit<CloudflareClientOptions, "token"> {
  /** API token; default $CLOUDFLARE_API_TOKEN. Never logged, never in an event. */
  token?: string;
  /** Ownership id in the TXT markers; default "realm". */
  owner?: string;
}

export interface CloudflareDeps {
  zone(name: string): ZoneState;
  zoneName(name: string): string;
  config?: CloudflareConfig;
  /** Records the outcome of an apply as an event. */
  recordApplied(zone: string, summary: Record<string, unknown>, ctx: RequestContext): Promise<void>;
}

const S = (props: Record<string, object>, required: string[]) => ({ type: "object", additionalProperties: false, required, properties: props });
const str = { type: "string", minLength: 1, maxLength: 253 };
const input = S({ zone: str, cloudflareZone: str, proxied: { type: "array", items: str }, autoTtl: { type: "boolean" } }, ["zone"]);
type Input = { zone: string; cloudflareZone?: string; proxied?: string[]; autoTtl?: boolean };

/** `cloudflare-plan` (query) and `cloudflare.apply` (command): mirror a public zone to Cloudflare. */
export function cloudflareEndpoints(deps: CloudflareDeps): Endpoint[] {
  function client(): CloudflareClient {
    const token = deps.config?.token ?? process.env.CLOUDFLARE_API_TOKEN;
    if (!token) throw new RealmError("UNAVAILABLE", "no Cloudflare API token: set CLOUDFLARE_API_TOKEN where the realm runs");
    return new CloudflareClient({ ...deps.config, token, baseUrl: deps.config?.baseUrl ?? process.env.CLOUDFLARE_API_BASE });
  }
  async function plan(i: Input): Promise<{ plan: MirrorPlan; cf: CloudflareClient; zoneId: string; serial: number; cfZone: string }> {
    const zone = deps.zoneName(i.zone);
    const st = deps.zone(zone);
    const cf = client();
    const cfZone = (i.cloudflareZone ?? zone).replace(/\.$/, "");
    const zoneId = await cf.zoneId(cfZone);
    const existing = await cf.listRecords(zoneId);
    const settings: MirrorSettings = { owner: deps.config?.owner ?? "realm", proxied: (i.proxied ?? []).map((n) => deps.zoneName(n)), autoTtl: i.autoTtl ?? false };
    return { plan: planMirror(zone, zoneRecords(st), existing, settings), cf, zoneId, serial: st.serial, cfZone };
  }
  const summary = (p: MirrorPlan) => ({
    creates: p.changes.filter((c) => c.action === "create").length,
    updates: p.changes.filter((c) => c.action === "update").length,
    deletes: p.changes.filter((c) => c.action === "delete").length,
    conflicts: p.conflicts.length,
    unchanged: p.unchanged,
  });
  return [
    {
      kind: "query",
      name: "cloudflare-plan",
      description: "The creates/updates/deletes that mirroring a zone to Cloudflare would make (records owned by others are listed as conflicts and never touched)",
      resource: (i: Input) => ({ kind: "name", id: deps.zoneName(i.zone) }),
      input,
      async handle(i: Input) {
        const { plan: p, serial, cfZone } = await plan(i);
        return { zone: p.zone, cloudflareZone: cfZone, serial, ...summary(p), changes: p.changes, conflictsWith: p.conflicts };
      },
    },
    {
      kind: "command",
      name: "cloudflare.apply",
      description: "Mirror a zone to Cloudflare: apply the plan (creates, then updates, then deletes) and record the outcome",
      resource: (i: Input) => ({ kind: "name", id: deps.zoneName(i.zone) }),
      input,
      async handle(i: Input, ctx) {
        const { plan: p, cf, zoneId, serial, cfZone } = await plan(i);
        let done = 0;
        const order = ["create", "update", "delete"] as const;
        try {
          for (const action of order) {
            for (const c of p.changes.filter((x) => x.action === action)) {
              if (action === "create") await cf.create(zoneId, c.record);
              else if (action === "update") await cf.update(zoneId, c.id!, c.record);
              else await cf.remove(zoneId, c.id!);
              done++;
              if (done % 50 === 0) ctx.log.info({ done, total: p.changes.length }, "cloudflare apply progress");
            }
          }
        } finally {
          await deps.recordApplied(p.zone, { zone: p.zone, cloudflareZone: cfZone, serial, ...summary(p), applied: done, complete: done === p.changes.length }, ctx);
        }
        return { zone: p.zone, cloudflareZone: cfZone, serial, ...summary(p), applied: done, rateLimited: cf.stats.rateLimited };
      },
    },
  ];
}
