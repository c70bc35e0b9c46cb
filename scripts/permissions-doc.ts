/** Writes docs/permissions.md from a realm's own permission table (starts one in a temp dir, then stops it). */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startRealm } from "../services/cli/runtime.js";
import { createLogger } from "../services/host/logger.js";
import { renderPermissionsDoc } from "../services/host/permissions-doc.js";

const dir = mkdtempSync(join(tmpdir(), "realm-permissions-"));
const realm = await startRealm({ dataDir: dir, natsPort: 0, httpPort: 0, dnsPort: 0, log: createLogger({ level: "silent" }) });
try {
  const file = new URL("../docs/permissions.md", import.meta.url);
  writeFileSync(file, renderPermissionsDoc(realm.host.permissions()));
  process.stderr.write(`wrote ${file.pathname}\n`);
} finally {
  await realm.stop();
  rmSync(dir, { recursive: true, force: true });
}
