import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Command } from "commander";
import { buildProgram } from "../../services/cli/program.js";
import { repoRoot } from "../support/cli.js";

/** The repository's Markdown files (git knows them; node_modules is not among them). */
const markdown = () =>
  spawnSync("git", ["ls-files", "*.md"], { cwd: repoRoot, encoding: "utf8" })
    .stdout.split("\n")
    .filter(Boolean);

/** Every `realm <verb> ...` the docs show: in `code spans` and at the start of lines in ``` blocks. */
function realmMentions(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/`(realm [^`\n]+)`/g)) out.push(m[1]!);
  for (const block of text.matchAll(/```[a-z]*\n([\s\S]*?)```/g)) for (const line of block[1]!.split("\n")) for (const m of line.matchAll(/(?:^|[;&|(]\s*|\$\()\s*(realm [^;&|)#\n]+)/g)) out.push(m[1]!);
  return out;
}

/** The words of a mention that name commands, resolved in the tree; the first word that names none, if any. */
function unknownWord(program: Command, mention: string): string | undefined {
  let c = program;
  for (const word of mention.split(/\s+/).slice(1)) {
    if (!/^[a-z][a-z-]*$/.test(word) || c.commands.length === 0) return undefined; // an argument, an option, a placeholder
    const next = c.commands.find((s) => s.name() === word || s.aliases().includes(word));
    if (!next) return word;
    c = next;
  }
  return undefined;
}

describe("the docs and the command line agree", () => {
  it("every `realm ...` command the Markdown files show exists", async () => {
    const program = await buildProgram();
    const wrong: string[] = [];
    let seen = 0;
    for (const file of markdown()) {
      for (const mention of realmMentions(readFileSync(join(repoRoot, file), "utf8"))) {
        seen++;
        const word = unknownWord(program, mention);
        if (word) wrong.push(`${file}: \`${mention}\` (no command ${word})`);
      }
    }
    expect(seen).toBeGreaterThan(40);
    expect(wrong).toEqual([]);
  });

  it("what the README's PKI quick start writes into the working directory is ignored by git, and nothing tracked is", () => {
    const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
    // the files the quick start names: the ceremony dir, the CSR, the intermediate, the leaf and its key
    for (const named of ["realm ceremony init ./root", "ops.csr", "ops.crt", "web1.lab.example.crt + .key"]) expect(readme).toContain(named);
    const written = ["root/root-ca.crt", "root/root-ca.key.sealed.json", "root/register.json", "ops.csr", "ops.crt", "web1.lab.example.crt", "web1.lab.example.key"];
    const ignored = spawnSync("git", ["check-ignore", "--no-index", ...written], { cwd: repoRoot, encoding: "utf8" }).stdout.split("\n").filter(Boolean);
    expect(ignored.sort()).toEqual([...written].sort());
    const trackedButIgnored = spawnSync("git", ["ls-files", "--cached", "--ignored", "--exclude-standard"], { cwd: repoRoot, encoding: "utf8" }).stdout.trim();
    expect(trackedButIgnored).toBe("");
  });
});
