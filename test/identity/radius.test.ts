import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Command } from "commander";
import * as OTPAuth from "otpauth";
import { registerRadiusCommands } from "../../identity/radius/cli.js";
import { createSocket } from "node:dgram";
import { jetstreamManager } from "@nats-io/jetstream";
import { startIdentity, type IdentityHarness } from "./harness.js";
import { radiusServer } from "../../identity/radius/service.js";
import type { RadiusServer } from "../../identity/radius/server.js";
import { sessionAggregateId, type AccountingRecord } from "../../identity/radius/domain.js";
import { Attr, checkMessageAuthenticator, checkResponseAuthenticator, Code, decode, encodeAccessRequest, hidePassword, str, text, type Packet } from "../../identity/radius/packet.js";
import { authenticatorResponse, challengeHash, challengeResponse, microsoftAttributes, MsAttr, ntHash, vsa } from "../../identity/radius/mschap.js";
import { randomBytes } from "node:crypto";
import { exchange, radclient, radtest, requestAuthenticator, until } from "./radius-peers.js";

/**
 * The realm's RADIUS server against FreeRADIUS's own clients (radclient, radtest from freeradius-utils) and
 * packets crafted with node:dgram for what radclient will not send (no or a wrong Message-Authenticator).
 */
let h: IdentityHarness;
let server: RadiusServer;
let secret: string;
const PASSWORD = "correct horse battery";

async function streamText(hh: IdentityHarness): Promise<string> {
  const jsm = await jetstreamManager(hh.nc);
  const info = await jsm.streams.info("REALM_IDENTITY");
  let all = "";
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage("REALM_IDENTITY", { seq }).catch(() => undefined);
    if (m) all += new TextDecoder().decode(m.data) + "\n";
  }
  return all;
}

const auth = () => `127.0.0.1:${server.ports.auth}`;
const pap = (user: string, password: string) => `User-Name = "${user}", User-Password = "${password}", Message-Authenticator = 0x00\n`;

function access(user: string, password: string, mode: "good" | "wrong" | "none", key = secret): { packet: Buffer; ra: Buffer } {
  const ra = requestAuthenticator();
  const packet = encodeAccessRequest(Math.floor(Math.random() * 256), ra, [str(Attr.UserName, user), { type: Attr.UserPassword, value: hidePassword(password, Buffer.from(key), ra) }], Buffer.from(key), { messageAuthenticator: mode });
  return { packet, ra };
}

beforeAll(async () => {
  h = await startIdentity({
    lockout: { maxFailures: 3, lockMinutes: 15 },
    extensions: [
      async (core) => {
        const r = await radiusServer({ port: 0, host: "127.0.0.1" })(core);
        server = r.server!;
        return r;
      },
    ],
  });
  for (const g of ["staff", "guests"]) await h.call("group.create", { id: g, displayName: g });
  for (const [id, group] of [["alice", "staff"], ["bob", "guests"], ["carol", "staff"], ["dave", "staff"]] as const) {
    await h.call("principal.create", { id, kind: "person", displayName: id });
    await h.call("principal.setPassword", { id, password: PASSWORD });
    await h.call("group.addMember", { id: group, principal: id });
  }
  await h.call("principal.disable", { id: "carol", reason: "left" });
  const r = await h.call<{ secret: string; client: { id: string } }>("radiusClient.add", {
    id: "nas1",
    address: "127.0.0.1/32",
    allowedGroups: ["staff"],
    replies: [{ group: "staff", vlan: "42", filterId: "staff-acl" }],
  });
  secret = r.secret;
}, 60_000);

afterAll(async () => {
  // Nothing the server logged holds a shared secret or a password.
  const logs = h?.logs.join("") ?? "";
  await h?.stop();
  expect(logs).toContain("RADIUS Access-Reject");
  expect(logs).not.toContain(secret);
  expect(logs).not.toContain(PASSWORD);
});

describe("RADIUS clients", () => {
  it("shows the shared secret once and keeps it out of events and listings", async () => {
    expect(secret).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const list = await h.call<{ clients: object[] }>("radiusClients", {});
    expect(JSON.stringify(list)).not.toContain(secret);
    expect(list.clients).toEqual([expect.objectContaining({ id: "nas1", address: "127.0.0.1/32", allowedGroups: ["staff"] })]);
    const events = await streamText(h);
    expect(events).toContain("RadiusClientAdded");
    expect(events).not.toContain(secret);
  });

  it("refuses bad input with a typed error and changes nothing", async () => {
    await expect(h.call("radiusClient.add", { id: "bad", address: "10.0.0.0/33", allowedGroups: ["staff"] })).rejects.toMatchObject({ code: "VALIDATION" });
    await expect(h.call("radiusClient.add", { id: "bad", address: "10.0.0.1", allowedGroups: ["staff"], replies: [{ group: "guests", vlan: "7" }] })).rejects.toMatchObject({ code: "VALIDATION" });
    await expect(h.call("radiusClient.add", { id: "nas1", address: "10.0.0.1", allowedGroups: ["staff"] })).rejects.toMatchObject({ code: "ALREADY_EXISTS" });
    await expect(h.call("radiusClient.remove", { id: "nope" })).rejects.toMatchObject({ code: "NOT_FOUND" });
    const list = await h.call<{ clients: { id: string }[] }>("radiusClients", {});
    expect(list.clients.map((c) => c.id)).toEqual(["nas1"]);
  });
});

async function realm(...args: string[]): Promise<string> {
  let out = "";
  const program = new Command("realm").exitOverride().configureOutput({ writeOut: (t) => (out += t) });
  registerRadiusCommands(program);
  program.commands.forEach(function deep(c: Command): void {
    c.exitOverride().configureOutput({ writeOut: (t) => (out += t) });
    c.commands.forEach(deep);
  });
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((t: string | Uint8Array) => {
    out += String(t);
    return true;
  });
  try {
    await program.parseAsync(["node", "realm", ...args]);
  } catch (err) {
    if ((err as { code?: string }).code !== "commander.helpDisplayed") throw err;
  } finally {
    spy.mockRestore();
  }
  return out;
}

describe("realm radius client", () => {
  it("adds, lists and removes a NAS from the command line; --help names the flags", async () => {
    const conn = ["--nats", h.nats.url, "--token", h.admin.replace(/^Bearer /, "")];
    const added = JSON.parse(await realm("radius", "client", "add", "nas2", "--address", "10.1.0.0/16", "--group", "staff", "--vlan", "staff=7", "--filter-id", "staff=lab", ...conn)) as { secret: string; client: { replies: object[] } };
    expect(added.secret).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(added.client.replies).toEqual([{ group: "staff", vlan: "7", filterId: "lab" }]);
    const listed = await realm("radius", "client", "list", ...conn);
    expect(listed).toContain("nas2");
    expect(listed).not.toContain(added.secret);
    await realm("radius", "client", "remove", "nas2", ...conn);
    expect(await realm("radius", "client", "list", ...conn)).not.toContain("nas2");
    const help = await realm("radius", "client", "add", "--help");
    for (const flag of ["--address", "--group", "--vlan", "--filter-id"]) expect(help).toContain(flag);
  });
});

describe("PAP", () => {
  it("accepts a person in an allowed group with the group's VLAN and Filter-Id (radclient)", async () => {
    const r = await radclient(auth(), "auth", secret, pap("alice", PASSWORD));
    expect(r.out).toContain("Received Access-Accept");
    expect(r.out).toMatch(/Tunnel-Type(:0)? = VLAN/);
    expect(r.out).toMatch(/Tunnel-Medium-Type(:0)? = IEEE-802/);
    expect(r.out).toMatch(/Tunnel-Private-Group-Id(:0)? = "42"/);
    expect(r.out).toContain('Filter-Id = "staff-acl"');
    expect(r.code).toBe(0);
  });

  it("accepts through radtest", async () => {
    const r = await radtest("alice", PASSWORD, auth(), secret);
    expect(r.out).toContain("Received Access-Accept");
  });

  it("rejects a wrong password, a disabled person, a person not allowed on the NAS, an unknown name", async () => {
    for (const [user, password] of [["alice", "not the password"], ["carol", PASSWORD], ["bob", PASSWORD], ["nobody", PASSWORD]] as const) {
      const r = await radclient(auth(), "auth", secret, pap(user, password));
      expect(r.out, user).toContain("Received Access-Reject");
      expect(r.out).not.toContain("Tunnel-Private-Group-Id");
    }
  });

  it("honours the lockout: after 3 wrong passwords the right one is refused", async () => {
    for (let i = 0; i < 3; i++) expect((await radclient(auth(), "auth", secret, pap("dave", "wrong password!"))).out).toContain("Access-Reject");
    await until(() => h.ctx.core.dir.principals.get("dave")?.lockedUntil !== undefined);
    expect((await radclient(auth(), "auth", secret, pap("dave", PASSWORD))).out).toContain("Access-Reject");
  });

  it("signs its answers: Response Authenticator and Message-Authenticator check with the secret", async () => {
    const { packet, ra } = access("alice", PASSWORD, "good");
    const resp = (await exchange(packet, server.ports.auth))!;
    expect(resp.code).toBe(Code.AccessAccept);
    expect(checkResponseAuthenticator(resp, ra, Buffer.from(secret))).toBe(true);
    expect(checkResponseAuthenticator(resp, ra, Buffer.from("another secret"))).toBe(false);
    expect(checkMessageAuthenticator(resp, Buffer.from(secret), ra)).toBe("ok");
    expect(resp.attributes[0]!.type).toBe(Attr.MessageAuthenticator);
  });

  it("drops an Access-Request without or with a wrong Message-Authenticator", async () => {
    for (const [mode, reason] of [["none", "no-message-authenticator"], ["wrong", "bad-message-authenticator"]] as const) {
      const before = server.drops.get(reason) ?? 0;
      const answer = exchange(access("alice", PASSWORD, mode).packet, server.ports.auth, { waitMs: 800 });
      await until(() => (server.drops.get(reason) ?? 0) > before);
      expect(await answer).toBeUndefined();
    }
  });

  it("drops an Access-Request signed with another secret, and from an address no client holds", async () => {
    const before = server.drops.get("bad-message-authenticator") ?? 0;
    const wrongKey = exchange(access("alice", PASSWORD, "good", "not the shared secret").packet, server.ports.auth, { waitMs: 800 });
    await until(() => (server.drops.get("bad-message-authenticator") ?? 0) > before);
    expect(await wrongKey).toBeUndefined();
    const unknownBefore = server.drops.get("unknown-client") ?? 0;
    const stranger = exchange(access("alice", PASSWORD, "good").packet, server.ports.auth, { bindAddress: "127.0.0.2", waitMs: 800 });
    await until(() => (server.drops.get("unknown-client") ?? 0) > unknownBefore);
    expect(await stranger).toBeUndefined();
  });

  it("survives malformed packets and answers afterwards", async () => {
    const before = server.drops.get("malformed") ?? 0;
    const good = access("alice", PASSWORD, "good").packet;
    const badLength = Buffer.from(good);
    badLength.writeUInt16BE(4000, 2);
    const badAttr = Buffer.from(good);
    badAttr[21] = 0; // an attribute of length 0
    const s = createSocket("udp4");
    await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
    for (const b of [Buffer.alloc(3), Buffer.alloc(19), badLength, badAttr, Buffer.concat([good.subarray(0, 20), Buffer.from([1, 200])])]) s.send(b, server.ports.auth, "127.0.0.1");
    await until(() => (server.drops.get("malformed") ?? 0) >= before + 5);
    s.close();
    expect((await radclient(auth(), "auth", secret, pap("alice", PASSWORD))).out).toContain("Received Access-Accept");
  });

  it("answers a retransmission with the same answer without deciding it again", async () => {
    const { packet } = access("alice", PASSWORD, "good");
    const accepts = server.answered.get("accept") ?? 0;
    // From one socket (the same source port), as a NAS retransmits.
    const s = createSocket("udp4");
    const answers: Buffer[] = [];
    s.on("message", (m) => answers.push(m));
    await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
    s.send(packet, server.ports.auth, "127.0.0.1");
    await until(() => answers.length === 1);
    s.send(packet, server.ports.auth, "127.0.0.1");
    await until(() => answers.length === 2);
    s.close();
    const [first, second] = answers.map((a) => decode(a)) as [Packet, Packet];
    expect(first.code).toBe(Code.AccessAccept);
    expect(second.raw.equals(first.raw)).toBe(true);
    expect(server.answered.get("accept")).toBe(accepts + 1);
    expect(text(first, Attr.TunnelPrivateGroupId)).toBe("42");
  });
});

describe("accounting", () => {
  const acct = () => `127.0.0.1:${server.ports.acct}`;

  it("records Start, Interim-Update and Stop as events and answers each (radclient acct)", async () => {
    const base = `Acct-Session-Id = "sess-1", User-Name = "alice", NAS-Identifier = "sw1"`;
    for (const line of [
      `Acct-Status-Type = Start, ${base}`,
      `Acct-Status-Type = Interim-Update, ${base}, Acct-Session-Time = 30, Acct-Input-Octets = 1000, Acct-Output-Octets = 2000`,
      `Acct-Status-Type = Stop, ${base}, Acct-Session-Time = 60, Acct-Input-Octets = 5, Acct-Input-Gigawords = 1, Acct-Output-Octets = 4000, Acct-Terminate-Cause = User-Request`,
    ]) {
      const r = await radclient(acct(), "acct", secret, line + "\n");
      expect(r.out).toContain("Received Accounting-Response");
    }
    const history = await h.ctx.core.store.load({ type: "radius-session", id: sessionAggregateId("nas1", "sess-1") });
    const records = history.events.map((e) => e.data as AccountingRecord);
    expect(history.events.map((e) => e.type)).toEqual(["RadiusAccountingRecorded", "RadiusAccountingRecorded", "RadiusAccountingRecorded"]);
    expect(records.map((r) => r.statusType)).toEqual(["Start", "Interim-Update", "Stop"]);
    expect(records[2]).toMatchObject({ client: "nas1", sessionId: "sess-1", user: "alice", nasIdentifier: "sw1", nasAddress: "127.0.0.1", sessionTime: 60, inputOctets: 2 ** 32 + 5, outputOctets: 4000, terminateCause: 1 });
    expect(JSON.stringify(history.events)).not.toContain(secret);
  });

  it("drops an Accounting-Request whose authenticator does not check with the client's secret", async () => {
    const before = server.drops.get("bad-accounting-authenticator") ?? 0;
    const r = await radclient(acct(), "acct", "not the shared secret", `Acct-Status-Type = Start, Acct-Session-Id = "sess-2", User-Name = "alice"\n`);
    expect(r.out).not.toContain("Received Accounting-Response");
    expect(server.drops.get("bad-accounting-authenticator")).toBeGreaterThan(before);
    const history = await h.ctx.core.store.load({ type: "radius-session", id: sessionAggregateId("nas1", "sess-2") });
    expect(history.events).toEqual([]);
  });
});

describe("TOTP", () => {
  /** Enrolls `id` (in staff) and returns a code generator; the confirmation uses the current step. */
  async function enrolled(id: string): Promise<(offsetSeconds: number) => string> {
    await h.call("principal.create", { id, kind: "person", displayName: id });
    await h.call("principal.setPassword", { id, password: PASSWORD });
    await h.call("group.addMember", { id: "staff", principal: id });
    const { otpauthUri } = await h.call<{ otpauthUri: string }>("principal.enrollTotp", { id });
    const totp = OTPAuth.URI.parse(otpauthUri) as OTPAuth.TOTP;
    const code = (offset: number) => totp.generate({ timestamp: Date.now() + offset * 1000 });
    await h.call("principal.confirmTotp", { id, code: code(0) });
    return code;
  }
  /** A code that is none of the three the server accepts around now. */
  const wrongCode = (code: (o: number) => string) => ["000000", "111111", "222222"].find((c) => ![-30, 0, 30, 60].some((o) => code(o) === c))!;

  it("accepts the password with the code appended, and rejects a wrong code", async () => {
    const code = await enrolled("erin");
    // The confirmation used this step's code: a code is good once, so sign in with the next step's.
    expect((await radclient(auth(), "auth", secret, pap("erin", PASSWORD + wrongCode(code)))).out).toContain("Received Access-Reject");
    const r = await radclient(auth(), "auth", secret, pap("erin", PASSWORD + code(30)));
    expect(r.out).toContain("Received Access-Accept");
    expect(r.out).toMatch(/Tunnel-Private-Group-Id(:0)? = "42"/);
  });

  it("answers the password alone with an Access-Challenge, and the code with its State (radclient, twice)", async () => {
    const code = await enrolled("frank");
    const first = await radclient(auth(), "auth", secret, pap("frank", PASSWORD));
    expect(first.out).toContain("Received Access-Challenge");
    expect(first.out).toContain("Enter your TOTP code");
    const state = /State = (0x[0-9a-f]+)/.exec(first.out)![1]!;
    const wrongState = await radclient(auth(), "auth", secret, `User-Name = "frank", User-Password = "${code(30)}", State = 0x${"00".repeat(16)}, Message-Authenticator = 0x00\n`);
    expect(wrongState.out).toContain("Received Access-Reject");
    const second = await radclient(auth(), "auth", secret, `User-Name = "frank", User-Password = "${code(30)}", State = ${state}, Message-Authenticator = 0x00\n`);
    expect(second.out).toContain("Received Access-Accept");
    expect(second.out).toContain('Filter-Id = "staff-acl"');
    // A State is good once.
    const again = await radclient(auth(), "auth", secret, `User-Name = "frank", User-Password = "${code(30)}", State = ${state}, Message-Authenticator = 0x00\n`);
    expect(again.out).toContain("Received Access-Reject");
  });

  it("rejects a wrong code to a challenge and counts it as a failed sign-in", async () => {
    const code = await enrolled("gina");
    const first = await radclient(auth(), "auth", secret, pap("gina", PASSWORD));
    const state = /State = (0x[0-9a-f]+)/.exec(first.out)![1]!;
    const r = await radclient(auth(), "auth", secret, `User-Name = "gina", User-Password = "${wrongCode(code)}", State = ${state}, Message-Authenticator = 0x00\n`);
    expect(r.out).toContain("Received Access-Reject");
    await until(() => (h.ctx.core.dir.principals.get("gina")?.failedLogins ?? 0) === 1);
  });
});

describe("MS-CHAP", () => {
  beforeAll(async () => {
    await h.call("principal.create", { id: "hank", kind: "person", displayName: "hank" });
    await h.call("principal.setPassword", { id: "hank", password: PASSWORD, ntHash: true });
    await h.call("group.addMember", { id: "staff", principal: "hank" });
  });

  it("accepts radtest -t mschap for a person whose NT hash is kept, and rejects a wrong password", async () => {
    const ok = await radtest("hank", PASSWORD, auth(), secret, "mschap");
    expect(ok.out).toContain("Received Access-Accept");
    expect(ok.out).toMatch(/Tunnel-Private-Group-Id(:0)? = "42"/);
    const bad = await radtest("hank", "not the password", auth(), secret, "mschap");
    expect(bad.out).toContain("Received Access-Reject");
    expect(bad.out).toContain("MS-CHAP-Error");
  });

  it("rejects MS-CHAP for a person without an NT hash (the default)", async () => {
    expect((await radtest("alice", PASSWORD, auth(), secret, "mschap")).out).toContain("Received Access-Reject");
  });

  it("answers MS-CHAPv2 with MS-CHAP2-Success (the RFC 2759 authenticator response) and MPPE keys", async () => {
    const ra = requestAuthenticator();
    const challenge = randomBytes(16);
    const peer = randomBytes(16);
    const hash = Buffer.from(await ntHash(PASSWORD), "hex");
    const nt = challengeResponse(challengeHash(peer, challenge, "hank"), hash);
    const response = Buffer.concat([Buffer.from([7, 0]), peer, Buffer.alloc(8), nt]);
    const packet = encodeAccessRequest(9, ra, [str(Attr.UserName, "hank"), str(Attr.VendorSpecific, vsa(MsAttr.ChapChallenge, challenge)), str(Attr.VendorSpecific, vsa(MsAttr.Chap2Response, response))], Buffer.from(secret));
    const resp = (await exchange(packet, server.ports.auth))!;
    expect(resp.code).toBe(Code.AccessAccept);
    expect(checkResponseAuthenticator(resp, ra, Buffer.from(secret))).toBe(true);
    const ms = microsoftAttributes(resp.attributes.filter((a) => a.type === Attr.VendorSpecific).map((a) => a.value));
    expect(ms.get(MsAttr.Chap2Success)!.toString("latin1")).toBe(`\x07${await authenticatorResponse(hash, nt, peer, challenge, "hank")}`);
    expect(ms.get(MsAttr.MppeSendKey)!.length).toBe(34);
    expect(ms.get(MsAttr.MppeRecvKey)!.length).toBe(34);
    // A response computed from another password is refused with MS-CHAP-Error.
    const wrong = Buffer.concat([Buffer.from([8, 0]), peer, Buffer.alloc(8), challengeResponse(challengeHash(peer, challenge, "hank"), Buffer.from(await ntHash("another password"), "hex"))]);
    const ra2 = requestAuthenticator();
    const denied = (await exchange(encodeAccessRequest(10, ra2, [str(Attr.UserName, "hank"), str(Attr.VendorSpecific, vsa(MsAttr.ChapChallenge, challenge)), str(Attr.VendorSpecific, vsa(MsAttr.Chap2Response, wrong))], Buffer.from(secret)), server.ports.auth))!;
    expect(denied.code).toBe(Code.AccessReject);
    expect(microsoftAttributes(denied.attributes.filter((a) => a.type === Attr.VendorSpecific).map((a) => a.value)).get(MsAttr.ChapError)!.toString("latin1")).toContain("E=691");
  });

  it("drops the NT hash when the password is set again without the opt-in", async () => {
    await h.call("principal.setPassword", { id: "hank", password: PASSWORD });
    expect((await radtest("hank", PASSWORD, auth(), secret, "mschap")).out).toContain("Received Access-Reject");
    expect((await radtest("hank", PASSWORD, auth(), secret)).out).toContain("Received Access-Accept");
    expect(await streamText(h)).not.toContain((await ntHash(PASSWORD)).toLowerCase());
  });
});
