import { randomBytes } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import type { Logger } from "pino";
import { patternCovers } from "../../services/host/authz.js";
import type { Grant } from "../../services/host/authz.js";
import { newId } from "../../services/kernel/index.js";
import { createAuthenticator } from "../auth.js";
import type { IdentityCore } from "../core.js";
import { scopeResolver } from "../authorize.js";
import { BerError, frameLength } from "./ber.js";
import { attrKey, indexKey, matches, normalizeDn, type Entry, type Filter } from "./filter.js";
import { posixDecider, POSIX_ID } from "./posix.js";
import { decodeMessage, decodePaged, extendedResponse, noticeOfDisconnection, OID, Op, pagedControl, ResultCode, resultMessage, searchEntry, type Message, type SearchRequest } from "./protocol.js";
import { buildTree, type Tree, type TreeEntry, type TreeOptions } from "./tree.js";

export interface DirectoryServerOptions extends Partial<TreeOptions> {
  /** TCP port (0 = any free port). */
  port: number;
  /** Listen address (default 127.0.0.1). */
  host?: string | undefined;
  /** LDAPS instead of plain LDAP: PEM key and certificate chain (e.g. a realm-issued certificate). */
  tls?: { key: string; cert: string } | undefined;
  /** Let an anonymous bind read the directory (default false: refused with inappropriateAuthentication). */
  allowAnonymous?: boolean | undefined;
  /** A person with TOTP appends the 6-digit code to the password (default true). */
  totpSuffix?: boolean | undefined;
  /** First uidNumber / gidNumber handed out (default 10000 each). */
  uidBase?: number | undefined;
  gidBase?: number | undefined;
  /** Most entries one search returns without paging (default 1000; paging is not capped by it). */
  sizeLimit?: number | undefined;
  /** Largest LDAP message accepted (default 256 KiB); a larger one disconnects the client. */
  maxMessage?: number | undefined;
  /** Idle connections are closed after this many seconds (default 600). */
  idleSeconds?: number | undefined;
}

/** Who a connection is bound as. A service sees what its API key's grants let it read. */
type Bound = { kind: "anonymous" } | { kind: "person"; id: string; dn: string } | { kind: "service"; id: string; dn: string; grants: Grant[] };

/** The permission a service's API key must cover (query kind) to bind to the directory: reading principals. */
export const DIRECTORY_PERMISSION = "identity:principals";

/** Answers a client may leave unread before it is disconnected, and requests it may have queued before reading pauses. */
const MAX_UNREAD = 16 * 1024 * 1024;
const MAX_QUEUED = 32;

const READ_ONLY = "the realm directory is read-only: change people and groups through the realm API (realm identity ...)";

interface Session {
  socket: Socket;
  bound: Bound | undefined;
  /** Paged searches in progress: cookie (hex) -> the search it belongs to and the next offset. */
  pages: Map<string, { key: string; offset: number }>;
}

export interface DirectoryServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * A read-only LDAPv3 directory of the realm (RFC 4511): people, groups, organizations and services from the
 * identity projection. Simple bind only: people with their realm password (+ TOTP), services with an API
 * key. Every write operation is answered unwillingToPerform. Malformed input disconnects that client with
 * a Notice of Disconnection; it never stops the server.
 */
export async function startDirectoryServer(core: IdentityCore, opts: DirectoryServerOptions, log: Logger): Promise<DirectoryServer> {
  const treeOpts: TreeOptions = { baseDn: opts.baseDn ?? "dc=realm", primaryGid: opts.primaryGid ?? 100, loginShell: opts.loginShell ?? "/bin/bash", home: opts.home ?? "/home" };
  const uidBase = opts.uidBase ?? 10_000;
  const gidBase = opts.gidBase ?? 10_000;
  const maxMessage = opts.maxMessage ?? 256 * 1024;
  const sizeLimit = opts.sizeLimit ?? 1000;
  const authenticate = createAuthenticator(core, () => undefined);
  const resolve = scopeResolver(() => core.dir);
  const sessions = new Set<Session>();

  let cached: { seq: number; tree: Tree } | undefined;
  let allocating: Promise<void> | undefined;

  /** Allocates POSIX numbers for people and groups that have none (the first time the directory serves them). */
  const allocate = async (missing: Tree["missing"]) => {
    for (let attempt = 0; ; attempt++) {
      try {
        await core.run(posixDecider, POSIX_ID, { type: "allocate", uids: missing.uids, gids: missing.gids, uidBase, gidBase }, { commandId: newId(), actor: "ldap-directory" });
        return;
      } catch (err) {
        // Another replica allocated at the same time: decide again on its numbers.
        if (attempt < 5 && (err as { code?: string }).code === "CONFLICT") continue;
        throw err;
      }
    }
  };
  const tree = async (): Promise<Tree> => {
    for (let round = 0; round < 3; round++) {
      const seq = core.projection.lastSeq;
      if (!cached || cached.seq !== seq) cached = { seq, tree: buildTree(core.dir, treeOpts) };
      const { missing } = cached.tree;
      if (missing.uids.length === 0 && missing.gids.length === 0) return cached.tree;
      allocating ??= allocate(missing).finally(() => (allocating = undefined));
      await allocating;
    }
    return cached!.tree;
  };

  /** The entries a filter can match: an indexed equality (alone or in an `and`) narrows them, in tree order. */
  const candidates = (t: Tree, f: Filter): TreeEntry[] => {
    const eq = f.type === "equal" ? f : f.type === "and" ? f.filters.find((x) => x.type === "equal" && t.index.has(attrKey(x.attribute))) : undefined;
    if (eq?.type !== "equal") return t.entries;
    const m = t.index.get(attrKey(eq.attribute));
    return m ? (m.get(indexKey(eq.attribute, eq.value)) ?? []) : t.entries;
  };

  const visible = (s: Session, e: TreeEntry): boolean => {
    const b = s.bound;
    if (!b) return false;
    if (b.kind !== "service" || !e.principal) return true;
    // A service sees the people (and services) its key's grants cover: an org-scoped grant, that org's people.
    return b.grants.some((g) => g.permissions.some((p) => patternCovers(p, DIRECTORY_PERMISSION, "query")) && (!g.scope || resolve(g.scope, { kind: "principal", id: e.principal! }, { id: b.id, roles: [], grants: b.grants })));
  };

  const send = (s: Session, b: Buffer) => {
    if (s.socket.destroyed) return;
    // A client that asks but does not read its answers is dropped before they pile up in memory.
    if (s.socket.writableLength > MAX_UNREAD) return void s.socket.destroy();
    s.socket.write(b);
  };

  async function bind(s: Session, m: Message, r: Extract<Message["request"], { op: "bind" }>): Promise<void> {
    s.bound = undefined;
    s.pages.clear();
    const reply = (code: number, msg: string) => send(s, resultMessage(m.id, Op.BindResponse, code, msg));
    if (r.version !== 3) return reply(ResultCode.protocolError, "only LDAPv3 is supported");
    if (r.auth.kind === "sasl") return reply(ResultCode.authMethodNotSupported, "only simple bind is supported");
    const password = r.auth.password;
    if (r.name === "" && password === "") {
      if (!opts.allowAnonymous) return reply(ResultCode.inappropriateAuthentication, "anonymous bind is disabled: bind as a person (uid=<id>,ou=people,...) or a service (cn=<id>,ou=services,...)");
      s.bound = { kind: "anonymous" };
      return reply(ResultCode.success, "");
    }
    // RFC 4513 5.1.2: a name without a password is an unauthenticated bind, refused.
    if (password === "") return reply(ResultCode.unwillingToPerform, "unauthenticated bind (a DN without a password) is refused");
    const t = await tree();
    const dn = normalizeDn(r.name);
    const m1 = /^uid=([^,]+),ou=people,(.*)$/.exec(dn);
    const m2 = /^cn=([^,]+),ou=services,(.*)$/.exec(dn);
    const idOf = (v: string) => [...core.dir.principals.keys()].find((k) => k.toLowerCase() === v);
    if (m1 && m1[2] === t.nbase) {
      const id = idOf(m1[1]!);
      const p = id ? core.dir.principals.get(id) : undefined;
      let pw = password;
      let code: string | undefined;
      if (p?.totp === "enabled" && opts.totpSuffix !== false && /\d{6}$/.test(pw) && pw.length > 6) {
        code = pw.slice(-6);
        pw = pw.slice(0, -6);
      }
      const res = await core.login(id ?? m1[1]!, pw, code, { correlationId: newId() });
      if (!res.ok) {
        log.info({ dn: r.name, reason: res.reason }, "LDAP bind refused");
        if (res.reason === "unavailable") return reply(ResultCode.unavailable, "the person's directory is not reachable");
        return reply(ResultCode.invalidCredentials, "invalid credentials");
      }
      s.bound = { kind: "person", id: res.principal.id, dn: `uid=${res.principal.id},ou=people,${t.base}` };
      return reply(ResultCode.success, "");
    }
    if (m2 && m2[2] === t.nbase) {
      const id = idOf(m2[1]!);
      const p = id ? core.dir.principals.get(id) : undefined;
      let principal;
      try {
        principal = /^\S+$/.test(password) ? await authenticate(`Bearer ${password}`) : null;
      } catch {
        principal = null;
      }
      if (!p || p.kind === "person" || !principal || principal.id !== p.id) {
        log.info({ dn: r.name }, "LDAP service bind refused");
        return reply(ResultCode.invalidCredentials, "invalid credentials");
      }
      if (!principal.grants.some((g) => g.permissions.some((x) => patternCovers(x, DIRECTORY_PERMISSION, "query")))) {
        return reply(ResultCode.insufficientAccessRights, `the API key's roles do not grant ${DIRECTORY_PERMISSION}: it may not read the directory`);
      }
      s.bound = { kind: "service", id: p.id, dn: `cn=${p.id},ou=services,${t.base}`, grants: principal.grants };
      return reply(ResultCode.success, "");
    }
    return reply(ResultCode.invalidCredentials, "invalid credentials");
  }

  const rootDse = (): Entry => ({
    dn: "",
    attributes: [
      ["objectClass", ["top"]],
      ["namingContexts", [treeOpts.baseDn]],
      ["supportedLDAPVersion", ["3"]],
      ["supportedControl", [OID.pagedResults]],
      ["supportedExtension", [OID.whoAmI]],
      ["vendorName", ["cim-realm"]],
    ],
  });

  /** The attributes of `e` a search asked for (RFC 4511 4.5.1.8: none, `*`, `1.1`, or names). */
  const select = (e: Entry, q: SearchRequest): [string, string[]][] => {
    const names = q.attributes;
    const all = names.length === 0 || names.includes("*");
    if (!all && names.length === 1 && names[0] === "1.1") return [];
    const wanted = new Set(names.map(attrKey));
    const out: [string, string[]][] = e.attributes.filter(([n]) => all || wanted.has(n.toLowerCase()));
    if (names.includes("+") || wanted.has("entrydn")) out.push(["entryDN", [e.dn]]);
    return q.typesOnly ? out.map(([n]) => [n, []]) : out;
  };

  async function search(s: Session, m: Message, q: SearchRequest): Promise<void> {
    const done = (code: number, msg: string, controls?: Buffer[]) => send(s, resultMessage(m.id, Op.SearchResultDone, code, msg, controls));
    const nb = normalizeDn(q.base);
    if (nb === "" && q.scope === "base") {
      if (matches(rootDse(), q.filter)) send(s, searchEntry(m.id, "", select(rootDse(), q)));
      return done(ResultCode.success, "");
    }
    if (!s.bound) return done(ResultCode.insufficientAccessRights, "bind first: anonymous reads are disabled");
    let paged: { size: number; cookie: Buffer } | undefined;
    for (const c of m.controls) {
      if (c.type === OID.pagedResults) paged = decodePaged(c.value);
      else if (c.critical) return done(ResultCode.unavailableCriticalExtension, `control ${c.type} is not supported`);
    }
    const t = await tree();
    const baseEntry = t.byDn.get(nb);
    if (!baseEntry || !visible(s, baseEntry)) return done(ResultCode.noSuchObject, `no entry ${q.base}`);
    const inScope = (e: TreeEntry) => (q.scope === "base" ? e.ndn === nb : q.scope === "one" ? e.parent === nb : e.ndn === nb || e.ndn.endsWith(`,${nb}`));
    const found = candidates(t, q.filter).filter((e) => inScope(e) && visible(s, e) && matches(e, q.filter));
    const limit = q.sizeLimit > 0 ? q.sizeLimit : Number.POSITIVE_INFINITY;
    if (!paged) {
      const cap = Math.min(limit, sizeLimit);
      for (const e of found.slice(0, cap)) send(s, searchEntry(m.id, e.dn, select(e, q)));
      return found.length > cap ? done(ResultCode.sizeLimitExceeded, `more than ${cap} entries match; use paging (RFC 2696)`) : done(ResultCode.success, "");
    }
    // Paging: the cookie names this connection's search and where the next page starts. The same search
    // must come back with it (RFC 2696); entries are in DN order of the tree at each page's time.
    const key = JSON.stringify([nb, q.scope, q.filter, q.attributes, q.typesOnly, q.sizeLimit]);
    let offset = 0;
    if (paged.cookie.length > 0) {
      const hex = paged.cookie.toString("hex");
      const state = s.pages.get(hex);
      s.pages.delete(hex);
      if (!state || state.key !== key) return done(ResultCode.protocolError, "unknown paged results cookie, or a different search than the one it was given for");
      offset = state.offset;
    }
    if (paged.size === 0) return done(ResultCode.success, "", [pagedControl(0, Buffer.alloc(0))]);
    const end = Math.min(offset + paged.size, found.length, limit);
    for (const e of found.slice(offset, end)) send(s, searchEntry(m.id, e.dn, select(e, q)));
    if (end >= limit && limit < found.length) return done(ResultCode.sizeLimitExceeded, `the search's size limit of ${limit} is reached`, [pagedControl(0, Buffer.alloc(0))]);
    let cookie = Buffer.alloc(0);
    if (end < found.length) {
      if (s.pages.size >= 16) s.pages.delete(s.pages.keys().next().value!);
      cookie = randomBytes(12);
      s.pages.set(cookie.toString("hex"), { key, offset: end });
    }
    return done(ResultCode.success, "", [pagedControl(found.length, cookie)]);
  }

  async function compare(s: Session, m: Message, r: Extract<Message["request"], { op: "compare" }>): Promise<void> {
    const reply = (code: number, msg: string) => send(s, resultMessage(m.id, Op.CompareResponse, code, msg));
    if (!s.bound) return reply(ResultCode.insufficientAccessRights, "bind first");
    const e = (await tree()).byDn.get(normalizeDn(r.entry));
    if (!e || !visible(s, e)) return reply(ResultCode.noSuchObject, `no entry ${r.entry}`);
    return reply(matches(e, { type: "equal", attribute: r.attribute, value: r.value }) ? ResultCode.compareTrue : ResultCode.compareFalse, "");
  }

  async function handle(s: Session, m: Message): Promise<void> {
    const r = m.request;
    switch (r.op) {
      case "bind":
        return bind(s, m, r);
      case "unbind":
        s.socket.end();
        return;
      case "abandon":
        // Searches are answered whole before the next message is read: there is nothing left to abandon.
        return;
      case "search":
        return search(s, m, r.search);
      case "compare":
        return compare(s, m, r);
      case "write":
        log.info({ op: r.name, bound: s.bound?.kind }, "LDAP write refused");
        return send(s, resultMessage(m.id, r.response, ResultCode.unwillingToPerform, READ_ONLY));
      case "extended":
        if (r.name === OID.whoAmI) {
          const b = s.bound;
          return send(s, extendedResponse(m.id, ResultCode.success, "", undefined, Buffer.from(b && b.kind !== "anonymous" ? `dn:${b.dn}` : "")));
        }
        if (r.name === OID.startTls) return send(s, extendedResponse(m.id, ResultCode.unavailable, opts.tls ? "already on LDAPS" : "StartTLS is not offered: use LDAPS where the realm runs it, or a loopback/VPN path"));
        return send(s, extendedResponse(m.id, ResultCode.protocolError, `unsupported extended operation ${r.name}`));
    }
  }

  /** The response tag a request would be answered with, to answer an unexpected error. */
  const responseOf = (m: Message): number | undefined => {
    const r = m.request;
    return r.op === "bind" ? Op.BindResponse : r.op === "search" ? Op.SearchResultDone : r.op === "compare" ? Op.CompareResponse : r.op === "write" ? r.response : r.op === "extended" ? Op.ExtendedResponse : undefined;
  };

  const onConnection = (socket: Socket | TLSSocket) => {
    const s: Session = { socket, bound: undefined, pages: new Map() };
    sessions.add(s);
    // Answers are written as they are ready (entries, then the done message): no Nagle delay between them.
    socket.setNoDelay(true);
    socket.setTimeout((opts.idleSeconds ?? 600) * 1000, () => socket.destroy());
    socket.on("error", () => socket.destroy());
    socket.on("close", () => sessions.delete(s));
    let buf: Buffer = Buffer.alloc(0);
    // One message at a time, in order: the next is read when the previous is answered.
    let chain = Promise.resolve();
    let queued = 0;
    const disconnect = (why: string) => {
      log.info({ remote: socket.remoteAddress, why }, "LDAP client disconnected: protocol error");
      if (!socket.destroyed) socket.end(noticeOfDisconnection(ResultCode.protocolError, why));
      buf = Buffer.alloc(0);
    };
    socket.on("data", (chunk: Buffer) => {
      if (socket.destroyed || !socket.writable) return;
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      for (;;) {
        let len: number | undefined;
        let msg: Message;
        try {
          len = frameLength(buf, maxMessage);
          if (len === undefined) {
            if (buf.length > maxMessage + 8) throw new BerError("message too large");
            return;
          }
          msg = decodeMessage(buf.subarray(0, len));
        } catch (err) {
          return disconnect(err instanceof BerError ? err.message : "malformed message");
        }
        buf = buf.subarray(len);
        const m = msg;
        // Backpressure: a client pipelining requests faster than they are answered stops being read.
        if (++queued >= MAX_QUEUED) socket.pause();
        chain = chain.then(async () => {
          try {
            // One write per answer: a search's entries and its done message leave in one segment where they fit.
            socket.cork();
            await handle(s, m);
          } catch (err) {
            if (err instanceof BerError) return disconnect(err.message);
            log.error({ err: err instanceof Error ? err.message : String(err), op: m.request.op }, "LDAP operation failed");
            const tag = responseOf(m);
            if (tag === Op.ExtendedResponse) send(s, extendedResponse(m.id, ResultCode.other, "internal error"));
            else if (tag !== undefined) send(s, resultMessage(m.id, tag, ResultCode.other, "internal error"));
          } finally {
            socket.uncork();
            if (--queued < MAX_QUEUED / 2 && socket.isPaused()) socket.resume();
          }
        });
      }
    });
  };

  const server: Server = opts.tls ? createTlsServer({ key: opts.tls.key, cert: opts.tls.cert, minVersion: "TLSv1.2" }, onConnection) : createServer(onConnection);
  server.maxConnections = 1024;
  server.on("tlsClientError", () => undefined);
  await new Promise<void>((resolveListen, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host ?? "127.0.0.1", () => resolveListen());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : opts.port;
  const url = `${opts.tls ? "ldaps" : "ldap"}://${opts.host ?? "127.0.0.1"}:${port}`;
  log.info({ url, baseDn: treeOpts.baseDn }, "LDAP directory listening");
  return {
    url,
    port,
    async stop() {
      for (const s of sessions) s.socket.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
