/**
 * Runs the official Bitwarden CLI (`@bitwarden/cli`, pinned in devDependencies) against a server, isolated in
 * its own data directory and trusting the test CA through NODE_EXTRA_CA_CERTS (bw refuses plain HTTP).
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "../cli.js";

/** The pinned bw of devDependencies, or another build to try (`REALM_TEST_BW_BIN`, a path to its `bw`). */
export const bwBin = process.env.REALM_TEST_BW_BIN || join(repoRoot, "node_modules/.bin/bw");

export interface BwCli {
  dir: string;
  session: string | undefined;
  run(args: string[], extraEnv?: Record<string, string>): Promise<string>;
  cleanup(): void;
}

export function bwCli(caFile: string): BwCli {
  const dir = mkdtempSync(join(tmpdir(), "bw-appdata-"));
  const cli: BwCli = {
    dir,
    session: undefined,
    run(args, extraEnv = {}) {
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? "",
        HOME: dir,
        BITWARDENCLI_APPDATA_DIR: dir,
        NODE_EXTRA_CA_CERTS: caFile,
        BW_NOINTERACTION: "true",
        ...(cli.session ? { BW_SESSION: cli.session } : {}),
        ...extraEnv,
      };
      return new Promise((resolve, reject) =>
        execFile(bwBin, args, { env, timeout: 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
          if (err) reject(new Error(`bw ${args[0]} failed (${err.code ?? err.signal}): ${stderr || stdout}`));
          else resolve(stdout);
        }),
      );
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
  return cli;
}
