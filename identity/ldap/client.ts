import { Client, type Entry } from "ldapts";
import { RealmError } from "../../services/kernel/index.js";
import type { LdapDirectoryConfig, LdapSnapshot } from "../domain/federation.js";

const first = (v: Entry[string] | undefined): string | undefined => {
  const x = Array.isArray(v) ? v[0] : v;
  return x === undefined ? undefined : Buffer.isBuffer(x) ? x.toString("utf8") : String(x);
};
const all = (v: Entry[string] | undefined): string[] => (v === undefined ? [] : (Array.isArray(v) ? v : [v]).map((x) => (Buffer.isBuffer(x) ? x.toString("utf8") : String(x))));
const norm = (dn: string) => dn.replace(/\s*,\s*/g, ",").toLowerCase();

function client(config: LdapDirectoryConfig): Client {
  return new Client({ url: config.url, timeout: 10_000, connectTimeout: 5_000 });
}

/** Reads users (inetOrgPerson) and groups (groupOfNames `member` DNs, posixGroup `memberUid`). */
export async function readDirectory(config: LdapDirectoryConfig, bindPassword: string): Promise<LdapSnapshot> {
  const c = client(config);
  try {
    await c.bind(config.bindDn, bindPassword);
    const users = await c.search(config.usersBase, { scope: "sub", filter: config.userFilter, attributes: ["uid", "cn", "displayName", "mail"] });
    const groups = await c.search(config.groupsBase, { scope: "sub", filter: config.groupFilter, attributes: ["cn", "member", "memberUid"] });
    const uidByDn = new Map<string, string>();
    const out: LdapSnapshot = { users: [], groups: [] };
    for (const e of users.searchEntries) {
      const uid = first(e.uid);
      if (!uid) continue;
      uidByDn.set(norm(e.dn), uid);
      out.users.push({ uid, dn: e.dn, displayName: first(e.displayName) ?? first(e.cn) ?? uid, email: first(e.mail) });
    }
    for (const e of groups.searchEntries) {
      const cn = first(e.cn);
      if (!cn) continue;
      const members = [...all(e.member).map((dn) => uidByDn.get(norm(dn))).filter((x): x is string => x !== undefined), ...all(e.memberUid)];
      out.groups.push({ cn, dn: e.dn, members });
    }
    return out;
  } catch (err) {
    throw new RealmError("UNAVAILABLE", `LDAP directory ${config.url} could not be read: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    await c.unbind().catch(() => undefined);
  }
}

/**
 * Checks a password by binding as the user. An empty password is refused here: LDAP treats a simple bind
 * with an empty password as an anonymous bind, which "succeeds".
 */
export async function ldapBind(config: LdapDirectoryConfig, dn: string, password: string): Promise<boolean> {
  if (password.length === 0) return false;
  const c = client(config);
  try {
    await c.bind(dn, password);
    return true;
  } catch (err) {
    if (err instanceof Error && err.name === "InvalidCredentialsError") return false;
    throw err;
  } finally {
    await c.unbind().catch(() => undefined);
  }
}
