import type { Command } from "commander";
import { ADMIN_RESOURCE, REALM_CLI_CLIENT } from "../../identity/realm-clients.js";
import { RealmError } from "../kernel/errors.js";
import { callContext, realmUrlOption, withNatsOptions, type ConnectionFlags } from "./call.js";
import { CredentialsStore, DEFAULT_REALM_URL, realmUrlOf } from "./credentials-store.js";
import { credentialOf, discover, pollDeviceToken, principalOf, revoke, startDeviceAuthorization } from "./oidc-client.js";
import { printResult } from "./output.js";
import { activeContext } from "./active-context.js";

const say = (line: string): void => void process.stderr.write(`realm: ${line}\n`);
/** --url of login and logout: the realm whose issuer (`<url>/oidc`) signs in, and the key of the stored entry. */
const urlOption = () => realmUrlOption("--url <url>", `the realm's HTTP URL (its OIDC issuer is <url>/oidc; https, or http on this machine; default: the configuration context's url, else ${DEFAULT_REALM_URL})`);
/** The realm a login or logout means: --url / REALM_URL, else the configuration context's url, else the default. */
const realmOf = (url: string | undefined) => realmUrlOf(url ?? activeContext()?.url);

function minutes(seconds: number): string {
  const m = Math.floor(seconds / 60);
  const s = seconds % 60;
  return m > 0 ? `${m} min ${String(s).padStart(2, "0")} s` : `${s} s`;
}

/**
 * `realm login`, `realm logout`, `realm whoami`: a person signs in to the realm's admin API with the OIDC
 * device authorization grant (client realm-cli, resource urn:cim-realm:admin), in any browser, and the
 * command line keeps the tokens (services/cli/credentials-store.ts). No token is ever printed.
 */
export function registerLoginCommands(program: Command): void {
  program
    .command("login")
    .description(
      `sign in to the realm's admin API as a person: prints a web address and a code to enter there (OIDC device flow, client ${REALM_CLI_CLIENT}), waits until you approve, then keeps the tokens in the credentials file (never printed); later commands use them when no --token is given`,
    )
    .addOption(urlOption())
    .addHelpText("after", `\nThe tokens are kept in $XDG_CONFIG_HOME/cim-realm/credentials.json (else ~/.config/cim-realm/credentials.json), mode 0600, one entry per realm URL.\nStdout: {url, issuer, principal, expiresAt, file} (no token).`)
    .action(async (o: { url?: string }) => {
      const realmUrl = realmOf(o.url);
      const store = new CredentialsStore();
      const md = await discover(realmUrl);
      const da = await startDeviceAuthorization(md);
      say(`signing in to ${realmUrl} (issuer ${md.issuer}, client ${REALM_CLI_CLIENT}, resource ${ADMIN_RESOURCE})`);
      say(`open ${da.verification_uri} in a browser and enter the code`);
      say("");
      say(`    ${da.user_code}`);
      say("");
      if (da.verification_uri_complete) say(`or open ${da.verification_uri_complete}`);
      say(`the code expires in ${minutes(da.expires_in)}`);
      const tty = process.stderr.isTTY === true;
      let lastLine = 0;
      const progress = (left: number) => {
        if (tty) process.stderr.write(`\rrealm: waiting for you to approve the sign-in in the browser (${minutes(left)} left)   `);
        else if (Date.now() - lastLine >= 30_000) {
          lastLine = Date.now();
          say(`waiting for you to approve the sign-in in the browser (${minutes(left)} left)`);
        }
      };
      let t;
      try {
        t = await pollDeviceToken(md, da, progress);
      } finally {
        if (tty) process.stderr.write("\n");
      }
      const principal = await principalOf(md, t.id_token);
      const credential = credentialOf(md, t, principal);
      store.put(realmUrl, credential);
      say(`signed in to ${realmUrl} as ${principal}; the tokens are kept in ${store.file}`);
      printResult({ url: realmUrl, issuer: md.issuer, principal, expiresAt: credential.expiresAt, file: store.file }, "login");
    });

  program
    .command("logout")
    .description("sign out: revoke the tokens `realm login` stored for the realm at the realm (its refresh token, and with it the access token) and delete them from the credentials file")
    .addOption(urlOption())
    .option("--local", "only delete the stored tokens, without revoking them at the realm (when it is gone for good); they stay valid until they expire")
    .action(async (o: { url?: string; local?: boolean }) => {
      const realmUrl = realmOf(o.url);
      const store = new CredentialsStore();
      const entry = store.get(realmUrl);
      if (!entry) {
        say(`not signed in to ${realmUrl} (nothing stored in ${store.file})`);
        printResult({ url: realmUrl, signedOut: false }, "login");
        return;
      }
      if (!o.local) {
        try {
          const md = await discover(realmUrl);
          if (entry.refreshToken) await revoke(md, entry.refreshToken, "refresh_token");
          await revoke(md, entry.accessToken, "access_token");
        } catch (err) {
          const why = err instanceof Error ? err.message : String(err);
          throw new RealmError(err instanceof RealmError ? err.code : "UNAVAILABLE", `the tokens could not be revoked at ${realmUrl} (${why}); they are still stored: run \`realm logout\` again when the realm is reachable, or \`realm logout --local\` to only delete them`);
        }
      }
      store.delete(realmUrl);
      say(o.local ? `deleted the stored sign-in of ${entry.principal} to ${realmUrl} (not revoked: valid until ${entry.expiresAt})` : `signed out of ${realmUrl}: the sign-in of ${entry.principal} is revoked and deleted`);
      printResult({ url: realmUrl, signedOut: true, principal: entry.principal, revoked: !o.local }, "login");
    });

  withNatsOptions(
    program
      .command("whoami")
      .description("who the admin API takes you for: your principal, roles and the bindings you act with (the stored `realm login` token for --url, or --token)"),
  )
    .addOption(realmUrlOption("--url <url>", `the realm's HTTP URL whose \`realm login\` token is used when no --token is given (default ${DEFAULT_REALM_URL})`))
    .action(async (o: ConnectionFlags & { url?: string }) => {
      const { url, ...rest } = o;
      printResult(await callContext({ ...rest, ...(url ? { realmUrl: url } : {}) }, "identity", "queries", "whoami", {}, 10_000), "whoami");
    });
}
