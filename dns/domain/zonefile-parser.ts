import { RealmError } from "../../services/kernel/errors.js";
import { absoluteName, isValidLabel, lowerName } from "./names.js";
import { canonicalRdata, parseTtl, recordType, tokenize, type Token } from "./rdata.js";
import { assertTtl, type DnsRecord, type SoaFields } from "./zone.js";

/** What a master file holds: its records (SOA apart) and its SOA, if it has one. */
export interface ParsedZone {
  origin: string;
  soa: SoaFields | null;
  serial: number | null;
  records: DnsRecord[];
}

/** Bounds of one parse: a file past them is refused naming the line, before it can exhaust memory. */
export interface ZoneFileLimits {
  /** Records (the SOA apart). Default 2,000,000. */
  maxRecords?: number;
  /** Characters of one entry (a line, or lines joined by parentheses). Default 1 MiB. */
  maxEntryChars?: number;
  /**
   * Reads the file an `$INCLUDE` names (RFC 1035 5.1), relative to the including file (`from`, undefined
   * for the top file): the text and the path to name it by and to resolve its own includes from. Without
   * it (a file that came over the API: inline text, an upload, an HTTP body, where there is no directory)
   * `$INCLUDE` is refused.
   */
  readInclude?: (path: string, from: string | undefined) => { text: string; path: string };
  /** How deep `$INCLUDE`s may nest. Default 8. */
  maxIncludeDepth?: number;
  /** The text's chars are the file's octets (read as latin1), not Unicode: TXT octets are kept exactly. */
  binary?: boolean;
}

/** What the parsers of one file and the files it includes fill together. */
interface Sink {
  records: DnsRecord[];
  soa: SoaFields | null;
  serial: number | null;
}

export const DEFAULT_MAX_RECORDS = 2_000_000;
/** A TXT record holds at most 64 KiB of strings; with `\DDD` escapes that is ~256 KiB of text. */
const DEFAULT_MAX_ENTRY_CHARS = 1 << 20;

/** Characters that need the careful path: comments, parentheses, quotes, escapes. */
const SPECIAL = /[;()"\\]/;
/** Characters that need the full tokenizer: quotes, escapes and anything past ASCII (UTF-8 TXT). */
const QUOTING = /["\\\u0080-\uffff]/;
const CLASSES_REFUSED = new Set(["CH", "HS", "CS"]);

function fail(line: number, message: string): RealmError {
  return new RealmError("MALFORMED", `line ${line}: ${message}`, { line });
}

interface Entry {
  line: number;
  /** True when the physical line started with white space (owner = the previous owner). */
  blankOwner: boolean;
  text: string;
}

/**
 * An RFC 1035 master file parser fed in pieces (`push` any split of the text, then `end`), so a file can be
 * parsed as it streams in and never needs to sit in memory whole: it holds only the records and the line it
 * is in. It reads `$ORIGIN`, `$TTL`, `$INCLUDE` (through `limits.readInclude`, relative to the including
 * file; refused without it), `@`, relative names, blank owners, parentheses, comments, TTL units, the IN
 * class (also as `CLASS1`), RFC 1035 5.1 escapes in names and strings, and RFC 3597 generic types and data.
 * Owner names keep their case. Any error is a MALFORMED RealmError whose message starts with `line N:`
 * (details `{ line }`); after one, the parser is spent.
 *
 * The common line (no comment, quote, escape, parenthesis or non-ASCII character; a one-label relative
 * owner) takes a fast path of a split and a regex test; anything else goes through the full tokenizer and
 * `absoluteName`.
 */
export class ZoneFileParser {
  private readonly sink: Sink;
  private origin: string;
  private defaultTtl: number | null = null;
  private lastOwner: string | null = null;
  /** The owner text of the last record and the name it made (consecutive records often share it). */
  private lastOwnerText = "";
  private lastTtl: number | null = null;
  /** The origin is the zone or below it, so a one-label owner under it is in the zone without a check. */
  private originInZone = true;
  /** The last owner computed is known to be in the zone. */
  private ownerInZone = false;
  /** Text after the last newline pushed: the start of a line not complete yet. */
  private tail = "";
  /** Physical lines read so far. */
  private lineNo = 0;
  /** An entry whose parentheses are still open. */
  private open: Entry | null = null;
  private depth = 0;
  private readonly maxRecords: number;
  private readonly maxEntry: number;
  private readonly zone: string;
  private readonly limits: ZoneFileLimits;
  /** The path of the file this parser reads (undefined for the top file unless the reader named it). */
  private readonly file: string | undefined;
  private readonly depth_: number;

  constructor(zone: string, limits: ZoneFileLimits = {}, nested?: { sink: Sink; origin: string; file: string; depth: number; ttl: number | null }) {
    this.zone = lowerName(absoluteName(zone));
    this.origin = nested?.origin ?? this.zone;
    this.originInZone = nested ? inZoneLower(this.origin, this.zone) : true;
    this.limits = limits;
    this.maxRecords = limits.maxRecords ?? DEFAULT_MAX_RECORDS;
    this.maxEntry = limits.maxEntryChars ?? DEFAULT_MAX_ENTRY_CHARS;
    this.sink = nested?.sink ?? { records: [], soa: null, serial: null };
    this.file = nested?.file;
    this.depth_ = nested?.depth ?? 0;
    if (nested) this.defaultTtl = nested.ttl;
  }

  /** The records read so far (the SOA apart), of this file and the files it included. */
  get records(): DnsRecord[] {
    return this.sink.records;
  }


  /** Feeds the next piece of the file's text (it may end anywhere, in the middle of a line too). */
  push(text: string): void {
    let from = 0;
    for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n", from)) {
      let raw = from === 0 && this.tail ? this.tail + text.slice(0, nl) : text.slice(from, nl);
      if (from === 0) this.tail = "";
      if (raw.charCodeAt(raw.length - 1) === 13) raw = raw.slice(0, -1);
      this.physical(raw, ++this.lineNo);
      from = nl + 1;
    }
    if (from < text.length) {
      this.tail = from === 0 ? this.tail + text : text.slice(from);
      if (this.tail.length > this.maxEntry) throw fail(this.lineNo + 1, `line is longer than ${this.maxEntry} characters`);
    }
  }

  /** Ends the file: the last line (with or without a newline) is read, and the whole file's content returned. */
  end(): ParsedZone {
    if (this.tail) {
      const raw = this.tail.charCodeAt(this.tail.length - 1) === 13 ? this.tail.slice(0, -1) : this.tail;
      this.tail = "";
      this.physical(raw, ++this.lineNo);
    }
    if (this.depth > 0 && this.open) throw fail(this.open.line, "'(' is never closed");
    return { origin: this.zone, soa: this.sink.soa, serial: this.sink.serial, records: this.sink.records };
  }

  /** Physical line `n`: drops its comment, joins it to an entry whose parentheses are open. */
  private physical(raw: string, n: number): void {
    const kept = SPECIAL.test(raw) ? this.strip(raw, n) : raw;
    if (this.open) {
      this.open.text += ` ${kept}`;
      if (this.open.text.length > this.maxEntry) throw fail(this.open.line, `entry is longer than ${this.maxEntry} characters`);
    } else if (/\S/.test(kept)) {
      const c = raw.charCodeAt(0);
      this.open = { line: n, blankOwner: c === 32 || c === 9, text: kept };
    }
    if (this.depth === 0 && this.open) {
      const entry = this.open;
      this.open = null;
      this.entry(entry);
    }
  }

  /** The line without its comment, parentheses turned into spaces (they only join lines). */
  private strip(raw: string, n: number): string {
    let kept = "";
    let from = 0;
    let quoted = false;
    for (let j = 0; j < raw.length; j++) {
      const c = raw.charCodeAt(j);
      if (c === 92 /* \ */ && j + 1 < raw.length) {
        j++;
        continue;
      }
      if (c === 34 /* " */) quoted = !quoted;
      else if (!quoted && c === 59 /* ; */) {
        kept += raw.slice(from, j);
        from = raw.length;
        break;
      } else if (!quoted && (c === 40 || c === 41) /* ( ) */) {
        if (c === 40) this.depth++;
        else if (--this.depth < 0) throw fail(n, "')' without '('");
        kept += `${raw.slice(from, j)} `;
        from = j + 1;
      }
    }
    if (quoted) throw fail(n, "unterminated quoted string");
    return kept + raw.slice(from);
  }

  /** One entry (a directive or a record) starting on line `entry.line`. */
  private entry(entry: Entry): void {
    let tokens: Token[];
    try {
      tokens = QUOTING.test(entry.text) ? tokenize(entry.text, this.limits.binary) : split(entry.text);
    } catch (err) {
      throw fail(entry.line, err instanceof Error ? err.message : String(err));
    }
    if (tokens.length === 0) return;
    try {
      this.record(entry, tokens);
    } catch (err) {
      if (err instanceof RealmError && err.code === "MALFORMED" && (err.details as { line?: number } | undefined)?.line !== undefined) throw err;
      throw fail(entry.line, err instanceof Error ? err.message : String(err));
    }
  }

  private record(entry: Entry, tokens: Token[]): void {
    const first = tokens[0]!;
    if (!first.quoted && first.raw.charCodeAt(0) === 36 /* $ */) return this.directive(first.raw, tokens, entry.line);
    let i = 0;
    let owner: string;
    let known = false;
    if (entry.blankOwner) {
      if (!this.lastOwner) throw new Error("no owner name and no previous owner");
      owner = this.lastOwner;
    } else {
      if (first.raw !== this.lastOwnerText || !this.lastOwner) {
        this.lastOwner = null;
        owner = this.ownerName(first.raw);
      } else owner = this.lastOwner;
      known = this.ownerInZone;
      this.lastOwnerText = first.raw;
      i = 1;
    }
    let ttl: number | null = null;
    for (let k = 0; k < 2 && i < tokens.length; k++) {
      const t = tokens[i]!.raw;
      const upper = t.toUpperCase();
      if (upper === "IN" || upper === "CLASS1") i++;
      else if (CLASSES_REFUSED.has(upper) || /^CLASS\d+$/.test(upper)) throw new Error(`class ${t} is not supported (only IN)`);
      else if (ttl === null && recordType(upper) === null) {
        const parsed = parseTtl(t);
        if (parsed === null) break;
        ttl = parsed;
        i++;
      }
    }
    const typeTok = tokens[i];
    if (!typeTok) throw new Error("record type is missing");
    const type = recordType(typeTok.raw);
    if (type === null) throw new Error(`record type ${typeTok.raw} is not supported (a type the realm has no name for can be written as TYPEnnn \\# <length> <hex>, RFC 3597)`);
    const data = canonicalRdata(type, tokens.slice(i + 1), this.origin);
    const effectiveTtl: number | null = ttl ?? this.defaultTtl ?? this.lastTtl;
    if (effectiveTtl === null) throw new Error("no TTL and no $TTL before it");
    assertTtl(effectiveTtl);
    this.lastOwner = owner;
    this.lastTtl = effectiveTtl;
    if (type === "SOA") {
      if (lowerName(owner) !== this.zone) throw new Error(`the SOA record must be at the apex ${this.zone}, not ${owner}`);
      if (this.sink.soa) throw new Error("a second SOA record");
      const f = data.split(" ");
      this.sink.soa = { mname: f[0]!, rname: f[1]!, refresh: Number(f[3]), retry: Number(f[4]), expire: Number(f[5]), minimum: assertTtl(Number(f[6]), "SOA minimum"), ttl: effectiveTtl };
      this.sink.serial = Number(f[2]);
      return;
    }
    if (!known && !inZoneLower(owner, this.zone)) throw new Error(`${owner} is outside the zone ${this.zone}`);
    if (this.sink.records.length >= this.maxRecords) throw new Error(`the file holds more than ${this.maxRecords} records`);
    this.sink.records.push({ name: owner, type, ttl: effectiveTtl, data });
  }

  private directive(name: string, tokens: Token[], line: number): void {
    const directive = name.toUpperCase();
    if (directive === "$ORIGIN") {
      if (tokens.length !== 2) throw new Error("$ORIGIN takes one name");
      this.origin = absoluteName(tokens[1]!.raw, this.origin);
      this.originInZone = inZoneLower(this.origin, this.zone);
      this.lastOwnerText = "";
      this.ownerInZone = false;
    } else if (directive === "$TTL") {
      const t = tokens[1] ? parseTtl(tokens[1].raw) : null;
      if (tokens.length !== 2 || t === null) throw new Error("$TTL takes one TTL");
      assertTtl(t, "$TTL");
      this.defaultTtl = t;
    } else if (directive === "$INCLUDE") {
      if (tokens.length < 2 || tokens.length > 3) throw new Error("$INCLUDE takes a file name and an optional origin");
      const read = this.limits.readInclude;
      if (!read) throw new Error("$INCLUDE is not possible here: this file came over the API (inline text, an upload or an HTTP body), where there is no directory to read it from; expand the include first (`realm zone import` and `realm zone check` read includes next to the file)");
      const depth = this.depth_ + 1;
      const max = this.limits.maxIncludeDepth ?? 8;
      if (depth > max) throw new Error(`$INCLUDE nests deeper than ${max} files`);
      const origin = tokens[2] ? absoluteName(tokens[2].raw, this.origin) : this.origin;
      let inc: { text: string; path: string };
      try {
        inc = read(tokens[1]!.text, this.file);
      } catch (err) {
        throw new Error(`$INCLUDE ${tokens[1]!.text}: ${err instanceof Error ? err.message : String(err)}`);
      }
      const sub = new ZoneFileParser(this.zone, this.limits, { sink: this.sink, origin, file: inc.path, depth, ttl: this.defaultTtl ?? this.lastTtl });
      try {
        sub.push(inc.text);
        sub.end();
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        throw new RealmError("MALFORMED", `line ${line}: in ${inc.path} (included): ${msg}`, { line });
      }
    } else throw new Error(`directive ${name} is not supported`);
  }

  /**
   * The absolute owner name. A one-label relative name (most owners of a big file) is checked as a label
   * and joined to the origin, which is absolute and valid already; anything else goes to `absoluteName`.
   */
  private ownerName(text: string): string {
    const n = text;
    if (n.indexOf(".") < 0 && n !== "@" && isValidLabel(n, true) && n.length + 1 + this.origin.length <= 254 && this.origin !== ".") {
      this.ownerInZone = this.originInZone;
      return `${n}.${this.origin}`;
    }
    this.ownerInZone = false;
    return absoluteName(text, this.origin);
  }
}

/** Tokens of text without quotes or escapes: the fields between white space. */
function split(text: string): Token[] {
  const out: Token[] = [];
  const n = text.length;
  for (let i = 0; i < n; ) {
    let c = text.charCodeAt(i);
    if (c === 32 || c === 9) {
      i++;
      continue;
    }
    const from = i;
    while (++i < n && (c = text.charCodeAt(i)) !== 32 && c !== 9);
    const t = text.slice(from, i);
    out.push({ text: t, raw: t, quoted: false });
  }
  return out;
}

/** `name` (any case) is `zone` (lower case, absolute) or below it. */
function inZoneLower(name: string, zone: string): boolean {
  if (zone === ".") return true;
  const n = lowerName(name);
  return n === zone || n.endsWith(`.${zone}`);
}

/** Parses a whole master file held as one string (see ZoneFileParser). */
export function parseZoneFile(text: string, zone: string, limits?: ZoneFileLimits): ParsedZone {
  const p = new ZoneFileParser(zone, limits);
  p.push(text);
  return p.end();
}
