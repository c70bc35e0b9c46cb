import { chmodSync, existsSync, statSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { RealmError } from "../kernel/errors.js";
import { checkServerConfigFlags, serverConfigOf, type ServerConfigFlags } from "./server-config.js";
import { establishOperator, realmPaths, refuseLegacy } from "./operator-setup.js";

/**
 * Checks the flags, then makes the operator, trust and identities as `realm up` would if the data dir has
 * none (REALM_CEREMONY_PASSPHRASE, else a generated passphrase file), then renders the node's config and
 * writes it to `out` (0600) when given. Nothing is made or written when a flag is wrong.
 */
export async function writeServerConfig(dataDir: string, flags: ServerConfigFlags, out: string | undefined): Promise<{ name: string; operator: string; config: string; generatedPassphraseFile?: string }> {
  const spec = checkServerConfigFlags(flags);
  if (out !== undefined) {
    const dir = dirname(resolve(out));
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new RealmError("VALIDATION", `--out ${out}: directory ${dir} does not exist`);
    if (existsSync(out) && statSync(out).isDirectory()) throw new RealmError("VALIDATION", `--out ${out} is a directory`);
  }
  const paths = realmPaths(dataDir);
  refuseLegacy(paths);
  const { operator } = await establishOperator(paths, process.env.REALM_CEREMONY_PASSPHRASE);
  const config = serverConfigOf(spec, operator.state);
  if (out) {
    writeFileSync(out, config, { mode: 0o600 });
    chmodSync(out, 0o600); // the mode above applies only when the file is created
  }
  return { name: spec.name, operator: operator.state.operatorPublicKey, config, ...(operator.generatedPassphraseFile ? { generatedPassphraseFile: operator.generatedPassphraseFile } : {}) };
}
