/**
 * LDAP directory benchmark: simple binds per second and searches per second against the realm's read-only
 * directory (identity/directory-server: the identity projection behind a BER layer in Node) beside OpenLDAP
 * slapd (back_mdb) serving the same entries, with the same Argon2id password hashes (slapd's argon2
 * module verifies the realm's own encoded hashes), the same equality indexes (uid, cn) and the same client
 * (ldapts), in the same run.
 *   npx tsx bench/ldap-directory.bench.ts [--seconds 5] [--connections 8] [--people 200]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Client } from "ldapts";
import { connect } from "@nats-io/transport-node";
import { NatsSupervisor } from "../services/nats/supervisor.js";
import { createLogger } from "../services/host/logger.js";
import { newId } from "../services/kernel/index.js";
import { createIdentityContext } from "../identity/service.js";
import { ldapDirectory } from "../identity/directory-server/extension.js";
import { hashPassword } from "../identity/credentials.js";
import { Sealer } from "../services/kernel/seal.js";
import { testTrust } from "../test/support/trust.js";
import { startSlapd } from "../test/support/slapd.js";

const { values } = parseArgs({ options: { seconds: { type: "string", default: "5" }, connections: { type: "string", default: "8" }, people: { type: "string", default: "200" } } });
const SECONDS = Number(values.seconds);
const CONNECTIONS = Number(values.connections);
const PEOPLE = Number(values.people);
/** People who get a password (each costs one Argon2id hash to set): binds cycle through them. */
const WITH_PASSWORD = Math.min(8, PEOPLE);
const say = (s: string) => process.stderr.write(`bench: ${s}\n`);
const base = "dc=bench,dc=test";
const password = (i: number) => `bench password number ${i}`;

const dir = mkdtempSync(join(tmpdir(), "realm-bench-ldap-"));
const nats = new NatsSupervisor({ dataDir: dir });
await nats.start();
const nc = await connect({ servers: nats.url, noAsyncTraces: true });
const log = createLogger({ level: "silent" });
const ctx = await createIdentityContext({ issuer: "http://127.0.0.1/oidc", sealer: Sealer.generate(), lockout: { maxFailures: 1_000_000, lockMinutes: 1 }, extensions: [ldapDirectory({ port: 0, baseDn: base, sizeLimit: 100_000 })] })({ nc, log, dataDir: dir, trust: testTrust() });
const call = (name: string, input: object) => ctx.endpoints.find((e) => e.name === name)!.handle(input, { commandId: newId(), correlationId: newId(), causationId: newId(), actor: "bench", log });
const realmUrl = ((await call("ldapDirectory", {})) as { url: string }).url;

say(`seeding ${PEOPLE} people and ${Math.ceil(PEOPLE / 10)} groups`);
let ldif = `dn: ou=people,${base}\nobjectClass: organizationalUnit\nou: people\n\ndn: ou=groups,${base}\nobjectClass: organizationalUnit\nou: groups\n\n`;
for (let i = 0; i < PEOPLE; i++) {
  const id = `user${i}`;
  await call("principal.create", { id, kind: "person", displayName: `User Number${i}`, email: `${id}@bench.test` });
  let pw = "";
  if (i < WITH_PASSWORD) {
    await call("principal.setPassword", { id, password: password(i) });
    pw = `userPassword: {ARGON2}${await hashPassword(password(i))}\n`;
  }
  ldif += `dn: uid=${id},ou=people,${base}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\nuid: ${id}\ncn: User Number${i}\nsn: Number${i}\nmail: ${id}@bench.test\nuidNumber: ${10000 + i}\ngidNumber: 100\nhomeDirectory: /home/${id}\nloginShell: /bin/bash\n${pw}\n`;
}
for (let g = 0; g * 10 < PEOPLE; g++) {
  await call("group.create", { id: `group${g}`, displayName: `Group ${g}` });
  const members = Array.from({ length: Math.min(10, PEOPLE - g * 10) }, (_, k) => `user${g * 10 + k}`);
  for (const m of members) await call("group.addMember", { id: `group${g}`, principal: m });
  // groupOfNames and posixGroup are both structural in slapd's nis.schema: extensibleObject carries the POSIX attributes.
  ldif += `dn: cn=group${g},ou=groups,${base}\nobjectClass: groupOfNames\nobjectClass: extensibleObject\ncn: group${g}\ngidNumber: ${10000 + g}\n${members.map((m) => `member: uid=${m},ou=people,${base}\nmemberUid: ${m}\n`).join("")}\n`;
}
// slapd gets equality indexes on what the realm indexes (uid, cn), so both look a uid up without a scan.
const slapd = await startSlapd({ baseDn: base, ldif, modules: ["argon2"], databaseConfig: ["index uid,cn eq"] });

interface Row {
  server: string;
  op: string;
  perSecond: number;
  errors: number;
}

/** CONNECTIONS clients, each in a loop for SECONDS: `op(client, i)` per iteration. */
async function loop(url: string, op: (c: Client, i: number) => Promise<void>): Promise<{ ops: number; errors: number }> {
  let ops = 0;
  let errors = 0;
  const end = Date.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async (_, w) => {
      const c = new Client({ url, timeout: 10_000 });
      for (let i = w; Date.now() < end; i += CONNECTIONS) {
        try {
          await op(c, i);
          ops++;
        } catch {
          errors++;
        }
      }
      await c.unbind().catch(() => undefined);
    }),
  );
  return { ops, errors };
}

async function measure(server: string, url: string): Promise<Row[]> {
  const bindDn = (i: number) => `uid=user${i % WITH_PASSWORD},ou=people,${base}`;
  const bind = (c: Client, i: number) => c.bind(bindDn(i), password(i % WITH_PASSWORD));
  const searchOne = async (c: Client, i: number) => {
    const r = await c.search(base, { scope: "sub", filter: `(&(objectClass=inetOrgPerson)(uid=user${i % PEOPLE}))`, attributes: ["uid", "cn", "mail", "uidNumber"] });
    if (r.searchEntries.length !== 1) throw new Error(`expected one entry, got ${r.searchEntries.length}`);
  };
  // Check, warm up, then measure.
  const probe = new Client({ url });
  await bind(probe, 0);
  await searchOne(probe, 1);
  await probe.unbind();
  say(`${server}: binds, ${SECONDS}s, ${CONNECTIONS} connections`);
  const b = await loop(url, bind);
  say(`${server}: searches`);
  const bound = (c: Client, i: number) => (i < CONNECTIONS ? bind(c, i).then(() => searchOne(c, i)) : searchOne(c, i));
  const s = await loop(url, bound);
  return [
    { server, op: "simple bind (Argon2id)", perSecond: b.ops / SECONDS, errors: b.errors },
    { server, op: `search (uid=...) sub, ${PEOPLE} people`, perSecond: s.ops / SECONDS, errors: s.errors },
  ];
}

try {
  const rows = [...(await measure("slapd 2.5 (back_mdb)", slapd.url)), ...(await measure("realm directory", realmUrl))];
  console.log(`\nLDAP directory, ${CONNECTIONS} connections, ${SECONDS}s per run, ldapts client`);
  console.log("| server | operation | ops/s | errors |");
  console.log("|---|---|---:|---:|");
  for (const r of rows) console.log(`| ${r.server} | ${r.op} | ${r.perSecond.toFixed(0)} | ${r.errors} |`);
  for (const op of [rows[0]!.op, rows[1]!.op]) {
    const [a, b] = rows.filter((r) => r.op === op);
    console.log(`ratio realm / slapd, ${op}: ${((b!.perSecond / a!.perSecond) * 100).toFixed(1)}%`);
  }
} finally {
  await slapd.stop();
  await ctx.stop?.();
  await nc.close();
  await nats.stop();
  rmSync(dir, { recursive: true, force: true });
}
