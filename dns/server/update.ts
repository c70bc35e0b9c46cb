import { createHash } from "node:crypto";
import { RealmError } from "../../services/kernel/errors.js";
import { apiNames } from "../domain/zone.js";
import { canonicalRdata, TYPE_BY_CODE, tokenize, type RecordType } from "../domain/rdata.js";
import { inZone, lowerName } from "../domain/names.js";
import { UpdateRcode, UpdateRefused, type Prerequisite, type UpdateOp, type ZoneUpdate } from "../domain/update.js";
import { presentName, readMessage, readName, type WireMessage, type WireRR } from "./message.js";
import { findTsig, TsigError, TsigResponder, unsignedTsig, verifyRequest, type TsigKey, type TsigRecord } from "./tsig.js";

/** A TSIG key as the server uses it: the key, and what it is bound to. */
export interface BoundKey {
  key: TsigKey;
  /** The principal its changes are made as (the events' actor). */
  principal: string;
  /** Zones (absolute, lower case) it may change and transfer. */
  zones: string[];
  /** Name patterns in those zones it may change (`www.example.test.`, `*.k8s.example.test.`); empty = any. */
  names: string[];
}

export interface UpdateDeps {
  /** The key of a name, or null (unknown or revoked). */
  key(name: string): Promise<BoundKey | null>;
  /** True when the realm serves this zone (absolute, lower case). */
  hasZone(zone: string): boolean;
  /** Applies an update to a zone as one command; throws UpdateRefused (or another RealmError). */
  apply(zone: string, update: ZoneUpdate, meta: { commandId: string; actor: string }): Promise<{ replayed: boolean }>;
  now?: () => number;
  onError?: (err: unknown) => void;
}

const CLASS_IN = 1;
const CLASS_NONE = 254;
const CLASS_ANY = 255;
const TYPE_SOA = 6;
const TYPE_ANY = 255;
const OPCODE_UPDATE = 5;

/** True when `name` (absolute, lower case) matches one of the key's patterns (none = every name). */
export function nameAllowed(patterns: string[], name: string): boolean {
  if (patterns.length === 0) return true;
  const n = lowerName(name);
  return patterns.some((p) => (p.startsWith("*.") ? n.endsWith(p.slice(1)) && n.length > p.length - 1 : n === p));
}

/**
 * The command id of a signed update: a UUIDv7 whose time is the TSIG's and whose rest is a digest of the key
 * name, the time, the message id and its MAC, so a retransmitted datagram is the same command (applied once).
 */
export function updateCommandId(t: TsigRecord, id: number): string {
  const h = createHash("sha256").update(`${t.keyName}\0${t.timeSigned}\0${id}\0`).update(t.mac).digest("hex");
  const ms = (t.timeSigned * 1000).toString(16).padStart(12, "0").slice(-12);
  const variant = ((parseInt(h[3]!, 16) & 0x3) | 0x8).toString(16);
  return `${ms.slice(0, 8)}-${ms.slice(8)}-7${h.slice(0, 3)}-${variant}${h.slice(4, 7)}-${h.slice(7, 19)}`;
}

/** Names that RFC 1035 types may compress inside their data (RFC 3597 4): offsets of the names in the RDATA. */
const COMPRESSIBLE: Record<number, { before: number; names: number; after?: number }> = {
  2: { before: 0, names: 1 },
  5: { before: 0, names: 1 },
  12: { before: 0, names: 1 },
  15: { before: 2, names: 1 },
  6: { before: 0, names: 2, after: 20 },
  33: { before: 6, names: 1 },
  39: { before: 0, names: 1 },
};

/** A record's RDATA in RFC 3597 form (`\# len hex`), names inside it decompressed. */
function genericRdata(buf: Buffer, rr: WireRR): string {
  let octets = buf.subarray(rr.rdata, rr.rdata + rr.rdlength);
  const c = COMPRESSIBLE[rr.type];
  if (c) {
    const parts: Buffer[] = [buf.subarray(rr.rdata, rr.rdata + c.before)];
    let off = rr.rdata + c.before;
    for (let i = 0; i < c.names; i++) {
      const n = readName(buf, off);
      if (!n || n.end > rr.rdata + rr.rdlength) throw new UpdateRefused(UpdateRcode.FORMERR, "a name inside record data is unreadable");
      for (const l of n.labels) parts.push(Buffer.from([l.length]), l);
      parts.push(Buffer.from([0]));
      off = n.end;
    }
    parts.push(buf.subarray(off, rr.rdata + rr.rdlength));
    octets = Buffer.concat(parts);
    if (c.after !== undefined && rr.rdata + rr.rdlength - off !== c.after) throw new UpdateRefused(UpdateRcode.FORMERR, "SOA data has the wrong length");
  }
  return `\\# ${octets.length}${octets.length ? ` ${octets.toString("hex")}` : ""}`;
}

const dataType = (code: number): RecordType => {
  const t = TYPE_BY_CODE.get(code);
  if (!t) throw new UpdateRefused(UpdateRcode.FORMERR, `type ${code} is not a data type`);
  return t;
};

/** The realm's canonical data of a wire record (its validation: a record the API would refuse is FORMERR here). */
function dataOf(buf: Buffer, rr: WireRR, type: RecordType, zone: string): string {
  try {
    return canonicalRdata(type, tokenize(genericRdata(buf, rr)), zone, apiNames(zone));
  } catch (err) {
    if (err instanceof UpdateRefused) throw err;
    throw new UpdateRefused(UpdateRcode.FORMERR, err instanceof Error ? err.message : String(err));
  }
}

/** Reads the prerequisite and update sections (RFC 2136 3.2, 3.4.1): FORMERR / NOTZONE on the RFC's grounds. */
export function readUpdate(buf: Buffer, m: WireMessage, zone: string): ZoneUpdate {
  const prerequisites: Prerequisite[] = [];
  for (const rr of m.answers) {
    const name = presentName(rr.labels);
    if (!inZone(name, zone)) throw new UpdateRefused(UpdateRcode.NOTZONE, `${name} is not in zone ${zone}`);
    if (rr.ttl !== 0) throw new UpdateRefused(UpdateRcode.FORMERR, "a prerequisite has a TTL");
    if (rr.klass === CLASS_ANY || rr.klass === CLASS_NONE) {
      if (rr.rdlength !== 0) throw new UpdateRefused(UpdateRcode.FORMERR, "a prerequisite of class ANY or NONE has data");
      const none = rr.klass === CLASS_NONE;
      if (rr.type === TYPE_ANY) prerequisites.push({ kind: none ? "nameNotInUse" : "nameInUse", name });
      else prerequisites.push({ kind: none ? "rrsetNotExists" : "rrsetExists", name, type: dataType(rr.type) });
    } else if (rr.klass === CLASS_IN) {
      const type = dataType(rr.type);
      prerequisites.push({ kind: "rrsetEquals", name, type, data: [dataOf(buf, rr, type, zone)] });
    } else throw new UpdateRefused(UpdateRcode.FORMERR, `a prerequisite has class ${rr.klass}`);
  }
  const updates: UpdateOp[] = [];
  for (const rr of m.authorities) {
    const name = presentName(rr.labels);
    if (!inZone(name, zone)) throw new UpdateRefused(UpdateRcode.NOTZONE, `${name} is not in zone ${zone}`);
    if (rr.klass === CLASS_IN) {
      const type = dataType(rr.type);
      if (type === "SOA") {
        const t = dataOf(buf, rr, type, zone).split(" ");
        const n = (i: number) => Number(t[i]);
        updates.push({ kind: "soa", name, mname: t[0]!, rname: t[1]!, serial: n(2), refresh: n(3), retry: n(4), expire: n(5), minimum: n(6), ttl: rr.ttl });
      } else updates.push({ kind: "add", name, type, ttl: rr.ttl, data: dataOf(buf, rr, type, zone) });
    } else if (rr.klass === CLASS_ANY) {
      if (rr.ttl !== 0 || rr.rdlength !== 0) throw new UpdateRefused(UpdateRcode.FORMERR, "a delete of class ANY has a TTL or data");
      updates.push(rr.type === TYPE_ANY ? { kind: "deleteName", name } : { kind: "deleteRRset", name, type: dataType(rr.type) });
    } else if (rr.klass === CLASS_NONE) {
      if (rr.ttl !== 0) throw new UpdateRefused(UpdateRcode.FORMERR, "a delete of class NONE has a TTL");
      const type = dataType(rr.type);
      updates.push({ kind: "deleteRR", name, type, data: dataOf(buf, rr, type, zone) });
    } else throw new UpdateRefused(UpdateRcode.FORMERR, `an update has class ${rr.klass}`);
  }
  return { type: "update", prerequisites, updates };
}

/** Our OPT (RFC 6891 6.1.2): payload 1232, version 0, no flags, no options. */
const OPT = Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);

/**
 * A response: the request's header (QR set, the RCODE), its zone section echoed (RFC 2136 3.8), and our OPT
 * when the request had one (RFC 6891 7); a TSIG, when signed, goes after it.
 */
function response(msg: Buffer, m: WireMessage | null, rcode: number, id: number): Buffer {
  const qEnd = m?.questions.length === 1 ? m.questions[0]!.end : 12;
  const edns = m?.additionals.some((r) => r.type === 41) ?? false;
  const out = Buffer.concat([msg.subarray(0, qEnd), edns ? OPT : Buffer.alloc(0)]);
  out.writeUInt16BE(id, 0);
  out.writeUInt16BE(0x8000 | (OPCODE_UPDATE << 11) | (rcode & 0xf), 2);
  out.writeUInt16BE(qEnd === 12 ? 0 : 1, 4);
  out.writeUInt32BE(0, 6);
  out.writeUInt16BE(edns ? 1 : 0, 10);
  return out;
}

/**
 * Answers an RFC 2136 UPDATE: unsigned is REFUSED; the TSIG verified (NOTAUTH with BADKEY/BADSIG unsigned,
 * BADTIME/BADTRUNC signed); the key allowed for the zone and for every name it changes (else REFUSED);
 * then the update applied as one command. Never throws: anything unexpected is SERVFAIL.
 */
export function answerUpdate(msg: Buffer, deps: UpdateDeps): Buffer | null | Promise<Buffer | null> {
  const m = readMessage(msg);
  if (!m) return msg.length >= 12 ? response(msg, null, UpdateRcode.FORMERR, msg.readUInt16BE(0)) : null;
  const found = findTsig(msg, m);
  if (found.kind === "formerr" || m.questions.length !== 1) return response(msg, m, UpdateRcode.FORMERR, m.id);
  // Unsigned: answered at once (no key to look up), as a query is.
  if (found.kind === "none") return response(msg, m, UpdateRcode.REFUSED, m.id);
  return signedUpdate(msg, m, found.tsig, deps);
}

async function signedUpdate(msg: Buffer, m: WireMessage, t: TsigRecord, deps: UpdateDeps): Promise<Buffer | null> {
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  let bound: BoundKey | null;
  try {
    bound = await deps.key(t.keyName);
  } catch (err) {
    deps.onError?.(err);
    return response(msg, m, UpdateRcode.SERVFAIL, m.id);
  }
  const v = verifyRequest(msg, t, bound?.key ?? null, now());
  if (!v.ok) {
    if ("formerr" in v) return response(msg, m, UpdateRcode.FORMERR, m.id);
    const r = response(msg, m, UpdateRcode.NOTAUTH, t.originalId);
    return v.key ? new TsigResponder(v.key, t, now).sign(r, v.error) : unsignedTsig(r, t, v.error);
  }
  const key = bound!;
  const signed = (rcode: number) => new TsigResponder(key.key, t, now).sign(response(msg, m, rcode, t.originalId), TsigError.NOERROR);
  const q = m.questions[0]!;
  if (q.type !== TYPE_SOA || (q.klass !== CLASS_IN && q.klass !== CLASS_ANY)) return signed(UpdateRcode.FORMERR);
  const zone = lowerName(presentName(q.labels));
  if (!deps.hasZone(zone)) return signed(UpdateRcode.NOTAUTH);
  if (!key.zones.includes(zone)) return signed(UpdateRcode.REFUSED);
  try {
    const update = readUpdate(msg, m, zone);
    for (const op of update.updates) if (!nameAllowed(key.names, op.name)) return signed(UpdateRcode.REFUSED);
    await deps.apply(zone, update, { commandId: updateCommandId(t, t.originalId), actor: key.principal });
    return signed(UpdateRcode.NOERROR);
  } catch (err) {
    if (err instanceof UpdateRefused) return signed(err.rcode);
    if (err instanceof RealmError && (err.code === "VALIDATION" || err.code === "NOT_FOUND" || err.code === "ALREADY_EXISTS")) return signed(UpdateRcode.REFUSED);
    deps.onError?.(err);
    return signed(UpdateRcode.SERVFAIL);
  }
}
