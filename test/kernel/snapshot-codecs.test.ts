import { describe, expect, it } from "vitest";
import { v7 as uuidv7 } from "uuid";
import { RecordChunker, recordsOf, type Decider, type EventEnvelope, type ProjectionDefinition } from "../../services/kernel/index.js";
import { nameProjection, zoneOf } from "../../dns/projection.js";
import { zoneDecider, type ZoneCommand } from "../../dns/domain/zone.js";
import { subjectDecider } from "../../dns/domain/subjects.js";
import { directoryProjection, directoryView } from "../../identity/domain/directory.js";
import { principalDecider } from "../../identity/domain/principal.js";
import { groupDecider } from "../../identity/domain/group.js";
import { roleDecider } from "../../identity/domain/role.js";
import { policyDecider } from "../../identity/domain/policy.js";
import { pkiProjection } from "../../pki/projection.js";
import { secretsProjection } from "../../secrets-client/records.js";
import { sshProjection } from "../../pki/ssh/projection.js";
import { sshPeopleProjection } from "../../pki/ssh/people.js";
import { DEFAULT_SSH_POLICY, sshCaDecider, sshCertDecider } from "../../pki/ssh/domain.js";

/** A stored event as a projection sees it (the envelope fields apply reads; CIDs and seals do not matter here). */
function envelope(aggregate: { type: string; id: string }, type: string, data: unknown, version: number): EventEnvelope {
  const id = uuidv7();
  return { id, type, aggregate, version, occurredAt: new Date(Date.UTC(2026, 0, 1, 0, 0, version)).toISOString(), actor: "codec-test", correlationId: id, causationId: id, data, prev: null, cid: `b${id}`, signer: "", sig: "" };
}

/** Decides each command on the view the projection gives and applies what it decided. */
function drive<S, C, M>(def: ProjectionDefinition<M>, state: M, decider: Decider<S, C>, view: (m: M, id: string) => S, id: string, commands: C[]): M {
  let version = 0;
  for (const c of commands) for (const e of decider.decide(view(state, id), c)) state = def.apply(state, envelope({ type: decider.aggregateType, id }, e.type, e.data, ++version), version);
  return state;
}

/** encode -> NDJSON chunks (small, so records straddle chunks) -> decode. */
function roundTrip<S>(def: ProjectionDefinition<S>, state: S): { state: S; records: number; bytes: number } {
  const chunks: Buffer[] = [];
  const chunker = new RecordChunker(256, (c) => chunks.push(c));
  for (const r of def.snapshot!.encode(state)) chunker.push(r);
  chunker.end();
  return { state: def.snapshot!.decode(recordsOf(chunks)), records: chunker.records, bytes: chunker.bytes };
}

describe("snapshot codecs of the contexts' projections", () => {
  it("dns-names: zones with their RRsets (one record each), deleted zones, namespaces", () => {
    const changed: string[] = [];
    const def = nameProjection((z) => changed.push(z));
    let m = def.initial();
    const zone = (name: string, commands: ZoneCommand[]) => (m = drive(def, m, zoneDecider, zoneOf, name, commands));
    const soa = { mname: "ns1", rname: "hostmaster" };
    zone("lab.example.", [{ type: "create", soa, ns: ["ns1.lab.example."] }, ...Array.from({ length: 50 }, (_, i) => ({ type: "add" as const, record: { name: `h${i}`, type: "A", data: `192.0.2.${i}` } })), { type: "add", record: { name: "h1", type: "A", data: "192.0.2.201" } }, { type: "set", name: "www", rtype: "CNAME", data: ["h1.lab.example."] }]);
    zone("gone.example.", [{ type: "create", soa, ns: ["ns1.gone.example."] }, { type: "delete" }]);
    m = drive(def, m, subjectDecider, (x) => x.subjects, "registry", [{ type: "register", pattern: "orders.>", owner: "acct-a" }]);
    // An import under way when the snapshot is taken: its staged RRsets go along, apart from the zone's.
    zone("staging.example.", [{ type: "create", soa, ns: ["ns1.staging.example."] }]);
    m.zones.get("staging.example.")!.staged = { importId: "imp-1", serial: 9, soa: m.zones.get("staging.example.")!.soa!, chunks: 2, records: 1, next: 1, count: 1, rrsets: new Map([["a.staging.example. A", { name: "a.staging.example.", type: "A", ttl: 300, data: ["192.0.2.7"] }]]) };
    changed.length = 0;
    const back = roundTrip(def, m);
    expect(back.state).toEqual(m);
    expect(back.state.zones.get("lab.example.")!.rrsets.size).toBe(52);
    expect(back.state.deletedZones.has("gone.example.")).toBe(true);
    expect(back.state.zones.get("staging.example.")!.staged!.rrsets.size).toBe(1);
    expect(back.records).toBe(3 + 52 + 1 + 1 + 1 + 1); // three zones, their RRsets (apex NS too), one staged, one namespace, the memberships count
    // The DNS server re-indexes every restored zone.
    expect(changed).toEqual(["lab.example.", "staging.example."]);
  });

  it("identity-directory: every aggregate of every kind, as it was", () => {
    const def = directoryProjection;
    let d = def.initial();
    const view = (type: string) => (m: typeof d, id: string) => directoryView(m, type, id) as never;
    d = drive(def, d, principalDecider, view("principal"), "alice", [{ type: "create", kind: "person", displayName: "Alice", email: "alice@example.org" }, { type: "disable", reason: "left" }]);
    d = drive(def, d, groupDecider, view("group"), "ops", [{ type: "create", displayName: "Ops" }, { type: "addMember", principal: "alice" }]);
    d = drive(def, d, roleDecider, view("role"), "dns-admin", [{ type: "define", description: "DNS", permissions: ["dns:*"] }]);
    d = drive(def, d, policyDecider, view("policy"), "b1", [{ type: "bind", role: "dns-admin", subject: { kind: "group", id: "ops" }, conditions: {}, scope: { kind: "zone", id: "lab.example." } }]);
    const back = roundTrip(def, d);
    expect(back.state).toEqual(d);
    expect(back.state.principals.get("alice")).toMatchObject({ disabled: true, disabledReason: "left" });
  });

  it("pki-certificates: issuers, certificates and the indexes with their Sets", () => {
    const def = pkiProjection();
    const m = def.initial();
    m.issuers.set("ops", { id: "ops", exists: true, previous: [], policy: {} } as never);
    m.certificates.set("01", { serial: "01", exists: true, commonName: "web1.lab.example", revoked: { at: "2026-01-01T00:00:00.000Z", reason: "keyCompromise" } } as never);
    m.byName.set("web1.lab.example", new Set(["01", "02"]));
    m.revokedBy.set("ops", new Set(["01"]));
    m.revocations = 1;
    expect(roundTrip(def, m).state).toEqual(m);
  });

  it("pki-ssh: CAs with revoked key ids, certificates, revoked serials and KRL versions; pki-ssh-people with its Sets", () => {
    const def = sshProjection();
    let m = def.initial();
    const ca = { keySpec: "ed25519", publicKey: "ssh-ed25519 AAAA", fingerprint: "SHA256:x", keySha256: "00", createdAt: "2026-01-01T00:00:00.000Z" };
    m = drive(def, m, sshCaDecider, (s, id) => s.cas.get(id) ?? sshCaDecider.initialState(id), "ops", [{ type: "create", ca }, { type: "policy", policy: { ...DEFAULT_SSH_POLICY, userMaxHours: 8, userDefaultHours: 4 } }, { type: "revokeKeyId", keyId: "bob", at: "2026-01-02T00:00:00.000Z", reason: "affiliationChanged" }]);
    const facts = { serial: "42", issuer: "ops", caFingerprint: "SHA256:x", kind: "user" as const, keyId: "alice", principals: ["alice"], validAfter: "2026-01-01T00:00:00.000Z", validBefore: "2026-01-01T08:00:00.000Z", criticalOptions: {}, extensions: ["permit-pty"], key: { type: "ssh-ed25519", fingerprint: "SHA256:y" }, certificate: "ssh-ed25519-cert-v01@openssh.com AAAA" };
    m = drive(def, m, sshCertDecider, (s, id) => s.certs.get(id) ?? sshCertDecider.initialState(id), "42", [{ type: "issue", facts }, { type: "revoke", reason: "keyCompromise", at: "2026-01-01T01:00:00.000Z" }]);
    expect(m.revokedSerials.get("ops")).toEqual(new Set(["42"]));
    expect(roundTrip(def, m).state).toEqual(m);
    const people = sshPeopleProjection();
    const p = people.initial();
    p.set("alice", { kind: "person", disabled: false, groups: new Set(["admins", "ops"]) });
    expect(roundTrip(people, p).state).toEqual(p);
  });

  it("secrets: every escrowed secret", () => {
    const def = secretsProjection();
    let m = def.initial();
    for (const [i, itemId] of ["i1", "i2", "i1"].entries()) m = def.apply(m, envelope({ type: "secret", id: itemId }, "SecretEscrowed", { principal: "alice", name: `n${itemId}`, itemId, revision: `r${i}` }, i + 1));
    const back = roundTrip(def as ProjectionDefinition<typeof m>, m);
    expect(back.state).toEqual(m);
    expect(back.state.get("i1")!.versions).toBe(2);
  });
});
