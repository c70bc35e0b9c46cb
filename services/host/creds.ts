/**
 * Reading a NATS creds file without trusting it: the user JWT's claims (not verified: the server does
 * that), and the inbox prefix its permissions allow, which a client must connect with to receive replies.
 */
export interface CredsClaims {
  name: string;
  sub: string;
  exp?: number;
  nats: { pub?: { allow?: string[]; deny?: string[] }; sub?: { allow?: string[]; deny?: string[] }; resp?: unknown };
}

export function credsClaims(creds: string | Uint8Array): CredsClaims | undefined {
  const text = typeof creds === "string" ? creds : new TextDecoder().decode(creds);
  const m = /-{3,}BEGIN NATS USER JWT-{3,}\s*\n\s*([A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]+)/.exec(text);
  if (!m) return undefined;
  try {
    return JSON.parse(Buffer.from(m[1]!.split(".")[1]!, "base64url").toString("utf8")) as CredsClaims;
  } catch {
    return undefined;
  }
}

/** `_INBOX_<id>` when the creds may subscribe to exactly such an inbox (`_INBOX_<id>.>`), else undefined (the default `_INBOX`). */
export function inboxPrefixOf(creds: string | Uint8Array): string | undefined {
  const allow = credsClaims(creds)?.nats.sub?.allow ?? [];
  for (const s of allow) {
    const m = /^(_INBOX_[A-Za-z0-9_-]+)\.>$/.exec(s);
    if (m) return m[1];
  }
  return undefined;
}
