/**
 * Issuance profiles (pure data): what a leaf of each kind may carry. The x509 adapter turns a profile into
 * key usage and extended key usage extensions.
 */
export type ProfileName = "server" | "server-wildcard" | "client" | "service" | "code-signing";
export type ExtendedUsage = "serverAuth" | "clientAuth" | "codeSigning";
export type SanKind = "dns" | "ip" | "email" | "uri";

export interface Profile {
  name: ProfileName;
  description: string;
  extendedKeyUsage: ExtendedUsage[];
  /** SAN kinds this profile may carry. */
  sans: SanKind[];
  /** At least one DNS or IP SAN is required (TLS server identities). */
  requiresHostName: boolean;
  wildcards: boolean;
  defaultDays: number;
  maxDays: number;
}

export const PROFILES: Record<ProfileName, Profile> = {
  server: { name: "server", description: "TLS server (serverAuth), DNS/IP names", extendedKeyUsage: ["serverAuth"], sans: ["dns", "ip"], requiresHostName: true, wildcards: false, defaultDays: 90, maxDays: 397 },
  "server-wildcard": {
    name: "server-wildcard",
    description: "TLS server with wildcard DNS names allowed",
    extendedKeyUsage: ["serverAuth"],
    sans: ["dns", "ip"],
    requiresHostName: true,
    wildcards: true,
    defaultDays: 90,
    maxDays: 397,
  },
  client: { name: "client", description: "TLS client (clientAuth): people, agents, mTLS", extendedKeyUsage: ["clientAuth"], sans: ["dns", "email", "uri"], requiresHostName: false, wildcards: false, defaultDays: 90, maxDays: 397 },
  service: { name: "service", description: "service both serving and calling (serverAuth + clientAuth)", extendedKeyUsage: ["serverAuth", "clientAuth"], sans: ["dns", "ip", "uri"], requiresHostName: true, wildcards: false, defaultDays: 90, maxDays: 397 },
  "code-signing": { name: "code-signing", description: "code signing (codeSigning), no host names", extendedKeyUsage: ["codeSigning"], sans: ["email", "uri"], requiresHostName: false, wildcards: false, defaultDays: 90, maxDays: 397 },
};

export const PROFILE_NAMES = Object.keys(PROFILES) as ProfileName[];

export function isProfileName(s: string): s is ProfileName {
  return Object.prototype.hasOwnProperty.call(PROFILES, s);
}
