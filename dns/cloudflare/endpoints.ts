import type { Endpoint } from "../../services/host/context.js";
import type { ZoneState } from "../domain/zone.js";

export interface CloudflareDeps {
  zone(name: string): ZoneState;
  zoneName(name: string): string;
}

/** Cloudflare mirror endpoints (plan/apply); filled in by dns/cloudflare/mirror.ts. */
export function cloudflareEndpoints(_deps: CloudflareDeps): Endpoint[] {
  return [];
}
