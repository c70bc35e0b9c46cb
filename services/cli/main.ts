#!/usr/bin/env node
/** `realm`: runs the command line (services/cli/program.ts); one line per error, the exit status by its class. */
import { CommanderError } from "commander";
import { EXIT_USAGE } from "./exit-codes.js";
import { buildProgram, describeError } from "./program.js";

async function main(): Promise<void> {
  try {
    const program = await buildProgram();
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander printed the message (or the help, or the version) already.
      process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
    }
    const d = describeError(err);
    process.stderr.write(`error: ${d.code}: ${d.message}\n`);
    if (d.code === "INTERNAL" && process.env.REALM_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exit(d.exit);
  }
}

void main();
