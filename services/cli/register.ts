import type { Command } from "commander";
import { registerDnsCommands } from "../../dns/cli.js";
import { registerIdentityCommands } from "../../identity/cli.js";
import { registerNatsAccountCommands } from "../../identity/nats/cli.js";
import { registerRadiusCommands } from "../../identity/radius/cli.js";
import { registerPkiCommands } from "../../pki/cli.js";
import { registerCeremonyCommands } from "../../pki/ceremony/cli.js";
import { registerLoginCommands } from "./login.js";
import { registerSecretsCommands } from "../../secrets-client/cli.js";

/** Adds `realm login|logout|whoami` and each context's verb group (`realm zone ...`, `realm identity ...`) to the command line. */
export async function registerContextCommands(program: Command): Promise<void> {
  registerLoginCommands(program);
  registerIdentityCommands(program);
  registerDnsCommands(program);
  registerNatsAccountCommands(program);
  registerRadiusCommands(program);
  registerPkiCommands(program);
  registerCeremonyCommands(program);
  registerSecretsCommands(program);
}
