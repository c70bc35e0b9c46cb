import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { Command, Option } from "commander";
import { callContext, withConnectionOptions, type ConnectionFlags } from "../services/cli/call.js";
import { nonNegativeInt, printResult as print } from "../services/cli/output.js";
import { RealmError } from "../services/kernel/errors.js";

/** Files up to this size go inline (`text`, well within a NATS message); bigger ones through the uploads bucket. */
const INLINE_IMPORT_BYTES = 256 * 1024;
/** How long `realm zone import` waits for the realm to check and import a big file (its reply may take 15 minutes). */
const IMPORT_TIMEOUT_MS = 15 * 60_000;

type Conn = ConnectionFlags;
const connOptions = withConnectionOptions;
const call = (o: Conn, kind: "commands" | "queries", name: string, input: object) => callContext(o, "dns", kind, name, input);

const list = (v: string, prev: string[] = []) => [...prev, v];

/** An SSH host key's .pub file and where its certificate goes (`ssh_host_ed25519_key.pub` → `ssh_host_ed25519_key-cert.pub`). */
function readHostKey(file: string): { text: string; certFile: string } {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    throw new RealmError("VALIDATION", `cannot read SSH host key ${file}`);
  }
  return { text, certFile: file.endsWith(".pub") ? `${file.slice(0, -4)}-cert.pub` : `${file}-cert.pub` };
}

/** `$INCLUDE`s of a master file on disk are read relative to the directory of the file that names them (RFC 1035 5.1, as BIND and knot do). */
function includeReader(top: string) {
  return (path: string, from: string | undefined) => {
    const full = isAbsolute(path) ? path : resolve(dirname(from ?? top), path);
    return { text: readFileSync(full).toString("latin1"), path: full };
  };
}

/**
 * Reads and checks a master file the way `zone.import` does (domain/import.ts checkImport, after the
 * parser's line-by-line checks), with its `$INCLUDE`s read next to it. The file is read as octets
 * (latin1), so TXT data is kept exactly whatever its encoding.
 */
async function checkFile(zoneArg: string, file: string) {
  const { parseZoneFile } = await import("./domain/zonefile.js");
  const { checkImport } = await import("./domain/import.js");
  const zone = zoneArg.endsWith(".") ? zoneArg : `${zoneArg}.`;
  const parsed = parseZoneFile(readFileSync(file).toString("latin1"), zone, { binary: true, readInclude: includeReader(file) });
  checkImport(parsed.origin, parsed.records);
  return parsed;
}

/** True when the octets are well-formed UTF-8. */
function isUtf8(bytes: Buffer): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

const hasInclude = (bytes: Buffer) => /^\$INCLUDE[ \t]/im.test(bytes.toString("latin1"));

/**
 * `realm zone ...`, `realm record ...`, `realm host ...`, `realm subject ...`, `realm cid ...`: the name
 * domain over NATS. `realm zone check <file>` and `realm cid of <file>` work offline.
 */
export function registerDnsCommands(program: Command): void {
  const verb = (parent: Command, name: string, description: string) => connOptions(parent.command(name).description(description));

  const zone = program.command("zone").description("DNS zones: create, import/export RFC 1035 master files, Cloudflare mirror");
  verb(zone, "create <zone>", "create a zone with its SOA and NS records")
    .requiredOption("--ns <name>", "a name server (repeat)", list, [])
    .option("--rname <mailbox>", "SOA mailbox as a name (hostmaster.<zone>)")
    .option("--ttl <seconds>", "default TTL", nonNegativeInt)
    .option("--minimum <seconds>", "negative-answer TTL", nonNegativeInt)
    .action(async (z: string, o: Conn & { ns: string[]; rname?: string; ttl?: number; minimum?: number }) =>
      print(await call(o, "commands", "zone.create", { zone: z, ns: o.ns, ...(o.rname ? { rname: o.rname } : {}), ...(o.ttl !== undefined ? { ttl: o.ttl } : {}), ...(o.minimum !== undefined ? { minimum: o.minimum } : {}) }), "zone"),
    );
  verb(zone, "list", "list zones").action(async (o: Conn) => print(await call(o, "queries", "zones", {}), "zone"));
  verb(zone, "secondaries <zone> [address...]", "set the zone's secondaries (IP[:port], [v6]:port), told by NOTIFY on every change; --none removes them")
    .option("--none", "remove every secondary of the zone")
    .action(async (z: string, addrs: string[], o: Conn & { none?: boolean }, cmd: Command) => {
      // Usage errors (exit 2): nothing is sent.
      if (addrs.length === 0 && !o.none) cmd.error("error: give the secondaries' addresses, or --none to remove them", { exitCode: 2 });
      if (addrs.length > 0 && o.none) cmd.error("error: --none takes no addresses", { exitCode: 2 });
      print(await call(o, "commands", "zone.secondaries", { zone: z, secondaries: addrs }), "zone");
    });
  verb(zone, "delete <zone>", "delete a zone").action(async (z: string, o: Conn) => print(await call(o, "commands", "zone.delete", { zone: z }), "zone"));
  verb(zone, "import <zone> <file>", "replace a zone's records with a master file (validated whole first; an error names its line; $INCLUDEs are read next to the file)").action(async (z: string, fileArg: string, o: Conn) => {
    let file = fileArg;
    let tmp: string | undefined;
    try {
      if (hasInclude(readFileSync(file))) {
        // The realm has no directory to read includes from: read and check them here, send the zone as one file.
        const { writeParsedZone } = await import("./domain/zonefile.js");
        const parsed = await checkFile(z, file);
        tmp = mkdtempSync(join(tmpdir(), "realm-zone-"));
        file = join(tmp, "zone");
        writeFileSync(file, writeParsedZone(parsed));
        process.stderr.write(`${fileArg}: includes expanded\n`);
      }
      const size = statSync(file).size;
      const text = readFileSync(file);
      // Inline text travels as JSON (Unicode): a file that is not UTF-8 goes as octets through the uploads bucket.
      if (size <= INLINE_IMPORT_BYTES && isUtf8(text)) {
        process.stderr.write(`importing ${fileArg} (${size} bytes) ...\n`);
        return print(await call(o, "commands", "zone.import", { zone: z, text: text.toString("utf8") }), "zone");
      }
      // Too big for one NATS message: through the realm's uploads bucket; the realm checks and imports it.
      process.stderr.write(`uploading ${fileArg} (${size} bytes) ...\n`);
      const { uploadZoneFile } = await import("./upload-client.js");
      const up = await uploadZoneFile(o, z, file);
      process.stderr.write(`checking and importing ...\n`);
      print(await callContext(o, "dns", "commands", "zone.import", { zone: z, upload: up.name, sha256: up.sha256 }, IMPORT_TIMEOUT_MS), "zone");
    } finally {
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    }
  });
  verb(zone, "export <zone>", "print a zone as a master file")
    .option("-o, --output <file>", "write to a file")
    .action(async (z: string, o: Conn & { output?: string }) => {
      const r = (await call(o, "queries", "zonefile", { zone: z })) as { text: string };
      if (o.output) writeFileSync(o.output, r.text);
      else process.stdout.write(r.text);
    });
  zone
    .command("check <zone> <file>")
    .description("parse and validate a master file offline (no realm needed): the same checks `zone import` makes")
    .action(async (z: string, file: string) => {
      const parsed = await checkFile(z, file);
      print({ zone: parsed.origin, records: parsed.records.length, serial: parsed.serial, soa: parsed.soa, ...(parsed.soa ? {} : { note: "no SOA record: the file can only be imported into a zone that exists" }) }, "zone");
    });
  const sec = zone.command("dnssec").description("DNSSEC online signing: KSK/ZSK (ECDSA P-256 or Ed25519), NSEC3, rollovers, the DS for the parent");
  const timing = (c: Command) =>
    c
      .option("--dnskey-ttl <seconds>", "TTL of DNSKEY, CDS, CDNSKEY (default 3600)", nonNegativeInt)
      .option("--zsk-lifetime <seconds>", "roll the ZSK by itself after it signed this long (0 = only on `rollover`)", nonNegativeInt)
      .option("--propagation-delay <seconds>", "added to every wait of a rollover (default 60)", nonNegativeInt)
      .option("--ds-ttl <seconds>", "the parent's DS TTL: how long a retired KSK stays (default 86400)", nonNegativeInt);
  type Timing = { dnskeyTtl?: number; zskLifetime?: number; propagationDelay?: number; dsTtl?: number };
  const timingInput = (o: Timing) => Object.fromEntries(Object.entries({ dnskeyTtl: o.dnskeyTtl, zskLifetime: o.zskLifetime, propagationDelay: o.propagationDelay, dsTtl: o.dsTtl }).filter(([, v]) => v !== undefined));
  timing(verb(sec, "enable <zone>", "sign a zone: make its KSK and ZSK (private halves sealed in the realm, never in an event) and print the DS for the parent"))
    .addOption(new Option("--algorithm <alg>", "13 = ECDSA P-256/SHA-256, 15 = Ed25519").choices(["13", "15"]).default("13"))
    .action(async (z: string, o: Conn & Timing & { algorithm: string }) => print(await call(o, "commands", "dnssec.enable", { zone: z, algorithm: Number(o.algorithm), ...timingInput(o) }), "dnssec"));
  verb(sec, "status <zone>", "keys (tags, roles, states, times), policy, the DS, the next key change due").action(async (z: string, o: Conn) => print(await call(o, "queries", "dnssec", { zone: z }), "dnssec"));
  verb(sec, "ds <zone>", "the DS records (SHA-256) for the parent, one a line as dnssec-dsfromkey prints them")
    .option("--dnskey", "print the KSKs' DNSKEY records instead (a trust anchor)")
    .action(async (z: string, o: Conn & { dnskey?: boolean }) => {
      const r = (await call(o, "queries", "dnssec-ds", { zone: z })) as { ds: string[]; dnskey: string[] };
      process.stdout.write(`${(o.dnskey ? r.dnskey : r.ds).join("\n")}\n`);
    });
  verb(sec, "rollover <zone>", "start a rollover: --zsk by pre-publication, --ksk with CDS/CDNSKEY for the parent")
    .option("--zsk", "roll the zone-signing key")
    .option("--ksk", "roll the key-signing key (then `ds-submitted` once the parent has the new DS)")
    .action(async (z: string, o: Conn & { zsk?: boolean; ksk?: boolean }) => {
      if (!o.zsk === !o.ksk) throw new Error("give --zsk or --ksk");
      print(await call(o, "commands", "dnssec.rollover", { zone: z, role: o.zsk ? "zsk" : "ksk" }), "dnssec");
    });
  verb(sec, "ds-submitted <zone>", "the parent has the new KSK's DS: retire the old KSK").action(async (z: string, o: Conn) => print(await call(o, "commands", "dnssec.ds-submitted", { zone: z }), "dnssec"));
  timing(verb(sec, "policy <zone>", "change a signed zone's timings")).action(async (z: string, o: Conn & Timing) => print(await call(o, "commands", "dnssec.policy", { zone: z, ...timingInput(o) }), "dnssec"));
  const cf = zone.command("cloudflare").description("mirror a public zone to Cloudflare (API token from CLOUDFLARE_API_TOKEN in the realm's environment)");
  verb(cf, "plan <zone>", "show the creates/updates/deletes an apply would make")
    .option("--cloudflare-zone <name>", "Cloudflare zone name (default: the same)")
    .action(async (z: string, o: Conn & { cloudflareZone?: string }) => print(await call(o, "queries", "cloudflare-plan", { zone: z, ...(o.cloudflareZone ? { cloudflareZone: o.cloudflareZone } : {}) })));
  verb(cf, "apply <zone>", "apply the plan (only records the realm owns are touched)")
    .option("--cloudflare-zone <name>", "Cloudflare zone name (default: the same)")
    .action(async (z: string, o: Conn & { cloudflareZone?: string }) => print(await call(o, "commands", "cloudflare.apply", { zone: z, ...(o.cloudflareZone ? { cloudflareZone: o.cloudflareZone } : {}) })));

  const record = program.command("record").description("DNS records (A, AAAA, CNAME, MX, TXT, SRV, CAA, NS, PTR, HTTPS, SVCB, TLSA, DS, DNAME, NAPTR, SSHFP, HINFO, TYPEnnn)");
  verb(record, "add <name> <type> <data...>", "add a record; the zone is found from the name")
    .option("--zone <zone>", "zone: a name (and a name in the data) is then relative to it unless it ends in the zone or in a dot; another name with a dot is refused as ambiguous")
    .option("--ttl <seconds>", "TTL", nonNegativeInt)
    .action(async (name: string, type: string, data: string[], o: Conn & { zone?: string; ttl?: number }) =>
      print(await call(o, "commands", "record.add", { name, type, data: data.join(" "), ...(o.zone ? { zone: o.zone } : {}), ...(o.ttl !== undefined ? { ttl: o.ttl } : {}) }), "record"),
    );
  verb(record, "remove <name> <type> [data...]", "remove a record, or the whole RRset without data")
    .option("--zone <zone>", "zone")
    .action(async (name: string, type: string, data: string[], o: Conn & { zone?: string }) =>
      print(await call(o, "commands", "record.remove", { name, type, ...(data.length ? { data: data.join(" ") } : {}), ...(o.zone ? { zone: o.zone } : {}) }), "record"),
    );
  verb(record, "set <name> <type>", "replace an RRset")
    .option("--zone <zone>", "zone")
    .option("--ttl <seconds>", "TTL", nonNegativeInt)
    .option("--data <rdata>", "a record's data (repeat; none = delete the RRset)", list, [])
    .action(async (name: string, type: string, o: Conn & { zone?: string; ttl?: number; data: string[] }) =>
      print(await call(o, "commands", "record.set", { name, type, data: o.data, ...(o.zone ? { zone: o.zone } : {}), ...(o.ttl !== undefined ? { ttl: o.ttl } : {}) }), "record"),
    );
  verb(record, "list <zone>", "list a zone's records")
    .option("--name <name>", "only this name")
    .option("--type <type>", "only this type")
    .action(async (z: string, o: Conn & { name?: string; type?: string }) => print(await call(o, "queries", "records", { zone: z, ...(o.name ? { name: o.name } : {}), ...(o.type ? { type: o.type } : {}) }), "record"));

  const host = program.command("host").description("hosts: address records plus PTR records in the realm's reverse zones");
  verb(host, "add <name>", "register a host (web1 = web1.<zone> with --zone, or a full name)")
    .requiredOption("--ip <address>", "an IPv4 or IPv6 address (repeat)", list, [])
    .option("--zone <zone>", "zone of a short name")
    .option("--ttl <seconds>", "TTL", nonNegativeInt)
    .option("--ssh-host-key <file>", "also sign an SSH host certificate for this host key (.pub) from the realm's SSH CA; writes <key>-cert.pub")
    .option("--ssh-issuer <id>", "the issuer whose SSH CA signs it (needed when the realm has several)")
    .action(async (name: string, o: Conn & { ip: string[]; zone?: string; ttl?: number; sshHostKey?: string; sshIssuer?: string }) => {
      // Read the host key first: an unreadable file stops the verb before the host is registered.
      const hostKey = o.sshHostKey !== undefined ? readHostKey(o.sshHostKey) : undefined;
      const added = (await call(o, "commands", "host.add", { name, ips: o.ip, ...(o.zone ? { zone: o.zone } : {}), ...(o.ttl !== undefined ? { ttl: o.ttl } : {}) })) as { name: string };
      if (!hostKey) return print(added, "host");
      const names = [added.name.replace(/\.$/, "")];
      const signed = (await callContext(o, "pki", "commands", "ssh.sign-host", { publicKey: hostKey.text, names, ...(o.sshIssuer ? { issuer: o.sshIssuer } : {}) }).catch((err: unknown) => {
        const e = err instanceof RealmError ? err : new RealmError("INTERNAL", String(err));
        throw new RealmError(e.code, `host ${added.name} is registered, but its SSH host certificate was not signed: ${e.message} (realm ssh sign-host ${o.sshHostKey} --name ${names[0]})`);
      })) as { serial: string; certificate: string };
      writeFileSync(hostKey.certFile, signed.certificate);
      process.stderr.write(`wrote ${hostKey.certFile} (SSH host certificate, serial ${signed.serial}; sshd_config: HostCertificate ${hostKey.certFile})\n`);
      print({ ...added, sshCertificate: { serial: signed.serial, file: hostKey.certFile, principals: names } }, "host");
    });

  const tsig = program.command("tsig").description("TSIG keys (RFC 8945) for RFC 2136 dynamic updates (nsupdate, external-dns, certbot) and signed zone transfers");
  verb(tsig, "create <name>", "create a key bound to zones (and name patterns); its secret is printed this once, or escrowed")
    .requiredOption("--zone <zone>", "a zone the key may update and transfer (repeat)", list, [])
    .option("--names <pattern...>", "names it may change (www.example.com, *.k8s.example.com); default: any name in its zones")
    .option("--principal <id>", "the principal its changes are made as (default: you)")
    .addOption(new Option("--algorithm <alg>", "HMAC algorithm").choices(["hmac-sha256", "hmac-sha512"]).default("hmac-sha256"))
    .action(async (name: string, o: Conn & { zone: string[]; names?: string[]; principal?: string; algorithm: string }) =>
      print(await call(o, "commands", "tsig.create", { name, zones: o.zone, algorithm: o.algorithm, ...(o.names?.length ? { names: o.names } : {}), ...(o.principal ? { principal: o.principal } : {}) }), "tsig"),
    );
  verb(tsig, "list", "list keys with their bindings and fingerprints (never secrets)").action(async (o: Conn) => print(await call(o, "queries", "tsig-keys", {}), "tsig"));
  verb(tsig, "revoke <name>", "revoke a key: updates and transfers signed with it are refused").action(async (name: string, o: Conn) => print(await call(o, "commands", "tsig.revoke", { name }), "tsig"));

  const subject = program.command("subject").description("NATS subject namespaces and their owners");
  verb(subject, "register <pattern>", "register a namespace (a.b.>, a.*.c, a.b) to an owner")
    .requiredOption("--owner <owner>", "account or principal")
    .option("--description <text>", "what it is for")
    .action(async (pattern: string, o: Conn & { owner: string; description?: string }) => print(await call(o, "commands", "subject.register", { pattern, owner: o.owner, ...(o.description ? { description: o.description } : {}) }), "namespace"));
  verb(subject, "release <pattern>", "release a namespace").action(async (pattern: string, o: Conn) => print(await call(o, "commands", "subject.release", { pattern }), "namespace"));
  verb(subject, "owner <subject>", "who owns a subject").action(async (s: string, o: Conn) => print(await call(o, "queries", "subject-owner", { subject: s }), "namespace"));
  verb(subject, "list", "list namespaces").action(async (o: Conn) => print(await call(o, "queries", "subjects", {}), "namespace"));

  const cid = program.command("cid").description("named objects and their CIDs (CIDv1), DNSLink");
  verb(cid, "register <name> <cid>", "point a name at a CIDv1")
    .option("--dnslink <domain>", "also publish _dnslink.<domain> TXT dnslink=/ipfs/<cid>")
    .option("--size <bytes>", "object size", nonNegativeInt)
    .option("--media-type <type>", "media type")
    .action(async (name: string, c: string, o: Conn & { dnslink?: string; size?: number; mediaType?: string }) =>
      print(await call(o, "commands", "cid.register", { name, cid: c, ...(o.dnslink ? { dnslink: o.dnslink } : {}), ...(o.size !== undefined ? { size: o.size } : {}), ...(o.mediaType ? { mediaType: o.mediaType } : {}) }), "cid"),
    );
  verb(cid, "show <name>", "the CID of a name").action(async (name: string, o: Conn) => print(await call(o, "queries", "cid", { name }), "cid"));
  verb(cid, "verify <file>", "check a file against a CID or a registered name")
    .option("--cid <cid>", "CID to check against")
    .option("--name <name>", "registered name to check against")
    .action(async (file: string, o: Conn & { cid?: string; name?: string }) => {
      const r = (await call(o, "queries", "cid-verify", { content: readFileSync(file).toString("base64"), ...(o.cid ? { cid: o.cid } : {}), ...(o.name ? { name: o.name } : {}) })) as { valid: boolean };
      print(r);
      if (!r.valid) process.exitCode = 1;
    });
  cid
    .command("of <file>")
    .description("compute a file's CIDv1 (raw, sha2-256) offline")
    .action(async (file: string) => {
      const { cidOfBytes } = await import("./cid.js");
      print({ cid: cidOfBytes(readFileSync(file)) }, "cid");
    });
}
