import type { Command } from "commander";
import { callContext, withConnectionOptions, type ConnectionFlags } from "../../services/cli/call.js";
import { printResult } from "../../services/cli/output.js";
import { RealmError } from "../../services/kernel/errors.js";

type Conn = ConnectionFlags;
const list = (v: string, prev: string[] = []) => [...prev, v];

async function call(o: Conn, kind: "commands" | "queries", name: string, input: object): Promise<void> {
  printResult(await callContext(o, "identity", kind, name, input, 10_000));
}

/** `staff=42` -> { group: staff, value: 42 }. */
function pairs(flag: string, items: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const it of items) {
    const i = it.indexOf("=");
    if (i <= 0 || i === it.length - 1) throw new RealmError("VALIDATION", `${flag} must be <group>=<value>, not ${JSON.stringify(it)}`);
    out.set(it.slice(0, i), it.slice(i + 1));
  }
  return out;
}

/** `realm radius client add|list|remove`: the NAS (switches, Wi-Fi controllers, VPNs) that may ask the realm's RADIUS server. */
export function registerRadiusCommands(program: Command): void {
  const radius = program.command("radius").description("the realm's RADIUS server (RFC 2865/2866): NAS clients");
  const client = radius.command("client").description("RADIUS clients (NAS): address, shared secret, allowed groups, reply attributes");
  const verb = (name: string, description: string) => withConnectionOptions(client.command(name).description(description));
  verb("add <name>", "add a NAS; prints its shared secret once (kept sealed by the realm, never in an event)")
    .requiredOption("--address <ip|cidr>", "where its packets come from: an address or CIDR (10.0.0.0/24)")
    .requiredOption("--group <group>", "a group whose members may sign in through it (repeatable)", list)
    .option("--vlan <group=vlan>", "VLAN for members of that group: Tunnel-Type VLAN, Tunnel-Medium-Type 802, Tunnel-Private-Group-ID (repeatable)", list)
    .option("--filter-id <group=filter>", "Filter-Id for members of that group (repeatable)", list)
    .action((name: string, o: Conn & { address: string; group: string[]; vlan?: string[]; filterId?: string[] }) => {
      const vlans = pairs("--vlan", o.vlan ?? []);
      const filters = pairs("--filter-id", o.filterId ?? []);
      const groups = [...new Set([...vlans.keys(), ...filters.keys()])];
      const replies = groups.map((group) => ({ group, ...(vlans.has(group) ? { vlan: vlans.get(group)! } : {}), ...(filters.has(group) ? { filterId: filters.get(group)! } : {}) }));
      return call(o, "commands", "radiusClient.add", { id: name, address: o.address, allowedGroups: o.group, replies });
    });
  verb("list", "list the NAS clients (never their secrets)").action((o: Conn) => call(o, "queries", "radiusClients", {}));
  verb("remove <name>", "remove a NAS: its packets are dropped from then on, its secret purged").action((name: string, o: Conn) => call(o, "commands", "radiusClient.remove", { id: name }));
}
