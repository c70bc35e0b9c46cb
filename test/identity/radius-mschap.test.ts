import { describe, expect, it } from "vitest";
import { authenticatorResponse, challengeHash, challengeResponse, mppeKeys, ntHash } from "../../identity/radius/mschap.js";

const hex = (s: string) => Buffer.from(s.replace(/\s/g, ""), "hex");

/** RFC 2759 section 9.2 and RFC 3079 section 3.5.3 test vectors. */
describe("MS-CHAPv2 primitives", () => {
  it("match RFC 2759's example (NT hash, ChallengeHash, NT-Response, authenticator response)", async () => {
    const auth = hex("5B5D7C7D7B3F2F3E3C2C602132262628");
    const peer = hex("21402324255E262A28295F2B3A337C7E");
    expect((await ntHash("clientPass")).toUpperCase()).toBe("44EBBA8D5312B8D611474411F56989AE");
    const ch = challengeHash(peer, auth, "User");
    expect(ch.toString("hex").toUpperCase()).toBe("D02E4386BCE91226");
    const nt = challengeResponse(ch, hex("44EBBA8D5312B8D611474411F56989AE"));
    expect(nt.toString("hex").toUpperCase()).toBe("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF");
    expect(await authenticatorResponse(hex("44EBBA8D5312B8D611474411F56989AE"), nt, peer, auth, "User")).toBe("S=407A5589115FD0D6209F510FE9C04566932CDA56");
  });

  it("match RFC 3079's 128-bit MPPE keys", async () => {
    const keys = await mppeKeys(hex("44EBBA8D5312B8D611474411F56989AE"), hex("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF"));
    // RFC 3079 3.5.3: the server's send key is the client's receive key.
    expect(keys.send.toString("hex").toUpperCase()).toBe("8B7CDC149B993A1BA118CB153F56DCCB");
  });
});
