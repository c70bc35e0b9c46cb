import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { RealmError } from "../../services/kernel/errors.js";
import { Sealer } from "../../services/kernel/seal.js";

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "realm-seal-"));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The RealmError `fn` throws (fails the test when it throws nothing or something else). */
function thrown(fn: () => unknown): RealmError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RealmError);
    return err as RealmError;
  }
  throw new Error("expected a RealmError");
}

const ctx = "realm_identity_credentials/password.YW5u";

describe("Sealer (AES-256-GCM at rest)", () => {
  it("round-trips strings and bytes; the same plaintext seals differently each time", () => {
    const s = Sealer.generate();
    const a = s.seal("a secret value", ctx);
    expect(a).toMatch(/^s1\.[A-Za-z0-9_-]+$/);
    expect(a).not.toContain("secret");
    expect(s.openString(a, ctx)).toBe("a secret value");
    expect(s.seal("a secret value", ctx)).not.toBe(a);
    const bytes = new Uint8Array([0, 1, 2, 255]);
    expect([...s.open(s.seal(bytes, ctx), ctx)]).toEqual([0, 1, 2, 255]);
    expect(s.openString(s.seal("", ctx), ctx)).toBe("");
  });

  it("altered ciphertext, wrong context, wrong key and garbage are INTEGRITY errors naming the context only", () => {
    const s = Sealer.generate();
    const sealed = s.seal("top secret plaintext", ctx);
    const body = Buffer.from(sealed.slice(3), "base64url");
    for (const i of [0, 12, body.length - 1]) {
      const altered = Buffer.from(body);
      altered[i] = altered[i]! ^ 0x01;
      const e = thrown(() => s.open(`s1.${altered.toString("base64url")}`, ctx));
      expect(e.code).toBe("INTEGRITY");
      expect(e.message).toContain(ctx);
    }
    const moved = thrown(() => s.open(sealed, "realm_identity_credentials/password.Ym9i"));
    expect(moved.code).toBe("INTEGRITY");
    expect(moved.message).toContain("realm_identity_credentials/password.Ym9i");
    const other = thrown(() => Sealer.generate().open(sealed, ctx));
    expect(other.code).toBe("INTEGRITY");
    expect(other.message).not.toContain("top secret");
    for (const garbage of ["", "plain text", "s1.", "s1.!!!!", "s2." + body.toString("base64url"), "s1." + body.subarray(0, 20).toString("base64url")]) {
      expect(thrown(() => s.open(garbage, ctx)).code).toBe("INTEGRITY");
    }
  });

  it("fromKey takes exactly 32 bytes", () => {
    const key = new Uint8Array(32).fill(7);
    const a = Sealer.fromKey(key);
    expect(Sealer.fromKey(key).openString(a.seal("x", ctx), ctx)).toBe("x");
    expect(thrown(() => Sealer.fromKey(new Uint8Array(31))).code).toBe("VALIDATION");
    expect(thrown(() => Sealer.fromKey(new Uint8Array(33))).code).toBe("VALIDATION");
  });

  it("creates the key file 0600 in a 0700 dir on first use and reuses it", () => {
    const file = join(tempDir(), "operator", "seal.key");
    const a = Sealer.open(file, {});
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(file, "..")).mode & 0o777).toBe(0o700);
    const text = readFileSync(file, "utf8");
    expect(Buffer.from(text, "base64url").length).toBe(32);
    const b = Sealer.open(file, {});
    expect(b.openString(a.seal("kept across restarts", ctx), ctx)).toBe("kept across restarts");
    expect(readFileSync(file, "utf8")).toBe(text);
  });

  it("REALM_SEAL_KEY wins over the file, as base64 or base64url; a wrong length is a clear VALIDATION error", () => {
    const file = join(tempDir(), "seal.key");
    const fromFile = Sealer.open(file, {});
    const key = Buffer.alloc(32, 0xfb); // 0xfb... has '+' / '/' in base64 and '-' / '_' in base64url
    const b64 = Sealer.open(file, { REALM_SEAL_KEY: key.toString("base64") });
    const b64url = Sealer.open(file, { REALM_SEAL_KEY: key.toString("base64url") });
    const sealed = b64.seal("from the environment", ctx);
    expect(b64url.openString(sealed, ctx)).toBe("from the environment");
    expect(Sealer.fromKey(key).openString(sealed, ctx)).toBe("from the environment");
    expect(thrown(() => fromFile.open(sealed, ctx)).code).toBe("INTEGRITY");
    const short = Buffer.alloc(16, 1).toString("base64");
    const e = thrown(() => Sealer.open(file, { REALM_SEAL_KEY: short }));
    expect(e.code).toBe("VALIDATION");
    expect(e.message).toContain("REALM_SEAL_KEY");
    expect(e.message).toContain("32");
    expect(e.message).not.toContain(short);
    expect(thrown(() => Sealer.open(file, { REALM_SEAL_KEY: "not base64 at all!" })).code).toBe("VALIDATION");
  });

  it("refuses a key file that group or other can read, naming the file and chmod 600", () => {
    const file = join(tempDir(), "seal.key");
    writeFileSync(file, Buffer.alloc(32, 3).toString("base64url"));
    chmodSync(file, 0o644);
    const e = thrown(() => Sealer.open(file, {}));
    expect(e.code).toBe("VALIDATION");
    expect(e.message).toContain(file);
    expect(e.message).toContain("chmod 600");
    chmodSync(file, 0o600);
    expect(Sealer.open(file, {}).openString(Sealer.fromKey(Buffer.alloc(32, 3)).seal("ok", ctx), ctx)).toBe("ok");
    writeFileSync(file, "c2hvcnQ");
    expect(thrown(() => Sealer.open(file, {})).message).toContain(file);
  });

  it("never shows the key: JSON, util.inspect, String and error messages", () => {
    const key = Buffer.alloc(32);
    for (let i = 0; i < 32; i++) key[i] = (i * 37 + 11) & 0xff;
    const s = Sealer.fromKey(key);
    const forms = [key.toString("base64"), key.toString("base64url"), key.toString("hex")];
    const texts = [
      JSON.stringify(s),
      JSON.stringify({ sealer: s }),
      inspect(s, { showHidden: true, depth: 10 }),
      inspect({ nested: { s } }, { showHidden: true, depth: 10 }),
      String(s),
      `${s}`,
      thrown(() => s.open("s1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ctx)).message,
      thrown(() => s.open(Sealer.generate().seal("x", ctx), ctx)).message,
    ];
    for (const t of texts) {
      expect(t).toMatch(/Sealer\(|sealed|not a sealed/);
      for (const f of forms) expect(t).not.toContain(f);
    }
    expect(JSON.stringify(s)).toContain(s.keyId);
    expect(Sealer.generate().keyId).not.toBe(s.keyId);
  });

  it("tokenKey is base64url(sha256) and a valid KV key token", () => {
    const k = Sealer.tokenKey("an-opaque-token");
    expect(k).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Sealer.tokenKey("an-opaque-token")).toBe(k);
    expect(Sealer.tokenKey("another-token")).not.toBe(k);
    expect(k).not.toContain("opaque");
  });
});
