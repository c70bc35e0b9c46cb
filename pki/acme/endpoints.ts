import type { Endpoint, RequestContext } from "../../services/host/context.js";
import type { Resource } from "../../services/host/authz.js";
import type { Decider, Execution } from "../../services/kernel/index.js";
import { notFound } from "../../services/kernel/errors.js";
import type { PkiModel } from "../projection.js";
import { acmeConfigDecider, acmeEabDecider, DEFAULT_ACME_CONFIG, orderStatus, type AcmeConfig, type AcmeConfigCommand, type AcmeEabCommand } from "./domain.js";
import type { EabKeys } from "./eab.js";
import { AcmePaths } from "./server.js";

type Ctx = Pick<RequestContext, "commandId" | "actor" | "correlationId" | "causationId">;
const S = (props: Record<string, object>, required: string[] = []) => ({ type: "object", additionalProperties: false, required, properties: props });
const str = { type: "string", minLength: 1, maxLength: 1024 };

/** Admin endpoints of ACME (permission `pki:<name>`, scoped to the issuer): configuration, accounts, orders. */
export function acmeEndpoints(d: { model: () => PkiModel; now: () => Date; eab: EabKeys; run<S, C>(decider: Decider<S, C>, id: string, cmd: C, ctx: Ctx): Promise<Execution<S>> }): Endpoint[] {
  const issuerResource = (i: { issuer: string }): Resource => ({ kind: "issuer", id: i.issuer });
  return [
    {
      kind: "command",
      name: "acme.configure",
      description: "Enable or change an issuer's ACME server (RFC 8555): EAB requirement, networks validation may reach, http-01 and tls-alpn-01 ports, lifetime",
      resource: issuerResource,
      input: S(
        {
          issuer: str,
          enabled: { type: "boolean" },
          externalAccountRequired: { type: "boolean" },
          validationNetworks: { type: "array", maxItems: 50, items: str },
          http01Port: { type: "integer", minimum: 1, maximum: 65535 },
          tlsAlpn01Port: { type: "integer", minimum: 1, maximum: 65535 },
          days: { type: "integer", minimum: 1, maximum: 397 },
        },
        ["issuer"],
      ),
      async handle(i: { issuer: string } & Partial<AcmeConfig>, ctx) {
        if (!d.model().issuers.get(i.issuer)?.active) throw notFound(`issuer ${i.issuer} has no intermediate`);
        const { issuer, ...config } = i;
        const r = await d.run(acmeConfigDecider, issuer, { type: "configure", config } satisfies AcmeConfigCommand, ctx);
        return { issuer, acme: r.state.config ?? DEFAULT_ACME_CONFIG, directory: AcmePaths.directory(issuer) };
      },
    },
    {
      kind: "command",
      name: "acme-eab.create",
      description: "Issue an external account binding key for a realm principal: key id and HMAC key (shown once); an ACME account made with it orders under that principal's grants",
      secret: ["hmacKey"],
      resource: issuerResource,
      input: S({ issuer: str, principal: str }, ["issuer", "principal"]),
      async handle(i: { issuer: string; principal: string }, ctx) {
        if (!d.model().issuers.get(i.issuer)?.active) throw notFound(`issuer ${i.issuer} has no intermediate`);
        // The sealed key first: an event never names a key id whose key is missing.
        const { keyId, hmacKey } = await d.eab.create();
        await d.run(acmeEabDecider, keyId, { type: "create", issuer: i.issuer, principal: i.principal, at: d.now().toISOString() } satisfies AcmeEabCommand, ctx);
        return { issuer: i.issuer, keyId, principal: i.principal, hmacKey: hmacKey.toString("base64url") };
      },
    },
    {
      kind: "command",
      name: "acme-eab.revoke",
      description: "Revoke an external account binding key (its HMAC key is purged; accounts already bound keep their binding)",
      resource: issuerResource,
      input: S({ issuer: str, keyId: str }, ["issuer", "keyId"]),
      async handle(i: { issuer: string; keyId: string }, ctx) {
        const st = d.model().acme.eabKeys.get(i.keyId);
        if (!st?.exists || st.issuer !== i.issuer) throw notFound(`no EAB key ${i.keyId} at issuer ${i.issuer}`);
        await d.run(acmeEabDecider, i.keyId, { type: "revoke", at: d.now().toISOString() } satisfies AcmeEabCommand, ctx);
        await d.eab.purge(i.keyId);
        return { issuer: i.issuer, keyId: i.keyId, revoked: true };
      },
    },
    {
      kind: "query",
      name: "acme-eab-keys",
      description: "External account binding keys of an issuer: key id, principal, bound account, revoked (never the HMAC key)",
      resource: issuerResource,
      input: S({ issuer: str }, ["issuer"]),
      async handle(i: { issuer: string }) {
        return { keys: [...d.model().acme.eabKeys.values()].filter((k) => k.issuer === i.issuer).map((k) => ({ keyId: k.keyId, principal: k.principal, createdAt: k.createdAt, ...(k.account ? { account: k.account } : {}), revoked: k.revoked === true })) };
      },
    },
    {
      kind: "query",
      name: "acme-accounts",
      description: "ACME accounts of an issuer (key thumbprint, contacts, status, bound principal)",
      resource: issuerResource,
      input: S({ issuer: str }, ["issuer"]),
      async handle(i: { issuer: string }) {
        const m = d.model().acme;
        return {
          accounts: [...m.accounts.values()]
            .filter((a) => a.issuer === i.issuer)
            .map((a) => ({ id: a.id, status: a.status, thumbprint: a.thumbprint, contact: a.contact, createdAt: a.createdAt, orders: m.ordersOf.get(a.id)?.length ?? 0, ...(a.eab ? { eab: a.eab } : {}) })),
        };
      },
    },
    {
      kind: "query",
      name: "acme-orders",
      description: "ACME orders of an issuer with their status, identifiers and certificate serial",
      resource: issuerResource,
      input: S({ issuer: str, account: str }, ["issuer"]),
      async handle(i: { issuer: string; account?: string }) {
        const now = d.now();
        return {
          orders: [...d.model().acme.orders.values()]
            .filter((o) => o.issuer === i.issuer && (!i.account || o.account === i.account))
            .map((o) => ({ id: o.id, account: o.account, status: orderStatus(o, now), identifiers: o.identifiers?.map((x) => x.value), createdAt: o.createdAt, expires: o.expires, ...(o.certificate ? { certificate: o.certificate } : {}) })),
        };
      },
    },
  ];
}
