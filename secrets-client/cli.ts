import { chmodSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { SecretsError } from "./errors.js";
import { SECRETS_CONTEXT } from "./contract.js";
import { callContext, withConnectionOptions, type ConnectionFlags } from "../services/cli/call.js";
import { outFile, outputOption, printResult, quietOption } from "../services/cli/output.js";

const print = (r: unknown) => printResult(r, "secret");
import type { VaultwardenEscrow } from "./escrow.js";

/**
 * `realm secrets ...`: read back what the realm escrowed in Vaultwarden (certificate keys, NATS creds, client
 * secrets), by the reference its events and replies carry. `get`, `versions`, `find` and `check` talk to
 * Vaultwarden directly with the caller's own account (REALM_VAULTWARDEN_* in the environment), decrypting on
 * this machine; `list` asks the realm's secrets context (over NATS) what it escrowed, without any value.
 */

async function withEscrow<T>(op: (e: VaultwardenEscrow) => Promise<T>): Promise<T> {
  // The session is kept between commands (tokens only, 0600 in the config dir): one login, not one per command.
  const url = process.env.REALM_VAULTWARDEN_URL?.trim();
  const email = process.env.REALM_VAULTWARDEN_EMAIL;
  // Loaded here, not at registration: the Vaultwarden client and its crypto cost every other CLI call nothing.
  const [{ vaultwardenEscrowFromEnv }, { fileSessionStore, vaultwardenSessionFile }] = await Promise.all([import("./escrow.js"), import("./session-file.js")]);
  const escrow = vaultwardenEscrowFromEnv(process.env, url && email && URL.canParse(url) ? { sessionStore: fileSessionStore(vaultwardenSessionFile(), url, email) } : {});
  if (!escrow) throw new SecretsError("VALIDATION", "no Vaultwarden configured: set REALM_VAULTWARDEN_URL, REALM_VAULTWARDEN_ORG, REALM_VAULTWARDEN_EMAIL, REALM_VAULTWARDEN_PASSWORD (and optionally the API key and CA)");
  try {
    return await op(escrow);
  } finally {
    escrow.close();
  }
}

export function registerSecretsCommands(program: Command): void {
  const secrets = program.command("secrets").description("escrowed secrets in Vaultwarden: get one back by its reference, list its versions, check the configuration");
  secrets
    .command("get <itemId>")
    .description("print the current value of an escrowed secret (the itemId of a secretRef)")
    .option("--out <file>", "write it to a file with mode 0600 instead of stdout")
    .addOption(outputOption(true))
    .addOption(quietOption())
    .action(async (itemId: string, o: { out?: string; output?: string }) => {
      const value = await withEscrow((e) => e.get({ itemId }));
      const file = outFile(o);
      if (file) {
        writeFileSync(file, value, { mode: 0o600 });
        chmodSync(file, 0o600);
        process.stderr.write(`wrote ${file}\n`);
      } else printResult({ itemId, value }, "secret", { table: (x: { value: string }) => (x.value.endsWith("\n") ? x.value : `${x.value}\n`), textByDefault: true });
    });
  secrets
    .command("versions <itemId>")
    .description("which value is current, and the earlier ones rotation kept (values shown only with --reveal)")
    .option("--reveal", "include the values")
    .action(async (itemId: string, o: { reveal?: boolean }) => {
      const v = await withEscrow((e) => e.versions({ itemId }));
      print({
        itemId: v.itemId,
        revision: v.revision,
        principal: v.principal,
        name: v.name,
        current: { version: v.version, ...(o.reveal ? { value: v.current } : {}) },
        previous: v.previous.map((p, i) => ({ version: v.version - i - 1, replacedAt: p.replacedAt, ...(o.reveal ? { value: p.value } : {}) })),
      });
    });
  secrets
    .command("find <principal> <name>")
    .description("the reference of a principal's secret by name, e.g. find alice cert:<serial>:key")
    .action(async (principal: string, name: string) => {
      const ref = await withEscrow((e) => e.find(principal, name));
      if (!ref) throw new SecretsError("NOT_FOUND", `no secret ${name} for principal ${principal}`);
      print(ref);
    });
  withConnectionOptions(secrets.command("list").description("what the realm escrowed (from its REALM_SECRETS record; no Vaultwarden credentials needed, no values)"))
    .option("--principal <id>", "only this principal's")
    .option("--name <name>", "only items with this name")
    .action(async (o: ConnectionFlags & { principal?: string; name?: string }) =>
      print(await callContext(o, SECRETS_CONTEXT, "queries", "secrets", { ...(o.principal ? { principal: o.principal } : {}), ...(o.name ? { name: o.name } : {}) })),
    );
  secrets
    .command("check")
    .description("log in, unlock and find the organization with the configured settings")
    .action(async () => print({ ok: true, ...(await withEscrow((e) => e.check())) }));
}
