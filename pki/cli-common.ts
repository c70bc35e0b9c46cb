import { readFileSync } from "node:fs";
import { callContext, type ConnectionFlags } from "../services/cli/call.js";
import { invalid } from "../services/kernel/errors.js";
import { PKI_CONTEXT } from "./contract.js";

/** What the pki verbs (`realm cert|pki|ssh|acme ...`) share: their flags, one call to the PKI, reading an input file. */
export type Flags = ConnectionFlags & Record<string, unknown>;

export const call = (o: Flags, kind: "commands" | "queries", name: string, input: object) => callContext(o, PKI_CONTEXT, kind, name, input);

/** A file's text, or a usage error naming what it should have held. */
export const readText = (file: string, what: string): string => {
  try {
    return readFileSync(file, "utf8");
  } catch {
    throw invalid(`cannot read ${what} ${file}`);
  }
};
