import { Option, type Command } from "commander";
import { printResult } from "./output.js";

/**
 * `realm backup <dir>` and `realm restore <dir> --data-dir <new>` (README "Backup and restore"). Registering
 * them loads nothing: the snapshot and restore code (the supervisor, the key store, the NATS client) loads
 * in the actions.
 */
export function registerBackupCommands(program: Command): void {
  const dataDir = () => new Option("--data-dir <dir>", "the realm's data directory").env("REALM_DATA").default("./data");
  const passphrase = () => new Option("--passphrase-file <file>", "file whose first line is the backup passphrase (default: $REALM_BACKUP_PASSPHRASE); at least 12 characters");
  program
    .command("backup")
    .description("back up the realm on this host into <dir>: its streams (nats-server snapshots), the data dir's files (key files sealed with the backup passphrase), a manifest of SHA-256 digests and its CID")
    .argument("<dir>", "a new or empty directory")
    .addOption(dataDir())
    .addOption(new Option("--nats <url>", "the running realm's nats-server (default: the one its data dir names)").env("REALM_NATS_URL"))
    .addOption(passphrase())
    .option("--with-snapshots", "keep the projection snapshots too (a cache: without them the restored realm rebuilds its projections at first start)")
    .action(async (dir: string, o: { dataDir: string; nats?: string; passphraseFile?: string; withSnapshots?: boolean }) => {
      const { runBackup, backupPassphrase } = await import("./backup.js");
      const started = Date.now();
      const r = await runBackup({ dir, dataDir: o.dataDir, passphrase: backupPassphrase(o.passphraseFile), natsUrl: o.nats, withSnapshots: o.withSnapshots === true, progress: (l) => void process.stderr.write(`realm: ${l}\n`) });
      process.stderr.write(`realm: backup ${r.cid} written to ${r.dir} in ${((Date.now() - started) / 1000).toFixed(1)} s: ${r.streams.length} streams, ${r.files} files, ${(r.bytes / 1048576).toFixed(1)} MiB; keep it as safe as the data dir (README "Backup and restore")\n`);
      printResult(r);
    });
  program
    .command("restore")
    .description("verify a backup (every digest, before anything is written: exit 11, INTEGRITY) and lay it out as a new data dir for realm up")
    .argument("<dir>", "the backup")
    .addOption(new Option("--data-dir <dir>", "the new data directory (must be empty or not exist)").makeOptionMandatory())
    .addOption(passphrase())
    .option("--cid <cid>", "refuse the backup unless its manifest has this CID (the one realm backup printed)")
    .option("--force", "replace what a non-empty data dir holds")
    .action(async (dir: string, o: { dataDir: string; passphraseFile?: string; cid?: string; force?: boolean }) => {
      const [{ runRestore }, { backupPassphrase }] = await Promise.all([import("./restore.js"), import("./backup.js")]);
      const started = Date.now();
      const r = await runRestore({ dir, dataDir: o.dataDir, passphrase: backupPassphrase(o.passphraseFile), force: o.force === true, expectCid: o.cid, progress: (l) => void process.stderr.write(`realm: ${l}\n`) });
      process.stderr.write(`realm: restored ${r.cid} into ${r.dataDir} in ${((Date.now() - started) / 1000).toFixed(1)} s; start it with: realm up --data ${r.dataDir}\n`);
      printResult(r);
    });
}
