/**
 * What other contexts and clients may rely on from the PKI context: its subjects, event types, routes.
 */
export const PKI_CONTEXT = "pki";
export const PKI_STREAM = "REALM_PKI";
/** The KV bucket of the online intermediate keys, sealed with the realm's seal key (pki/keystore.ts). */
export const PKI_KEYS_BUCKET = "realm_pki_keys";

export const PkiSubjects = {
  issue: "realm.pki.commands.certificate.issue",
  revoke: "realm.pki.commands.certificate.revoke",
  certificates: "realm.pki.queries.certificates",
  certificate: "realm.pki.queries.certificate",
  issuers: "realm.pki.queries.issuers",
  crl: "realm.pki.queries.crl",
  /** Events of one certificate: `realm.pki.events.certificate.<serial>`; all: `realm.pki.events.>`. */
  events: "realm.pki.events.>",
} as const;

export const PkiEventTypes = {
  IntermediateKeyPrepared: "IntermediateKeyPrepared",
  IntermediateImported: "IntermediateImported",
  IssuerPolicyChanged: "IssuerPolicyChanged",
  RootCrlImported: "RootCrlImported",
  CertificateIssued: "CertificateIssued",
  CertificateRevoked: "CertificateRevoked",
  /** SSH CAs (aggregate `ssh-ca`, id = issuer) and certificates (aggregate `ssh-cert`, id = decimal serial): pki/ssh/. */
  SshCaCreated: "SshCaCreated",
  SshCaPolicyChanged: "SshCaPolicyChanged",
  SshKeyIdRevoked: "SshKeyIdRevoked",
  SshCertificateIssued: "SshCertificateIssued",
  SshCertificateRevoked: "SshCertificateRevoked",
} as const;

/** Public HTTP routes (no credential needed): relying parties fetch these. */
export const PkiRoutes = {
  /** DER CRL of an issuer's current intermediate: `/pki/crl/<issuer>.crl`; the root's (as imported from the ceremony): `/pki/crl/root.crl`. */
  crl: (issuer: string) => `/pki/crl/${issuer}.crl`,
  /**
   * DER CRL of one intermediate of an issuer, by its serial: what leaves name in their CRL distribution point,
   * so that they stay checkable after the issuer rotates to a new intermediate.
   */
  intermediateCrl: (issuer: string, intermediateSerial: string) => `/pki/crl/${issuer}/${intermediateSerial}.crl`,
  /** RFC 6960 responder: POST application/ocsp-request, or GET `/pki/ocsp/<base64 request>`. */
  ocsp: "/pki/ocsp",
  /** PEM of an issuer's intermediate followed by the root: `/pki/ca/<issuer>.pem`. */
  chain: (issuer: string) => `/pki/ca/${issuer}.pem`,
  /** The OpenSSH KRL (binary, PROTOCOL.krl) of an issuer's SSH CA: what sshd's `RevokedKeys` reads. */
  sshKrl: (issuer: string) => `/pki/ssh/${issuer}.krl`,
  /** The SSH CA's public key line: what `TrustedUserCAKeys` and `@cert-authority` hold. */
  sshCaKey: (issuer: string) => `/pki/ssh/${issuer}.pub`,
} as const;
