import { commandMetaOf, type Endpoint, type RequestContext } from "../../services/host/context.js";
import type { PasskeyService } from "./service.js";

const principalId = { type: "string", minLength: 1, maxLength: 128 };

/**
 * The API side of passkeys (registration needs a browser: /account/passkeys). Both are about one principal,
 * so the `self-service` role lets a person list and revoke their own with a realm access token.
 */
export function passkeyEndpoints(passkeys: PasskeyService): Endpoint[] {
  return [
    {
      kind: "query",
      name: "passkeys",
      description: "A person's passkeys (WebAuthn credentials): id, name, AAGUID, transports, when registered; public data only",
      input: { type: "object", additionalProperties: false, required: ["principal"], properties: { principal: principalId } },
      resource: (i: { principal: string }) => ({ kind: "principal", id: i.principal }),
      async handle(i: { principal: string }) {
        const list = await passkeys.list(i.principal);
        return { passkeys: list.map(({ publicKey: _k, ...rest }) => rest) };
      },
    },
    {
      kind: "command",
      name: "passkey.revoke",
      description: "Revoke one of a person's passkeys: it is never accepted again (PasskeyRevoked)",
      input: {
        type: "object",
        additionalProperties: false,
        required: ["principal", "credentialId"],
        properties: { principal: principalId, credentialId: { type: "string", minLength: 1, maxLength: 1024 }, reason: { type: "string", maxLength: 256 } },
      },
      resource: (i: { principal: string }) => ({ kind: "principal", id: i.principal }),
      async handle(i: { principal: string; credentialId: string; reason?: string }, ctx: RequestContext) {
        await passkeys.revoke(i.principal, i.credentialId, i.reason ?? "revoked", commandMetaOf(ctx));
        return { revoked: i.credentialId };
      },
    },
  ];
}
