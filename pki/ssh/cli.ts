import { readFileSync, writeFileSync } from "node:fs";
import { Option, type Command } from "commander";
import { withConnectionOptions } from "../../services/cli/call.js";
import { commaList as list, note as say, outputOption, positiveInt as int, printResult, quietOption } from "../../services/cli/output.js";
import { invalid } from "../../services/kernel/errors.js";
import { SSH_REVOCATION_REASONS, USER_EXTENSIONS } from "./domain.js";
import { SSH_CA_KEY_SPECS } from "./keys.js";
import { call, readText, type Flags } from "../cli-common.js";

/**
 * `realm ssh ...`: the issuers' SSH CAs over NATS (`realm.pki.commands.ssh*`): make a CA, sign user and host
 * certificates from .pub files, revoke, fetch the KRL, print the sshd and known_hosts settings.
 */
/** Where ssh looks for a key's certificate: `id_ed25519.pub` → `id_ed25519-cert.pub` (as `ssh-keygen -s` writes it). */
export const certFileFor = (pubFile: string) => (pubFile.endsWith(".pub") ? `${pubFile.slice(0, -4)}-cert.pub` : `${pubFile}-cert.pub`);
const issuerOf = (o: { issuer?: string }) => (o.issuer ? { issuer: o.issuer } : {});

interface SignReply {
  serial: string;
  certificate: string;
  [k: string]: unknown;
}

export function registerSshCommands(program: Command): void {
  const verb = (parent: Command, name: string, description: string) => withConnectionOptions(parent.command(name).description(description));
  const ssh = program.command("ssh").description("SSH certificates from the issuers' SSH CAs: sign user and host keys, revoke, KRL, sshd and known_hosts settings");

  const ca = ssh.command("ca").description("an issuer's SSH CA: create, policy, list");
  verb(ca, "create <issuer>", "make the issuer's SSH CA key (kept sealed like the intermediate keys; only its public half is recorded)")
    .addOption(new Option("--key-spec <spec>").choices(SSH_CA_KEY_SPECS).default("ed25519"))
    .action(async (issuer: string, o: Flags & { keySpec: string }) => printResult(await call(o, "commands", "ssh-ca.create", { issuer, keySpec: o.keySpec }), "ssh-ca"));
  verb(ca, "policy <issuer>", "set what the SSH CA grants: lifetimes, user extensions, forced force-command / source-address")
    .option("--extension <names>", `extensions user certificates may carry (${USER_EXTENSIONS.join(", ")})`, list)
    .option("--user-hours <n>", "default user certificate lifetime in hours", int)
    .option("--user-max-hours <n>", "longest user certificate lifetime in hours", int)
    .option("--host-days <n>", "default host certificate lifetime in days", int)
    .option("--host-max-days <n>", "longest host certificate lifetime in days", int)
    .option("--force-command <command>", "force this command on every user certificate")
    .option("--source-address <cidrs>", "CIDRs every user certificate is bound to", list)
    .action(async (issuer: string, o: Flags & { extension?: string[]; userHours?: number; userMaxHours?: number; hostDays?: number; hostMaxDays?: number; forceCommand?: string; sourceAddress?: string[] }) =>
      printResult(
        await call(o, "commands", "ssh-ca.policy", {
          issuer,
          ...(o.extension ? { userExtensions: o.extension } : {}),
          ...(o.userHours !== undefined ? { userDefaultHours: o.userHours } : {}),
          ...(o.userMaxHours !== undefined ? { userMaxHours: o.userMaxHours } : {}),
          ...(o.hostDays !== undefined ? { hostDefaultDays: o.hostDays } : {}),
          ...(o.hostMaxDays !== undefined ? { hostMaxDays: o.hostMaxDays } : {}),
          ...(o.forceCommand !== undefined ? { forceCommand: o.forceCommand } : {}),
          ...(o.sourceAddress ? { sourceAddress: o.sourceAddress } : {}),
        }),
        "ssh-ca",
      ),
    );
  verb(ca, "list", "the SSH CAs with their public keys, fingerprints and policies").action(async (o: Flags) => printResult(await call(o, "queries", "ssh-cas", {}), "ssh-ca"));

  verb(ssh, "sign-user <pubkey>", "sign a user certificate for a public key file (.pub); writes <key>-cert.pub beside it, where ssh finds it")
    .option("--principal <id>", "the realm principal it is for: its login name and groups become the certificate's principals")
    .option("--principals <names>", "the principals (with --principal: a subset of its login name and groups)", list)
    .option("--hours <n>", "validity in hours (default: the CA's policy, 16)", int)
    .option("--extension <names>", `extensions (default: all the policy grants; ${USER_EXTENSIONS.join(", ")})`, list)
    .option("--force-command <command>", "critical option force-command")
    .option("--source-address <cidrs>", "critical option source-address (CIDRs)", list)
    .option("--key-id <id>", "key id (default: the realm principal, else the first principal); revoking it revokes every certificate that carries it")
    .option("--issuer <id>", "issuer (needed when the realm has several SSH CAs)")
    .option("--out <file>", "certificate file (default <key>-cert.pub)")
    .action(async (pubkey: string, o: Flags & { principal?: string; principals?: string[]; hours?: number; extension?: string[]; forceCommand?: string; sourceAddress?: string[]; keyId?: string; issuer?: string; out?: string }) => {
      const r = (await call(o, "commands", "ssh.sign-user", {
        publicKey: readText(pubkey, "public key"),
        ...issuerOf(o),
        ...(o.principal ? { principal: o.principal } : {}),
        ...(o.principals ? { principals: o.principals } : {}),
        ...(o.hours !== undefined ? { hours: o.hours } : {}),
        ...(o.extension ? { extensions: o.extension } : {}),
        ...(o.forceCommand !== undefined ? { forceCommand: o.forceCommand } : {}),
        ...(o.sourceAddress ? { sourceAddress: o.sourceAddress } : {}),
        ...(o.keyId ? { keyId: o.keyId } : {}),
      })) as SignReply;
      const file = o.out ?? certFileFor(pubkey);
      writeFileSync(file, r.certificate);
      say(`wrote ${file} (serial ${r.serial}; ssh-keygen -L -f ${file} shows it)`);
      const { certificate: _c, ...summary } = r;
      printResult({ ...summary, file }, "ssh-certificate");
    });

  verb(ssh, "login", "after `realm login`: an SSH user certificate for yourself (your login name and groups), written beside your key as ssh expects, like `step ssh login`")
    .option("--key <pubkey>", "your public key file (default ~/.ssh/id_ed25519.pub)")
    .option("--principals <names>", "fewer principals than your login name and groups", list)
    .option("--hours <n>", "validity in hours (default: the CA's policy, 16)", int)
    .option("--issuer <id>", "issuer (needed when the realm has several SSH CAs)")
    .action(async (o: Flags & { key?: string; principals?: string[]; hours?: number; issuer?: string }) => {
      const { homedir } = await import("node:os");
      const pubkey = o.key ?? `${homedir()}/.ssh/id_ed25519.pub`;
      let text: string;
      try {
        text = readFileSync(pubkey, "utf8");
      } catch {
        throw invalid(`cannot read your public key ${pubkey} (make one with ssh-keygen -t ed25519, or give --key)`);
      }
      const r = (await call(o, "commands", "ssh.sign-self", { publicKey: text, ...issuerOf(o), ...(o.principals ? { principals: o.principals } : {}), ...(o.hours !== undefined ? { hours: o.hours } : {}) })) as SignReply;
      const file = certFileFor(pubkey);
      writeFileSync(file, r.certificate);
      say(`wrote ${file} (serial ${r.serial}, valid until ${String(r.validBefore)}); ssh uses it with its key`);
      const { certificate: _c, ...summary } = r;
      printResult({ ...summary, file }, "ssh-certificate");
    });

  verb(ssh, "sign-host <pubkey>", "sign a host certificate for a host key (.pub) and names the realm owns; writes <key>-cert.pub (sshd's HostCertificate)")
    .requiredOption("--name <names>", "host names (in the realm's zones) or IPs (in the issuer's ranges)", list)
    .option("--days <n>", "validity in days (default: the CA's policy, 30)", int)
    .option("--key-id <id>", "key id (default: the first name)")
    .option("--issuer <id>", "issuer (needed when the realm has several SSH CAs)")
    .option("--out <file>", "certificate file (default <key>-cert.pub)")
    .action(async (pubkey: string, o: Flags & { name: string[]; days?: number; keyId?: string; issuer?: string; out?: string }) => {
      const r = (await call(o, "commands", "ssh.sign-host", { publicKey: readText(pubkey, "public key"), names: o.name, ...issuerOf(o), ...(o.days !== undefined ? { days: o.days } : {}), ...(o.keyId ? { keyId: o.keyId } : {}) })) as SignReply;
      const file = o.out ?? certFileFor(pubkey);
      writeFileSync(file, r.certificate);
      say(`wrote ${file} (serial ${r.serial}); in sshd_config: HostCertificate ${file}`);
      const { certificate: _c, ...summary } = r;
      printResult({ ...summary, file }, "ssh-certificate");
    });

  verb(ssh, "revoke [serial]", "revoke an SSH certificate by serial (decimal, as ssh-keygen -L shows it), or every certificate of a --key-id; the KRL lists it at once")
    .option("--key-id <id>", "revoke by key id instead of serial")
    .option("--issuer <id>", "issuer of the key id (needed when the realm has several SSH CAs)")
    .addOption(new Option("--reason <reason>").choices(SSH_REVOCATION_REASONS).default("unspecified"))
    .action(async (serial: string | undefined, o: Flags & { keyId?: string; issuer?: string; reason: string }) => {
      if (!serial === !o.keyId) throw invalid("give a serial or --key-id (one of them)");
      printResult(await call(o, "commands", "ssh.revoke", { ...(serial ? { serial } : { keyId: o.keyId, ...issuerOf(o) }), reason: o.reason }), "ssh-certificate");
    });

  verb(ssh, "list", "SSH certificates")
    .option("--issuer <id>")
    .addOption(new Option("--kind <kind>").choices(["user", "host"]))
    .option("--principal <name>", "an SSH principal or realm principal")
    .addOption(new Option("--status <status>").choices(["valid", "revoked", "expired"]))
    .option("--expiring <hours>", "valid certificates that expire within N hours", int)
    .action(async (o: Flags & { issuer?: string; kind?: string; principal?: string; status?: string; expiring?: number }) =>
      printResult(
        await call(o, "queries", "ssh-certificates", { ...issuerOf(o), ...(o.kind ? { kind: o.kind } : {}), ...(o.principal ? { principal: o.principal } : {}), ...(o.status ? { status: o.status } : {}), ...(o.expiring !== undefined ? { expiringWithinHours: o.expiring } : {}) }),
        "ssh-certificate",
      ),
    );

  verb(ssh, "krl", "write the SSH CA's KRL (OpenSSH key revocation list) to a file: what sshd's RevokedKeys reads")
    .option("--issuer <id>")
    .option("--out <file>", "KRL file (default <issuer>.krl)")
    .action(async (o: Flags & { issuer?: string; out?: string }) => {
      const r = (await call(o, "queries", "ssh-krl", issuerOf(o))) as { issuer: string; version: number; krl: string; revokedSerials: string[]; revokedKeyIds: string[] };
      const file = o.out ?? `${r.issuer}.krl`;
      writeFileSync(file, Buffer.from(r.krl, "base64"));
      say(`wrote ${file}: KRL version ${r.version}, ${r.revokedSerials.length} serial(s) and ${r.revokedKeyIds.length} key id(s) revoked (ssh-keygen -Q -l -f ${file})`);
      const { krl: _k, ...summary } = r;
      printResult({ ...summary, file }, "ssh-ca");
    });

  verb(ssh, "config", "print the sshd settings (TrustedUserCAKeys, RevokedKeys), the CA key file and the @cert-authority known_hosts line")
    .option("--issuer <id>")
    .addOption(outputOption())
    .addOption(quietOption())
    .action(async (o: Flags & { issuer?: string }) => {
      const r = (await call(o, "queries", "ssh-config", issuerOf(o))) as { issuer: string; caPublicKey: string; krlUrl: string; sshd: string[]; ssh: string[]; knownHosts: string; files: Record<string, string> };
      const [caFile, krlFile] = Object.keys(r.files);
      const text = [
        `# sshd_config (servers that accept realm user certificates)`,
        ...r.sshd,
        ``,
        `# ${caFile}`,
        r.files[caFile!],
        ``,
        `# ${krlFile}: fetch it again whenever something is revoked (e.g. every few minutes)`,
        r.files[krlFile!],
        ``,
        `# ~/.ssh/known_hosts or /etc/ssh/ssh_known_hosts (clients that accept realm host certificates without a prompt)`,
        r.knownHosts,
        ``,
        `# ssh_config (clients: refuse revoked host certificates too; keep the KRL there current the same way)`,
        ...r.ssh,
        ``,
      ].join("\n");
      printResult(r, "ssh-ca", { table: () => text, textByDefault: true });
    });
}
