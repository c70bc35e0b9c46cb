import type { Command } from "commander";
import { withConnectionOptions, type ConnectionFlags } from "../../services/cli/call.js";
import { commaList as list, positiveInt as int, printResult } from "../../services/cli/output.js";

type Flags = ConnectionFlags & Record<string, unknown>;
type Call = (o: Flags, kind: "commands" | "queries", name: string, input: object) => Promise<unknown>;

/** `realm acme configure|accounts|orders`: an issuer's ACME server (RFC 8555) over the admin API. */
export function registerAcmeCommands(program: Command, call: Call): void {
  const verb = (parent: Command, name: string, description: string) => withConnectionOptions(parent.command(name).description(description));
  const acme = program.command("acme").description("the ACME server (RFC 8555) of an issuer: <public url>/acme/<issuer>/directory");
  verb(acme, "configure <issuer>", "enable or change an issuer's ACME server")
    .option("--enable", "serve ACME for this issuer")
    .option("--disable", "stop serving ACME for this issuer (accounts and orders are kept)")
    .option("--require-eab", "new accounts need an external account binding")
    .option("--no-require-eab", "new accounts need no external account binding")
    .option("--validation-network <cidrs>", "ranges challenge validation may reach besides public addresses (e.g. 127.0.0.0/8; repeat or comma separate; 'none' clears)", list)
    .option("--http01-port <port>", "port the http-01 validator connects to (default 80)", int)
    .option("--tls-alpn01-port <port>", "port the tls-alpn-01 validator connects to (default 443)", int)
    .option("--days <n>", "lifetime of ACME certificates (default 90)", int)
    .action(async (issuer: string, o: Flags & { enable?: boolean; disable?: boolean; requireEab?: boolean; validationNetwork?: string[]; http01Port?: number; tlsAlpn01Port?: number; days?: number }) => {
      const eab = o.requireEab !== undefined ? { externalAccountRequired: o.requireEab } : {};
      printResult(
        await call(o, "commands", "acme.configure", {
          issuer,
          ...(o.enable ? { enabled: true } : o.disable ? { enabled: false } : {}),
          ...eab,
          ...(o.validationNetwork ? { validationNetworks: o.validationNetwork.filter((n) => n !== "none") } : {}),
          ...(o.http01Port ? { http01Port: o.http01Port } : {}),
          ...(o.tlsAlpn01Port ? { tlsAlpn01Port: o.tlsAlpn01Port } : {}),
          ...(o.days ? { days: o.days } : {}),
        }),
        "acme",
      );
    });
  const eab = acme.command("eab").description("external account binding keys: an ACME account made with one orders under a realm principal's grants");
  verb(eab, "create <issuer>", "issue an EAB key id and HMAC key for a principal (the HMAC key is shown this once; -q prints it alone)")
    .requiredOption("--principal <id>", "the realm principal the accounts made with this key act for")
    .action(async (issuer: string, o: Flags & { principal: string }) => printResult(await call(o, "commands", "acme-eab.create", { issuer, principal: o.principal }), "acme-eab"));
  verb(eab, "revoke <issuer> <keyId>", "revoke an EAB key (no new account can be bound with it)").action(async (issuer: string, keyId: string, o: Flags) => printResult(await call(o, "commands", "acme-eab.revoke", { issuer, keyId }), "acme-eab"));
  verb(eab, "list <issuer>", "EAB keys of an issuer (never their HMAC keys)").action(async (issuer: string, o: Flags) => printResult(await call(o, "queries", "acme-eab-keys", { issuer }), "acme-eab"));
  verb(acme, "accounts <issuer>", "ACME accounts of an issuer").action(async (issuer: string, o: Flags) => printResult(await call(o, "queries", "acme-accounts", { issuer }), "acme-account"));
  verb(acme, "orders <issuer>", "ACME orders of an issuer")
    .option("--account <id>", "only this account's")
    .action(async (issuer: string, o: Flags & { account?: string }) => printResult(await call(o, "queries", "acme-orders", { issuer, ...(o.account ? { account: o.account } : {}) }), "acme-order"));
}
