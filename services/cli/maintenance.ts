import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { RealmError } from "../kernel/errors.js";
import type { SealedBundle } from "../../identity/nats/keystore.js";
import type { OperatorState } from "../../identity/nats/bootstrap.js";
import { positiveInt } from "./output.js";

/**
 * `realm maintenance creds`: break-glass creds for the realm account's whole JetStream API (stream update
 * and delete included), for an hour by default. Run on the realm's host: it needs the data dir (the
 * account signing key) and the operator bundle's passphrase, so holding the service files alone is not
 * enough. No running service ever holds these rights.
 */
export function registerMaintenanceCommands(program: Command): void {
  const m = program.command("maintenance").description("break-glass maintenance of the realm's NATS (on the realm's host)");
  m.command("creds")
    .description("issue short-lived creds with the realm account's whole JetStream API (stream update and delete): needs the operator bundle's passphrase")
    .requiredOption("--out <file>", "write the creds here (mode 0600)")
    .option("--data <dir>", "the realm's data directory", process.env.REALM_DATA ?? "./data")
    .option("--hours <n>", "lifetime in hours (1-24)", positiveInt, 1)
    .option("--passphrase-file <file>", "file holding the operator bundle's passphrase (default: $REALM_CEREMONY_PASSPHRASE)")
    .action(async (o: { out: string; data: string; hours: number; passphraseFile?: string }) => {
      if (!Number.isInteger(o.hours) || o.hours < 1 || o.hours > 24) throw new RealmError("VALIDATION", "--hours must be a whole number from 1 to 24");
      // The key store, the JWT signer and the realm's layout load only when this verb runs.
      const [{ openBundle }, { mintCreds }, { maintenancePermissions }, { realmPaths }] = await Promise.all([
        import("../../identity/nats/keystore.js"),
        import("../../identity/nats/realm-identities.js"),
        import("./identities.js"),
        import("./runtime.js"),
      ]);
      const paths = realmPaths(o.data);
      const bundleFile = join(paths.operator, "operator-identity.bundle.json");
      if (!existsSync(bundleFile)) throw new RealmError("NOT_FOUND", `no operator bundle in ${paths.operator}: is ${paths.data} a realm's data dir?`);
      const passphrase = o.passphraseFile ? readFileSync(o.passphraseFile, "utf8").replace(/\r?\n$/, "") : process.env.REALM_CEREMONY_PASSPHRASE;
      if (!passphrase) throw new RealmError("VALIDATION", "give the operator bundle's passphrase: --passphrase-file or REALM_CEREMONY_PASSPHRASE");
      openBundle(JSON.parse(readFileSync(bundleFile, "utf8")) as SealedBundle, passphrase);
      const state = JSON.parse(readFileSync(join(paths.operator, "operator.json"), "utf8")) as OperatorState;
      const name = "realm-maintenance";
      const c = await mintCreds(paths.operator, state, { name, account: "realm", permissions: maintenancePermissions(name), kind: "person" }, o.hours * 3600);
      writeFileSync(o.out, c.creds, { mode: 0o600 });
      process.stderr.write(`realm: maintenance creds ${c.publicKey} written to ${o.out} (mode 0600), valid until ${new Date(c.expiresAt * 1000).toISOString()}\n`);
    });
}
