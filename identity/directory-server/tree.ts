import type { Directory } from "../domain/directory.js";
import { groupsOf } from "../domain/directory.js";
import { indexKey, normalizeDn, type Entry } from "./filter.js";
import { POSIX_ID, type PosixIdsState } from "./posix.js";

/** How the tree is laid out and what POSIX attributes people get. */
export interface TreeOptions {
  /** The base DN, e.g. `dc=example,dc=org` (default `dc=realm`). */
  baseDn: string;
  /** gidNumber of every person's primary group (posixAccount needs one; default 100, Debian's `users`). */
  primaryGid: number;
  /** loginShell of every person (default /bin/bash). */
  loginShell: string;
  /** homeDirectory prefix: `<home>/<uid>` (default /home). */
  home: string;
}

/** An entry with its normalised DN and, for a person or service entry, the principal it shows. */
export interface TreeEntry extends Entry {
  ndn: string;
  /** Normalised DN of the parent ("" for the base). */
  parent: string;
  principal?: string | undefined;
}

export interface Tree {
  base: string;
  nbase: string;
  entries: TreeEntry[];
  byDn: Map<string, TreeEntry>;
  /** Equality indexes of `uid` and `cn` (normalised value -> entries, in tree order). */
  index: Map<string, Map<string, TreeEntry[]>>;
  /** Principals and groups that have no POSIX number yet (the server allocates them). */
  missing: { uids: string[]; gids: string[] };
}

/** Attributes with an equality index (what applications look people and groups up by). */
export const INDEXED = ["uid", "cn"] as const;

export const peopleDn = (base: string, id: string) => `uid=${id},ou=people,${base}`;
export const groupDn = (base: string, id: string) => `cn=${id},ou=groups,${base}`;
export const serviceDn = (base: string, id: string) => `cn=${id},ou=services,${base}`;

/** `sn` is required by inetOrgPerson: the last word of the display name (or the uid). */
const surname = (displayName: string, id: string) => displayName.trim().split(/\s+/).pop() || id;

/** The directory's LDAP tree, built from the identity projection (a pure function of it). */
export function buildTree(d: Directory, o: TreeOptions): Tree {
  const base = o.baseDn;
  const nbase = normalizeDn(base);
  const posix: PosixIdsState | undefined = d.posix.get(POSIX_ID);
  const entries: TreeEntry[] = [];
  const missing = { uids: [] as string[], gids: [] as string[] };
  const add = (dn: string, attributes: [string, (string | undefined)[]][], principal?: string) => {
    const ndn = normalizeDn(dn);
    const comma = ndn.indexOf(",");
    const clean: [string, string[]][] = attributes.map(([n, vs]) => [n, vs.filter((v): v is string => v !== undefined && v !== "")] as [string, string[]]).filter(([, vs]) => vs.length > 0);
    entries.push({ dn, ndn, parent: ndn === nbase ? "" : comma < 0 ? "" : ndn.slice(comma + 1), attributes: clean, byName: new Map(clean.map(([n, vs]) => [n.toLowerCase(), vs])), principal });
  };
  const dc = /^dc=([^,]+)/i.exec(base)?.[1] ?? "realm";
  add(base, [["objectClass", ["top", "dcObject", "organization"]], ["dc", [dc]], ["o", [dc]]]);
  for (const ou of ["people", "groups", "services"]) add(`ou=${ou},${base}`, [["objectClass", ["top", "organizationalUnit"]], ["ou", [ou]]]);

  for (const org of [...d.organizations.values()].filter((x) => x.exists).sort((a, b) => a.id.localeCompare(b.id))) {
    const orgDn = `o=${org.id},${base}`;
    add(orgDn, [["objectClass", ["top", "organization"]], ["o", [org.id]], ["description", [org.displayName]]]);
    const unitDn = (unit: string): string => {
      const chain: string[] = [];
      for (let u: string | undefined = unit, depth = 0; u !== undefined && depth < 64; u = org.units[u]?.parent, depth++) chain.push(`ou=${u}`);
      return `${chain.join(",")},${orgDn}`;
    };
    // Parents before children, so a one-level search finds each level.
    const units = Object.entries(org.units).map(([id, u]) => ({ id, ...u, dn: unitDn(id) }));
    units.sort((a, b) => a.dn.split(",").length - b.dn.split(",").length || a.id.localeCompare(b.id));
    for (const u of units) add(u.dn, [["objectClass", ["top", "organizationalUnit"]], ["ou", [u.id]], ["description", [u.displayName]]]);
  }

  const groups = [...d.groups.values()].filter((g) => g.exists).sort((a, b) => a.id.localeCompare(b.id));
  const people = [...d.principals.values()].filter((p) => p.exists && p.kind === "person").sort((a, b) => a.id.localeCompare(b.id));
  const personIds = new Set(people.map((p) => p.id));
  for (const p of people) {
    const uidNumber = posix?.uids[p.id];
    if (uidNumber === undefined) missing.uids.push(p.id);
    const posixAttrs: [string, string[]][] =
      uidNumber === undefined
        ? []
        : [
            ["uidNumber", [String(uidNumber)]],
            ["gidNumber", [String(o.primaryGid)]],
            ["homeDirectory", [`${o.home}/${p.id}`]],
            ["loginShell", [o.loginShell]],
          ];
    add(
      peopleDn(base, p.id),
      [
        ["objectClass", ["top", "person", "organizationalPerson", "inetOrgPerson", ...(uidNumber === undefined ? [] : ["posixAccount"])]],
        ["uid", [p.id]],
        ["cn", [p.displayName]],
        ["sn", [surname(p.displayName, p.id)]],
        ["displayName", [p.displayName]],
        ["mail", [p.email]],
        ["o", [p.organization]],
        ["ou", [p.orgUnit]],
        ...posixAttrs,
        ["memberOf", groupsOf(d, p.id).map((g) => groupDn(base, g))],
      ],
      p.id,
    );
  }
  for (const g of groups) {
    const gidNumber = posix?.gids[g.id];
    if (gidNumber === undefined) missing.gids.push(g.id);
    const people = g.members.filter((m) => personIds.has(m)).sort();
    add(groupDn(base, g.id), [
      ["objectClass", ["top", "groupOfNames", ...(gidNumber === undefined ? [] : ["posixGroup"])]],
      ["cn", [g.id]],
      ["description", [g.displayName]],
      ["member", people.map((m) => peopleDn(base, m))],
      ["memberUid", people],
      ["gidNumber", [gidNumber === undefined ? undefined : String(gidNumber)]],
    ]);
  }
  for (const s of [...d.principals.values()].filter((p) => p.exists && p.kind !== "person").sort((a, b) => a.id.localeCompare(b.id))) {
    add(serviceDn(base, s.id), [["objectClass", ["top", "applicationProcess"]], ["cn", [s.id]], ["description", [s.displayName]]], s.id);
  }
  const index = new Map<string, Map<string, TreeEntry[]>>(INDEXED.map((a) => [a, new Map()]));
  for (const e of entries) {
    for (const a of INDEXED) {
      for (const v of e.byName!.get(a) ?? []) {
        const m = index.get(a)!;
        const k = indexKey(a, v);
        const list = m.get(k);
        if (list) list.push(e);
        else m.set(k, [e]);
      }
    }
  }
  return { base, nbase, entries, byDn: new Map(entries.map((e) => [e.ndn, e])), index, missing };
}
