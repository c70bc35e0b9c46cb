import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { InvalidArgumentError, Option, type Command } from "commander";
import { withConnectionOptions } from "../services/cli/call.js";
import { commaList as list, outFile, outputOption, positiveInt as int, note as say, printResult, quietOption } from "../services/cli/output.js";
import { invalid } from "../services/kernel/errors.js";
import { PROFILE_NAMES } from "./domain/profiles.js";
import { REVOCATION_REASON_NAMES } from "./x509/reasons.js";
import { registerSshCommands } from "./ssh/cli.js";
import { registerAcmeCommands } from "./acme/cli.js";
import { call, readText, type Flags } from "./cli-common.js";

/**
 * `realm cert ...` and `realm pki issuer ...`: the online PKI over NATS (`realm.pki.commands.*`).
 * The offline half is `realm ceremony ...` (pki/ceremony/cli.ts).
 */
/** `--expiring`: days, or a duration with a unit (`12h`, `30d`, `2w`), as days (a usage error otherwise). */
const expiryDays = (v: string): number => {
  const m = /^(\d{1,6})([hdw]?)$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError("Expected a duration: N days, or N with h, d or w (12h, 30d, 2w).");
  const n = Number(m[1]);
  return m[2] === "h" ? n / 24 : m[2] === "w" ? n * 7 : n;
};
/** A file name from a common name: `*.example.test` → `_wildcard.example.test`. */
const fileStem = (cn: string) => cn.replace(/^\*\./, "_wildcard.").replace(/[^A-Za-z0-9._-]/g, "_");

interface IssueReply {
  serial: string;
  commonName: string;
  certPem: string;
  chainPem: string;
  privateKeyPem?: string;
  [k: string]: unknown;
}

export function registerPkiCommands(program: Command): void {
  registerSshCommands(program);
  registerAcmeCommands(program, call);
  const verb = (parent: Command, name: string, description: string) => withConnectionOptions(parent.command(name).description(description));

  const cert = program.command("cert").description("certificates from the realm's online issuers: issue, list, show, revoke, CRL");
  verb(cert, "issue", "issue a certificate by profile, from a CSR or with a key made for you (written to <out>.key, mode 0600)")
    .addOption(new Option("--profile <profile>", "certificate profile").choices(PROFILE_NAMES).default("server"))
    .option("--csr <file>", "PEM certificate request (its key never leaves you)")
    .option("--cn <name>", "common name (default: the CSR's, or the first DNS name)")
    .option("--dns <names>", "DNS names (comma separated or repeated)", list, [])
    .option("--ip <addresses>", "IP addresses", list, [])
    .option("--email <addresses>", "email addresses", list, [])
    .option("--uri <uris>", "URIs (e.g. spiffe://...)", list, [])
    .option("--key-spec <spec>", "key to generate when no CSR: ecdsa-p256 (default), ecdsa-p384, rsa-2048, rsa-3072, rsa-4096")
    .option("--days <n>", "lifetime in days (default 90)", int)
    .option("--issuer <id>", "issuer (needed when the realm has several)")
    .option("--principal <id>", "principal the certificate is for (escrow collection)")
    .option("--out <prefix>", "write <prefix>.crt (with chain) and <prefix>.key; default: the common name")
    .action(async (o: Flags & { profile: string; csr?: string; cn?: string; dns: string[]; ip: string[]; email: string[]; uri: string[]; keySpec?: string; days?: number; issuer?: string; principal?: string; out?: string }) => {
      const input = {
        profile: o.profile,
        ...(o.csr ? { csr: readText(o.csr, "CSR") } : {}),
        ...(o.cn ? { commonName: o.cn } : {}),
        ...(o.dns.length ? { dns: o.dns } : {}),
        ...(o.ip.length ? { ip: o.ip } : {}),
        ...(o.email.length ? { email: o.email } : {}),
        ...(o.uri.length ? { uri: o.uri } : {}),
        ...(o.keySpec ? { keySpec: o.keySpec } : {}),
        ...(o.days ? { days: o.days } : {}),
        ...(o.issuer ? { issuer: o.issuer } : {}),
        ...(o.principal ? { principal: o.principal } : {}),
      };
      const r = (await call(o, "commands", "certificate.issue", input)) as IssueReply;
      const stem = o.out ?? fileStem(r.commonName);
      writeFileSync(`${stem}.crt`, r.certPem + r.chainPem);
      say(`wrote ${stem}.crt (certificate, intermediate, root)`);
      if (r.privateKeyPem) {
        writeFileSync(`${stem}.key`, r.privateKeyPem, { mode: 0o600 });
        chmodSync(`${stem}.key`, 0o600);
        say(`wrote ${stem}.key (private key, shown this once; the realm keeps no copy)`);
      }
      const { certPem: _c, chainPem: _ch, privateKeyPem: _k, ...summary } = r;
      printResult(summary, "certificate");
    });
  verb(cert, "list", "list certificates; with --expiring also the intermediates and SSH certificates that expire within that time")
    .option("--issuer <id>")
    .option("--name <name>", "a common name or SAN")
    .addOption(new Option("--status <status>").choices(["valid", "revoked", "expired"]))
    .option("--expiring <duration>", "what expires within N days (30, 30d, 12h, 2w): leaves, intermediates, SSH certificates", expiryDays)
    .option("--limit <n>", "at most N", int)
    .action(async (o: Flags & { issuer?: string; name?: string; status?: string; expiring?: number; limit?: number }) => {
      if (o.expiring !== undefined) {
        const r = (await call(o, "queries", "expiring", { withinHours: Math.round(o.expiring * 24), ...(o.limit ? { limit: o.limit } : {}) })) as { expiring: { issuer: string }[] };
        return printResult(o.issuer ? { expiring: r.expiring.filter((e) => e.issuer === o.issuer) } : r, "expiring");
      }
      printResult(
        await call(o, "queries", "certificates", {
          ...(o.issuer ? { issuer: o.issuer } : {}),
          ...(o.name ? { name: o.name } : {}),
          ...(o.status ? { status: o.status } : {}),
          ...(o.limit ? { limit: o.limit } : {}),
        }),
        "certificate",
      );
    });
  verb(cert, "renew <cert> <key>", "renew a certificate file with its key (same profile, names, issuer, lifetime); --daemon renews at 2/3 of each lifetime, with jitter")
    .option("--daemon", "keep running: renew at two thirds of the lifetime (+-5% jitter), again and again")
    .option("--exec <command>", "run this shell command after each renewal (env REALM_CERT_FILE, REALM_KEY_FILE, REALM_CERT_SERIAL)")
    .option("--signal-pid <pid>", "signal this process after each renewal", int)
    .addOption(new Option("--signal <name>", "the signal for --signal-pid").default("SIGHUP"))
    .action(async (certFile: string, keyFile: string, o: Flags & { daemon?: boolean; exec?: string; signalPid?: number; signal: string }) => {
      const { renewOnce, renewDaemon, afterRenewal } = await import("./renew.js");
      const signalName = (o.signal.startsWith("SIG") ? o.signal : `SIG${o.signal}`).toUpperCase() as NodeJS.Signals;
      const { constants } = await import("node:os");
      if (!(signalName in constants.signals)) throw invalid(`${o.signal} is not a signal name (HUP, USR1, TERM, ...)`);
      const hooks = { exec: o.exec, signalPid: o.signalPid, signal: signalName };
      const pki = (kind: "commands" | "queries", name: string, input: object) => call(o, kind, name, input);
      if (!o.daemon) {
        const r = await renewOnce(certFile, keyFile, pki);
        say(`renewed ${certFile}: serial ${r.previous} -> ${r.serial}, valid until ${r.notAfter.toISOString()}`);
        await afterRenewal(hooks, { REALM_CERT_FILE: certFile, REALM_KEY_FILE: keyFile, REALM_CERT_SERIAL: r.serial }, say);
        return printResult({ serial: r.serial, previous: r.previous, notBefore: r.notBefore.toISOString(), notAfter: r.notAfter.toISOString(), file: certFile }, "certificate");
      }
      const stop = new AbortController();
      const quit = () => stop.abort();
      process.once("SIGTERM", quit);
      process.once("SIGINT", quit);
      await renewDaemon(certFile, keyFile, pki, hooks, (line) => say(`realm cert renew: ${line}`), stop.signal);
    });
  verb(cert, "show <serial>", "one certificate by serial (hex); --pem prints the certificate and chain")
    .option("--pem", "print PEM instead of JSON")
    .action(async (serial: string, o: Flags & { pem?: boolean }) => {
      const r = (await call(o, "queries", "certificate", { serial })) as { certPem: string; chainPem: string };
      if (o.pem) process.stdout.write(r.certPem + r.chainPem);
      else printResult(r, "certificate");
    });
  verb(cert, "revoke <serial>", "revoke a certificate (RFC 5280 reason); the CRL and OCSP answer revoked at once")
    .addOption(new Option("--reason <reason>").choices(REVOCATION_REASON_NAMES.filter((r) => r !== "removeFromCRL")).default("unspecified"))
    .action(async (serial: string, o: Flags & { reason: string }) => printResult(await call(o, "commands", "certificate.revoke", { serial, reason: o.reason }), "certificate"));
  verb(cert, "crl", "an issuer's current CRL as PEM")
    .option("--issuer <id>")
    .option("--out <file>", "write the PEM to a file")
    .addOption(outputOption(true))
    .addOption(quietOption())
    .action(async (o: Flags & { issuer?: string; out?: string; output?: string }) => {
      const r = (await call(o, "queries", "crl", o.issuer ? { issuer: o.issuer } : {})) as { crlPem: string; crlNumber: number; nextUpdate: string; revoked: string[] };
      const file = outFile(o);
      if (file) {
        writeFileSync(file, r.crlPem);
        say(`wrote ${file}: CRL ${r.crlNumber}, ${r.revoked.length} revoked, next update ${r.nextUpdate}`);
      } else printResult(r, "crl", { table: (x: { crlPem: string }) => x.crlPem, textByDefault: true });
    });

  const pki = program.command("pki").description("the realm's online issuers (intermediates signed by the offline ceremony)");
  const issuer = pki.command("issuer").description("prepare, import, policy, list, root CRL");
  verb(issuer, "prepare <issuer>", "make the issuer's intermediate key online and write its CSR for the ceremony")
    .requiredOption("--cn <name>", "intermediate common name, e.g. 'Example Ops CA'")
    .option("--org <name>", "organization")
    .addOption(new Option("--key-spec <spec>").choices(["ecdsa-p256", "ecdsa-p384"]).default("ecdsa-p256"))
    .option("--out <file>", "CSR file (default <issuer>.csr)")
    .addOption(outputOption(true))
    .addOption(quietOption())
    .action(async (id: string, o: Flags & { cn: string; org?: string; keySpec: string; out?: string; output?: string }) => {
      const r = (await call(o, "commands", "issuer.prepare", { issuer: id, commonName: o.cn, keySpec: o.keySpec, ...(o.org ? { organization: o.org } : {}) })) as { csrPem: string; publicKeySha256: string };
      const file = outFile(o) ?? `${id}.csr`;
      writeFileSync(file, r.csrPem);
      say(`wrote ${file}: take it to the ceremony (realm ceremony sign-intermediate <dir> ${file} --permit <domain>)`);
      printResult({ issuer: id, csr: file, publicKeySha256: r.publicKeySha256 }, "issuer");
    });
  verb(issuer, "import <issuer>", "import the intermediate certificate the ceremony signed, with the root")
    .requiredOption("--cert <file>", "intermediate certificate (PEM)")
    .requiredOption("--root <file>", "root certificate (PEM)")
    .action(async (id: string, o: Flags & { cert: string; root: string }) => printResult(await call(o, "commands", "issuer.import", { issuer: id, certificate: readText(o.cert, "certificate"), root: readText(o.root, "root certificate") }), "issuer"));
  verb(issuer, "policy <issuer>", "set the allow-list: domains besides the realm's zones, IP ranges")
    .option("--allow-domain <domains>", "domain (repeat or comma separate)", list, [])
    .option("--allow-ip <cidrs>", "IP range in CIDR form", list, [])
    .action(async (id: string, o: Flags & { allowDomain: string[]; allowIp: string[] }) => printResult(await call(o, "commands", "issuer.policy", { issuer: id, allowDomains: o.allowDomain, allowIps: o.allowIp }), "issuer"));
  verb(issuer, "list", "issuers, their intermediates, pending CSRs and policy").action(async (o: Flags) => printResult(await call(o, "queries", "issuers", {}), "issuer"));
  verb(issuer, "root-crl <issuer> <file>", "publish a root CRL the ceremony issued (DER or PEM)").action(async (id: string, file: string, o: Flags) => {
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch {
      throw invalid(`cannot read CRL ${file}`);
    }
    const text = bytes.toString("latin1");
    printResult(await call(o, "commands", "issuer.root-crl", { issuer: id, crl: text.includes("-----BEGIN") ? text : bytes.toString("base64") }), "issuer");
  });
}
