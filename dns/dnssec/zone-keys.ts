import type { ExtraRRsets } from "../server/authority.js";
import { parentKsks, publishedKeys, signingKsks, signingZsks, type DnssecKeyInfo, type DnssecState } from "../domain/dnssec.js";
import type { DnssecKeyStore } from "./key-store.js";
import { dnskeyRdata, dsRdata, dsText, keyTag, KSK_FLAGS, ZSK_FLAGS } from "./keys.js";
import { NSEC3PARAM_RDATA } from "./nsec3.js";
import type { SigningKey } from "./rrsig.js";
import type { ZoneKeys } from "./signer.js";

/** A key's DNSKEY RDATA. */
export const dnskeyOf = (k: DnssecKeyInfo): Buffer => dnskeyRdata(k.role === "ksk" ? KSK_FLAGS : ZSK_FLAGS, k.algorithm, Buffer.from(k.publicKey, "base64"));

const generic = (b: Buffer) => `\\# ${b.length} ${b.toString("hex")}`;

/**
 * The apex RRsets a signed zone serves beside its records: DNSKEY (every key not removed), NSEC3PARAM, and
 * CDS/CDNSKEY (RFC 7344, RFC 8078) naming the KSKs the parent's DS should name (the active ones). Written as
 * RFC 3597 generic data: the zone's own records never hold these types.
 */
export function apexRecords(zone: string, s: DnssecState): ReturnType<ExtraRRsets> {
  const ttl = s.policy.dnskeyTtl;
  const parent = parentKsks(s);
  return [
    { name: zone, type: "TYPE48", ttl, data: publishedKeys(s).map((k) => generic(dnskeyOf(k))) },
    { name: zone, type: "TYPE51", ttl, data: [generic(NSEC3PARAM_RDATA)] },
    ...(parent.length
      ? [
          { name: zone, type: "TYPE59" as const, ttl, data: parent.map((k) => generic(dsRdata(zone, dnskeyOf(k)))) },
          { name: zone, type: "TYPE60" as const, ttl, data: parent.map((k) => generic(dnskeyOf(k))) },
        ]
      : []),
  ];
}

/** The keys a zone signs with now, with their private halves from the store; undefined when the zone is not signed or a key is missing. */
export function zoneKeys(zone: string, s: DnssecState | undefined, store: DnssecKeyStore | undefined): ZoneKeys | undefined {
  if (!s?.enabled || !store) return undefined;
  // Published keys are read ahead (from the bucket, when another instance made them): they sign soon.
  for (const k of publishedKeys(s)) store.get(zone, k.id);
  const load = (ks: DnssecKeyInfo[]): SigningKey[] | undefined => {
    const out: SigningKey[] = [];
    for (const k of ks) {
      const key = store.get(zone, k.id);
      if (!key) return undefined;
      out.push({ tag: keyTag(dnskeyOf(k)), algorithm: k.algorithm, key });
    }
    return out;
  };
  const zsks = load(signingZsks(s));
  const ksks = load(signingKsks(s));
  if (!zsks?.length || !ksks?.length) return undefined;
  return { zsks, ksks, version: s.keys.map((k) => `${k.id}:${k.state}`).join(",") };
}

/** The DS records of the KSKs the parent should have, as `dnssec-dsfromkey -2` prints them. */
export const dsLines = (zone: string, s: DnssecState): string[] => parentKsks(s).map((k) => dsText(zone, dnskeyOf(k)));

/** A key's DNSKEY in presentation form (`zone. 3600 IN DNSKEY 257 3 13 <base64>`). */
export const dnskeyLine = (zone: string, ttl: number, k: DnssecKeyInfo): string => `${zone} ${ttl} IN DNSKEY ${k.role === "ksk" ? KSK_FLAGS : ZSK_FLAGS} 3 ${k.algorithm} ${k.publicKey}`;
