export type { EscrowRequest, SecretEscrow, SecretRef } from "./contract.js";
export { SecretsError, isSecretsError, type SecretsErrorKind } from "./errors.js";
export { VaultwardenClient, type Credentials, type Item, type ItemInput, type ItemField, type Collection, type Folder, type Organization, type VaultwardenClientOptions } from "./client.js";
export { VaultwardenEscrow, vaultwardenEscrowFromEnv, type VaultwardenEscrowConfig, type SecretVersions } from "./escrow.js";
export type { RetryPolicy } from "./http.js";
