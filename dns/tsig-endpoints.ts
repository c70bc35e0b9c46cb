import { commandMetaOf, type Endpoint, type RequestContext } from "../services/host/context.js";
import { invalid, notFound, RealmError } from "../services/kernel/errors.js";
import type { SecretEscrow } from "../secrets-client/contract.js";
import { TSIG_KEY_ALGORITHMS, tsigKeyName, tsigNamePattern, type TsigKeyAlgorithm, type TsigKeyCommand, type TsigKeyInfo } from "./domain/tsig-keys.js";
import type { ZoneState } from "./domain/zone.js";
import { TsigSecrets } from "./tsig-secrets.js";

type Ctx = Pick<RequestContext, "commandId" | "actor" | "correlationId" | "causationId">;

export interface TsigEndpointDeps {
  keys(): Map<string, TsigKeyInfo>;
  zones(): Map<string, ZoneState>;
  /** Absent without a seal key: keys cannot be made. */
  secrets: TsigSecrets | undefined;
  escrow: SecretEscrow | undefined;
  run(id: string, cmd: TsigKeyCommand, ctx: Ctx): Promise<{ state: TsigKeyInfo | null; replayed: boolean }>;
}

const S = (props: Record<string, object>, required: string[] = []) => ({ type: "object", additionalProperties: false, required, properties: props });
const str = { type: "string", minLength: 1, maxLength: 255 };
const zoneOf = (z: string) => tsigKeyName(z);
/** A key as listed: its binding and fingerprint, never its secret. */
const listed = (k: TsigKeyInfo) => ({ name: k.name, algorithm: k.algorithm, principal: k.principal, zones: k.zones, names: k.names, fingerprint: k.fingerprint, createdAt: k.createdAt, revoked: k.revoked, ...(k.secretRef ? { secretRef: k.secretRef } : {}) });

/**
 * `tsig.create`, `tsig.revoke`, `tsig-keys`: TSIG keys for RFC 2136 updates and signed transfers. A key is
 * bound to a principal (its changes' actor) and to zones and name patterns; creating one needs `dns:tsig.create`
 * over each of its zones, so an operator scoped to a zone can hand out keys for that zone only.
 */
export function tsigEndpoints(d: TsigEndpointDeps): Endpoint[] {
  return [
    {
      kind: "command",
      name: "tsig.create",
      description: "Create a TSIG key (RFC 8945) bound to a principal and to zones and name patterns it may update; the 256-bit secret is in the reply this once (or escrowed), kept sealed in realm_dns_tsig, never in an event",
      resource: (i: { zones: string[] }) => i.zones.map((z) => ({ kind: "name" as const, id: zoneOf(z) })),
      // Kept apart from the outcome journal (24 h, sealed), never with the rest of the answer.
      secret: ["secret", "nsupdate"],
      input: S({ name: str, zones: { type: "array", minItems: 1, maxItems: 64, items: str }, names: { type: "array", maxItems: 256, items: str }, algorithm: { enum: [...TSIG_KEY_ALGORITHMS] }, principal: str }, ["name", "zones"]),
      async handle(i: { name: string; zones: string[]; names?: string[]; algorithm?: TsigKeyAlgorithm; principal?: string }, ctx) {
        if (!d.secrets) throw new RealmError("UNAVAILABLE", "TSIG keys need the realm's seal key (the dns context has none)");
        const name = tsigKeyName(i.name);
        const zones = [...new Set(i.zones.map(zoneOf))];
        for (const z of zones) if (!d.zones().has(z)) throw notFound(`zone ${z} does not exist`);
        const names = [...new Set((i.names ?? []).map((n) => tsigNamePattern(n, zones)))];
        const algorithm = i.algorithm ?? "hmac-sha256";
        const principal = i.principal ?? ctx.actor;
        if (principal === "anonymous") throw invalid("a TSIG key is bound to a principal: give one");
        const { secret, fingerprint } = TsigSecrets.generate();
        // The sealed secret first: a key its events know always has its secret.
        await d.secrets.put(name, fingerprint, secret);
        const secretB64 = secret.toString("base64");
        const secretRef = d.escrow
          ? await d.escrow.store({ principal, name: `tsig:${name}`, secret: `${algorithm}:${name}:${secretB64}`, notes: `TSIG key ${name} (${algorithm}), fingerprint ${fingerprint}`, cause: commandMetaOf(ctx) })
          : undefined;
        const key = { name, algorithm, principal, zones, names, fingerprint, createdAt: new Date().toISOString(), ...(secretRef ? { secretRef: { itemId: secretRef.itemId, revision: secretRef.revision } } : {}) };
        const r = await d.run(name, { type: "create", key }, ctx);
        // A retried command replays the first create: its secret was shown then, and is not shown again.
        if (r.replayed || !r.state) return { ...listed(r.state!), replayed: true };
        return { ...listed(r.state), ...(secretRef ? {} : { secret: secretB64, nsupdate: `-y ${algorithm}:${name}:${secretB64}` }) };
      },
    },
    {
      kind: "command",
      name: "tsig.revoke",
      description: "Revoke a TSIG key: updates and transfers signed with it are refused from now on (BADKEY); its secret is purged",
      resource: (i: { name: string }) => {
        const k = d.keys().get(tsigKeyName(i.name));
        return k ? k.zones.map((z) => ({ kind: "name" as const, id: z })) : undefined;
      },
      input: S({ name: str }, ["name"]),
      async handle(i: { name: string }, ctx) {
        const name = tsigKeyName(i.name);
        const before = d.keys().get(name);
        if (!before || before.revoked) throw notFound(`no TSIG key ${name}`);
        const r = await d.run(name, { type: "revoke" }, ctx);
        await d.secrets?.purge(name, before.fingerprint);
        return listed(r.state!);
      },
    },
    {
      kind: "query",
      name: "tsig-keys",
      description: "TSIG keys with their bindings and fingerprints (never their secrets)",
      filter: (r, can) => ({ ...r, keys: (r as { keys: { zones: string[] }[] }).keys.filter((k) => k.zones.some((z) => can({ kind: "name", id: z }))) }),
      input: S({}),
      async handle() {
        return { keys: [...d.keys().values()].map(listed) };
      },
    },
  ];
}
