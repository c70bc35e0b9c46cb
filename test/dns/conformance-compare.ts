import * as dnsPacket from "dns-packet";

/** What the differential test compares of one reply: RCODE (extended included), flags, sections as sets, the OPT. */
export interface Canonical {
  rcode: number;
  flags: { aa: boolean; tc: boolean; rd: boolean; ra: boolean; cd: boolean; ad: boolean };
  question: string;
  answer: string[];
  authority: string[];
  additional: string[];
  opt: string;
}

/** Types whose RDATA holds domain names (compared without case). */
const NAME_TYPES = new Set(["NS", "CNAME", "PTR", "MX", "SOA", "SRV", "DNAME"]);

function dataText(type: string, data: unknown): string {
  const s = JSON.stringify(data, (_k, v: unknown) => {
    if (v && typeof v === "object" && (v as { type?: string }).type === "Buffer" && Array.isArray((v as { data?: unknown }).data)) {
      return Buffer.from((v as { data: number[] }).data).toString("hex");
    }
    return v;
  });
  return NAME_TYPES.has(type) ? s.toLowerCase() : s;
}

const rr = (a: dnsPacket.Answer) => {
  const r = a as { name: string; type: string; ttl?: number; class?: string; data?: unknown };
  return `${r.name.toLowerCase()} ${r.ttl ?? 0} ${r.class ?? "IN"} ${r.type} ${dataText(r.type, r.data)}`;
};

export function canonical(buf: Buffer): Canonical {
  const p = dnsPacket.decode(buf);
  const f = p.flags ?? 0;
  const opts = (p.additionals ?? []).filter((a) => a.type === "OPT") as unknown as { udpPayloadSize: number; extendedRcode: number; ednsVersion: number; flags: number; options: unknown[] }[];
  const opt = opts[0];
  return {
    rcode: ((opt?.extendedRcode ?? 0) << 4) | (f & 0xf),
    flags: { aa: (f & 0x400) !== 0, tc: (f & 0x200) !== 0, rd: (f & 0x100) !== 0, ra: (f & 0x80) !== 0, cd: (f & 0x10) !== 0, ad: (f & 0x20) !== 0 },
    question: (p.questions ?? []).map((q) => `${q.name.toLowerCase()} ${q.type} ${q.class}`).join(","),
    answer: (p.answers ?? []).map(rr).sort(),
    authority: (p.authorities ?? []).map(rr).sort(),
    additional: (p.additionals ?? []).filter((a) => a.type !== "OPT").map(rr).sort(),
    opt: opts.length === 0 ? "none" : opts.map((o) => `payload=${o.udpPayloadSize} v=${o.ednsVersion} do=${(o.flags & 0x8000) !== 0} options=${JSON.stringify(o.options)}`).join(" + "),
  };
}

/** The fields where two replies differ, each with both values. */
export function differences(realm: Canonical, knot: Canonical): { field: string; realm: string; knot: string }[] {
  const out: { field: string; realm: string; knot: string }[] = [];
  const cmp = (field: string, a: unknown, b: unknown) => {
    const x = JSON.stringify(a);
    const y = JSON.stringify(b);
    if (x !== y) out.push({ field, realm: x, knot: y });
  };
  cmp("rcode", realm.rcode, knot.rcode);
  for (const k of ["aa", "tc", "rd", "ra", "cd", "ad"] as const) cmp(k, realm.flags[k], knot.flags[k]);
  cmp("question", realm.question, knot.question);
  const sets = (field: string, a: string[], b: string[]) => {
    if (JSON.stringify(a) === JSON.stringify(b)) return;
    const onlyA = a.filter((x) => !b.includes(x));
    const onlyB = b.filter((x) => !a.includes(x));
    out.push({ field, realm: `${a.length} records, only here: ${JSON.stringify(onlyA)}`, knot: `${b.length} records, only here: ${JSON.stringify(onlyB)}` });
  };
  sets("answer", realm.answer, knot.answer);
  sets("authority", realm.authority, knot.authority);
  sets("additional", realm.additional, knot.additional);
  cmp("opt", realm.opt, knot.opt);
  return out;
}

/** The reply re-encoded by dns-packet, which does not compress names: the size the realm's answers had before. */
export function uncompressedSize(buf: Buffer): number {
  try {
    return dnsPacket.encode(dnsPacket.decode(buf)).length;
  } catch {
    return buf.length;
  }
}
