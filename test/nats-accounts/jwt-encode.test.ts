import { afterEach, describe, expect, it, vi } from "vitest";
import { createAccount, createOperator, createUser, decode, encodeAccount, encodeActivation, encodeOperator, encodeUser, fmtCreds } from "@nats-io/jwt";
import { fromPublic, fromSeed, type KeyPair } from "@nats-io/nkeys";
import {
  credsLength, decodeJwt, encodeAccountJwt, encodeActivationJwt, encodeOperatorJwt, encodeUserJwt, formatCreds, newNkey, nkeyFromSeed, rawPublicKey, rawSeed,
} from "../../identity/nats/jwt-encode.js";
import { userClaim, userJwt, userJwtSize } from "../../identity/nats/jwt.js";

/**
 * jwt-encode.ts against @nats-io/jwt 0.0.11: the same inputs at the same second give the same JWT, byte for
 * byte (Ed25519 is deterministic), and every field of the decoded claims is equal, in the same order.
 */
const IAT = 1_790_000_000;
const seedOf = (kp: KeyPair) => new TextDecoder().decode(kp.getSeed());
const ours = (kp: KeyPair) => nkeyFromSeed(seedOf(kp));
const parts = (jwt: string) => jwt.split(".");
const claimsOf = (jwt: string) => JSON.parse(Buffer.from(parts(jwt)[1]!, "base64url").toString("utf8")) as Record<string, unknown>;

/** Field by field, key order included; then the signatures verify with nkeys.js and are equal. */
function same(mine: string, ref: string) {
  const a = claimsOf(mine);
  const b = claimsOf(ref);
  expect(Object.keys(a)).toEqual(Object.keys(b));
  for (const k of Object.keys(b)) expect(JSON.stringify(a[k]), k).toBe(JSON.stringify(b[k]));
  expect(Object.keys(a.nats as object)).toEqual(Object.keys(b.nats as object));
  expect(parts(mine)[0]).toBe(parts(ref)[0]);
  expect(JSON.parse(Buffer.from(parts(mine)[0]!, "base64url").toString())).toEqual({ typ: "JWT", alg: "ed25519-nkey" });
  for (const jwt of [mine, ref]) {
    const [h, p, s] = parts(jwt);
    expect(fromPublic(claimsOf(jwt).iss as string).verify(new TextEncoder().encode(`${h}.${p}`), Buffer.from(s!, "base64url"))).toBe(true);
    expect(jwt).not.toMatch(/=/); // base64url without padding
  }
  expect(decode(mine)).toEqual(decode(ref)); // jwt.js decodes (and verifies) ours
  expect(decodeJwt(ref)).toEqual(decodeJwt(mine)); // and we theirs
  expect(mine).toBe(ref);
}

afterEach(() => {
  vi.restoreAllMocks();
});
const at = (iat: number) => vi.spyOn(Date, "now").mockReturnValue(iat * 1000 + 437);

describe("jwt-encode: byte-compatible with @nats-io/jwt 0.0.11", () => {
  const operator = createOperator();
  const operatorSk = createOperator();
  const account = createAccount();
  const accountSk = createAccount();
  const scopedSk = createAccount();

  const users: [string, Record<string, unknown>, { exp?: number; nbf?: number; aud?: string }][] = [
    ["unscoped, no permissions", {}, {}],
    ["permissions pub/sub/resp", { pub: { allow: ["a.>", "b.*"], deny: ["a.secret"] }, sub: { allow: ["_INBOX.>"], deny: [] }, resp: { max: 1, ttl: 5_000_000_000 }, subs: -1, data: -1, payload: -1 }, { exp: IAT + 90 * 86400 }],
    ["src, connection types, bearer, tags, expiry", { pub: { allow: ["x"], deny: [] }, subs: -1, data: -1, payload: -1, src: ["10.0.0.0/8", "127.0.0.1/32"], allowed_connection_types: ["STANDARD", "WEBSOCKET"], bearer_token: true, tags: ["team:red", "ops"] }, { exp: IAT + 3600 }],
    ["limits of its own", { subs: 10, data: 1024, payload: 512 }, { exp: IAT + 60 }],
    ["nbf and aud", { tags: ["x"] }, { exp: IAT + 60, nbf: IAT - 10, aud: "ELSEWHERE" }],
    ["exp 0 is written", {}, { exp: 0 }],
  ];

  for (const [what, user, opts] of users) {
    it(`user signed by an account signing key: ${what}`, async () => {
      const u = createUser();
      at(IAT);
      const ref = await encodeUser("alice", u, account, structuredClone(user), { ...opts, signer: accountSk });
      const mine = encodeUserJwt("alice", u.getPublicKey(), account.getPublicKey(), structuredClone(user), ours(accountSk), { ...opts, iat: IAT });
      same(mine, ref);
      expect((claimsOf(mine).nats as { issuer_account: string }).issuer_account).toBe(account.getPublicKey());
    });

    it(`user signed by the account itself: ${what}`, async () => {
      const u = createUser();
      at(IAT);
      const ref = await encodeUser("bob", u, account, structuredClone(user), opts);
      const mine = encodeUserJwt("bob", u.getPublicKey(), account.getPublicKey(), structuredClone(user), ours(account), { ...opts, iat: IAT });
      same(mine, ref);
      expect("issuer_account" in (claimsOf(mine).nats as object)).toBe(false);
    });
  }

  it("iat defaults to now, as jwt.js stamps it", async () => {
    const u = createUser();
    at(IAT + 5);
    same(encodeUserJwt("c", u.getPublicKey(), account.getPublicKey(), {}, ours(accountSk)), await encodeUser("c", u, account, {}, { signer: accountSk }));
  });

  for (const [what, user] of [["no tags", {}], ["tags", { tags: ["team:blue"] }]] as const) {
    it(`scoped user (no permission or limit fields): ${what}`, async () => {
      const u = createUser();
      at(IAT);
      const ref = await encodeUser("scoped", u, account, structuredClone(user) as object, { signer: scopedSk, scopedUser: true, exp: IAT + 86400 });
      const mine = encodeUserJwt("scoped", u.getPublicKey(), account.getPublicKey(), structuredClone(user) as Record<string, unknown>, ours(scopedSk), { scopedUser: true, exp: IAT + 86400, iat: IAT });
      same(mine, ref);
      expect(Object.keys(claimsOf(mine).nats as object)).toEqual([...Object.keys(user), "issuer_account", "type", "version"]);
    });
  }

  it("the realm's own user claims (userClaim) encode the same through both", async () => {
    const specs = [
      { account: "a", name: "svc", kind: "service" as const, permissions: { pub: { allow: ["app.>"] }, sub: { allow: ["_INBOX_svc.>"], deny: [">"] }, resp: { max: 2, ttlMs: 1500 } }, src: ["192.0.2.0/24"], connectionTypes: ["STANDARD" as const], bearer: true, tags: ["t:1"] },
      { account: "a", name: "plain", kind: "person" as const },
      { account: "a", name: "sc", kind: "agent" as const, scopedSigningKey: scopedSk.getPublicKey(), tags: ["team:red"] },
    ];
    for (const spec of specs) {
      const u = createUser();
      at(IAT);
      const scoped = !!spec.scopedSigningKey;
      const signer = scoped ? scopedSk : accountSk;
      const ref = await encodeUser(spec.name, u, account, userClaim(spec) as never, { signer, exp: IAT + 7776000, scopedUser: scoped });
      same(encodeUserJwt(spec.name, u.getPublicKey(), account.getPublicKey(), userClaim(spec), ours(signer), { exp: IAT + 7776000, iat: IAT, scopedUser: scoped }), ref);
    }
  });

  it("a user JWT's length is known from its claims before any key is made or anything signed (a batch's reply size)", () => {
    const specs = [
      { account: "a", name: "svc", kind: "service" as const, permissions: { pub: { allow: ["app.>"] }, sub: { allow: ["_INBOX_svc.>"], deny: [">"] }, resp: { max: 2, ttlMs: 1500 } }, src: ["192.0.2.0/24"], connectionTypes: ["STANDARD" as const], bearer: true, tags: ["t:1"] },
      { account: "a", name: "plain", kind: "person" as const },
      { account: "a", name: "sc", kind: "agent" as const, scopedSigningKey: scopedSk.getPublicKey(), tags: ["team:red"] },
      // Non-ASCII and characters JSON escapes: the length counts UTF-8 bytes of the escaped text.
      { account: "a", name: "zoë \"q\" \u0001 名前", kind: "person" as const, tags: ["ünï:côdé"] },
    ];
    for (const spec of specs) {
      for (const exp of [IAT + 60, IAT + 7776000, 0]) {
        const signer = spec.scopedSigningKey ? scopedSk : accountSk;
        const key = newNkey("U");
        const jwt = userJwt(spec, key.publicKey, account.getPublicKey(), ours(signer), IAT, exp);
        expect(userJwtSize(spec, account.getPublicKey(), signer.getPublicKey(), IAT, exp), `${spec.name} exp ${exp}`).toBe(jwt.length);
        expect(credsLength(jwt.length)).toBe(formatCreds(jwt, key.seed).length);
      }
    }
  });

  it("account signed by an operator signing key, with every claim the realm writes", async () => {
    const claim = {
      limits: { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: 5, leaf: -1, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 },
      signing_keys: [accountSk.getPublicKey(), { kind: "user_scope", key: scopedSk.getPublicKey(), role: "team", template: { pub: { allow: ["{{name()}}.>"], deny: [] } } }],
      exports: [{ name: "time", subject: "svc.time", type: "service", token_req: true }],
      imports: [{ name: "prices", subject: "prices.>", account: createAccount().getPublicKey(), type: "stream", local_subject: "ext.prices.>" }],
      revocations: { [createUser().getPublicKey()]: IAT - 1, "*": 100 },
      default_permissions: { pub: { allow: [], deny: [">"] }, sub: { allow: [], deny: [">"] } },
      mappings: { "old.orders": [{ subject: "new.orders", weight: 100 }] },
      description: "orders team",
    };
    at(IAT);
    same(encodeAccountJwt("orders", account.getPublicKey(), structuredClone(claim), ours(operatorSk), { iat: IAT }), await encodeAccount("orders", account, structuredClone(claim) as never, { signer: operatorSk }));
    at(IAT);
    same(encodeAccountJwt("empty", account.getPublicKey(), {}, ours(operatorSk), { iat: IAT, exp: IAT + 10 }), await encodeAccount("empty", account, {}, { signer: operatorSk, exp: IAT + 10 }));
    at(IAT);
    same(encodeAccountJwt("self", account.getPublicKey(), { limits: { conn: -1 } }, ours(account), { iat: IAT }), await encodeAccount("self", account, { limits: { conn: -1 } } as never));
  });

  it("operator (self-signed) and activation", async () => {
    at(IAT);
    const op = { signing_keys: [operatorSk.getPublicKey()], system_account: account.getPublicKey() };
    same(encodeOperatorJwt("cim-realm", operator.getPublicKey(), structuredClone(op), ours(operator), { iat: IAT }), await encodeOperator("cim-realm", operator, structuredClone(op) as never));
    const importer = createAccount();
    at(IAT);
    same(encodeActivationJwt("svc.time", importer.getPublicKey(), account.getPublicKey(), "service", { subject: "svc.time" }, ours(account), { iat: IAT }), await encodeActivation("svc.time", importer, account, "service", { subject: "svc.time" } as never));
    at(IAT);
    same(
      encodeActivationJwt("prices.>", importer.getPublicKey(), account.getPublicKey(), "stream", { subject: "prices.>" }, ours(accountSk), { iat: IAT, exp: IAT + 99 }),
      await encodeActivation("prices.>", importer, account, "stream", { subject: "prices.>" } as never, { signer: accountSk, exp: IAT + 99 }),
    );
  });

  it("creds files are the same text as fmtCreds", async () => {
    const u = createUser();
    const jwt = await encodeUser("u", u, account, {}, { signer: accountSk });
    expect(formatCreds(jwt, seedOf(u))).toBe(new TextDecoder().decode(fmtCreds(jwt, u)));
  });

  it("refuses keys of the wrong role, as jwt.js does", () => {
    const u = createUser();
    expect(() => encodeUserJwt("x", u.getPublicKey(), account.getPublicKey(), {}, ours(operatorSk))).toThrow(/unexpected key type O/);
    expect(() => encodeUserJwt("x", account.getPublicKey(), account.getPublicKey(), {}, ours(accountSk))).toThrow(/unexpected key type A/);
    expect(() => encodeAccountJwt("x", account.getPublicKey(), {}, ours(u))).toThrow(/unexpected key type U/);
    expect(() => encodeOperatorJwt("x", operator.getPublicKey(), {}, ours(account))).toThrow(/unexpected key type A/);
  });

  it("non-ASCII text is UTF-8 (jwt.js would write Latin-1 or throw) and decodes back", () => {
    const jwt = encodeAccountJwt("x", account.getPublicKey(), { description: "Zürich – 東京" }, ours(operatorSk));
    expect((decodeJwt<{ nats: { description: string } }>(jwt)).nats.description).toBe("Zürich – 東京");
  });
});

describe("jwt-encode: nkeys with node:crypto", () => {
  it("new keys of each role read back with nkeys.js; seeds of nkeys.js keys derive the same public key", () => {
    for (const role of ["O", "A", "U"] as const) {
      for (let i = 0; i < 10; i++) {
        const k = newNkey(role);
        expect(k.publicKey[0]).toBe(role);
        expect(k.seed.slice(0, 2)).toBe(`S${role}`);
        const ref = fromSeed(new TextEncoder().encode(k.seed));
        expect(ref.getPublicKey()).toBe(k.publicKey);
        const msg = new TextEncoder().encode(`m${i}`);
        expect(fromPublic(k.publicKey).verify(msg, k.sign(msg))).toBe(true);
        expect(Buffer.from(k.sign(msg))).toEqual(Buffer.from(ref.sign(msg)));
      }
    }
    for (const kp of [createOperator(), createAccount(), createUser()]) {
      const k = nkeyFromSeed(seedOf(kp));
      expect(k.publicKey).toBe(kp.getPublicKey());
      expect(nkeyFromSeed(seedOf(kp), { cache: false }).publicKey).toBe(kp.getPublicKey());
    }
  });

  it("bad checksums, wrong lengths and non-base32 are refused", () => {
    const k = newNkey("A");
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === "A" ? "B" : "A") + s.slice(i + 1);
    expect(rawPublicKey(k.publicKey)).toHaveLength(32);
    expect(rawSeed(k.seed).raw).toHaveLength(32);
    expect(() => rawPublicKey(flip(k.publicKey, 10))).toThrow(/checksum/);
    expect(() => rawSeed(flip(k.seed, 10))).toThrow(/checksum/);
    expect(() => rawPublicKey(k.seed)).toThrow(/not a public key/);
    expect(() => rawSeed(k.publicKey)).toThrow(/not a seed/);
    expect(() => rawPublicKey(k.publicKey.toLowerCase())).toThrow(/base32/);
  });

  it("a JWT with a changed payload or signature does not decode", () => {
    const jwt = encodeAccountJwt("x", newNkey("A").publicKey, {}, newNkey("O"));
    const [h, p, s] = jwt.split(".");
    const other = Buffer.from(JSON.stringify({ ...claimsOf(jwt), name: "y" })).toString("base64url");
    expect(() => decodeJwt(`${h}.${other}.${s}`)).toThrow(/signature/);
    // One bit of the signature flipped (replacing its last characters may change nothing: 1 time in 256).
    const sig = Buffer.from(s!, "base64url");
    sig[0] = sig[0]! ^ 1;
    expect(() => decodeJwt(`${h}.${p}.${sig.toString("base64url")}`)).toThrow(/signature/);
  });
});
