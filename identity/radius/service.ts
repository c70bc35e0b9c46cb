import { randomBytes } from "node:crypto";
import { commandMetaOf, type Endpoint } from "../../services/host/context.js";
import { execute, invalid, newId, notFound, Projection, type CommandMeta } from "../../services/kernel/index.js";
import { IdentityCore } from "../core.js";
import { groupsOf } from "../domain/directory.js";
import { isLocked, principalDecider } from "../domain/principal.js";
import { clientFor, radiusClientDecider, radiusProjection, radiusSessionDecider, sessionAggregateId, STATUS_TYPES, type AccountingRecord, type GroupReply, type RadiusClientState } from "./domain.js";
import { Attr, attr, attrCount, Code, int, revealPassword, str, tagged, text, u32, type Attribute, type Packet } from "./packet.js";
import { authenticatorResponse, challengeHash, challengeResponse, hideMppeKey, microsoftAttributes, mppeKeys, MsAttr, ntHashSecret, sameBytes, vsa } from "./mschap.js";
import { newState, RadiusServer, type RadiusHandler } from "./server.js";

export interface RadiusOptions {
  /** Authentication port; accounting listens on `accountingPort` (default port + 1). Default `REALM_RADIUS_PORT`; unset: no UDP listener. */
  port?: number | undefined;
  accountingPort?: number | undefined;
  /** Default `REALM_RADIUS_HOST`, else 0.0.0.0. */
  host?: string | undefined;
  /** How long an Access-Challenge's State is good for. Default 120 s. */
  challengeSeconds?: number | undefined;
}

export const secretName = (c: RadiusClientState) => `radius-client:${c.id}`;
/** Tunnel-Type VLAN (13) and Tunnel-Medium-Type IEEE-802 (6), RFC 3580 3.31. */
const VLAN_TUNNEL = 13;
const MEDIUM_802 = 6;

function portFrom(env: string | undefined, what: string): number | undefined {
  if (env === undefined || env === "") return undefined;
  const n = Number(env);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw invalid(`${what} must be a port number (0-65535), not ${JSON.stringify(env)}`);
  return n;
}

/** The reply attributes of the first of the person's groups (in the client's order) that has some. */
export function replyAttributes(client: RadiusClientState, groups: string[]): Attribute[] {
  const reply = client.replies.find((r) => groups.includes(r.group));
  if (!reply) return [];
  const out: Attribute[] = [];
  if (reply.vlan !== undefined) out.push(tagged(Attr.TunnelType, 0, VLAN_TUNNEL), tagged(Attr.TunnelMediumType, 0, MEDIUM_802), str(Attr.TunnelPrivateGroupId, reply.vlan));
  if (reply.filterId !== undefined) out.push(str(Attr.FilterId, reply.filterId));
  return out;
}

interface Challenge {
  client: string;
  user: string;
  expires: number;
}

/**
 * The RADIUS server as an extension of the identity context: NAS clients as `radius-client` aggregates
 * (endpoints `radiusClient.add`, `radiusClients`, `radiusClient.remove`), and, when a port is given, the
 * UDP server deciding Access-Requests (PAP, TOTP) against the directory and recording accounting as events.
 */
export function radiusServer(opts: RadiusOptions = {}) {
  return async (core: IdentityCore): Promise<{ endpoints: Endpoint[]; stop: () => Promise<void>; server?: RadiusServer }> => {
    const port = opts.port ?? portFrom(process.env.REALM_RADIUS_PORT, "REALM_RADIUS_PORT");
    const projection = new Projection(core.store, radiusProjection, { log: core.log });
    await projection.start();
    const secrets = new Map<string, Buffer>();
    const challenges = new Map<string, Challenge>();
    const challengeMs = (opts.challengeSeconds ?? 120) * 1000;
    const log = core.log.child({ component: "radius" });

    const reject = (client: RadiusClientState, user: string | undefined, reason: string) => {
      log.info({ client: client.id, user, reason }, "RADIUS Access-Reject");
      return { code: Code.AccessReject, attributes: [str(Attr.ReplyMessage, "Access denied")] };
    };
    const accept = (client: RadiusClientState, user: string) => {
      log.info({ client: client.id, user }, "RADIUS Access-Accept");
      return { code: Code.AccessAccept, attributes: replyAttributes(client, groupsOf(core.dir, user)) };
    };

    /** The second round of a TOTP challenge: the User-Password is the code. */
    const answerChallenge = async (client: RadiusClientState, user: string, state: Buffer, code: string, correlationId: string) => {
      const key = state.toString("hex");
      const c = challenges.get(key);
      challenges.delete(key);
      if (!c || c.client !== client.id || c.user !== user || c.expires < Date.now()) return reject(client, user, "unknown or expired State");
      const p = core.dir.principals.get(user);
      if (!p?.exists || p.disabled) return reject(client, user, "disabled");
      if (!client.allowedGroups.some((g) => groupsOf(core.dir, user).includes(g))) return reject(client, user, "no allowed group on this client");
      const now = new Date();
      if (isLocked(p, now)) return reject(client, user, "locked");
      const meta: CommandMeta = { commandId: newId(), actor: "anonymous", correlationId };
      if (!(await core.credentials.verifyTotp(p.id, code.trim()))) {
        await core.run(principalDecider, p.id, { type: "recordLoginFailure", at: now.toISOString(), policy: core.lockout }, meta).catch(() => undefined);
        return reject(client, user, "wrong TOTP code");
      }
      await core.run(principalDecider, p.id, { type: "recordLogin", at: now.toISOString(), method: "radius-totp" }, { ...meta, actor: p.id });
      return accept(client, user);
    };

    /**
     * MS-CHAP (v1, RFC 2433) and MS-CHAPv2 (RFC 2759) against the person's sealed NT hash. Persons with TOTP
     * are refused (MS-CHAP cannot carry the second factor), as are those without an NT hash.
     */
    const mschap = async (client: RadiusClientState, user: string, p: Packet, secret: Buffer, ms: Map<number, Buffer>, correlationId: string) => {
      const challenge = ms.get(MsAttr.ChapChallenge)!;
      const v2 = ms.get(MsAttr.Chap2Response);
      const v1 = ms.get(MsAttr.ChapResponse);
      const response = v2 ?? v1;
      if (!response || response.length !== 50 || challenge.length !== (v2 ? 16 : 8)) return reject(client, user, "malformed MS-CHAP attributes");
      const ident = response[0]!;
      const fail = (reason: string) => ({ ...reject(client, user, reason), attributes: [str(Attr.ReplyMessage, "Access denied"), str(Attr.VendorSpecific, vsa(MsAttr.ChapError, Buffer.concat([Buffer.from([ident]), Buffer.from(`E=691 R=0${v2 ? " V=3" : ""}`)])))] });
      const principal = core.dir.principals.get(user);
      const now = new Date();
      if (!principal?.exists || principal.kind !== "person") return fail("invalid");
      if (principal.disabled) return fail("disabled");
      if (isLocked(principal, now)) return fail("locked");
      if (!client.allowedGroups.some((g) => groupsOf(core.dir, user).includes(g))) return fail("no allowed group on this client");
      if (principal.totp === "enabled") return fail("TOTP enrolled: MS-CHAP cannot carry the second factor");
      const stored = await core.credentials.getSecret(ntHashSecret(user));
      if (stored === undefined) return fail("no NT hash kept (set the password with ntHash)");
      const hash = Buffer.from(stored, "hex");
      const nameForHash = user.includes("\\") ? user.slice(user.lastIndexOf("\\") + 1) : user;
      // v1: ident, flags, LM-Response (24), NT-Response; v2: ident, flags, Peer-Challenge (16), 8 reserved, NT-Response.
      const ntResponse = response.subarray(26, 50);
      const expected = v2 ? challengeResponse(challengeHash(response.subarray(2, 18), challenge, nameForHash), hash) : challengeResponse(challenge, hash);
      const meta: CommandMeta = { commandId: newId(), actor: "anonymous", correlationId };
      if ((!v2 && response[1] !== 1) || !sameBytes(ntResponse, expected)) {
        await core.run(principalDecider, user, { type: "recordLoginFailure", at: now.toISOString(), policy: core.lockout }, meta).catch(() => undefined);
        return fail("wrong MS-CHAP response");
      }
      await core.run(principalDecider, user, { type: "recordLogin", at: now.toISOString(), method: v2 ? "radius-mschapv2" : "radius-mschap" }, { ...meta, actor: user });
      const accepted = accept(client, user);
      if (!v2) return accepted;
      const keys = await mppeKeys(hash, ntResponse);
      const success = Buffer.concat([Buffer.from([ident]), Buffer.from(await authenticatorResponse(hash, ntResponse, response.subarray(2, 18), challenge, nameForHash))]);
      return {
        code: accepted.code,
        attributes: [
          ...accepted.attributes,
          str(Attr.VendorSpecific, vsa(MsAttr.Chap2Success, success)),
          str(Attr.VendorSpecific, vsa(MsAttr.MppeSendKey, hideMppeKey(keys.send, secret, p.authenticator))),
          str(Attr.VendorSpecific, vsa(MsAttr.MppeRecvKey, hideMppeKey(keys.recv, secret, p.authenticator))),
          str(Attr.VendorSpecific, vsa(MsAttr.MppeEncryptionPolicy, u32(0, 1).value)),
          str(Attr.VendorSpecific, vsa(MsAttr.MppeEncryptionTypes, u32(0, 6).value)),
        ],
      };
    };

    const handler: RadiusHandler = {
      clientFor: (source) => clientFor(projection.state.clients.values(), source),
      async secretOf(c) {
        const key = `${c.id}@${c.addedAt ?? ""}`;
        const cached = secrets.get(key);
        if (cached) return cached;
        const s = await core.credentials.getSecret(secretName(c));
        if (s === undefined) return undefined;
        secrets.set(key, Buffer.from(s, "utf8"));
        return secrets.get(key);
      },
      async access(client, p: Packet, secret, correlationId) {
        const user = text(p, Attr.UserName);
        if (user === undefined || attrCount(p, Attr.UserName) !== 1) return reject(client, undefined, "no single User-Name");
        const hidden = attr(p, Attr.UserPassword);
        const ms = microsoftAttributes(p.attributes.filter((a) => a.type === Attr.VendorSpecific).map((a) => a.value));
        if (!hidden && ms.has(MsAttr.ChapChallenge)) return mschap(client, user, p, secret, ms, correlationId);
        if (!hidden || attrCount(p, Attr.UserPassword) !== 1) return reject(client, user, attr(p, Attr.ChapPassword) ? "CHAP is not served" : "no User-Password (PAP) or MS-CHAP response");
        const password = revealPassword(hidden, secret, p.authenticator);
        if (password === undefined) return reject(client, user, "malformed User-Password");
        const state = attr(p, Attr.State);
        if (state) return answerChallenge(client, user, state, password, correlationId);
        const principal = core.dir.principals.get(user);
        // Not allowed on this NAS: refused before any password is checked (no hash spent, no failure counted).
        if (principal?.exists && !client.allowedGroups.some((g) => groupsOf(core.dir, user).includes(g))) return reject(client, user, "no allowed group on this client");
        const appended = principal?.totp === "enabled" ? /^(.+)(\d{6})$/s.exec(password) : null;
        const r = appended ? await core.login(user, appended[1]!, appended[2]!, { correlationId }) : await core.login(user, password, undefined, { correlationId });
        if (r.ok) return accept(client, user);
        if (r.reason === "totp_required") {
          const s = newState();
          challenges.set(s.toString("hex"), { client: client.id, user, expires: Date.now() + challengeMs });
          for (const [k, v] of challenges) if (v.expires < Date.now()) challenges.delete(k);
          log.info({ client: client.id, user }, "RADIUS Access-Challenge (TOTP)");
          return { code: Code.AccessChallenge, attributes: [str(Attr.State, s), str(Attr.ReplyMessage, "Enter your TOTP code")] };
        }
        return reject(client, user, r.reason);
      },
      async accounting(client, p, source) {
        const sessionId = text(p, Attr.AcctSessionId) ?? "";
        const statusCode = int(p, Attr.AcctStatusType);
        const record: AccountingRecord = {
          client: client.id,
          sessionId,
          statusType: statusCode === undefined ? "missing" : (STATUS_TYPES[statusCode] ?? `type-${statusCode}`),
          user: text(p, Attr.UserName),
          nasIdentifier: text(p, Attr.NasIdentifier),
          nasAddress: source,
          sessionTime: int(p, Attr.AcctSessionTime),
          inputOctets: octets(int(p, Attr.AcctInputOctets), int(p, Attr.AcctInputGigawords)),
          outputOctets: octets(int(p, Attr.AcctOutputOctets), int(p, Attr.AcctOutputGigawords)),
          inputPackets: int(p, Attr.AcctInputPackets),
          outputPackets: int(p, Attr.AcctOutputPackets),
          terminateCause: int(p, Attr.AcctTerminateCause),
          at: new Date().toISOString(),
        };
        await execute(core.store, radiusSessionDecider, sessionAggregateId(client.id, sessionId), { type: "record", record }, { commandId: newId(), actor: `radius-client:${client.id}` });
      },
    };

    const host = opts.host ?? process.env.REALM_RADIUS_HOST ?? "0.0.0.0";
    let server: RadiusServer | undefined;
    if (port !== undefined) {
      const accountingPort = opts.accountingPort ?? portFrom(process.env.REALM_RADIUS_ACCT_PORT, "REALM_RADIUS_ACCT_PORT") ?? (port === 0 ? 0 : port + 1);
      try {
        server = await RadiusServer.start({ host, port, accountingPort }, handler, log);
      } catch (err) {
        await projection.stop();
        throw err;
      }
      log.info({ host, ...server.ports }, "RADIUS server listening");
    }

    const name = { type: "string", minLength: 1, maxLength: 128 };
    const clientOut = (c: RadiusClientState) => ({ id: c.id, address: c.address, allowedGroups: c.allowedGroups, replies: c.replies, addedAt: c.addedAt });
    const endpoints: Endpoint[] = [
      {
        kind: "command",
        name: "radiusClient.add",
        description: "Add a RADIUS client (NAS): its address or CIDR, the groups that may sign in through it, reply attributes (VLAN, Filter-Id) per group. Answers the shared secret once; it is kept sealed, never in an event",
        secret: ["secret"],
        input: {
          type: "object",
          required: ["id", "address", "allowedGroups"],
          additionalProperties: false,
          properties: {
            id: name,
            address: { type: "string", minLength: 2, maxLength: 64 },
            allowedGroups: { type: "array", items: name, minItems: 1, maxItems: 64 },
            replies: {
              type: "array",
              maxItems: 64,
              items: { type: "object", required: ["group"], additionalProperties: false, properties: { group: name, vlan: { type: "string", minLength: 1, maxLength: 64 }, filterId: { type: "string", minLength: 1, maxLength: 64 } } },
            },
          },
        },
        async handle(i: { id: string; address: string; allowedGroups: string[]; replies?: GroupReply[] }, ctx) {
          const cmd = { type: "add" as const, address: i.address, allowedGroups: [...new Set(i.allowedGroups)], replies: i.replies ?? [], at: new Date().toISOString() };
          // Decide first (a bad request changes nothing, not even the credential store), then seal the secret, then record.
          radiusClientDecider.decide(projection.state.clients.get(i.id) ?? radiusClientDecider.initialState(i.id), cmd);
          const secret = randomBytes(24).toString("base64url");
          await core.credentials.setSecret(secretName({ id: i.id } as RadiusClientState), secret);
          const r = await execute(core.store, radiusClientDecider, i.id, cmd, commandMetaOf(ctx));
          await projection.waitFor(r.position.lastSeq);
          return { client: clientOut(r.state), secret };
        },
      },
      {
        kind: "query",
        name: "radiusClients",
        description: "The RADIUS clients (NAS): address, allowed groups, reply attributes (never the shared secret)",
        input: { type: "object", additionalProperties: false, properties: {} },
        async handle() {
          return { clients: [...projection.state.clients.values()].sort((a, b) => a.id.localeCompare(b.id)).map(clientOut) };
        },
      },
      {
        kind: "command",
        name: "radiusClient.remove",
        description: "Remove a RADIUS client: its packets are dropped from then on and its shared secret is purged",
        input: { type: "object", required: ["id"], additionalProperties: false, properties: { id: name } },
        async handle(i: { id: string }, ctx) {
          const c = projection.state.clients.get(i.id);
          if (!c) throw notFound(`no RADIUS client ${i.id}`);
          const r = await execute(core.store, radiusClientDecider, i.id, { type: "remove" }, commandMetaOf(ctx));
          await projection.waitFor(r.position.lastSeq);
          await core.credentials.removeSecret(secretName(c));
          for (const k of secrets.keys()) if (k.startsWith(`${c.id}@`)) secrets.delete(k);
          return { removed: i.id };
        },
      },
    ];
    return {
      endpoints,
      ...(server ? { server } : {}),
      async stop() {
        await server?.stop();
        await projection.stop();
      },
    };
  };
}

/** Octets with their Gigawords (RFC 2869 5.1): the counter wraps at 2^32. */
function octets(low: number | undefined, giga: number | undefined): number | undefined {
  return low === undefined ? undefined : (giga ?? 0) * 2 ** 32 + low;
}
