/**
 * Measures `zone.import` of generated zone files through the uploads bucket, the path `realm zone import`
 * takes for a big file: a real nats-server, the dns context and host in this process.
 *
 *   npx tsx test/dns/measure-import.ts [10000 100000 1000000]
 *
 * Prints, per size: the file's size, parse time alone (the zone file parser over the file in memory), the
 * upload, the import (read from the bucket, parse, check, append the chunks, projection applied), the AXFR
 * (dig), and the process's RSS after each step and at its peak. Not a test: numbers depend on the machine.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { callRealm } from "../../services/host/client.js";
import { parseZoneFile } from "../../dns/domain/zonefile.js";
import { uploadZoneFile } from "../../dns/upload-client.js";
import { startDns } from "./harness.js";
import { writeZoneFile } from "../support/zone-files.js";

const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MiB`;
let peak = 0;
const sample = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
const rss = () => {
  peak = Math.max(peak, process.memoryUsage().rss);
  return mb(process.memoryUsage().rss);
};

async function axfr(port: number, zone: string): Promise<number> {
  const dig = spawn("dig", ["@127.0.0.1", "-p", String(port), zone, "AXFR", "+nocmd", "+nostats", "+nocomments", "+noquestion"], { stdio: ["ignore", "pipe", "inherit"] });
  let n = 0;
  for await (const line of createInterface({ input: dig.stdout })) if (line && !line.startsWith(";")) n++;
  return n;
}

const dir = mkdtempSync(join(tmpdir(), "realm-measure-"));
const h = await startDns();
try {
  for (const [k, hosts] of (sizes.length ? sizes : [10_000, 100_000, 1_000_000]).entries()) {
    const zone = `m${k}.test.`;
    const file = join(dir, `${zone}zone`);
    const { bytes } = await writeZoneFile(file, { zone, hosts, serial: 2026010101 });
    const text = readFileSync(file, "utf8");
    let t = performance.now();
    parseZoneFile(text, zone);
    const parseMs = performance.now() - t;
    const afterParse = rss();
    t = performance.now();
    const up = await uploadZoneFile({ nats: h.nats.url }, zone, file);
    const uploadMs = performance.now() - t;
    t = performance.now();
    const r = await callRealm<{ serial: number; records: number }>(h.nc, "realm.dns.commands.zone.import", { zone, upload: up.name, sha256: up.sha256 }, { timeoutMs: 15 * 60_000 });
    const importMs = performance.now() - t;
    const afterImport = rss();
    t = performance.now();
    const transferred = await axfr(h.port, zone);
    const axfrMs = performance.now() - t;
    console.log(
      `${hosts} hosts (${r.records} records, ${mb(bytes)} file): parse ${parseMs.toFixed(0)} ms (rss ${afterParse}); upload ${uploadMs.toFixed(0)} ms; import ${importMs.toFixed(0)} ms (rss ${afterImport}); AXFR ${transferred} records in ${axfrMs.toFixed(0)} ms (rss ${rss()}); peak rss so far ${mb(peak)}`,
    );
  }
} finally {
  clearInterval(sample);
  await h.stop();
  rmSync(dir, { recursive: true, force: true });
}
