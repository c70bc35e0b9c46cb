/**
 * How a verb's result is printed (`-o json|yaml|table|name`, `-q`): pure functions from a result and its kind
 * (services/cli/kinds.ts) to text. JSON is the result as the API returned it; table and YAML print times as
 * ISO 8601 (an epoch-seconds `expiresAt` becomes `2027-03-01T10:00:00.000Z`); `name` is one `kind/id` per
 * line (kubectl's `-o name`); quiet is the secret the result carries, else its identifiers, one per line.
 */
import { createRequire } from "node:module";
import type { KindSpec } from "./kinds.js";

export const FORMATS = ["json", "yaml", "table", "name"] as const;
export type Format = (typeof FORMATS)[number];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** A dotted path into an object (`subject.id`). */
export function pick(o: unknown, path: string): unknown {
  let v: unknown = o;
  for (const k of path.split(".")) v = isObj(v) ? v[k] : undefined;
  return v;
}

/** Keys that hold a time: `at`, `expiresAt`, `notAfter`, `nextUpdate`, JWT `iat`/`exp`, ... */
const TIME_KEY = /(At|Time|Before|After|Update|Since|Until)$|^(at|iat|exp|nbf|time|started|expires|now)$/;

/** An epoch number (seconds or milliseconds) as ISO 8601; anything else unchanged. */
function isoOf(v: unknown): unknown {
  if (typeof v !== "number" || !Number.isFinite(v)) return v;
  if (v >= 1e9 && v < 1e11) return new Date(v * 1000).toISOString();
  if (v >= 1e11 && v < 1e14) return new Date(v).toISOString();
  return v;
}

/** The result with every time field as ISO 8601 (for table and YAML; JSON keeps what the API returns). */
export function isoTimes(v: unknown, key = ""): unknown {
  if (Array.isArray(v)) return v.map((x) => isoTimes(x, key));
  if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, isoTimes(x, k)]));
  return TIME_KEY.test(key) ? isoOf(v) : v;
}

/** The list a result holds: the kind's list key, else its only array of objects (`{zones: [...]}`). */
export function listOf(result: unknown, spec: KindSpec | undefined): Obj[] | undefined {
  if (Array.isArray(result)) return result.filter(isObj);
  if (!isObj(result)) return undefined;
  if (spec?.list && Array.isArray(result[spec.list])) return (result[spec.list] as unknown[]).filter(isObj);
  const arrays = Object.values(result).filter((v): v is unknown[] => Array.isArray(v) && v.length > 0 && v.every(isObj));
  const empties = Object.entries(result).filter(([, v]) => Array.isArray(v) && v.length === 0);
  if (arrays.length === 1 && Object.keys(result).length <= 2) return arrays[0] as Obj[];
  if (arrays.length === 0 && empties.length === 1 && Object.keys(result).length === 1) return [];
  return undefined;
}

/** The one item a single result holds: the kind's item key (`{principal: {...}}`), else the result itself. */
export function itemOf(result: unknown, spec: KindSpec | undefined): Obj {
  if (!isObj(result)) return { value: result };
  if (spec?.item && isObj(result[spec.item])) return result[spec.item] as Obj;
  const keys = Object.keys(result);
  if (keys.length === 1 && isObj(result[keys[0]!])) return result[keys[0]!] as Obj;
  return result;
}

const FALLBACK_IDS = ["id", "name", "zone", "serial", "pattern", "issuer", "cid", "context", "stream", "publicKey", "url"];

/** An item's identifier: the kind's, else the first of id, name, zone, serial, ... it has. */
export function idOf(item: Obj, spec: KindSpec | undefined): string | undefined {
  if (spec?.id) {
    const v = typeof spec.id === "function" ? spec.id(item) : pick(item, spec.id);
    if (v !== undefined && v !== null) return String(v);
  }
  for (const k of FALLBACK_IDS) if (typeof item[k] === "string" || typeof item[k] === "number") return String(item[k]);
  return undefined;
}

/** One table cell: `-` for nothing, lists joined with commas, objects as `k=v` pairs. */
export function cell(v: unknown): string {
  if (v === undefined || v === null || v === "") return "-";
  if (Array.isArray(v)) return v.length ? v.map((x) => (isObj(x) && Object.keys(x).length === 1 && !isObj(Object.values(x)[0]) ? String(Object.values(x)[0]) : isObj(x) || Array.isArray(x) ? JSON.stringify(x) : String(x))).join(",") : "-";
  if (isObj(v)) {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined);
    return entries.length ? entries.map(([k, x]) => `${k}=${isObj(x) || Array.isArray(x) ? JSON.stringify(x) : String(x)}`).join(",") : "-";
  }
  return String(v).replace(/\s*\n\s*/g, " ");
}

/** Rows under upper-case headers, columns padded to their widest cell, two spaces apart. */
export function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [line(headers), ...rows.map(line)].join("\n") + "\n";
}

const header = (key: string) => key.replace(/([a-z0-9])([A-Z])/g, "$1 $2").replace(/[._-]/g, " ").toUpperCase();

/** The columns of a list: the kind's, else the scalar and short fields the items have (at most 8). */
function columnsOf(items: Obj[], spec: KindSpec | undefined): [string, string][] {
  if (spec?.columns) return spec.columns;
  const keys: string[] = [];
  for (const it of items.slice(0, 20))
    for (const [k, v] of Object.entries(it)) if (!keys.includes(k) && !isObj(v) && !(typeof v === "string" && v.includes("\n"))) keys.push(k);
  return keys.slice(0, 8).map((k) => [header(k), k]);
}

/** A result as a table: a list with one row per item, a single result as FIELD / VALUE lines. */
export function toTable(result: unknown, spec: KindSpec | undefined): string {
  const r = isoTimes(result);
  const items = listOf(r, spec);
  if (items) {
    if (items.length === 0) return `no ${spec?.plural ?? "items"}\n`;
    const cols = columnsOf(items, spec);
    return renderTable(
      cols.map(([h]) => h),
      items.map((it) => cols.map(([, path]) => cell(pick(it, path)))),
    );
  }
  const item = itemOf(r, spec);
  const rows: string[][] = [];
  const walk = (o: Obj, prefix: string) => {
    for (const [k, v] of Object.entries(o)) {
      if (v === undefined) continue;
      if (isObj(v) && Object.keys(v).length > 0 && Object.keys(v).length <= 12 && prefix.split(".").length < 3) walk(v, `${prefix}${k}.`);
      else rows.push([`${prefix}${k}`, typeof v === "string" && v.includes("\n") ? `(${v.split("\n").length} lines; -o json shows it)` : cell(v)]);
    }
  };
  walk(item, "");
  if (isObj(r) && r !== item) for (const [k, v] of Object.entries(r)) if (v !== item && v !== undefined) rows.push([k, cell(v)]);
  return renderTable(["FIELD", "VALUE"], rows);
}

/** `kind/id`, one per line (kubectl's `-o name`). */
export function toNames(result: unknown, spec: KindSpec | undefined, fallbackKind: string): string {
  const kind = spec?.name ?? fallbackKind;
  const items = listOf(result, spec) ?? [itemOf(result, spec)];
  return items.map((it) => idOf(it, spec)).filter((id): id is string => id !== undefined).map((id) => `${kind}/${id}\n`).join("");
}

/** What `-q` prints: the secret the result carries (key, creds, client secret), else its identifiers. */
export function toQuiet(result: unknown, spec: KindSpec | undefined): string {
  if (spec?.quiet) {
    const v = pick(result, spec.quiet) ?? pick(itemOf(result, spec), spec.quiet);
    if (typeof v === "string" || typeof v === "number") return String(v).endsWith("\n") ? String(v) : `${v}\n`;
  }
  const items = listOf(result, spec) ?? [itemOf(result, spec)];
  return items.map((it) => idOf(it, spec)).filter((id): id is string => id !== undefined).map((id) => `${id}\n`).join("");
}

/** The `yaml` package, loaded on first use (synchronously: printing stays a plain call; `realm --help` never loads it). */
export type YamlModule = typeof import("yaml");
let yamlModule: YamlModule | undefined;
export function yaml(): YamlModule {
  yamlModule ??= createRequire(import.meta.url)("yaml") as YamlModule;
  return yamlModule;
}

export const toYaml = (result: unknown): string => yaml().stringify(isoTimes(result), { lineWidth: 0 });
export const toJson = (result: unknown): string => `${JSON.stringify(result, null, 2)}\n`;
