/**
 * What other contexts may ask of the secrets context: keep a secret for a principal, get it back.
 * Events record only the `SecretRef`; the secret itself lives in Vaultwarden.
 */
export interface SecretRef {
  /** Vaultwarden cipher id. */
  itemId: string;
  /** Revision date of the item version written. */
  revision: string;
}

export interface EscrowRequest {
  /** Principal the secret belongs to (its collection). */
  principal: string;
  /** Item name, e.g. `cert:<serial>:key` or `nats:<account>/<user>:creds`. */
  name: string;
  secret: string;
  /** Non-secret notes (fingerprints, serials). */
  notes?: string;
  /** The command that hands the secret out: the escrow record (REALM_SECRETS) is caused by it. */
  cause?: { commandId: string; correlationId?: string | undefined; actor: string } | undefined;
}

/** Event of the secrets context: a secret was stored (or rotated) in Vaultwarden. Never the secret. */
export const SecretsEventTypes = { SecretEscrowed: "SecretEscrowed" } as const;
export const SECRETS_CONTEXT = "secrets";

export interface SecretEscrowedData {
  principal: string;
  name: string;
  itemId: string;
  revision: string;
}

export interface SecretEscrow {
  store(req: EscrowRequest): Promise<SecretRef>;
  get(ref: Pick<SecretRef, "itemId">): Promise<string>;
}
