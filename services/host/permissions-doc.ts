import type { PermissionEntry } from "./host.js";

/**
 * docs/permissions.md from the permission table (the endpoints' own declarations): one section per
 * context, one row per command and query. `npm run docs:permissions` writes it; a test holds it equal to
 * what a running realm answers, so it cannot drift from the code.
 */
export function renderPermissionsDoc(entries: PermissionEntry[]): string {
  const scope = (e: PermissionEntry) =>
    e.auth === "none" ? "no authentication (proves itself)" : e.auth === "authenticated" ? "any authenticated caller" : e.scoped === "resource" ? "yes: the resource it names" : e.scoped === "filtered" ? "yes: answers only what the scopes hold" : "no: unscoped bindings only";
  const out = [
    "# Permissions",
    "",
    "Generated from the endpoint declarations by `npm run docs:permissions`; a test keeps it equal to the code.",
    "A role grants permission patterns (`dns:zone.create`, `dns:zone.*`, `dns:*`, `dns:read`, `*:read`, `*`);",
    "a binding may limit a role to a scope (README, \"Roles, scopes and how to grant them\"). The last column",
    "says whether a scoped binding can allow the endpoint. (The `secrets` context's endpoints appear when an",
    "escrow is configured; they take unscoped bindings only.)",
    "",
  ];
  const contexts = [...new Set(entries.map((e) => e.context))];
  for (const c of contexts) {
    out.push(`## ${c}`, "", "| permission | kind | HTTP | scoped binding | what |", "|---|---|---|---|---|");
    for (const e of entries.filter((x) => x.context === c).sort((a, b) => a.kind.localeCompare(b.kind) || a.permission.localeCompare(b.permission))) {
      out.push(`| \`${e.permission}\` | ${e.kind} | ${e.http ? `\`${e.http}\`` : "NATS only"} | ${scope(e)} | ${e.description.replace(/\|/g, "\\|").replace(/\n/g, " ")} |`);
    }
    out.push("");
  }
  return out.join("\n");
}
