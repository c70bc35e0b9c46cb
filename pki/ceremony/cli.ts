import { readFileSync, writeFileSync } from "node:fs";
import { Option, type Command } from "commander";
import { invalid } from "../../services/kernel/errors.js";
import { commaList as list, outFile, outputOption, positiveInt as int, note as say, printResult, quietOption } from "../../services/cli/output.js";

const print = (r: unknown) => printResult(r, "ceremony");
import { REVOCATION_REASON_NAMES, type RevocationReason } from "../x509/reasons.js";
import type { RootAlgorithm } from "./ceremony.js";
import { checkNewPassphrase } from "./bundle.js";

/** The ceremony's file names and its crypto load only when a ceremony verb runs (`realm --help` stays fast). */
const ceremonyModule = () => import("./ceremony.js");

/**
 * `realm ceremony ...`: the offline root. Runs on the ceremony machine with no network and no NATS; reads
 * the passphrase from --passphrase-file or $REALM_CEREMONY_PASSPHRASE, never from the command line.
 */

interface PassFlags {
  passphraseFile?: string;
}

function passphraseOf(o: PassFlags): string {
  if (o.passphraseFile) {
    try {
      return readFileSync(o.passphraseFile, "utf8").replace(/\r?\n$/, "");
    } catch {
      throw invalid(`cannot read the passphrase file ${o.passphraseFile}`);
    }
  }
  const env = process.env.REALM_CEREMONY_PASSPHRASE;
  if (env) return env;
  throw invalid("no ceremony passphrase: give --passphrase-file <file> or set REALM_CEREMONY_PASSPHRASE");
}

const withPassphrase = (c: Command) => c.option("--passphrase-file <file>", "file holding the root key passphrase (else $REALM_CEREMONY_PASSPHRASE)");

export function registerCeremonyCommands(program: Command): void {
  const ceremony = program.command("ceremony").description("offline root CA: init, sign intermediates, revoke them, root CRLs (no network needed)");
  withPassphrase(ceremony.command("init <dir>").description("make the root CA: key sealed with the passphrase, certificate, empty CRL, manifest"))
    .requiredOption("--cn <name>", "root common name, e.g. 'Example Root CA'")
    .option("--org <name>", "organization")
    .option("--country <cc>", "two-letter country")
    .addOption(new Option("--algorithm <alg>").choices(["ecdsa-p384", "rsa-4096"]).default("ecdsa-p384"))
    .option("--years <n>", "validity in years", int, 20)
    .action(async (dir: string, o: PassFlags & { cn: string; org?: string; country?: string; algorithm: RootAlgorithm; years: number }) => {
      const passphrase = passphraseOf(o);
      checkNewPassphrase(passphrase);
      const { Files, initCeremony } = await ceremonyModule();
      const r = await initCeremony({ dir, passphrase, subject: { CN: o.cn, ...(o.org ? { O: o.org } : {}), ...(o.country ? { C: o.country } : {}) }, algorithm: o.algorithm, years: o.years, progress: say });
      print({ dir, rootCertificate: `${dir}/${Files.rootCert}`, fingerprint: r.fingerprint, serial: r.serial, notAfter: r.notAfter, manifestCid: r.manifestCid });
    });
  withPassphrase(ceremony.command("sign-intermediate <dir> <csr>").description("sign an issuer's CSR: CA pathlen 0, name constraints, 3 years"))
    .requiredOption("--permit <domains>", "permitted DNS domains (comma separated or repeated)", list, [])
    .option("--years <n>", "validity in years", int, 3)
    .option("--out <file>", "intermediate certificate file (default <csr>.crt)")
    .addOption(outputOption(true))
    .addOption(quietOption())
    .action(async (dir: string, csr: string, o: PassFlags & { permit: string[]; years: number; out?: string; output?: string }) => {
      const { Files, signIntermediate } = await ceremonyModule();
      let csrPem: string;
      try {
        csrPem = readFileSync(csr, "utf8");
      } catch {
        throw invalid(`cannot read CSR ${csr}`);
      }
      say(`opening the root key in ${dir} ...`);
      const r = signIntermediate({ dir, passphrase: passphraseOf(o), csrPem, permittedDns: o.permit, years: o.years });
      const out = outFile(o) ?? `${csr.replace(/\.csr$/, "")}.crt`;
      writeFileSync(out, r.certPem);
      say(`wrote ${out}; import it with: realm pki issuer import <issuer> --cert ${out} --root ${dir}/${Files.rootCert}`);
      print({ certificate: out, serial: r.serial, subject: r.subject, notAfter: r.notAfter, permittedDns: r.permittedDns, fingerprint: r.fingerprint, manifestCid: r.manifestCid });
    });
  withPassphrase(ceremony.command("revoke-intermediate <dir> <serial>").description("revoke an intermediate and issue the new root CRL"))
    .addOption(new Option("--reason <reason>").choices(REVOCATION_REASON_NAMES.filter((r) => r !== "removeFromCRL")).default("unspecified"))
    .option("--days <n>", "CRL next update in days", int, 30)
    .action(async (dir: string, serial: string, o: PassFlags & { reason: RevocationReason; days: number }) => {
      const { Files, revokeIntermediate } = await ceremonyModule();
      const r = revokeIntermediate({ dir, passphrase: passphraseOf(o), serial, reason: o.reason, days: o.days });
      say(`wrote ${dir}/${Files.rootCrl}; publish it with: realm pki issuer root-crl <issuer> ${dir}/${Files.rootCrl}`);
      print({ crl: `${dir}/${Files.rootCrl}`, crlNumber: r.crlNumber, revoked: r.revoked, nextUpdate: r.nextUpdate, manifestCid: r.manifestCid });
    });
  withPassphrase(ceremony.command("crl <dir>").description("issue a fresh root CRL (do this before the last one's next update)"))
    .option("--days <n>", "next update in days", int, 30)
    .option("--pem <file>", "also write the CRL as PEM")
    .action(async (dir: string, o: PassFlags & { days: number; pem?: string }) => {
      const [{ Files, issueRootCrl }, { toPem }] = await Promise.all([ceremonyModule(), import("../x509/der.js")]);
      const r = issueRootCrl({ dir, passphrase: passphraseOf(o), days: o.days });
      if (o.pem) writeFileSync(o.pem, toPem(r.crlDer, "X509 CRL"));
      print({ crl: `${dir}/${Files.rootCrl}`, crlNumber: r.crlNumber, revoked: r.revoked, nextUpdate: r.nextUpdate, manifestCid: r.manifestCid });
    });
  ceremony
    .command("show <dir>")
    .description("the public register: root, intermediates signed, revocations; checks the manifest (no passphrase)")
    .action(async (dir: string) => {
      const [{ readCeremony }, { checkManifest }] = await Promise.all([ceremonyModule(), import("./manifest.js")]);
      const c = readCeremony(dir);
      const m = checkManifest(dir);
      print({ manifest: { cid: c.manifestCid, ok: m.ok, problems: m.problems }, ...c.register });
    });
}
