import { rng } from "./packets.js";

export const ORIGIN = "conf.test";

const many = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i + 1)).join("\n");

/**
 * A zone that exercises what answers get wrong: CNAME chains (in zone, out of zone, into a delegation, to
 * nothing, loops, wildcard CNAMEs), delegations with and without glue, empty non-terminals and wildcards
 * below and beside them, additional-section processing (targets that are glue, wildcards, CNAMEs), RRsets
 * that need TC at 512 or 1232 octets, and additional sections that do not fit.
 */
export const CONFORMANCE_ZONE = `$ORIGIN ${ORIGIN}.
$TTL 3600
@ SOA ns1.${ORIGIN}. hostmaster.${ORIGIN}. 2026010101 7200 900 1209600 300
@ NS ns1
@ NS ns2.${ORIGIN}.
@ NS ns.outside.example.
@ MX 10 mail
@ MX 20 mail.outside.example.
@ TXT "v=spf1 mx -all"
@ CAA 0 issue "letsencrypt.org"
@ A 192.0.2.1
@ AAAA 2001:db8::1
ns1 A 192.0.2.1
ns1 AAAA 2001:db8::1
ns2 A 192.0.2.2
mail A 192.0.2.10
mail AAAA 2001:db8::10
www A 192.0.2.20
www AAAA 2001:db8::20
MixedCase A 192.0.2.21
Upper.Mixed TXT "case"
txt TXT "hello world" "second string"
ptr PTR www.${ORIGIN}.
alias CNAME www
chain1 CNAME chain2
chain2 CNAME alias
ext CNAME www.outside.example.
dangling CNAME nothere
danglingchain CNAME dangling
loop1 CNAME loop2
loop2 CNAME loop1
self CNAME self
todeleg CNAME host.sub
todeleg2 CNAME sub
todeleg3 CNAME deleg2
towild CNAME foo.wild
toent CNAME empty.nonterm
tomx CNAME mxmix
toapex CNAME ${ORIGIN}.
cbig CNAME bigtxt
cm40 CNAME m40
*.wild A 192.0.2.99
*.wild TXT "wildcard"
*.wild MX 10 mail
host.b.wild A 192.0.2.98
*.cw CNAME www
*.cwd CNAME nothere2
*.cloop CNAME x.cloop
*.cdeleg CNAME sub
sub NS ns.sub
sub NS ns.outside.example.
ns.sub A 192.0.2.53
ns.sub AAAA 2001:db8::53
deleg2 NS ns1.${ORIGIN}.
deleg2 NS ns.deleg2
ns.deleg2 A 192.0.2.54
bigdeleg NS a.bigdeleg
${many(9, (i) => `bigdeleg NS ns${i}.bigdeleg`)}
${many(9, (i) => `ns${i}.bigdeleg A 192.0.2.${110 + i}\nns${i}.bigdeleg AAAA 2001:db8::${110 + i}`)}
a.bigdeleg A 192.0.2.110
nsext NS ns.outside.example.
_sip._tcp SRV 10 60 5060 sip
_sip._tcp SRV 20 60 5060 sip.outside.example.
_sip._udp SRV 0 0 5060 ns.sub
sip A 192.0.2.30
_443._tcp.www TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
svc HTTPS 1 . alpn=h2,h3 port=8443 ipv4hint=192.0.2.20
svcb SVCB 1 www.${ORIGIN}. alpn=h2
deep.empty.nonterm A 192.0.2.77
mxglue MX 10 ns.sub
mxw MX 10 foo.wild
mxc MX 10 alias
mxb MX 10 m40
mxmix MX 10 m40
mxmix MX 20 mail
mxmix MX 30 www
${many(40, (i) => `m40 60 A 192.0.2.${i}`)}
${many(6, (i) => `bigtxt TXT "${String(i).repeat(180)}"`)}
${many(8, (i) => `bigtxt2 TXT "${String(i).repeat(180)}"`)}
dname DNAME dtarget
a.dtarget A 192.0.2.60
b.dtarget CNAME www
dname-out DNAME outside.example.
dname-chain DNAME dname
ylong DNAME ${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(50)}.${ORIGIN}.
bigmx MX 10 m1
bigmx MX 20 m2
bigmx MX 30 m3
${many(3, (i) => `m1 AAAA 2001:db8::1:${i}\nm2 AAAA 2001:db8::2:${i}\nm3 AAAA 2001:db8::3:${i}`)}
`;

/** Names to ask about beside the zone's owners: nonexistent names, names below cuts, wildcards, ENTs, other zones. */
const EXTRA_NAMES = [
  "nope", "a.b.c.nope", "empty.nonterm", "nonterm", "x.empty.nonterm", "x.deep.empty.nonterm",
  "foo.wild", "a.b.wild", "b.wild", "c.b.wild", "wild", "x.host.b.wild", "*.wild",
  "x.cw", "a.b.cw", "x.cwd", "x.cloop", "x.cdeleg",
  "host.sub", "deep.host.sub", "ns.sub", "nothere.sub", "x.deleg2", "x.nsext", "x.bigdeleg",
  "a.dname", "b.dname", "nothere.dname", "x.a.dname", "a.dname-out", "a.dname-chain", "b.dname-chain", "dtarget",
  `${"x".repeat(63)}.${"y".repeat(10)}.ylong`, `${"x".repeat(20)}.ylong`,
  "mixedcase", "upper.mixed", "mixed", "nothere", "x.www", "_tcp", "_tcp.www", "x._sip._tcp",
];
const OUTSIDE = ["www.outside.example.", "example.", "test.", ".", "conf.test.evil.", "xconf.test."];

/** Type codes asked: common types, DS (parent side at a cut), meta ANY, one unknown type, RRSIG. */
export const TYPES = [1, 2, 5, 6, 12, 15, 16, 28, 33, 43, 46, 52, 64, 65, 99, 255, 257];

export interface QuerySpec {
  name: string;
  type: number;
  qclass: number;
  rd: boolean;
  cd: boolean;
  /** null: no OPT. */
  edns: { payload: number; version: number; do: boolean } | null;
  /** Send the OPT twice (RFC 6891 6.1.1: FORMERR). */
  twoOpts?: boolean;
  /** Header opcode (0 = QUERY). */
  opcode?: number;
  transport: "udp" | "tcp";
}

/** The owners of the zone text, absolute (`@` and blank owners resolved; good enough for this zone). */
export function ownersOf(zoneText: string): string[] {
  const out = new Set<string>();
  for (const line of zoneText.split("\n")) {
    if (!line || line.startsWith("$") || /^\s/.test(line)) continue;
    const owner = line.split(/\s+/)[0]!;
    out.add(owner === "@" ? `${ORIGIN}.` : owner.endsWith(".") ? owner : `${owner}.${ORIGIN}.`);
  }
  return [...out];
}

/** The query corpus: every name x type, each with a random variant (EDNS, DO, CD, RD, case, transport, size). */
export function corpus(seed = 15): QuerySpec[] {
  const next = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const names = [...ownersOf(CONFORMANCE_ZONE), ...EXTRA_NAMES.map((n) => `${n}.${ORIGIN}.`), ...OUTSIDE];
  const out: QuerySpec[] = [];
  const randomCase = (n: string) => [...n].map((c) => (next() < 0.5 ? c.toUpperCase() : c.toLowerCase())).join("");
  const variant = (name: string, type: number, pass: number): QuerySpec => {
    const ednsKind = pick(["none", "1232", "4096", "512", "none", "1232"] as const);
    return {
      name: pass === 0 ? name : next() < 0.5 ? randomCase(name) : name,
      type,
      qclass: 1,
      rd: next() < 0.5,
      cd: next() < 0.2,
      edns: ednsKind === "none" ? null : { payload: Number(ednsKind), version: 0, do: next() < 0.5 },
      transport: next() < 0.25 ? "tcp" : "udp",
    };
  };
  for (let pass = 0; pass < 2; pass++) for (const name of names) for (const type of TYPES) out.push(variant(name, type, pass));
  // The big answers at every size, over both transports, with and without EDNS.
  for (const n of ["m40", "bigtxt", "bigtxt2", "cbig", "cm40", "mxb", "mxmix", "tomx", "bigmx", "bigdeleg", "x.bigdeleg", ""]) {
    for (const type of [1, 15, 16, 255, 2])
      for (const edns of [null, 512, 600, 1232, 1400, 4096])
        for (const transport of ["udp", "tcp"] as const)
          out.push({ name: n ? `${n}.${ORIGIN}.` : `${ORIGIN}.`, type, qclass: 1, rd: false, cd: false, edns: edns === null ? null : { payload: edns, version: 0, do: edns === 1400 }, transport });
  }
  // EDNS edge cases: an unknown version (BADVERS), two OPTs (FORMERR), payloads under 512, for names that exist and not.
  for (const n of ["www", "nope", "alias", "sub", "host.sub"]) {
    const name = `${n}.${ORIGIN}.`;
    for (const transport of ["udp", "tcp"] as const) {
      out.push({ name, type: 1, qclass: 1, rd: true, cd: false, edns: { payload: 1232, version: 1, do: false }, transport });
      out.push({ name, type: 1, qclass: 1, rd: true, cd: false, edns: { payload: 1232, version: 1, do: true }, transport });
      out.push({ name, type: 1, qclass: 1, rd: false, cd: false, edns: { payload: 1232, version: 0, do: true }, twoOpts: true, transport });
      out.push({ name, type: 1, qclass: 1, rd: false, cd: false, edns: { payload: 100, version: 0, do: false }, transport });
      out.push({ name, type: 1, qclass: 1, rd: false, cd: false, edns: { payload: 0, version: 0, do: true }, transport });
    }
  }
  // Other classes, opcodes and meta types: what a server answers that it does not serve.
  for (const transport of ["udp", "tcp"] as const) {
    for (const edns of [null, { payload: 1232, version: 0, do: false }]) {
      const base = { rd: false, cd: false, edns, transport };
      for (const qclass of [3, 4, 255, 254]) out.push({ ...base, name: `www.${ORIGIN}.`, type: 1, qclass });
      for (const type of [0, 41, 251, 252, 253, 254]) if (transport === "udp" || type < 251) out.push({ ...base, name: `${ORIGIN}.`, type, qclass: 1 });
      for (const opcode of [1, 2, 5, 6, 15]) out.push({ ...base, name: `${ORIGIN}.`, type: 6, qclass: 1, opcode });
    }
  }
  return out;
}

/** The query's bytes: header, question (the name's letters as given), then the OPT (once or twice). */
export function encodeQuery(q: QuerySpec, id = 0): Buffer {
  const labels = q.name === "." ? [] : q.name.replace(/\.$/, "").split(".");
  const parts: Buffer[] = [];
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(((q.opcode ?? 0) << 11) | (q.rd ? 0x0100 : 0) | (q.cd ? 0x0010 : 0), 2);
  h.writeUInt16BE(1, 4);
  h.writeUInt16BE(q.edns ? (q.twoOpts ? 2 : 1) : 0, 10);
  parts.push(h);
  for (const l of labels) parts.push(Buffer.from([l.length]), Buffer.from(l, "latin1"));
  const tail = Buffer.alloc(5);
  tail.writeUInt16BE(q.type, 1);
  tail.writeUInt16BE(q.qclass, 3);
  parts.push(tail);
  if (q.edns) {
    const opt = Buffer.alloc(11);
    opt.writeUInt16BE(41, 1);
    opt.writeUInt16BE(q.edns.payload, 3);
    opt[6] = q.edns.version;
    opt.writeUInt16BE(q.edns.do ? 0x8000 : 0, 7);
    parts.push(opt);
    if (q.twoOpts) parts.push(opt);
  }
  return Buffer.concat(parts);
}

export function describe(q: QuerySpec): string {
  const e = q.edns ? `edns(v${q.edns.version},${q.edns.payload}${q.edns.do ? ",do" : ""}${q.twoOpts ? ",x2" : ""})` : "noedns";
  return `${q.name} ${q.type}${q.qclass !== 1 ? ` class${q.qclass}` : ""}${q.opcode ? ` opcode${q.opcode}` : ""} ${q.transport} ${e}${q.rd ? " rd" : ""}${q.cd ? " cd" : ""}`;
}
