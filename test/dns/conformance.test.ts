import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as dnsPacket from "dns-packet";
import { startDns, type DnsHarness } from "./harness.js";
import { startKnot, type Knot } from "./knot.js";
import { DnsClient, pool, transferMessages } from "./dns-client.js";
import { CONFORMANCE_ZONE, corpus, describe as describeQuery, encodeQuery, ORIGIN, type QuerySpec } from "./conformance-corpus.js";
import { canonical, differences, uncompressedSize, type Canonical } from "./conformance-compare.js";

/** A name in the tricky zone; the types of canonical records; a plain EDNS0 OPT. */
const n = (s: string) => `${s}.${ORIGIN}.`;
const types = (rs: string[]) => rs.map((r) => r.split(" ")[3]);
const EDNS = { payload: 1232, version: 0, do: false };

/**
 * Differences from knot the standards permit. Each names the RFC section that allows it; a difference not
 * matched here fails the test.
 */
interface Allowed {
  rfc: string;
  why: string;
  matches(q: QuerySpec, field: string, realm: Canonical, knot: Canonical): boolean;
}
const ALLOWED: Allowed[] = [
  {
    rfc: "RFC 4035 3.1.6",
    why: "the name server copies the CD bit from the query into the response (knot leaves it clear for unsigned zones)",
    matches: (q, field, realm, knot) => field === "cd" && q.cd && realm.flags.cd && !knot.flags.cd,
  },
  {
    rfc: "RFC 2181 5",
    why: "duplicate records in a section are suppressed: knot repeats a wildcard CNAME that points to itself once before it sees the loop",
    matches: (_q, field, realm, knot) =>
      field === "answer" && new Set(realm.answer).size === realm.answer.length && knot.answer.length > realm.answer.length && JSON.stringify([...new Set(knot.answer)]) === JSON.stringify(realm.answer),
  },
  {
    rfc: "RFC 1035 4.1.4 with RFC 2181 9",
    why: "compression is the encoder's choice: the realm also points names in NS and CNAME RDATA at the question and at earlier RDATA, so a reply at the size limit holds more optional records (glue, a negative answer's SOA) than knot's; knot's records are all there",
    matches: (_q, field, realm, knot) =>
      (field === "additional" || field === "authority") && realm.flags.tc === knot.flags.tc && realm.answer.join() === knot.answer.join() && knot[field].every((r) => realm[field].includes(r)),
  },
  {
    rfc: "RFC 4343 4.1 with RFC 2181 9",
    why: "the realm answers owners in the zone's case, not through a pointer to the query's mixed-case name, so a reply near the size limit holds fewer additional records (or sets TC a record earlier)",
    matches: (q, field, realm, knot) =>
      /[A-Z]/.test(q.name) &&
      ((field === "additional" && realm.additional.every((r) => knot.additional.includes(r))) || (field === "tc" && realm.flags.tc && !knot.flags.tc) || (field === "answer" && realm.flags.tc && realm.answer.every((r) => knot.answer.includes(r)))),
  },
  {
    rfc: "RFC 2136 3.3 with RFC 8945 5",
    why: "UPDATE without a TSIG: the realm refuses unsigned updates (REFUSED); knot, with no update ACL, answers NOTAUTH",
    matches: (q, field, realm, knot) => q.opcode === 5 && field === "rcode" && realm.rcode === 5 && knot.rcode === 9,
  },
  {
    rfc: "RFC 6672 2.2",
    why: "a DNAME substitution longer than 255 octets MUST be answered YXDOMAIN; knot answers NXDOMAIN with the SOA",
    matches: (_q, field, realm, knot) => realm.rcode === 6 && ((field === "rcode" && knot.rcode === 3) || (field === "authority" && realm.authority.length === 0 && types(knot.authority).join() === "SOA")),
  },
];

let h: DnsHarness;
let knot: Knot;
let realmClient: DnsClient;
let knotClient: DnsClient;

interface Outcome {
  q: QuerySpec;
  realm: Buffer;
  knot: Buffer;
}
let outcomes: Outcome[] = [];
let elapsedMs = 0;

beforeAll(async () => {
  [h, knot] = await Promise.all([startDns(), startKnot(ORIGIN, CONFORMANCE_ZONE)]);
  await h.command("zone.import", { zone: ORIGIN, text: CONFORMANCE_ZONE });
  realmClient = new DnsClient("127.0.0.1", h.port);
  knotClient = new DnsClient("127.0.0.1", knot.port);
  const queries = corpus();
  const t0 = Date.now();
  outcomes = await pool(queries, 48, async (q) => {
    const msg = encodeQuery(q);
    const ask = (c: DnsClient) => (q.transport === "udp" ? c.udp(msg) : c.tcpQuery(msg));
    const [realm, k] = await Promise.all([ask(realmClient), ask(knotClient)]);
    return { q, realm, knot: k };
  });
  elapsedMs = Date.now() - t0;
});
afterAll(async () => {
  realmClient?.close();
  knotClient?.close();
  await knot?.stop();
  await h?.stop();
});

/**
 * True when the query spells a name of the reply otherwise than the reply does: a letter of the question in
 * upper case, or a record whose owner is the question's name with letters in another case.
 */
function spelledOtherwise(q: QuerySpec, reply: Buffer): boolean {
  const qname = q.name.replace(/\.$/, "");
  const p = dnsPacket.decode(reply);
  const owners = [...(p.answers ?? []), ...(p.authorities ?? []), ...(p.additionals ?? [])].map((r) => r.name);
  if (owners.some((n) => n.toLowerCase() === qname.toLowerCase())) return owners.some((n) => n !== qname && n.toLowerCase() === qname.toLowerCase());
  return /[A-Z]/.test(qname);
}

describe("the realm's answers agree with knot's (differential, one tricky zone)", () => {
  it("rcode, flags and sections agree for every query of the corpus, but for RFC-permitted differences", () => {
    const failures: string[] = [];
    // One example per kind of difference (field and query type) first: a class of defect shows once.
    const kinds = new Map<string, string>();
    const allowedSeen = new Map<string, number>();
    for (const o of outcomes) {
      const r = canonical(o.realm);
      const k = canonical(o.knot);
      for (const d of differences(r, k)) {
        const allowed = ALLOWED.find((a) => a.matches(o.q, d.field, r, k));
        if (allowed) allowedSeen.set(allowed.rfc, (allowedSeen.get(allowed.rfc) ?? 0) + 1);
        else {
          const text = `${describeQuery(o.q)}: ${d.field}\n    realm ${d.realm}\n    knot  ${d.knot}`;
          failures.push(text);
          const kind = `${d.field}/${o.q.type}/${o.q.name.toLowerCase().split(".")[0]}`;
          if (!kinds.has(kind)) kinds.set(kind, text);
        }
      }
    }
    console.log(`conformance: ${outcomes.length} queries to both servers in ${elapsedMs} ms; allowed differences: ${JSON.stringify(Object.fromEntries(allowedSeen))}`);
    expect(outcomes.length).toBeGreaterThan(3000);
    expect([...kinds.values()].join("\n"), `${failures.length} differences in ${kinds.size} kinds`).toBe("");
  });

  it("answers are as small as knot's (name compression)", () => {
    let realm = 0;
    let knotTotal = 0;
    let before = 0;
    const bigger: string[] = [];
    for (const o of outcomes) {
      const r = canonical(o.realm);
      const k = canonical(o.knot);
      if (differences(r, k).length > 0) continue;
      realm += o.realm.length;
      knotTotal += o.knot.length;
      before += uncompressedSize(o.realm);
      // Knot points names at the question, so they take the query's case; the realm keeps the zone's case
      // (RFC 4343 4.1), which costs the labels the query spells otherwise than the zone (at most its name, once,
      // and a pointer more).
      const slack = spelledOtherwise(o.q, o.realm) ? o.q.name.length + 1 + 4 : 0;
      if (o.realm.length > o.knot.length + slack) bigger.push(`${describeQuery(o.q)}: realm ${o.realm.length} B, knot ${o.knot.length} B`);
    }
    console.log(`sizes: realm/knot = ${(realm / knotTotal).toFixed(3)} (uncompressed, as before: ${(before / knotTotal).toFixed(3)})`);
    expect(bigger.slice(0, 20).join("\n")).toBe("");
    expect(realm / knotTotal).toBeLessThan(1.02);
  });
});

/** Asks both servers one question; returns both replies, raw and canonical. */
async function both(q: Partial<QuerySpec> & { name: string; type: number }) {
  const spec: QuerySpec = { qclass: 1, rd: false, cd: false, edns: null, transport: "udp", ...q };
  const msg = encodeQuery(spec);
  const ask = (c: DnsClient) => (spec.transport === "udp" ? c.udp(msg) : c.tcpQuery(msg));
  const [r, k] = await Promise.all([ask(realmClient), ask(knotClient)]);
  return { raw: r, realm: canonical(r), knot: canonical(k), knotRaw: k };
}


describe("the defect classes of issue 15, answered as knot answers them", () => {
  it("a CNAME chain's end decides the RCODE and the SOA (RFC 6604)", async () => {
    for (const name of ["dangling", "danglingchain", "x.cwd"]) {
      const { realm, knot } = await both({ name: n(name), type: 1 });
      expect(realm.rcode).toBe(3);
      expect(types(realm.authority)).toEqual(["SOA"]);
      expect(realm.answer.length).toBeGreaterThan(0);
      expect(differences(realm, knot)).toEqual([]);
    }
    const nodata = await both({ name: n("alias"), type: 15 });
    expect([nodata.realm.rcode, types(nodata.realm.answer), types(nodata.realm.authority)]).toEqual([0, ["CNAME"], ["SOA"]]);
    expect(differences(nodata.realm, nodata.knot)).toEqual([]);
  });

  it("a CNAME into a delegation ends in the referral, glue included (RFC 1034 4.3.2)", async () => {
    for (const name of ["todeleg", "todeleg2", "x.cdeleg"]) {
      const { realm, knot } = await both({ name: n(name), type: 1 });
      expect(types(realm.answer)).toEqual(["CNAME"]);
      expect(types(realm.authority)).toEqual(["NS", "NS"]);
      expect(realm.additional).toContain("ns.sub.conf.test 3600 IN A \"192.0.2.53\"");
      expect(realm.flags.aa).toBe(true);
      expect(differences(realm, knot)).toEqual([]);
    }
  });

  it("ANY is answered with one RRset, over UDP and TCP, and never through a CNAME (RFC 8482 4.1)", async () => {
    for (const transport of ["udp", "tcp"] as const) {
      const apex = await both({ name: `${ORIGIN}.`, type: 255, transport });
      expect(new Set(types(apex.realm.answer)).size).toBe(1);
      expect(differences(apex.realm, apex.knot)).toEqual([]);
      const alias = await both({ name: n("alias"), type: 255, transport });
      expect(types(alias.realm.answer)).toEqual(["CNAME"]);
      expect(differences(alias.realm, alias.knot)).toEqual([]);
    }
  });

  it("TC only when the answer does not fit; additional records that do not fit are left out (RFC 2181 9)", async () => {
    const mx = await both({ name: n("mxb"), type: 15 });
    expect([mx.realm.flags.tc, mx.realm.answer.length, mx.realm.additional.length]).toEqual([false, 1, 0]);
    const mix = await both({ name: n("mxmix"), type: 15 });
    expect(mix.realm.flags.tc).toBe(false);
    expect(mix.realm.additional).toContain('mail.conf.test 3600 IN A "192.0.2.10"');
    const big = await both({ name: n("m40"), type: 1 });
    expect([big.realm.flags.tc, big.realm.answer.length]).toEqual([true, 0]);
    const chain = await both({ name: n("cbig"), type: 16 });
    expect([chain.realm.flags.tc, types(chain.realm.answer)]).toEqual([true, ["CNAME"]]);
    const referral = await both({ name: n("x.bigdeleg"), type: 1 });
    expect(referral.realm.flags.tc).toBe(true);
    for (const x of [mx, mix, big, chain, referral]) expect(differences(x.realm, x.knot).filter((d) => d.field !== "additional")).toEqual([]);
  });

  it("EDNS: DO is copied, every reply to an EDNS query has an OPT, two OPTs are FORMERR, version 1 is BADVERS (RFC 3225 3, RFC 6891)", async () => {
    const dnssec = await both({ name: n("www"), type: 1, edns: { ...EDNS, do: true } });
    expect(dnssec.realm.opt).toBe("payload=1232 v=0 do=true options=[]");
    for (const name of ["nope", "sub", "dangling"]) expect((await both({ name: n(name), type: 1, edns: EDNS })).realm.opt).not.toBe("none");
    const refused = await both({ name: "example.", type: 1, edns: EDNS });
    expect([refused.realm.rcode, refused.realm.opt.startsWith("payload=1232")]).toEqual([5, true]);
    const twice = await both({ name: n("www"), type: 1, edns: EDNS, twoOpts: true });
    expect([twice.realm.rcode, twice.realm.opt]).toEqual([1, "none"]);
    const v1 = await both({ name: n("www"), type: 1, edns: { ...EDNS, version: 1 } });
    expect([v1.realm.rcode, v1.realm.answer]).toEqual([16, []]);
    for (const x of [dnssec, refused, twice, v1]) expect(differences(x.realm, x.knot)).toEqual([]);
  });

  it("owners are answered as the zone writes them; the question echoes the query's octets", async () => {
    const { records } = await h.query<{ records: { name: string }[] }>("records", { zone: ORIGIN, name: n("mixedcase") });
    const written = records[0]!.name.replace(/\.$/, "");
    for (const asked of ["mixedcase", "MIXEDCASE", "MixedCase", "mIxEdCaSe"]) {
      const { raw, realm, knot } = await both({ name: n(asked), type: 1 });
      const p = dnsPacket.decode(raw);
      expect(p.questions?.[0]?.name).toBe(`${asked}.${ORIGIN}`);
      expect(p.answers?.[0]?.name).toBe(written);
      expect(differences(realm, knot)).toEqual([]);
    }
  });
});

describe("DNAME (RFC 6672), answered as knot answers it", () => {
  it("substitutes below the owner: the DNAME, a synthesized CNAME with the DNAME's TTL, then the target's answer", async () => {
    const { realm, knot } = await both({ name: n("a.dname"), type: 1 });
    expect(realm.answer).toEqual([
      'a.dname.conf.test 3600 IN CNAME "a.dtarget.conf.test"',
      'a.dtarget.conf.test 3600 IN A "192.0.2.60"',
      'dname.conf.test 3600 IN DNAME "dtarget.conf.test"',
    ]);
    expect(differences(realm, knot)).toEqual([]);
    const missing = await both({ name: n("nothere.dname"), type: 1 });
    expect([missing.realm.rcode, types(missing.realm.authority)]).toEqual([3, ["SOA"]]);
    expect(differences(missing.realm, missing.knot)).toEqual([]);
    const owner = await both({ name: n("dname"), type: 1 });
    expect([owner.realm.rcode, owner.realm.answer, types(owner.realm.authority)]).toEqual([0, [], ["SOA"]]);
    expect(differences(owner.realm, owner.knot)).toEqual([]);
  });
});

describe("zone transfer (RFC 5936) of the tricky zone", () => {
  it("AXFR holds the same records as knot's, in messages as small as knot's (compressed within each message)", async () => {
    const msg = encodeQuery({ name: `${ORIGIN}.`, type: 252, qclass: 1, rd: false, cd: false, edns: null, transport: "tcp" });
    const [ours, theirs] = await Promise.all([transferMessages("127.0.0.1", h.port, msg), transferMessages("127.0.0.1", knot.port, msg)]);
    const records = (ms: Buffer[]) => ms.flatMap((m) => canonical(m).answer).sort();
    expect(records(ours)).toEqual(records(theirs));
    expect(records(ours).length).toBeGreaterThan(150);
    const size = (ms: Buffer[]) => ms.reduce((n, m) => n + m.length, 0);
    console.log(`AXFR: realm ${size(ours)} B in ${ours.length} messages, knot ${size(theirs)} B in ${theirs.length}`);
    expect(size(ours)).toBeLessThanOrEqual(size(theirs) * 1.02);
  });
});
