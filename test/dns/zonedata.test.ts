import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { RealmError, seal, type EventEnvelope } from "../../services/kernel/index.js";
import { apply } from "./decide.js";
import { applyZoneEvent, nameRecords, rrKey, zoneDecider, zoneRecords, type ZoneCommand, type ZoneState } from "../../dns/domain/zone.js";
import { exportZoneFile, parseZoneFile, type ParsedZone, type ZoneFileLimits } from "../../dns/domain/zonefile.js";
import { checkImport } from "../../dns/domain/import.js";
import { absoluteName, readName } from "../../dns/domain/names.js";
import { canonicalRdata, packetData, rdataWire, tokenize, TYPE_BY_CODE } from "../../dns/domain/rdata.js";
import { parseZoneStream, parseZoneText } from "../../dns/zonefile-stream.js";
import { REVERSE_FILE, REVERSE_ZONE, TRICKY_ZONE, writeTrickyZone } from "./zonedata-fixtures.js";

const importOf = (p: ParsedZone, id = "i1"): ZoneCommand => ({ type: "import", importId: id, soa: p.soa, serial: p.serial ?? undefined, records: p.records });
const create: ZoneCommand = { type: "create", soa: { mname: "ns1", rname: "hostmaster" }, ns: ["ns1"] };

/** The RealmError a call throws: its code and message. */
function error(f: () => unknown): { code: string; message: string } {
  try {
    f();
  } catch (e) {
    if (e instanceof RealmError) return { code: e.code, message: e.message };
    return { code: "not a RealmError", message: String(e) };
  }
  return { code: "no error", message: "" };
}

/** The octets of a TXT record as served (dns-packet's wire form of it). */
const txtOctets = (data: string) => (packetData("TXT", data).data as Buffer[]).map((b) => [...b]);

const HEAD = "$TTL 300\n@ SOA ns1 hm 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n";
const zone = (body: string, limits?: ZoneFileLimits) => parseZoneFile(HEAD + body, "example.test.", limits);
const rec = (body: string, limits?: ZoneFileLimits) => zone(body, limits).records.slice(2);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "realm-zonedata-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `$INCLUDE` read from disk relative to the including file (what the CLI gives the parser). */
const fsIncludes = (top: string): ZoneFileLimits["readInclude"] => (path, from) => {
  const full = resolve(dirname(from ?? top), path);
  return { text: readFileSync(full, "latin1"), path: full };
};
const readTricky = (): ParsedZone => {
  const top = writeTrickyZone(dir);
  return parseZoneFile(readFileSync(top, "latin1"), TRICKY_ZONE, { binary: true, readInclude: fsIncludes(top) });
};

describe("escapes (RFC 1035 5.1)", () => {
  it("reads \\DDD and \\X in unquoted and quoted TXT as the octets they stand for", () => {
    const [r] = rec('t TXT a\\032b "c\\032d" e\\"f "g\\\\h" i\\.j "\\065\\066"\n');
    expect(txtOctets(r!.data)).toEqual([[..."a b"].map((c) => c.charCodeAt(0)), [..."c d"].map((c) => c.charCodeAt(0)), [..."e\"f"].map((c) => c.charCodeAt(0)), [..."g\\h"].map((c) => c.charCodeAt(0)), [..."i.j"].map((c) => c.charCodeAt(0)), [65, 66]]);
    expect(r!.data).toBe('"a b" "c d" "e\\"f" "g\\\\h" "i.j" "AB"');
  });

  it("reads escapes in names, and refuses a label that holds a dot or a space after unescaping", () => {
    expect(rec("\\065bc A 192.0.2.1\n")[0]!.name).toBe("Abc.example.test.");
    expect(rec("x CNAME \\119ww\n")[0]!.data).toBe("www.example.test.");
    expect(() => zone("a\\.b A 192.0.2.1\n")).toThrow(/^line 5: .*holds a dot/);
    expect(() => zone("a\\032b A 192.0.2.1\n")).toThrow(/^line 5: .*not a valid host label/);
    expect(error(() => absoluteName("x\\256", "example.test.")).code).toBe("VALIDATION");
  });

  it("refuses \\DDD above 255 and a string over 255 octets (counted after unescaping)", () => {
    expect(() => zone('t TXT "\\256"\n')).toThrow(/^line 5: .*not an octet/);
    expect(() => zone(`t TXT "${"\\255".repeat(256)}"\n`)).toThrow(/^line 5: .*longer than 255 octets/);
    expect(rec(`t TXT "${"\\255".repeat(255)}"\n`)[0]!.data).toBe(`"${"\\255".repeat(255)}"`);
  });
});

describe("TXT strings are octets", () => {
  it("stores UTF-8 input as its UTF-8 octets, serves them exactly, and writes them \\DDD", () => {
    const [r] = rec('t TXT "café €"\n');
    expect(r!.data).toBe('"caf\\195\\169 \\226\\130\\172"');
    expect(txtOctets(r!.data)).toEqual([[...Buffer.from("café €", "utf8")]]);
  });

  it("reads a file's octets the same whether it comes as Unicode text or as octets (an upload), UTF-8 or not", async () => {
    const text = HEAD + 't TXT "café" "\\255"\n';
    const asText = parseZoneText(text, "example.test.").parsed.records;
    const asBytes = (await parseZoneStream((async function* () {
      const b = Buffer.from(text, "utf8");
      yield b.subarray(0, 70); // split inside the é
      yield b.subarray(70);
    })(), "example.test.")).parsed.records;
    expect(asBytes).toEqual(asText);
    // A latin1 file (not UTF-8): its octet 0xE9 is kept as that octet.
    const latin1 = Buffer.concat([Buffer.from(HEAD + 't TXT "caf'), Buffer.from([0xe9]), Buffer.from('"\n')]);
    const fromLatin1 = (await parseZoneStream((async function* () {
      yield latin1;
    })(), "example.test.")).parsed.records;
    expect(fromLatin1[2]!.data).toBe('"caf\\233"');
  });

  it("exports controls, newlines and non-ASCII as \\DDD: every line of an export is printable ASCII", () => {
    const p = zone('t TXT "a\\010b" "\\000" "\\r" "tab\\009" "日本"\nu CAA 0 issue "ä"\nh HINFO "\\010" "ö"\n');
    const { state } = apply([importOf(p)]);
    const text = exportZoneFile(state);
    for (const line of text.slice(0, -1).split("\n")) expect(line).toMatch(/^[\x20-\x7e\t]*$/);
    expect(text).toContain('t\t300\tIN\tTXT\t"a\\010b" "\\000" "r" "tab\\009" "\\230\\151\\165\\230\\156\\172"');
    expect(new Set(parseZoneFile(text, "example.test.").records.map((r) => JSON.stringify(r)))).toEqual(new Set(p.records.map((r) => JSON.stringify(r))));
  });
});

describe("old events (stored before data was canonical ASCII)", () => {
  // Versions before this one stored TXT data unescaped: `\DDD` and UTF-8 input as raw characters, served
  // as latin1 (a character past U+00FF lost its high bits). Such events fold to the same zone; its data
  // is served as the octets it was served as before (up to U+00FF), and exported in the canonical form.
  const legacy = (data: string): ZoneState => {
    const s = apply([create]).state;
    return applyZoneEvent(s, "RecordAdded", { name: "old.example.test.", type: "TXT", ttl: 300, data, serial: 2 });
  };

  it("folds, serves and exports an old TXT event", () => {
    const s = legacy('"café\u0001" "line\nbreak"');
    expect(s.rrsets.get(rrKey("old.example.test.", "TXT"))!.data).toEqual(['"café\u0001" "line\nbreak"']);
    expect(txtOctets(s.rrsets.get(rrKey("old.example.test.", "TXT"))!.data[0]!)).toEqual([[0x63, 0x61, 0x66, 0xe9, 0x01], [..."line\nbreak"].map((c) => c.charCodeAt(0))]);
    const text = exportZoneFile(s);
    expect(text).toContain('old\t300\tIN\tTXT\t"caf\\233\\001" "line\\010break"');
    expect(text.split("\n").every((l) => /^[\x20-\x7e\t]*$/.test(l))).toBe(true);
  });

  it("a character past U+00FF in an old event is served as UTF-8 (the old server mangled it)", () => {
    const s = legacy('"€"');
    expect(txtOctets(s.rrsets.get(rrKey("old.example.test.", "TXT"))!.data[0]!)).toEqual([[0xe2, 0x82, 0xac]]);
  });

  it("old SVCB data that this version would refuse (a known key written keyNNN, duplicate keys) is still served as before", () => {
    expect(packetData("HTTPS", "1 . key1=h2 port=443 port=8443")).toEqual({ type: "UNKNOWN_65", data: Buffer.from("00010000010003026832000300020 1bb0003000220fb".replace(/ /g, ""), "hex") });
    expect(error(() => rec("s HTTPS 1 . key1=h2\n")).message).toMatch(/write SvcParamKey key1 by its name, alpn/);
  });

  it("an old record is found by its canonical form: a duplicate is refused, a remove by data works", () => {
    const s = legacy('"café"');
    expect(error(() => zoneDecider.decide(s, { type: "add", record: { name: "old", type: "TXT", data: '"caf\\233"' } })).code).toBe("ALREADY_EXISTS");
    const { state } = apply([{ type: "remove", name: "old", rtype: "TXT", data: '"caf\\233"' }], "example.test.", s);
    expect(state.rrsets.has(rrKey("old.example.test.", "TXT"))).toBe(false);
  });
});

describe("SVCB and HTTPS (RFC 9460)", () => {
  const svcb = (data: string) => error(() => rec(`s HTTPS ${data}\n`));
  it("refuses duplicate keys, mandatory keys that are missing, mandatory listing itself or twice", () => {
    expect(svcb("1 . alpn=h2 alpn=h3")).toMatchObject({ code: "MALFORMED", message: expect.stringMatching(/alpn appears more than once.*malformed/) });
    expect(svcb("1 . port=1 key3=2").code).toBe("MALFORMED"); // key3 is port: written by its name only
    expect(svcb("1 . mandatory=port alpn=h2")).toMatchObject({ message: expect.stringMatching(/mandatory lists port, which the record does not have/) });
    expect(svcb("1 . mandatory=mandatory,alpn alpn=h2").message).toMatch(/must not list mandatory itself/);
    expect(svcb("1 . mandatory=alpn,alpn alpn=h2").message).toMatch(/lists alpn twice/);
    expect(svcb("1 . no-default-alpn").message).toMatch(/needs alpn/);
    expect(svcb("1 . key65535=x").message).toMatch(/reserved/);
    expect(svcb("1 . alpn=h2 mandatory=alpn").code).toBe("no error");
  });

  it("writes keys in order, mandatory's list sorted, values quoted only when they must be", () => {
    expect(rec('s HTTPS 1 . port=8443 key65000="a b" alpn=h2,h3 mandatory=port,alpn ipv6hint=2001:DB8:0::1\n')[0]!.data).toBe('1 . mandatory=alpn,port alpn=h2,h3 port=8443 ipv6hint=2001:db8::1 key65000="a b"');
  });
});

describe("record types", () => {
  it("reads DS, DNAME, NAPTR, SSHFP and HINFO into their canonical forms", () => {
    const rs = rec(
      "sub NS ns.sub\nsub DS 12345 13 2 ( E2D3C916F6DEEAC73294E8268FB58850\n 44A833FC5459588F4A9184CFC41A5766 )\nold DNAME New.Example.\nn NAPTR 100 10 S SIP+D2U \"\" _sip._udp\nk SSHFP 4 2 e2d3c916f6deeac73294e8268fb5885044a833fc5459588f4a9184cfc41a5766\nh HINFO PC-Intel-700mhz \"Linux 6\"\n",
    );
    expect(rs.map((r) => `${r.type} ${r.data}`)).toEqual([
      "NS ns.sub.example.test.",
      "DS 12345 13 2 e2d3c916f6deeac73294e8268fb5885044a833fc5459588f4a9184cfc41a5766",
      "DNAME new.example.",
      'NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp.example.test.',
      "SSHFP 4 2 e2d3c916f6deeac73294e8268fb5885044a833fc5459588f4a9184cfc41a5766",
      'HINFO "PC-Intel-700mhz" "Linux 6"',
    ]);
    expect(error(() => rec("s DS 1 13 2 abcd\n")).message).toMatch(/must be 32 octets/);
    expect(error(() => rec("s SSHFP 1 1 abcd\n")).message).toMatch(/must be 20 octets/);
    expect(error(() => rec("h HINFO one\n")).message).toMatch(/HINFO data must be/);
    expect(error(() => rec("n NAPTR 1 1 \"S!\" \"\" \"\" .\n")).message).toMatch(/NAPTR flags/);
  });

  it("reads RFC 3597 generic data for any type; a known type written generically becomes that type", () => {
    const rs = rec("a TYPE65280 \\# 4 DEADbeef\nb TYPE65281 \\# 0\nc TYPE1 \\# 4 c0000233\nd A \\# 4 C0000234\ne TXT \\# 6 0568656c6c6f\nf CLASS1 TYPE2 \\# 5 036e7332 00\ng type64 \\# 3 000100\n");
    expect(rs.map((r) => `${r.type} ${r.data}`)).toEqual(["TYPE65280 \\# 4 deadbeef", "TYPE65281 \\# 0", "A 192.0.2.51", "A 192.0.2.52", 'TXT "hello"', "NS ns2.", "SVCB 1 ."]);
    expect(error(() => rec("a TYPE65280 \\# 3 deadbeef\n")).message).toMatch(/says 3 octets and holds 4/);
    expect(error(() => rec("a TYPE1 \\# 3 c00002\n")).message).toMatch(/not a valid A record/);
    expect(error(() => rec("a TYPE65280 1 2 3\n")).message).toMatch(/RFC 3597 form/);
    expect(error(() => rec("a TYPE255 \\# 0\n")).message).toMatch(/not supported/);
    expect(error(() => rec("a CLASS3 A 192.0.2.1\n")).message).toMatch(/class CLASS3 is not supported/);
    // The server finds a generic type by its code, and sends its octets.
    expect(TYPE_BY_CODE.get(65280)).toBe("TYPE65280");
    expect(TYPE_BY_CODE.get(41)).toBeUndefined();
    expect(packetData("TYPE65280", "\\# 4 deadbeef")).toEqual({ type: "UNKNOWN_65280", data: Buffer.from("deadbeef", "hex") });
  });

  it("finds generic types at a name (records, CNAME exclusivity) without listing the zone", () => {
    const { state } = apply([create, { type: "add", record: { name: "g", type: "type65280", data: "\\# 2 abcd" } }, { type: "set", name: "g", rtype: "TYPE65281", data: ["\\# 0"] }]);
    expect(nameRecords(state, "G.example.test.").map((r) => `${r.type} ${r.data}`)).toEqual(["TYPE65280 \\# 2 abcd", "TYPE65281 \\# 0"]);
    expect(error(() => zoneDecider.decide(state, { type: "add", record: { name: "g", type: "CNAME", data: "x" } })).message).toMatch(/CNAME and other data \(TYPE65280, TYPE65281\)/);
    expect(error(() => zoneDecider.decide(state, { type: "add", record: { name: "g", type: "TYPE1", data: "\\# 3 c00002" } })).code).toBe("VALIDATION");
    expect(error(() => zoneDecider.decide(state, { type: "add", record: { name: "g", type: "BOGUS", data: "x" } })).message).toMatch(/record type BOGUS is not supported/);
  });

  it("encodes every new type's RDATA octet for octet", () => {
    expect(rdataWire("DNAME", "a.b.")).toEqual(Buffer.from([1, 97, 1, 98, 0]));
    expect(rdataWire("DS", "258 13 2 abcd")).toEqual(Buffer.from([1, 2, 13, 2, 0xab, 0xcd]));
    expect(rdataWire("SSHFP", "4 2 abcd")).toEqual(Buffer.from([4, 2, 0xab, 0xcd]));
    expect(rdataWire("HINFO", '"a b" "\\255"')).toEqual(Buffer.from([3, 97, 32, 98, 1, 255]));
    expect(rdataWire("NAPTR", '1 2 "S" "" "x" .')).toEqual(Buffer.from([0, 1, 0, 2, 1, 83, 0, 1, 120, 0]));
    expect(rdataWire("CAA", '0 IsSue "a\\195\\169"')).toEqual(Buffer.concat([Buffer.from([0, 5]), Buffer.from("IsSuea"), Buffer.from([0xc3, 0xa9])]));
  });

  it("keeps CAA tags in the case written (RFC 8659 4.1) and values verbatim", () => {
    expect(rec('@ CAA 0 IsSuE "letsencrypt.org; validationmethods=dns-01"\n@ CAA 0 iodef mailto:a@b.test\n').map((r) => r.data)).toEqual(['0 IsSuE "letsencrypt.org; validationmethods=dns-01"', '0 iodef "mailto:a@b.test"']);
    expect(error(() => rec("@ CAA 0 is-sue x\n")).message).toMatch(/CAA tag/);
  });

  it("takes TTL 0 (RFC 1035 3.2.1) in files, $TTL and the API", () => {
    expect(rec("z 0 A 192.0.2.9\n")[0]!.ttl).toBe(0);
    expect(parseZoneFile("$TTL 0\n@ SOA a b 1 2 3 4 0\n@ NS a\n", "example.test.").soa).toMatchObject({ ttl: 0, minimum: 0 });
    expect(apply([create, { type: "add", record: { name: "z", type: "A", ttl: 0, data: "192.0.2.9" } }]).state.rrsets.get(rrKey("z.example.test.", "A"))!.ttl).toBe(0);
  });

  it("refuses names below a DNAME and a DNAME above existing names (RFC 6672 2.3), in files and in changes", () => {
    expect(error(() => checkImport("example.test.", zone("old DNAME x.test.\nsub.old A 192.0.2.1\n").records)).message).toMatch(/below the DNAME at old.example.test./);
    const { state } = apply([create, { type: "add", record: { name: "old", type: "DNAME", data: "x.test." } }, { type: "add", record: { name: "a.b.example.test", type: "A", data: "192.0.2.1" } }]);
    expect(error(() => zoneDecider.decide(state, { type: "add", record: { name: "x.old.example.test.", type: "A", data: "192.0.2.1" } })).message).toMatch(/below the DNAME/);
    expect(error(() => zoneDecider.decide(state, { type: "add", record: { name: "b", type: "DNAME", data: "y.test." } })).message).toMatch(/a.b.example.test. is below it/);
    expect(error(() => zoneDecider.decide(state, { type: "add", record: { name: "old", type: "CNAME", data: "y.test." } })).message).toMatch(/CNAME must be alone/);
  });

  it("reads RFC 2317 classless labels in reverse zones (and only there)", () => {
    const p = parseZoneFile(REVERSE_FILE, REVERSE_ZONE);
    expect(p.records.map((r) => `${r.name} ${r.type} ${r.data}`)).toContain("0/25.2.0.192.in-addr.arpa. NS ns1.tricky.test.");
    expect(p.records.map((r) => `${r.name} ${r.type} ${r.data}`)).toContain("1.2.0.192.in-addr.arpa. CNAME 1.0/25.2.0.192.in-addr.arpa.");
    expect(p.records.map((r) => r.name)).toContain("128-26.2.0.192.in-addr.arpa.");
    expect(() => zone("0/25 A 192.0.2.1\n")).toThrow(/^line 5: .*not a valid host label/);
    checkImport(REVERSE_ZONE, p.records);
  });
});

describe("owner names keep the zone's case", () => {
  it("stores the case an RRset was first written in, keys and compares in lower case", () => {
    const { state } = apply([create, { type: "add", record: { name: "WwW", type: "A", data: "192.0.2.1" } }, { type: "add", record: { name: "www.EXAMPLE.test.", type: "A", data: "192.0.2.2" } }, { type: "set", name: "WWW", rtype: "TXT", data: ['"t"'] }]);
    expect(state.rrsets.get(rrKey("www.example.test.", "A"))).toMatchObject({ name: "WwW.example.test.", data: ["192.0.2.1", "192.0.2.2"] });
    expect(state.rrsets.get("www.example.test. TXT")!.name).toBe("WWW.example.test.");
    expect(error(() => zoneDecider.decide(state, { type: "add", record: { name: "wWw", type: "CNAME", data: "x" } })).message).toMatch(/CNAME and other data/);
    expect(error(() => zoneDecider.decide(state, { type: "add", record: { name: "WWW", type: "A", data: "192.0.2.1" } })).code).toBe("ALREADY_EXISTS");
    const after = apply([{ type: "remove", name: "www", rtype: "A", data: "192.0.2.1" }, { type: "set", name: "www", rtype: "TXT", data: ['"u"'] }], "example.test.", state).state;
    expect(after.rrsets.get(rrKey("WWW.example.test.", "A"))).toMatchObject({ name: "WwW.example.test.", data: ["192.0.2.2"] });
    expect(after.rrsets.get(rrKey("www.example.test.", "TXT"))).toMatchObject({ name: "WWW.example.test.", data: ['"u"'] });
    expect(exportZoneFile(after)).toContain("WwW\t3600\tIN\tA\t192.0.2.2");
  });

  it("in files: an owner's case is kept, the apex and the zone compared in any case", () => {
    const p = parseZoneFile("$ORIGIN Example.TEST.\n$TTL 60\n@ SOA ns1 hm 1 2 3 4 5\n@ NS ns1\nWeb A 192.0.2.1\nEXAMPLE.test. TXT x\n", "example.test.");
    expect(p.soa).toMatchObject({ mname: "ns1.example.test." });
    expect(p.records.map((r) => r.name)).toEqual(["Example.TEST.", "Web.Example.TEST.", "EXAMPLE.test."]);
    checkImport("example.test.", p.records);
  });
});

describe("$INCLUDE", () => {
  it("reads included files relative to the including file, with an origin, nested, and restores the origin after", () => {
    const p = readTricky();
    const names = p.records.map((r) => `${r.name} ${r.type}`);
    expect(names).toContain("h1.hosts.tricky.test. A");
    expect(names).toContain("H1.hosts.tricky.test. TXT");
    expect(names).toContain("h2.hosts.tricky.test. TXT"); // sub/more.inc, named relative to sub/hosts.inc
    expect(names).toContain("after.tricky.test. A");
  });

  it("refuses includes where there is no directory (API text, upload, HTTP body), a missing file, and includes nested too deep", async () => {
    const withInclude = `${HEAD}$INCLUDE other.inc\n`;
    expect(error(() => parseZoneText(withInclude, "example.test.")).message).toMatch(/^line 5: \$INCLUDE is not possible here: this file came over the API/);
    await expect(parseZoneStream((async function* () {
      yield Buffer.from(withInclude);
    })(), "example.test.")).rejects.toThrow(/^line 5: \$INCLUDE is not possible here/);
    const missing = join(dir, "missing.zone");
    writeFileSync(missing, withInclude);
    expect(error(() => parseZoneFile(withInclude, "example.test.", { readInclude: fsIncludes(missing) })).message).toMatch(/^line 5: \$INCLUDE other.inc: .*ENOENT/);
    const loop = join(dir, "loop.inc");
    writeFileSync(loop, "$INCLUDE loop.inc\n");
    expect(error(() => parseZoneFile(`${HEAD}$INCLUDE loop.inc\n`, "example.test.", { readInclude: fsIncludes(loop) })).message).toMatch(/nests deeper than 8 files/);
    const bad = join(dir, "bad.inc");
    writeFileSync(bad, "ok A 192.0.2.1\nbad A 192.0.2.300\n");
    expect(error(() => parseZoneFile(`${HEAD}$INCLUDE bad.inc\n`, "example.test.", { readInclude: fsIncludes(bad) })).message).toMatch(/^line 5: in .*bad.inc \(included\): line 2: .*192.0.2.300/);
  });
});

describe("the tricky zone", () => {
  it("import -> export -> import is the identity", () => {
    const first = readTricky();
    checkImport(TRICKY_ZONE, first.records);
    const a = apply([importOf(first)], TRICKY_ZONE).state;
    const text = exportZoneFile(a);
    for (const line of text.slice(0, -1).split("\n")) expect(line).toMatch(/^[\x20-\x7e\t]*$/);
    const second = parseZoneFile(text, TRICKY_ZONE);
    expect(second.soa).toEqual(first.soa);
    expect(second.serial).toBe(first.serial);
    expect(new Set(second.records.map((r) => JSON.stringify(r)))).toEqual(new Set(first.records.map((r) => JSON.stringify(r))));
    const b = apply([importOf(second, "i2")], TRICKY_ZONE).state;
    expect(zoneRecords(b)).toEqual(zoneRecords(a));
    expect(exportZoneFile(b)).toBe(text);
    // and the same for the reverse zone with RFC 2317 labels
    const r1 = parseZoneFile(REVERSE_FILE, REVERSE_ZONE);
    const rs = apply([importOf(r1)], REVERSE_ZONE).state;
    const rtext = exportZoneFile(rs);
    expect(exportZoneFile(apply([importOf(parseZoneFile(rtext, REVERSE_ZONE))], REVERSE_ZONE).state)).toBe(rtext);
  });

  it("holds every type the realm reads, escapes, UTF-8, generic data, includes, TTL 0 and mixed case", () => {
    const p = readTricky();
    const types = new Set(p.records.map((r) => r.type));
    for (const t of ["A", "NS", "MX", "TXT", "CAA", "HINFO", "DS", "DNAME", "NAPTR", "SSHFP", "SRV", "TLSA", "HTTPS", "SVCB", "TYPE65280", "TYPE65281"]) expect(types).toContain(t);
    const by = (name: string, type: string) => p.records.filter((r) => r.name === name && r.type === type).map((r) => r.data);
    expect(by("txt1.tricky.test.", "TXT")).toEqual(['"unquoted with escapes" "quoted space" "q\\"uote" "back\\\\slash" "semi;colon" "dot.x"']);
    expect(txtOctets(by("txt2.tricky.test.", "TXT")[0]!)).toEqual([[...Buffer.from("café ünïcödé €")], [...Buffer.from("日本語")]]);
    expect(by("zero.tricky.test.", "A")).toEqual(["192.0.2.20"]);
    expect(p.records.find((r) => r.name === "zero.tricky.test.")!.ttl).toBe(0);
    expect(by("Mixed.Case.tricky.test.", "A")).toEqual(["192.0.2.21"]);
    expect(by("Abc.tricky.test.", "A")).toEqual(["192.0.2.22"]);
    expect(by("gen3.tricky.test.", "A")).toEqual(["192.0.2.51"]);
    expect(by("tricky.test.", "CAA")).toContain('128 IsSuEwIlD ";"');
    expect(by("svc.tricky.test.", "HTTPS")[0]).toMatch(/^1 \. mandatory=alpn,port alpn=h2,h3 port=8443 ipv4hint=192.0.2.20 ech=/);
  });
});

describe("names given on the CLI and the API", () => {
  const Z = "lab.example.";
  it("reads a name one way: absolute with a trailing dot or ending in the zone, relative when a single label or a service name, else refused", () => {
    expect(readName("ns1.lab.example", Z)).toBe("ns1.lab.example.");
    expect(readName("NS1.Lab.Example", Z)).toBe("NS1.Lab.Example.");
    expect(readName("lab.example", Z)).toBe("lab.example.");
    expect(readName("@", Z)).toBe(Z);
    expect(readName("ns1", Z)).toBe("ns1.lab.example.");
    expect(readName("*", Z)).toBe("*.lab.example.");
    expect(readName("_sip._tcp", Z)).toBe("_sip._tcp.lab.example.");
    expect(readName("sel._domainkey", Z)).toBe("sel._domainkey.lab.example.");
    expect(readName("www.other.example.", Z)).toBe("www.other.example.");
    expect(readName("www.other.example", undefined)).toBe("www.other.example.");
    // ending in an ancestor of the zone of two labels or more: absolute (the subzone's name server in its parent)
    expect(readName("ns1.lab.example", "eu.lab.example.")).toBe("ns1.lab.example.");
    expect(readName("ns1.other.co.uk", "a.example.co.uk.")).toBe("ns1.other.co.uk.");
    expect(error(() => readName("ns1.other.example", "eu.lab.example.")).code).toBe("VALIDATION"); // ends only in the TLD
    const amb = error(() => readName("www.other.example", Z));
    expect(amb.code).toBe("VALIDATION");
    expect(amb.message).toContain('"www.other.example" is ambiguous in zone lab.example.');
    expect(amb.message).toContain("www.other.example. (absolute)");
    expect(amb.message).toContain("www.other.example.lab.example. (relative to the zone)");
    expect(error(() => readName("www", undefined)).code).toBe("VALIDATION");
    expect(error(() => readName("xlab.example", Z)).code).toBe("VALIDATION"); // ends in the text of the zone, not in the zone
  });

  it("the decider reads owners and names in data by that rule; a refusal changes nothing", () => {
    const base = apply([{ type: "create", soa: { mname: "ns1.lab.example", rname: "hostmaster.lab.example" }, ns: ["ns1.lab.example", "ns2"] }], Z).state;
    expect(base.rrsets.get(rrKey(Z, "NS"))!.data).toEqual(["ns1.lab.example.", "ns2.lab.example."]);
    expect(base.soa).toMatchObject({ mname: "ns1.lab.example.", rname: "hostmaster.lab.example." });
    expect(error(() => zoneDecider.decide(zoneDecider.initialState(Z), { type: "create", soa: { mname: "ns1", rname: "hm" }, ns: ["ns1.other.example"] })).message).toMatch(/ambiguous/);
    const add = (name: string, type: string, data: string) => () => zoneDecider.decide(base, { type: "add", record: { name, type, data } });
    expect(error(add("www.other.example", "A", "192.0.2.1")).message).toMatch(/ambiguous/);
    for (const [type, data] of [["CNAME", "www.other.example"], ["MX", "10 mail.other.example"], ["SRV", "0 0 1 s.other.example"], ["NS", "ns.other.example"], ["PTR", "p.other.example"], ["DNAME", "d.other.example"], ["HTTPS", "1 svc.other.example"], ["NAPTR", '1 1 "S" "" "" r.other.example']] as const) {
      expect(error(add("x", type, data)).message, `${type} ${data}`).toMatch(/ambiguous/);
    }
    expect(apply([{ type: "add", record: { name: "@", type: "MX", data: "10 mail" } }], Z, base).state.rrsets.get(rrKey(Z, "MX"))!.data).toEqual(["10 mail.lab.example."]);
    expect(apply([{ type: "add", record: { name: "w", type: "CNAME", data: "www.other.example." } }], Z, base).state.rrsets.get(rrKey("w.lab.example.", "CNAME"))!.data).toEqual(["www.other.example."]);
    // zone files keep RFC 1035: no trailing dot = relative to $ORIGIN
    expect(canonicalRdata("CNAME", tokenize("www.other.example"), Z)).toBe("www.other.example.lab.example.");
  });
});
