import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { freePort } from "../../services/nats/supervisor.js";
import { EXIT_CODES, EXIT_USAGE } from "../../services/cli/exit-codes.js";
import { buildProgram } from "../../services/cli/program.js";
import { runRealm, startRealmProcess } from "../support/cli.js";

/**
 * The command line's conventions against a running realm, from a directory that is not the repository,
 * with a configuration context (no REALM_NATS_URL, REALM_DATA or REALM_TOKEN: the context says where and
 * with what): -o json|yaml|table|name, -q, `realm init`, `realm context ...`, status, doctor, completion,
 * and the exit status of each error class.
 */
let realm: Awaited<ReturnType<typeof startRealmProcess>>;
let data: string;
let work: string;
let xdg: string;
let natsUrl: string;
let httpUrl: string;
const dirs: string[] = [];

/** `realm <args>` in the work directory with the test's configuration dir (and `env` on top). */
const cli = (args: string[], env: Record<string, string> = {}) => runRealm(args, { XDG_CONFIG_HOME: xdg, ...env }, undefined, work);
const ok = async (...args: string[]) => {
  const r = await cli(args);
  if (r.code !== 0) throw new Error(`realm ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
};
/** The one error line of a failed call and its status. */
const fails = async (args: string[], env: Record<string, string> = {}) => {
  const r = await cli(args, env);
  const lines = r.stderr.trimEnd().split("\n");
  expect(r.stderr).not.toMatch(/^\s+at /m);
  return { code: r.code, line: lines.at(-1) ?? "", stdout: r.stdout };
};

beforeAll(async () => {
  data = mkdtempSync(join(tmpdir(), "realm-conv-data-"));
  work = mkdtempSync(join(tmpdir(), "realm-conv-work-"));
  xdg = mkdtempSync(join(tmpdir(), "realm-conv-xdg-"));
  dirs.push(data, work, xdg);
  const [natsPort, httpPort, dnsPort] = [await freePort(), await freePort(), await freePort()];
  natsUrl = `nats://127.0.0.1:${natsPort}`;
  httpUrl = `http://127.0.0.1:${httpPort}`;
  realm = await startRealmProcess(["up", "--data", data, "--nats-port", String(natsPort), "--http-port", String(httpPort), "--dns-port", String(dnsPort)], "cim-realm is up", {}, 60_000);
}, 90_000);
afterAll(async () => {
  if (realm) {
    realm.child.kill("SIGTERM");
    await realm.exited;
  }
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

describe("realm command line conventions", () => {
  it("init writes a starter configuration; a context reaches the realm from anywhere; -q gives the key alone", async () => {
    const init = await cli(["init", "--data", data, "--nats", natsUrl, "--url", httpUrl]);
    expect(init.code).toBe(0);
    const file = join(xdg, "cim-realm", "config.yaml");
    expect(init.stderr).toContain(`wrote ${file}`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(parseYaml(readFileSync(file, "utf8"))).toEqual({ "current-context": "local", contexts: { local: { nats: natsUrl, url: httpUrl, data } } });
    // a second init does not overwrite it
    expect((await fails(["init"])).code).toBe(EXIT_CODES.ALREADY_EXISTS);

    // the first admin key, -q: the key and nothing else (REALM_TOKEN=$(realm identity bootstrap -q))
    const key = (await ok("identity", "bootstrap", "-q")).trim();
    expect(key).toMatch(/^rk_[0-9a-f]+_\S+$/);
    const tokenFile = join(work, "lab.token");
    writeFileSync(tokenFile, `${key}\n`, { mode: 0o600 });
    chmodSync(tokenFile, 0o600);
    expect(await ok("context", "add", "lab", "--nats", natsUrl, "--url", httpUrl, "--data", data, "--token-file", tokenFile, "--use", "-o", "name")).toBe("context/lab\n");
    const contexts = JSON.parse(await ok("context", "list")) as { contexts: { name: string; current: string; token?: string }[] };
    expect(contexts.contexts).toEqual([expect.objectContaining({ name: "local", current: "" }), expect.objectContaining({ name: "lab", current: "*", token: `file:${tokenFile}` })]);
    // the key never lands in the file: the context points at it
    expect(readFileSync(file, "utf8")).not.toContain(key);
  });

  it("prints results as json (not a terminal), table, yaml, name and -q", async () => {
    expect(JSON.parse(await ok("zone", "create", "lab.example", "--ns", "ns1.lab.example"))).toMatchObject({ zone: "lab.example." });
    await ok("host", "add", "web1.lab.example", "--ip", "192.0.2.80");
    const [json, table, yaml, name, quiet] = await Promise.all([ok("zone", "list"), ok("zone", "list", "-o", "table"), ok("zone", "list", "-o", "yaml"), ok("zone", "list", "-o", "name"), ok("zone", "list", "-q")]);
    expect(JSON.parse(json)).toEqual({ zones: [{ zone: "lab.example.", serial: expect.any(Number), records: 3 }] });
    const rows = table.trimEnd().split("\n");
    expect(rows[0]).toMatch(/^ZONE\s+SERIAL\s+RECORDS$/);
    expect(rows[1]).toMatch(/^lab\.example\.\s+\d+\s+3$/);
    expect(parseYaml(yaml)).toEqual(JSON.parse(json));
    expect(name).toBe("zone/lab.example.\n");
    expect(quiet).toBe("lab.example.\n");

    const records = (await ok("record", "list", "lab.example", "-o", "table")).trimEnd().split("\n");
    expect(records[0]).toMatch(/^NAME\s+TYPE\s+TTL\s+DATA$/);
    expect(records.some((l) => /^web1\.lab\.example\.\s+A\s+3600\s+192\.0\.2\.80$/.test(l))).toBe(true);

    // offline verbs too: CID=$(realm cid of f -q)
    writeFileSync(join(work, "blob"), "blob");
    const cid = (await ok("cid", "of", "blob", "-q")).trim();
    expect(cid).toMatch(/^bafkrei[a-z2-7]+$/);
    expect(JSON.parse(await ok("cid", "of", "blob"))).toEqual({ cid });

    expect(await ok("identity", "principal", "create", "ana", "--name", "Ana", "-o", "name")).toBe("principal/ana\n");
    const principals = (await ok("identity", "principal", "list", "-o", "table")).trimEnd().split("\n");
    expect(principals[0]).toMatch(/^ID\s+KIND\s+NAME\s+DISABLED\s+SOURCE$/);
    expect(principals.some((l) => /^ana\s+person\s+Ana\s+false\s+local$/.test(l))).toBe(true);
  });

  it("JSON keeps the API's times; table and yaml print ISO 8601", async () => {
    await ok("account", "create", "lab");
    await ok("user", "create", "lab", "alice", "--out", join(work, "alice.creds"));
    const json = JSON.parse(await ok("user", "list", "--account", "lab")) as { users: { expiresAt: number }[] };
    const exp = json.users[0]!.expiresAt;
    expect(typeof exp).toBe("number");
    const iso = new Date(exp * 1000).toISOString();
    const yaml = parseYaml(await ok("user", "list", "--account", "lab", "-o", "yaml")) as { users: { expiresAt: string }[] };
    expect(yaml.users[0]!.expiresAt).toBe(iso);
    const table = await ok("user", "list", "--account", "lab", "-o", "table");
    expect(table.split("\n")[0]).toMatch(/^ACCOUNT\s+NAME\s+KIND\s+PUBLIC KEY\s+ISSUED\s+EXPIRES\s+REVOKED$/);
    expect(table).toContain(iso);
    expect(await ok("user", "list", "--account", "lab", "-o", "name")).toBe("user/lab/alice\n");
  });

  it("exits with the status of each error class, one line on stderr", async () => {
    const dead = `nats://127.0.0.1:${await freePort()}`;
    const [notFound, validation, usageFormat, usageMissing, unauthorized, unavailable, envWins, noContext, exists] = await Promise.all([
      fails(["cert", "show", "0x01"]),
      fails(["identity", "apikey", "issue", "ana", "--label", "ci"]),
      fails(["zone", "list", "-o", "xml"]),
      fails(["zone", "create"]),
      fails(["zone", "list", "--token", "rk_0000000000000000_not-a-key"]),
      fails(["zone", "list", "--nats", dead]),
      // a REALM_* variable wins over the context
      fails(["zone", "list"], { REALM_NATS_URL: dead }),
      fails(["zone", "list", "--context", "nope"]),
      fails(["context", "add", "lab", "--nats", natsUrl]),
    ]);
    expect(notFound).toMatchObject({ code: EXIT_CODES.NOT_FOUND, line: expect.stringMatching(/^error: NOT_FOUND: /) });
    expect(validation).toMatchObject({ code: EXIT_CODES.VALIDATION, line: expect.stringMatching(/^error: VALIDATION: .*role/) });
    expect(usageFormat.code).toBe(EXIT_USAGE);
    expect(usageFormat.line).toBe("(add --help for usage)");
    expect(usageMissing.code).toBe(EXIT_USAGE);
    expect(usageFormat.stdout + usageMissing.stdout).toBe("");
    expect(unauthorized).toMatchObject({ code: EXIT_CODES.UNAUTHORIZED, line: expect.stringMatching(/^error: UNAUTHORIZED: /) });
    expect(unavailable).toMatchObject({ code: EXIT_CODES.UNAVAILABLE, line: expect.stringContaining(`cannot reach the realm's NATS at ${dead}`) });
    expect(envWins).toMatchObject({ code: EXIT_CODES.UNAVAILABLE, line: expect.stringContaining(dead) });
    expect(noContext).toMatchObject({ code: EXIT_CODES.NOT_FOUND, line: expect.stringContaining("no context nope in") });
    expect(exists).toMatchObject({ code: EXIT_CODES.ALREADY_EXISTS, line: expect.stringMatching(/^error: ALREADY_EXISTS: context lab exists/) });

    // FORBIDDEN: a key whose role does not grant the query (-q: the key alone)
    await ok("identity", "role", "bind", "ana-dns", "dns-operator", "--principal", "ana");
    const anaKey = (await ok("identity", "apikey", "issue", "ana", "--label", "ci", "--role", "dns-operator", "-q")).trim();
    expect(anaKey).toMatch(/^rk_[0-9a-f]+_\S+$/);
    expect(JSON.parse(await ok("zone", "list", "--token", anaKey))).toMatchObject({ zones: [expect.objectContaining({ zone: "lab.example." })] });
    const forbidden = await fails(["identity", "principal", "list", "--token", anaKey]);
    expect(forbidden).toMatchObject({ code: EXIT_CODES.FORBIDDEN, line: expect.stringMatching(/^error: FORBIDDEN: /) });
  });

  it("a malformed configuration file is an error naming the file and the line", async () => {
    const bad = join(work, "bad.yaml");
    // read once while it is good (its settings are cached beside it), then broken by hand: the change is seen
    writeFileSync(bad, `current-context: lab\ncontexts:\n  lab:\n    nats: ${natsUrl}\n`, { mode: 0o600 });
    expect((await fails(["zone", "list", "--token", "x"], { REALM_CONFIG: bad })).code).toBe(EXIT_CODES.UNAUTHORIZED);
    writeFileSync(bad, "current-context: lab\ncontexts:\n  lab:\n    nats: [unclosed\n");
    const syntax = await fails(["zone", "list"], { REALM_CONFIG: bad });
    expect(syntax.code).toBe(EXIT_CODES.MALFORMED);
    expect(syntax.line).toMatch(new RegExp(`^error: MALFORMED: ${bad}:4: not valid YAML`));
    writeFileSync(bad, "current-context: lab\ncontexts:\n  lab:\n    nats: nats://127.0.0.1:4222\n    password: hunter2\n");
    const schema = await fails(["zone", "list"], { REALM_CONFIG: bad });
    expect(schema.code).toBe(EXIT_CODES.VALIDATION);
    expect(schema.line).toContain(`${bad}:5: unknown key "password" in context lab`);
  });

  it("old spellings keep working for one release, and say so: --context <one of the realm's contexts>, --json, -o <file>", async () => {
    const old = await cli(["audit", "verify", "--context", "dns"]);
    expect(old.code).toBe(0);
    expect(old.stderr).toContain("for the dns context alone use --only dns");
    expect(old.stdout).toMatch(/^ok {6}dns: \d+ events in \d+ aggregates verified/);
    expect(old.stdout.trimEnd().split("\n")).toHaveLength(1);
    const [json, alias] = await Promise.all([ok("audit", "verify", "--only", "dns", "-o", "json"), ok("audit", "verify", "--only", "dns", "--json")]);
    expect((JSON.parse(json) as { context: string }[]).map((r) => r.context)).toEqual(["dns"]);
    expect(JSON.parse(alias)).toEqual(JSON.parse(json));
    const prepare = await cli(["pki", "issuer", "prepare", "ops", "--cn", "Lab Ops CA", "-o", "ops-old.csr"]);
    expect(prepare.code).toBe(0);
    expect(prepare.stderr).toContain("-o/--output <file> is now --out <file>");
    expect(readFileSync(join(work, "ops-old.csr"), "utf8")).toContain("BEGIN CERTIFICATE REQUEST");
    expect(JSON.parse(prepare.stdout)).toMatchObject({ issuer: "ops", csr: "ops-old.csr" });
  });

  it("status and doctor report the running realm", async () => {
    const status = JSON.parse(await ok("status")) as { nats: { connected: boolean; server: { jetstream: boolean } }; http: { healthz: { status: number } }; contexts: { name: string; ready: string }[]; cli: { context: string } };
    expect(status.cli.context).toBe("lab");
    expect(status.nats).toMatchObject({ connected: true, server: { jetstream: true } });
    expect(status.http.healthz.status).toBe(200);
    expect(status.contexts.map((c) => c.name)).toEqual(expect.arrayContaining(["dns", "identity", "pki", "realm"]));
    expect(status.contexts.every((c) => c.ready === "ready")).toBe(true);
    expect(await ok("status", "-o", "table")).toMatch(/^NATS +nats:\/\/127\.0\.0\.1:\d+ +connected/m);

    const doctor = JSON.parse(await ok("doctor")) as { checks: { check: string; status: string }[] };
    const byName = Object.fromEntries(doctor.checks.map((c) => [c.check, c.status]));
    expect(byName).toMatchObject({ config: "ok", "creds mode": "ok", nats: "ok", jetstream: "ok", "realm services": "ok", "http api": "ok", "data dir": "ok", "data dir keys": "ok" });
    expect(doctor.checks.some((c) => c.status === "fail")).toBe(false);
    // a fail is a non-zero exit with the class of the failure, after the report
    const down = await cli(["doctor", "--nats", `nats://127.0.0.1:${await freePort()}`, "-o", "table"]);
    expect(down.code).toBe(EXIT_CODES.UNAVAILABLE);
    expect(down.stdout).toMatch(/^FAIL +nats +/m);
    expect(down.stdout).toContain("fix: start the realm");
  });

  it("`realm completion bash` names every top-level command", async () => {
    const program = await buildProgram();
    const top = program.commands.map((c) => c.name());
    expect(top.length).toBeGreaterThan(15);
    const script = await ok("completion", "bash");
    const line = script.split("\n").find((l) => l.startsWith("    'realm') echo '"));
    expect(line).toBeDefined();
    const words = line!.replace(/^ {4}'realm'\) echo '/, "").replace(/' ;;$/, "").split(" ");
    for (const name of top) expect(words).toContain(name);
    // the script completes: subcommands after `realm zone`, the formats after -o
    const complete = (words: string[]) =>
      spawnSync("bash", ["-c", `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _realm_completion; echo "\${COMPREPLY[@]}"`], { encoding: "utf8" });
    expect(complete(["realm", "zone", ""]).stdout.trim().split(" ")).toEqual(expect.arrayContaining(["create", "list", "delete", "import", "export", "check"]));
    expect(complete(["realm", "zone", "list", "-o", ""]).stdout.trim()).toBe("json yaml table name");
    expect(complete(["realm", "identity", "principal", "cr"]).stdout.trim()).toBe("create");
    for (const shell of ["zsh", "fish"]) {
      const text = await ok("completion", shell);
      expect(text).toContain("'realm zone'");
      // checked by the shell itself where it is installed
      const file = join(work, `realm.${shell}`);
      writeFileSync(file, text);
      const check = spawnSync(shell, ["-n", file], { encoding: "utf8" });
      if (!check.error) expect(check.status, `${shell} -n: ${check.stderr}`).toBe(0);
    }
    expect((await fails(["completion", "tcsh"])).code).toBe(EXIT_USAGE);
  });
});
