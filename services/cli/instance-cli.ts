import type { Command } from "commander";
import { printResult } from "./output.js";

/** `realm instance export|join`: a second instance of the same realm (services/cli/instance.ts). */
export function registerInstanceCommands(program: Command): void {
  const instance = program.command("instance").description("more instances of one realm: the operator, trust and seal key they share");
  instance
    .command("export")
    .description("seal this data dir's operator, trust (event keys) and seal key into one file for `realm instance join` (passphrase: REALM_BUNDLE_PASSPHRASE)")
    .option("--data <dir>", "the realm's data directory", process.env.REALM_DATA ?? "./data")
    .requiredOption("--out <bundle>", "the bundle file to write (mode 0600; must not exist)")
    .action(async (o: { data: string; out: string }) => {
      const { exportInstance, instancePassphrase } = await import("./instance.js");
      const r = exportInstance(o.data, o.out, instancePassphrase());
      printResult({ bundle: o.out, ...r });
    });
  instance
    .command("join <bundle>")
    .description("write a bundle's operator, trust and seal key into a new data dir (files 0600, dirs 0700), then `realm up --data <dir> --nats <cluster>`")
    .requiredOption("--data <dir>", "the new instance's data directory (empty or absent)")
    .action(async (bundle: string, o: { data: string }) => {
      const { joinInstance, instancePassphrase } = await import("./instance.js");
      const r = joinInstance(bundle, o.data, instancePassphrase());
      printResult({ data: o.data, ...r });
    });
}
