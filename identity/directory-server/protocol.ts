import { APPLICATION, BerError, BerReader, CONSTRUCTED, CONTEXT, int, readBool, readInt, readText, seq, str, Tag } from "./ber.js";
import type { Filter } from "./filter.js";

/**
 * LDAPv3 messages (RFC 4511 section 4) as the directory server reads and writes them. Only what a
 * read-only directory needs is decoded in full; write operations are recognised by their tag, so they can
 * be answered, and their bodies are not looked at.
 */

export const Op = {
  BindRequest: APPLICATION | CONSTRUCTED | 0,
  BindResponse: APPLICATION | CONSTRUCTED | 1,
  UnbindRequest: APPLICATION | 2,
  SearchRequest: APPLICATION | CONSTRUCTED | 3,
  SearchResultEntry: APPLICATION | CONSTRUCTED | 4,
  SearchResultDone: APPLICATION | CONSTRUCTED | 5,
  ModifyRequest: APPLICATION | CONSTRUCTED | 6,
  ModifyResponse: APPLICATION | CONSTRUCTED | 7,
  AddRequest: APPLICATION | CONSTRUCTED | 8,
  AddResponse: APPLICATION | CONSTRUCTED | 9,
  DelRequest: APPLICATION | 10,
  DelResponse: APPLICATION | CONSTRUCTED | 11,
  ModifyDNRequest: APPLICATION | CONSTRUCTED | 12,
  ModifyDNResponse: APPLICATION | CONSTRUCTED | 13,
  CompareRequest: APPLICATION | CONSTRUCTED | 14,
  CompareResponse: APPLICATION | CONSTRUCTED | 15,
  AbandonRequest: APPLICATION | 16,
  ExtendedRequest: APPLICATION | CONSTRUCTED | 23,
  ExtendedResponse: APPLICATION | CONSTRUCTED | 24,
} as const;

/** The write operations and the response tag each is answered with. */
export const WRITE_OPS: ReadonlyMap<number, { name: string; response: number }> = new Map([
  [Op.ModifyRequest, { name: "modify", response: Op.ModifyResponse }],
  [Op.AddRequest, { name: "add", response: Op.AddResponse }],
  [Op.DelRequest, { name: "delete", response: Op.DelResponse }],
  [Op.ModifyDNRequest, { name: "modifyDN", response: Op.ModifyDNResponse }],
]);

export const ResultCode = {
  success: 0,
  operationsError: 1,
  protocolError: 2,
  sizeLimitExceeded: 4,
  compareFalse: 5,
  compareTrue: 6,
  authMethodNotSupported: 7,
  unavailableCriticalExtension: 12,
  noSuchObject: 32,
  invalidDNSyntax: 34,
  inappropriateAuthentication: 48,
  invalidCredentials: 49,
  insufficientAccessRights: 50,
  unavailable: 52,
  unwillingToPerform: 53,
  other: 80,
} as const;

export const OID = {
  pagedResults: "1.2.840.113556.1.4.319",
  startTls: "1.3.6.1.4.1.1466.20037",
  whoAmI: "1.3.6.1.4.1.4203.1.11.3",
  noticeOfDisconnection: "1.3.6.1.4.1.1466.20036",
} as const;

export interface Control {
  type: string;
  critical: boolean;
  value?: Buffer | undefined;
}

export type Scope = "base" | "one" | "sub";

export interface SearchRequest {
  base: string;
  scope: Scope;
  sizeLimit: number;
  typesOnly: boolean;
  filter: Filter;
  attributes: string[];
}

export type Request =
  | { op: "bind"; version: number; name: string; auth: { kind: "simple"; password: string } | { kind: "sasl"; mechanism: string } }
  | { op: "unbind" }
  | { op: "search"; search: SearchRequest }
  | { op: "compare"; entry: string; attribute: string; value: string }
  | { op: "abandon"; id: number }
  | { op: "extended"; name: string; value?: Buffer | undefined }
  | { op: "write"; name: string; response: number };

export interface Message {
  id: number;
  request: Request;
  controls: Control[];
}

const SCOPES: Scope[] = ["base", "one", "sub"];

/** Decodes one complete LDAPMessage (as framed by `frameLength`). Throws BerError on anything malformed. */
export function decodeMessage(frame: Buffer): Message {
  const outer = new BerReader(frame);
  const body = outer.sub(outer.expect(Tag.Sequence, "LDAPMessage"));
  outer.end("LDAPMessage");
  const id = readInt(body.expect(Tag.Integer, "messageID"), "messageID");
  if (id < 0) throw new BerError("messageID must not be negative");
  const op = body.next();
  const request = decodeOp(body, op.tag, op.value);
  const controls: Control[] = [];
  if (!body.done) {
    const cs = body.sub(body.expect(CONTEXT | CONSTRUCTED | 0, "controls"));
    while (!cs.done) {
      const c = cs.sub(cs.expect(Tag.Sequence, "control"));
      const type = readText(c.expect(Tag.OctetString, "controlType"), "controlType");
      let critical = false;
      let value: Buffer | undefined;
      if (c.peekTag() === Tag.Boolean) critical = readBool(c.expect(Tag.Boolean, "criticality"), "criticality");
      if (c.peekTag() === Tag.OctetString) value = c.expect(Tag.OctetString, "controlValue");
      c.end("control");
      controls.push({ type, critical, value });
    }
  }
  body.end("LDAPMessage");
  return { id, request, controls };
}

function decodeOp(parent: BerReader, tag: number, v: Buffer): Request {
  const write = WRITE_OPS.get(tag);
  if (write) return { op: "write", name: write.name, response: write.response };
  switch (tag) {
    case Op.BindRequest: {
      const r = parent.sub(v);
      const version = readInt(r.expect(Tag.Integer, "bind version"), "bind version");
      const name = readText(r.expect(Tag.OctetString, "bind name"), "bind name");
      const auth = r.next();
      r.end("BindRequest");
      if (auth.tag === (CONTEXT | 0)) return { op: "bind", version, name, auth: { kind: "simple", password: readText(auth.value, "password") } };
      if (auth.tag === (CONTEXT | CONSTRUCTED | 3)) {
        const s = r.sub(auth.value);
        return { op: "bind", version, name, auth: { kind: "sasl", mechanism: readText(s.expect(Tag.OctetString, "SASL mechanism"), "SASL mechanism") } };
      }
      throw new BerError("unknown bind authentication choice");
    }
    case Op.UnbindRequest:
      return { op: "unbind" };
    case Op.AbandonRequest:
      return { op: "abandon", id: readInt(v, "abandon id") };
    case Op.SearchRequest: {
      const r = parent.sub(v);
      const base = readText(r.expect(Tag.OctetString, "baseObject"), "baseObject");
      const scopeN = readInt(r.expect(Tag.Enumerated, "scope"), "scope");
      const scope = SCOPES[scopeN];
      if (!scope) throw new BerError(`scope ${scopeN} is not base, one or sub`);
      readInt(r.expect(Tag.Enumerated, "derefAliases"), "derefAliases");
      const sizeLimit = readInt(r.expect(Tag.Integer, "sizeLimit"), "sizeLimit");
      readInt(r.expect(Tag.Integer, "timeLimit"), "timeLimit");
      const typesOnly = readBool(r.expect(Tag.Boolean, "typesOnly"), "typesOnly");
      const f = r.next();
      const filter = decodeFilter(r, f.tag, f.value);
      const attrs = r.sub(r.expect(Tag.Sequence, "attributes"));
      const attributes: string[] = [];
      while (!attrs.done) attributes.push(readText(attrs.expect(Tag.OctetString, "attribute"), "attribute"));
      r.end("SearchRequest");
      if (sizeLimit < 0) throw new BerError("sizeLimit must not be negative");
      return { op: "search", search: { base, scope, sizeLimit, typesOnly, filter, attributes } };
    }
    case Op.CompareRequest: {
      const r = parent.sub(v);
      const entry = readText(r.expect(Tag.OctetString, "entry"), "entry");
      const ava = r.sub(r.expect(Tag.Sequence, "ava"));
      const attribute = readText(ava.expect(Tag.OctetString, "attributeDesc"), "attributeDesc");
      const value = readText(ava.expect(Tag.OctetString, "assertionValue"), "assertionValue");
      ava.end("ava");
      r.end("CompareRequest");
      return { op: "compare", entry, attribute, value };
    }
    case Op.ExtendedRequest: {
      const r = parent.sub(v);
      const name = readText(r.expect(CONTEXT | 0, "requestName"), "requestName");
      const value = r.done ? undefined : r.expect(CONTEXT | 1, "requestValue");
      r.end("ExtendedRequest");
      return { op: "extended", name, value };
    }
    default:
      throw new BerError(`unknown protocol operation 0x${tag.toString(16)}`);
  }
}

function ava(parent: BerReader, v: Buffer, what: string): { attribute: string; value: string } {
  const r = parent.sub(v);
  const attribute = readText(r.expect(Tag.OctetString, `${what} attribute`), `${what} attribute`);
  const value = readText(r.expect(Tag.OctetString, `${what} value`), `${what} value`);
  r.end(what);
  return { attribute, value };
}

export function decodeFilter(parent: BerReader, tag: number, v: Buffer): Filter {
  switch (tag) {
    case CONTEXT | CONSTRUCTED | 0:
    case CONTEXT | CONSTRUCTED | 1: {
      const r = parent.sub(v);
      const filters: Filter[] = [];
      while (!r.done) {
        const f = r.next();
        filters.push(decodeFilter(r, f.tag, f.value));
      }
      return { type: tag === (CONTEXT | CONSTRUCTED | 0) ? "and" : "or", filters };
    }
    case CONTEXT | CONSTRUCTED | 2: {
      const r = parent.sub(v);
      const f = r.next();
      r.end("not");
      return { type: "not", filter: decodeFilter(r, f.tag, f.value) };
    }
    case CONTEXT | CONSTRUCTED | 3:
      return { type: "equal", ...ava(parent, v, "equalityMatch") };
    case CONTEXT | CONSTRUCTED | 5:
      return { type: "ge", ...ava(parent, v, "greaterOrEqual") };
    case CONTEXT | CONSTRUCTED | 6:
      return { type: "le", ...ava(parent, v, "lessOrEqual") };
    case CONTEXT | CONSTRUCTED | 8:
      return { type: "approx", ...ava(parent, v, "approxMatch") };
    case CONTEXT | 7:
      return { type: "present", attribute: readText(v, "present") };
    case CONTEXT | CONSTRUCTED | 4: {
      const r = parent.sub(v);
      const attribute = readText(r.expect(Tag.OctetString, "substrings attribute"), "substrings attribute");
      const parts = r.sub(r.expect(Tag.Sequence, "substrings"));
      r.end("substrings");
      let initial: string | undefined;
      let final: string | undefined;
      const any: string[] = [];
      while (!parts.done) {
        const p = parts.next();
        const s = readText(p.value, "substring");
        if (p.tag === (CONTEXT | 0) && initial === undefined && any.length === 0 && final === undefined) initial = s;
        else if (p.tag === (CONTEXT | 1) && final === undefined) any.push(s);
        else if (p.tag === (CONTEXT | 2) && final === undefined) final = s;
        else throw new BerError("substrings out of order (initial, any..., final)");
      }
      return { type: "substrings", attribute, initial, any, final };
    }
    case CONTEXT | CONSTRUCTED | 9: {
      // extensibleMatch: decoded so the message is valid; matching rules are not supported (evaluates Undefined).
      return { type: "undefined" };
    }
    default:
      throw new BerError(`unknown filter choice 0x${tag.toString(16)}`);
  }
}

// ---- responses ----

function result(code: number, message: string, matchedDn = ""): Buffer[] {
  return [int(code, Tag.Enumerated), str(matchedDn), str(message)];
}

function envelope(id: number, op: Buffer, controls?: Buffer[]): Buffer {
  return seq(Tag.Sequence, [int(id), op, ...(controls?.length ? [seq(CONTEXT | CONSTRUCTED | 0, controls)] : [])]);
}

/** A response that is only an LDAPResult (bind, search done, modify, add, delete, modifyDN, compare). */
export function resultMessage(id: number, responseTag: number, code: number, message: string, controls?: Buffer[]): Buffer {
  return envelope(id, seq(responseTag, result(code, message)), controls);
}

export function extendedResponse(id: number, code: number, message: string, name?: string, value?: Buffer): Buffer {
  const parts = result(code, message);
  if (name !== undefined) parts.push(str(name, CONTEXT | 10));
  if (value !== undefined) parts.push(str(value, CONTEXT | 11));
  return envelope(id, seq(Op.ExtendedResponse, parts));
}

/** RFC 4511 4.4.1: sent (message id 0) before the server closes a connection it cannot go on with. */
export function noticeOfDisconnection(code: number, message: string): Buffer {
  return extendedResponse(0, code, message, OID.noticeOfDisconnection);
}

export function searchEntry(id: number, dn: string, attributes: [string, string[]][]): Buffer {
  const attrs = attributes.map(([name, values]) => seq(Tag.Sequence, [str(name), seq(Tag.Set, values.map((v) => str(v)))]));
  return envelope(id, seq(Op.SearchResultEntry, [str(dn), seq(Tag.Sequence, attrs)]));
}

/** The paged results control value (RFC 2696): size and cookie. */
export function pagedControl(size: number, cookie: Buffer): Buffer {
  return seq(Tag.Sequence, [str(OID.pagedResults), str(seq(Tag.Sequence, [int(size), str(cookie)]))]);
}

export function decodePaged(value: Buffer | undefined): { size: number; cookie: Buffer } {
  if (!value) throw new BerError("paged results control without a value");
  const outer = new BerReader(value);
  const r = outer.sub(outer.expect(Tag.Sequence, "paged results"));
  outer.end("paged results");
  const size = readInt(r.expect(Tag.Integer, "page size"), "page size");
  const cookie = r.expect(Tag.OctetString, "cookie");
  r.end("paged results");
  if (size < 0) throw new BerError("page size must not be negative");
  return { size, cookie };
}


