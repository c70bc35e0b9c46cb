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
}

export interface SecretEscrow {
  store(req: EscrowRequest): Promise<SecretRef>;
  get(ref: Pick<SecretRef, "itemId">): Promise<string>;
}
