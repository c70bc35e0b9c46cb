import { BlockList, isIPv4, isIPv6 } from "node:net";

/** True when `ip` matches one of `allow` (addresses or CIDRs, v4 or v6; `::ffff:a.b.c.d` counts as v4). */
export function ipAllowed(ip: string, allow: string[]): boolean {
  return addressList(allow)(ip);
}

/** A matcher for `allow` (addresses or CIDRs), built once: for checks on a hot path. */
export function addressList(allow: string[]): (ip: string) => boolean {
  const list = new BlockList();
  for (const a of allow) {
    const [addr, bits] = a.split("/") as [string, string | undefined];
    const family = isIPv6(addr) ? "ipv6" : "ipv4";
    if (!isIPv4(addr) && !isIPv6(addr)) continue;
    if (bits === undefined) list.addAddress(addr, family);
    else list.addSubnet(addr, Number(bits), family);
  }
  return (ip) => {
    const mapped = ip.startsWith("::ffff:") && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
    if (isIPv4(mapped)) return list.check(mapped, "ipv4");
    if (isIPv6(mapped)) return list.check(mapped, "ipv6");
    return false;
  };
}
