import * as dnsPacket from "dns-packet";

/** A small deterministic PRNG (mulberry32) so a failing fuzz run can be replayed from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function query(name: string, type: string, id = 1, edns = false): Buffer {
  return dnsPacket.encode({
    type: "query",
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: type as dnsPacket.RecordType, class: "IN" }],
    ...(edns ? { additionals: [{ type: "OPT", name: ".", udpPayloadSize: 4096 } as dnsPacket.Answer] } : {}),
  });
}

const seeds = [query("www.example.test", "A"), query("example.test", "MX", 7, true), query("big.example.test", "TXT", 9), query("x.wild.example.test", "TXT", 3, true), query("example.test", "AXFR", 4)];

/**
 * The n-th bad packet of a run: random bytes, truncated and bit-flipped real queries, self-referencing and
 * forward compression pointers, pointer chains, huge section counts, responses, odd opcodes, oversized
 * labels and EDNS records with garbage.
 */
export function badPacket(next: () => number, n: number): Buffer {
  const r = (k: number) => Math.floor(next() * k);
  const base = Buffer.from(seeds[r(seeds.length)]!);
  switch (n % 10) {
    case 0: {
      const b = Buffer.alloc(r(600));
      for (let i = 0; i < b.length; i++) b[i] = r(256);
      return b;
    }
    case 1:
      return base.subarray(0, r(base.length));
    case 2: {
      for (let k = 0, m = 1 + r(8); k < m; k++) base[r(base.length)] = r(256);
      return base;
    }
    case 3: {
      // The question name is a pointer to itself: a compression loop.
      const b = Buffer.alloc(18);
      b.writeUInt16BE(r(65536), 0);
      b.writeUInt16BE(1, 4);
      b.writeUInt16BE(0xc00c, 12);
      b.writeUInt16BE(1, 14);
      b.writeUInt16BE(1, 16);
      return b;
    }
    case 4: {
      // Huge counts in every section over a tiny body.
      for (const off of [4, 6, 8, 10]) base.writeUInt16BE(r(2) ? 0xffff : r(65536), off);
      return base;
    }
    case 5: {
      // Pointer chains bouncing between two offsets, with an answer section pointing back into them.
      const b = Buffer.alloc(40);
      b.writeUInt16BE(1, 4);
      b.writeUInt16BE(3, 6);
      b.writeUInt16BE(0xc00e, 12);
      b.writeUInt16BE(0xc00c, 14);
      for (let i = 16; i < 40; i += 2) b.writeUInt16BE(0xc000 | r(40), i);
      return b;
    }
    case 6: {
      // A response (QR set) or an unknown opcode.
      base[2] = r(2) ? base[2]! | 0x80 : (base[2]! & 0x87) | (r(16) << 3);
      return base;
    }
    case 7: {
      // Labels claiming more octets than the packet has, or a name longer than 255.
      const b = Buffer.alloc(12 + 300);
      b.writeUInt16BE(1, 4);
      let off = 12;
      while (off < b.length - 70) {
        b[off] = 63;
        off += 64;
      }
      b[off] = 255;
      return b.subarray(0, off + 1 + r(20));
    }
    case 8: {
      // EDNS with garbage: OPT twice, odd versions, options cut short.
      const opt = Buffer.from([0, 0, 41, r(256), r(256), r(256), r(256), r(256), r(256), r(256), r(256)]);
      const b = Buffer.concat([base, opt, opt.subarray(0, r(11))]);
      b.writeUInt16BE(2 + r(3), 10);
      return b;
    }
    default: {
      // A valid query for a random name and type (cache churn) or a class other than IN.
      const name = Array.from({ length: 1 + r(4) }, () => Math.floor(next() * 1e9).toString(36)).join(".") + (r(2) ? ".example.test" : "");
      const q = query(name, ["A", "AAAA", "TXT", "MX", "ANY", "UNKNOWN_99"][r(6)]!, r(65536), r(2) === 1);
      if (r(8) === 0) q.writeUInt16BE(3, q.length - 2);
      return q;
    }
  }
}
