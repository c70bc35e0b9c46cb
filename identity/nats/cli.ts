import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Command } from "commander";
import { callContext, withConnectionOptions, type ConnectionFlags } from "../../services/cli/call.js";
import { boolean, commaList as list, integer as num, port, positiveInt, printResult, quietMode, type PrintOptions } from "../../services/cli/output.js";
import type { Kind } from "../../services/cli/kinds.js";
import { RealmError, invalid } from "../../services/kernel/errors.js";
import { CSV_COLUMNS, chunkUsers, parseUsersCsv, type CsvDefaults, type CsvUser } from "./users-csv.js";

/**
 * `realm account ...`, `realm user ...`, `realm creds ...`: talk to a running realm over NATS
 * (`realm.identity.commands.account.create` etc.). `realm account bootstrap` works offline.
 */
const toConsole = (text: string) => console.log(text.replace(/\n$/, ""));
const print = (kind: Kind | undefined, r: unknown, opts?: PrintOptions) => printResult(r, kind, { write: toConsole, ...opts });
type Flags = ConnectionFlags & Record<string, unknown>;
const call = (o: Flags, kind: "commands" | "queries", name: string, input: object, timeoutMs?: number) => callContext(o, "identity", kind, name, input, timeoutMs);

function limitsFrom(o: Flags): Record<string, number | boolean> {
  const map: Record<string, string> = { conns: "conn", subs: "subs", payload: "payload", data: "data", leafConns: "leaf", imports: "imports", exports: "exports", jsMem: "memStorage", jsDisk: "diskStorage", jsStreams: "streams", jsConsumers: "consumer" };
  const out: Record<string, number | boolean> = {};
  for (const [flag, key] of Object.entries(map)) if (o[flag] !== undefined) out[key] = o[flag] as number;
  if (o.wildcardExports !== undefined) out.wildcards = o.wildcardExports as boolean;
  return out;
}

/**
 * `user create <account> --from-file users.csv --out-dir dir`: the whole file is checked first (locally, then
 * against the account: no listed user may hold valid creds, the role must exist), so a bad line names its
 * line number and nothing of the file is issued; then user.createMany in chunks (at most 1,000 users and a
 * reply under NATS' max_payload each), every user's creds written to <dir>/<name>.creds (0600) as its chunk
 * returns, progress on stderr every 1,000 users.
 */
async function createFromFile(acct: string, name: string | undefined, o: Flags): Promise<void> {
  if (name) throw invalid("give either a user name or --from-file");
  if (o.out) throw invalid("--from-file writes to --out-dir, not --out");
  if (!o.outDir) throw invalid("--from-file needs --out-dir <dir> for the creds files");
  if (o.allowPub || o.allowSub || o.tag) throw invalid("with --from-file, allow lists and tags come from the file (columns allow_pub, allow_sub, tags)");
  const dir = o.outDir as string;
  let text: string;
  try {
    text = readFileSync(o.fromFile as string, "utf8");
  } catch (err) {
    throw invalid(`cannot read ${String(o.fromFile)}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const defaults: CsvDefaults = {
    ...(o.kind ? { kind: o.kind as CsvDefaults["kind"] } : {}), ...(o.expiryDays ? { expiresInDays: o.expiryDays as number } : {}),
    ...(o.denyPub ? { denyPub: o.denyPub as string[] } : {}), ...(o.denySub ? { denySub: o.denySub as string[] } : {}),
    ...(o.allowPubResponse ? { resp: { max: o.allowPubResponse as number, ttlMs: (o.responseTtlMs as number) ?? 0 } } : {}),
    ...(o.sourceNetwork ? { src: o.sourceNetwork as string[] } : {}), ...(o.connType ? { connectionTypes: o.connType as string[] } : {}),
    ...(o.bearer ? { bearer: true } : {}), ...(o.role ? { role: o.role as string } : {}), ...(o.preset ? { preset: o.preset as "operator" } : {}),
  };
  const users = parseUsersCsv(text, defaults);
  for (const u of users) if (existsSync(join(dir, `${u.input.name}.creds`))) throw invalid(`line ${u.line}: ${join(dir, `${u.input.name}.creds`)} exists already`);
  await checkAgainstAccount(acct, users, o);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const chunks = chunkUsers(users);
  const failures: string[] = [];
  const refs: { user: string; secretRef: unknown }[] = [];
  let done = 0;
  let issued = 0;
  for (const chunk of chunks) {
    let r: { users: { user: string; publicKey?: string; creds?: string; secretRef?: unknown; error?: { code: string; message: string } }[] };
    try {
      r = (await call(o, "commands", "user.createMany", { account: acct, users: chunk.map((u) => u.input) }, 120_000)) as typeof r;
    } catch (err) {
      const e = err instanceof RealmError ? err : new RealmError("UNAVAILABLE", String(err));
      const index = (e.details as { index?: number } | undefined)?.index;
      const where = index !== undefined && chunk[index] ? `line ${chunk[index].line}: ` : "";
      const before = done ? ` (lines before ${chunk[0]!.line} were issued: ${done} users, creds in ${dir})` : " (nothing of the file was issued)";
      throw new RealmError(e.code, `${where}${e.message}${before}`, e.details);
    }
    r.users.forEach((u, i) => {
      if (u.error) failures.push(`line ${chunk[i]!.line} (${u.user}): ${u.error.code} ${u.error.message}`);
      else {
        issued++;
        if (u.creds) writeFileSync(join(dir, `${u.user}.creds`), u.creds, { mode: 0o600 });
        else refs.push({ user: u.user, secretRef: u.secretRef });
      }
    });
    done += chunk.length;
    if (done % 1000 === 0 || done === users.length) console.error(`${done}/${users.length} users done`);
  }
  print(undefined, { account: acct, issued, failed: failures.length, ...(refs.length ? { escrowed: refs } : { dir }) });
  if (failures.length) throw new RealmError("CONFLICT", `${failures.length} users were not issued: ${failures.join("; ")}`);
}

/** The account-side checks of a file before any call that issues: users with valid creds, the role. */
async function checkAgainstAccount(acct: string, users: CsvUser[], o: Flags): Promise<void> {
  let listed: { users: { name: string; revoked: boolean; expiresAt: number }[] };
  try {
    listed = (await call(o, "queries", "users", { account: acct })) as typeof listed;
  } catch (err) {
    if (err instanceof RealmError && err.code === "FORBIDDEN") return void console.error("note: may not list the account's users; the realm checks each chunk itself");
    throw err;
  }
  const t = Math.floor(Date.now() / 1000);
  const valid = new Set(listed.users.filter((u) => !u.revoked && u.expiresAt > t).map((u) => u.name));
  for (const u of users) if (valid.has(u.input.name)) throw new RealmError("ALREADY_EXISTS", `line ${u.line}: NATS user ${acct}/${u.input.name} has valid creds; revoke first (nothing of the file was issued)`);
}

const withLimits = (c: Command) =>
  c
    .option("--conns <n>", "max connections (-1 unlimited)", num)
    .option("--subs <n>", "max subscriptions", num)
    .option("--payload <n>", "max payload bytes", num)
    .option("--data <n>", "max data bytes", num)
    .option("--leaf-conns <n>", "max leaf node connections", num)
    .option("--imports <n>", "max imports", num)
    .option("--exports <n>", "max exports", num)
    .option("--wildcard-exports <bool>", "allow wildcard exports (true or false)", boolean)
    .option("--js-mem <n>", "JetStream memory bytes (0 = off)", num)
    .option("--js-disk <n>", "JetStream disk bytes (0 = off)", num)
    .option("--js-streams <n>", "JetStream streams", num)
    .option("--js-consumers <n>", "JetStream consumers", num);

export function registerNatsAccountCommands(program: Command): void {
  const account = program.command("account").description("NATS accounts (operator mode): create, update, delete, signing keys, export");
  withLimits(withConnectionOptions(account.command("create <name>").description("create an account and push it to every server")))
    .option("--jetstream", "enable JetStream (unlimited unless --js-* given)")
    .option("--description <text>")
    .action(async (name: string, o: Flags) => print("account", await call(o, "commands", "account.create", { name, limits: limitsFrom(o), ...(o.jetstream ? { jetstream: true } : {}), ...(o.description ? { description: o.description } : {}) })));
  withLimits(withConnectionOptions(account.command("update <name>").description("change limits (exports/imports/mappings via --json) and push")))
    .option("--json <json>", "extra fields: {exports:[...], imports:[...], mappings:{...}}")
    .action(async (name: string, o: Flags) => print("account", await call(o, "commands", "account.update", { name, limits: limitsFrom(o), ...(o.json ? (JSON.parse(o.json as string) as object) : {}) })));
  withConnectionOptions(account.command("delete <name>").description("delete an account on every server; its users are refused")).action(async (name: string, o: Flags) => print("account", await call(o, "commands", "account.delete", { name })));
  withConnectionOptions(account.command("list").description("accounts with limits, signing keys, revocations")).action(async (o: Flags) => print("account", await call(o, "queries", "accounts", {})));
  withConnectionOptions(account.command("signing-key <account>").description("add an account signing key; --role + --template make it scoped"))
    .option("--role <role>", "scope role name")
    .option("--template <json>", 'permission template, e.g. {"pub":{"allow":["{{name()}}.>"]}}')
    .action(async (acct: string, o: Flags) => print("signingkey", await call(o, "commands", "signingkey.add", { account: acct, ...(o.role ? { role: o.role } : {}), ...(o.template ? { template: JSON.parse(o.template as string) as object } : {}) })));
  withConnectionOptions(account.command("revoke-signing-key <account> <key>").description("remove a signing key; users it signed are refused")).action(async (acct: string, key: string, o: Flags) => print("signingkey", await call(o, "commands", "signingkey.revoke", { account: acct, key })));
  withConnectionOptions(account.command("rotate-signing-key <account> <key>").description("replace a signing key by a new one with the same scope; re-issue its users")).action(async (acct: string, key: string, o: Flags) => print("signingkey", await call(o, "commands", "signingkey.rotate", { account: acct, key })));
  withConnectionOptions(account.command("export-nsc <dir>").description("write the operator/account JWT tree in nsc's layout (public JWTs only)")).action(async (dir: string, o: Flags) => {
    const r = (await call(o, "queries", "nsc-export", {})) as { files: Record<string, string> };
    for (const [p, jwt] of Object.entries(r.files)) {
      mkdirSync(dirname(join(dir, p)), { recursive: true });
      writeFileSync(join(dir, p), jwt);
      console.error(`wrote ${join(dir, p)}`);
    }
  });
  account
    .command("bootstrap <dir>")
    .description("offline: make the operator (identity key sealed in a ceremony bundle), SYS and realm accounts")
    .option("--passphrase-env <var>", "environment variable holding the bundle passphrase", "REALM_CEREMONY_PASSPHRASE")
    .action(async (dir: string, o: { passphraseEnv: string }) => {
      console.error("generating operator, system and realm accounts ...");
      const { bootstrapOperator } = await import("./bootstrap.js");
      const b = await bootstrapOperator(dir, process.env[o.passphraseEnv]);
      print(undefined, { operator: b.state.operatorPublicKey, systemAccount: b.state.system.publicKey, realmAccount: b.state.realm.publicKey, bundle: b.bundleFile });
      if (b.generatedPassphraseFile) console.error(`bundle passphrase generated into ${b.generatedPassphraseFile} (mode 0600): move it offline`);
    });

  registerNatsServerCommands(program);

  const user = program.command("user").description("NATS users: create (creds once), revoke, list");
  withConnectionOptions(user.command("create <account> [name]").description("issue a user; prints the .creds once (or its escrow reference). With --from-file: many users, their creds into --out-dir"))
    .option("--kind <kind>", "person | service | agent (with --from-file: for lines that name none)", "person")
    .option("--allow-pub <subjects>", "comma list", list)
    .option("--deny-pub <subjects>", "comma list", list)
    .option("--allow-sub <subjects>", "comma list", list)
    .option("--deny-sub <subjects>", "comma list", list)
    .option("--allow-pub-response <n>", "reply to up to n requests", positiveInt)
    .option("--response-ttl-ms <ms>", "response permission TTL", num)
    .option("--source-network <cidrs>", "comma list of CIDRs", list)
    .option("--conn-type <types>", "STANDARD,WEBSOCKET,LEAFNODE,...", list)
    .option("--bearer", "bearer token (no nonce signing); off by default")
    .option("--expiry-days <n>", "default 90 (person/agent), 365 (service)", positiveInt)
    .option("--tag <tags>", "comma list", list)
    .option("--role <role>", "sign with the account's scoped signing key of this role")
    .option("--preset <preset>", "operator: a realm operator (send commands and queries, read its own inbox; realm account only)")
    .option("--out <file>", "write the creds here (mode 0600) instead of stdout")
    .option("--from-file <csv>", `many users: a CSV with the header ${CSV_COLUMNS.join(",")} (lists ;-separated); every line is checked before any user is issued`)
    .option("--out-dir <dir>", "with --from-file: write each user's creds to <dir>/<name>.creds (mode 0600)")
    .action(async (acct: string, name: string | undefined, o: Flags) => {
      if (o.fromFile) return createFromFile(acct, name, o);
      if (!name) throw invalid("name the user (or give --from-file)");
      const perm = (a?: unknown, d?: unknown) => (a || d ? { ...(a ? { allow: a } : {}), ...(d ? { deny: d } : {}) } : undefined);
      const pub = perm(o.allowPub, o.denyPub);
      const sub = perm(o.allowSub, o.denySub);
      const permissions = { ...(pub ? { pub } : {}), ...(sub ? { sub } : {}), ...(o.allowPubResponse ? { resp: { max: o.allowPubResponse, ttlMs: (o.responseTtlMs as number) ?? 0 } } : {}) };
      const r = await call(o, "commands", "user.create", {
        account: acct, name, kind: o.kind,
        ...(Object.keys(permissions).length ? { permissions } : {}),
        ...(o.sourceNetwork ? { src: o.sourceNetwork } : {}), ...(o.connType ? { connectionTypes: o.connType } : {}),
        ...(o.bearer ? { bearer: true } : {}), ...(o.expiryDays ? { expiresInDays: o.expiryDays } : {}), ...(o.tag ? { tags: o.tag } : {}), ...(o.role ? { role: o.role } : {}), ...(o.preset ? { preset: o.preset } : {}),
      });
      const { creds, ...rest } = r as { creds?: string };
      if (creds && o.out) {
        writeFileSync(o.out as string, creds, { mode: 0o600 });
        console.error(`creds written to ${String(o.out)} (delivered once)`);
      } else if (creds && quietMode()) return print("user", r); // -q: the creds alone
      else if (creds) process.stdout.write(creds);
      print("user", rest);
    });
  withConnectionOptions(user.command("revoke <account> <name>").description("revoke now; live connections drop")).action(async (acct: string, name: string, o: Flags) => print("user", await call(o, "commands", "user.revoke", { account: acct, name })));
  withConnectionOptions(user.command("list").description("users, optionally of one account").option("--account <name>")).action(async (o: Flags) => print("user", await call(o, "queries", "users", o.account ? { account: o.account } : {})));

  const creds = program.command("creds").description("NATS creds files");
  withConnectionOptions(creds.command("issue <account> <name>").description("re-issue creds for a user whose creds were revoked or expired (new key)"))
    .option("--kind <kind>", "person | service | agent", "person")
    .option("--out <file>", "write the creds here (mode 0600)")
    .action(async (acct: string, name: string, o: Flags) => {
      const r = (await call(o, "commands", "user.create", { account: acct, name, kind: o.kind })) as { creds?: string };
      if (r.creds && o.out) writeFileSync(o.out as string, r.creds, { mode: 0o600 });
      // The creds file's text by default (`realm creds issue a b > b.creds`); -o json|yaml the whole reply.
      else if (r.creds) print("user", r, { table: (x: { creds: string }) => x.creds, textByDefault: true, write: (t) => void process.stdout.write(t) });
    });
}

/** `realm nats server-config`: the config of an operator-mode cluster node that trusts the data dir's operator. */
function registerNatsServerCommands(program: Command): void {
  const nats = program.command("nats").description("the NATS cluster the realm runs on (operator mode)");
  nats
    .command("server-config")
    .description("write the nats-server config of one node of an operator-mode cluster that trusts this data dir's operator (made, with the trust and the realm's identities, as `realm up` would if absent)")
    .option("--data <dir>", "the realm's data directory (its operator is what the node trusts)", process.env.REALM_DATA ?? "./data")
    .option("--name <server name>", "the node's server_name, unique in the cluster")
    .option("--listen <host:port>", "client address of the node")
    .option("--cluster-name <name>", "the cluster's name (the same on every node)")
    .option("--cluster-listen <host:port>", "route address of the node")
    .option("--routes <urls>", "nats-route://host:port of every node, comma separated")
    .option("--store-dir <dir>", "the node's JetStream directory (the account resolver keeps its JWTs in <dir>/jwt)")
    .option("--http-port <port>", "monitoring port, on the --listen address (default: none)", port)
    .option("--out <file>", "write the config here (mode 0600) instead of stdout")
    .addHelpText("after", "\nThe operator passphrase of a new operator is REALM_CEREMONY_PASSPHRASE (else one is generated into\n<data>/operator/operator-passphrase, 0600: move it offline). Run it once per node, on the same data dir.")
    .action(async (o: { data: string; out?: string } & import("../../services/cli/server-config.js").ServerConfigFlags) => {
      const { writeServerConfig } = await import("../../services/cli/server-config-cli.js");
      const r = await writeServerConfig(o.data, o, o.out);
      if (r.generatedPassphraseFile) console.error(`operator made; its bundle passphrase was generated into ${r.generatedPassphraseFile} (mode 0600): move it offline`);
      if (o.out) print(undefined, { node: r.name, operator: r.operator, file: o.out });
      else process.stdout.write(r.config);
    });
}
