import { describe, expect, it } from "vitest";
import { ChainVerifier, eventSubject, sealWithJson, streamName, type UnsealedEnvelope } from "../../services/kernel/index.js";
import { testTrust } from "../support/trust.js";

/**
 * A seal this process has verified (or made) lets the chain verifier read an event's CID off its stored bytes
 * instead of re-serializing its content. These are the messages that shortcut must not let through.
 */
describe("chain verification of events whose seal is already known", () => {
  const trust = testTrust(["fast"]);
  const unsealed: UnsealedEnvelope = {
    id: "0190a0c0-0000-7000-8000-000000000001", type: "Deposited", aggregate: { type: "ledger", id: "a1" }, version: 1,
    occurredAt: "2026-12-02T10:00:00.000Z", actor: "test", correlationId: "c", causationId: "c", data: { amount: 5, note: "x" }, prev: null,
  };
  const { envelope, json } = sealWithJson(unsealed, trust.signer("fast"));
  const subject = eventSubject("fast", "ledger", "a1");
  const verifier = () => new ChainVerifier("fast", streamName("fast"), trust.verifier);
  const bytes = (s: string) => new TextEncoder().encode(s);

  it("accepts the stored bytes, verifying the signature once and then from the cache", () => {
    const before = trust.verifier.verifications;
    expect(verifier().verify(1, subject, bytes(json))).toMatchObject({ event: { cid: envelope.cid } });
    expect(trust.verifier.knows(envelope)).toBe(true);
    expect(verifier().verify(1, subject, bytes(json))).toMatchObject({ event: { cid: envelope.cid } });
    expect(trust.verifier.verifications - before).toBeLessThanOrEqual(1);
  });

  const forgeries: [string, string][] = [
    ["a second data key after the seal", `${json.slice(0, -1)},"data":{"amount":5000}}`],
    ["a second data key before the seal", json.replace(`,"cid":`, `,"data":{"amount":5000},"cid":`)],
    ["content changed, seal kept", json.replace(`"amount":5`, `"amount":6`)],
    ["keys reordered (not the canonical text)", json.replace(`"actor":"test",`, "").replace(`"causationId"`, `"actor":"test","causationId"`)],
    ["white space added", json.replace(`"data":{`, `"data": {`)],
  ];
  for (const [what, forged] of forgeries) {
    it(`refuses a known seal over other bytes: ${what}`, () => {
      verifier().verify(1, subject, bytes(json)); // the seal is known
      const r = verifier().verify(1, subject, bytes(forged));
      if ("event" in r) {
        // Only bytes whose content is exactly the sealed content may pass (JSON white space aside).
        expect(r.event.data).toEqual(unsealed.data);
        expect(r.event.actor).toBe("test");
      } else {
        expect(r.problem.reason).toBe("altered");
      }
    });
  }
});
