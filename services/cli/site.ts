import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Option, type Command } from "commander";
import type { UserPermissions } from "../../identity/nats/domain/validation.js";
import { RealmError } from "../kernel/errors.js";
import { positiveInt, printResult } from "./output.js";

/**
 * The user a site's nats-server links to its hub as (docs/ARCHITECTURE.md "Sites"), in the hub's realm
 * account. Over the link travel the site contexts' event appends and bucket writes to the hub's streams,
 * the site's mirrors reading the hub's streams (consumers in the hub's JetStream domain), and the replies
 * to both. Never the API: command, query and service-discovery subjects do not cross, so a hub's request is
 * never answered by a site (whose copy may lag) nor the reverse; the hub's streams cannot be changed or
 * deleted from the site, and the hub's JetStream without a domain prefix is not reachable.
 */
export function siteLinkPermissions(hubDomain: string): UserPermissions {
  const api = `$JS.${hubDomain}.API`;
  const apiSubjects = ["realm.*.commands.>", "realm.*.queries.>", "$SRV.>"];
  return {
    pub: {
      allow: [">"],
      deny: [
        ...apiSubjects,
        "$SYS.>",
        "$JS.API.>",
        `${api}.STREAM.CREATE.>`,
        `${api}.STREAM.UPDATE.>`,
        `${api}.STREAM.DELETE.>`,
        `${api}.STREAM.PURGE.>`,
        `${api}.STREAM.MSG.DELETE.>`,
        `${api}.STREAM.RESTORE.>`,
        `${api}.STREAM.SNAPSHOT.>`,
        `${api}.STREAM.PEER.>`,
        `${api}.STREAM.LEADER.>`,
        `${api}.META.>`,
        `${api}.SERVER.>`,
        `${api}.ACCOUNT.>`,
      ],
    },
    sub: { allow: [">"], deny: apiSubjects },
  };
}

/** `realm site link-creds`: the link user's creds for one site, signed with the hub's realm account key. */
export async function siteLinkCreds(o: { dataDir: string; site: string; hubDomain: string; days: number; out: string }): Promise<{ site: string; file: string; publicKey: string; expiresAt: string }> {
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(o.site)) throw new RealmError("VALIDATION", `site name must be letters, digits, - and _ (at most 32), not ${JSON.stringify(o.site)}`);
  if (!(Number.isInteger(o.days) && o.days >= 1 && o.days <= 365)) throw new RealmError("VALIDATION", `--days must be 1 to 365, not ${o.days}`);
  const operatorDir = join(o.dataDir, "operator");
  const stateFile = join(operatorDir, "operator.json");
  if (!existsSync(stateFile)) throw new RealmError("NOT_FOUND", `${o.dataDir} holds no realm operator (${stateFile}): run this on the hub, with its data dir`);
  if (existsSync(o.out)) throw new RealmError("ALREADY_EXISTS", `${o.out} exists: the link creds are written to a new file`);
  const [{ mintCreds }, { bootstrapOperator }] = await Promise.all([import("../../identity/nats/realm-identities.js"), import("../../identity/nats/bootstrap.js")]);
  const operator = await bootstrapOperator(operatorDir);
  const minted = await mintCreds(operatorDir, operator.state, { name: `site-${o.site}`, account: "realm", permissions: siteLinkPermissions(o.hubDomain) }, o.days * 86400);
  writeFileSync(o.out, minted.creds, { mode: 0o600, flag: "wx" });
  return { site: o.site, file: o.out, publicKey: minted.publicKey, expiresAt: new Date(minted.expiresAt * 1000).toISOString() };
}

/** `realm site link-creds <site>`: run on the hub. Registering loads nothing beyond this file. */
export function registerSiteCommands(program: Command): void {
  const site = program.command("site").description("sites: realms on their own nats-server, a leaf node of this hub (docs/ARCHITECTURE.md \"Sites\")");
  site
    .command("link-creds")
    .description("write the creds a site's nats-server links to this hub with (realm up --hub <url> --hub-creds <file> on the site); run on the hub")
    .argument("<site>", "the site's name (its JetStream domain, realm up --site)")
    .addOption(new Option("--data <dir>", "the hub's data directory").env("REALM_DATA").default("./data"))
    .addOption(new Option("--out <file>", "new file for the creds (mode 0600)").makeOptionMandatory())
    .addOption(new Option("--hub-domain <name>", "the hub's JetStream domain (realm up --hub-domain)").default("hub"))
    .addOption(new Option("--days <n>", "lifetime of the link user, 1 to 365").argParser(positiveInt).default(30))
    .action(async (name: string, o: { data: string; out: string; hubDomain: string; days: number }) => {
      printResult(await siteLinkCreds({ dataDir: o.data, site: name, hubDomain: o.hubDomain, days: o.days, out: o.out }));
    });
}
