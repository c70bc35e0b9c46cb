import { describe, expect, it } from "vitest";
import { InvalidArgumentError, type Command, type Option } from "commander";
import { buildProgram, describeError } from "../../services/cli/program.js";
import { EXIT_CODES, exitCodeOf } from "../../services/cli/exit-codes.js";
import { RealmError, ErrorCodes } from "../../services/kernel/errors.js";
import { errors as natsErrors } from "@nats-io/nats-core";

/** Every command of the tree, with its full name (`realm zone create`). */
function* commands(c: Command, prefix = "realm"): Generator<{ name: string; command: Command }> {
  for (const sub of c.commands) {
    const name = `${prefix} ${sub.name()}`;
    yield { name, command: sub };
    yield* commands(sub, name);
  }
}

/** An option that takes a number, by what its placeholder or its flag says. */
const NUMERIC = /<(n|ms|port|seconds|bytes|days|hours|years)>|-(port|ttl|limit|size|interval|expiring|days|years|hours)\b/;

describe("the command line's options", () => {
  it("every numeric option of every command is checked while the command line is parsed (a usage error, before any action)", async () => {
    const program = await buildProgram();
    const numeric: { command: string; option: Option }[] = [];
    for (const { name, command } of commands(program)) for (const option of command.options) if (NUMERIC.test(option.flags)) numeric.push({ command: name, option });
    // They are many, in every group (zone, record, host, cid, account, user, cert, ceremony, identity, up, maintenance).
    expect(numeric.length).toBeGreaterThanOrEqual(35);
    for (const group of ["zone", "record", "host", "cid", "account", "user", "cert", "ceremony", "identity", "up", "maintenance"]) expect(numeric.some((n) => n.command.startsWith(`realm ${group}`))).toBe(true);
    for (const { command, option } of numeric) {
      const where = `${command} ${option.flags}`;
      expect(option.parseArg, `${where} has no parser`).toBeTypeOf("function");
      for (const bad of ["abc", "1.5", "", "12abc"]) expect(() => option.parseArg!(bad, undefined), `${where} took ${JSON.stringify(bad)}`).toThrow(InvalidArgumentError);
      expect(option.parseArg!("1", undefined), where).toBe(1);
    }
    const port = numeric.find((n) => n.command === "realm up" && n.option.long === "--http-port")!.option;
    expect(() => port.parseArg!("65536", undefined)).toThrow("Expected a port from 0 to 65535.");
    expect(port.parseArg!("0", undefined)).toBe(0);
    // and the one yes/no value: `--wildcard-exports maybe` no longer means false
    const wildcard = [...commands(program)].find((c) => c.name === "realm account create")!.command.options.find((o) => o.long === "--wildcard-exports")!;
    expect(() => wildcard.parseArg!("maybe", undefined)).toThrow("Expected true or false.");
    expect(wildcard.parseArg!("false", undefined)).toBe(false);
  });

  it("`realm secrets` is registered whole like every group (its Vaultwarden client loads inside its actions)", async () => {
    const secrets = (await buildProgram()).commands.find((c) => c.name() === "secrets")!;
    expect(secrets.commands.map((c) => c.name())).toEqual(expect.arrayContaining(["get", "versions", "list"]));
  });

  it("each error class has its own exit status; 1 is the generic failure, 2 a usage error", () => {
    const statuses = Object.values(ErrorCodes).map((c) => exitCodeOf(c));
    expect(exitCodeOf("INTERNAL")).toBe(1);
    expect(exitCodeOf("not a code")).toBe(1);
    // distinct, except PROJECTION (reserved) sharing INTERNAL's 1; none is 0 or the usage status 2
    expect(new Set(statuses.filter((s) => s !== 1)).size).toBe(statuses.filter((s) => s !== 1).length);
    expect(statuses).not.toContain(0);
    expect(statuses).not.toContain(2);
    expect(describeError(new RealmError("NOT_FOUND", "no zone x"))).toEqual({ code: "NOT_FOUND", message: "no zone x", exit: EXIT_CODES.NOT_FOUND });
    expect(describeError(new natsErrors.NoRespondersError("realm.dns.queries.zones"))).toMatchObject({ code: "UNAVAILABLE", exit: EXIT_CODES.UNAVAILABLE });
    expect(describeError(Object.assign(new Error("ENOENT: no such file or directory, open 'x.zone'"), { code: "ENOENT" }))).toMatchObject({ code: "NOT_FOUND", exit: EXIT_CODES.NOT_FOUND });
    expect(describeError(new Error("boom\n  at somewhere"))).toEqual({ code: "INTERNAL", message: "boom at somewhere", exit: 1 });
  });
});
