import { describe, expect, it } from "vitest";
import { DnsEventTypes } from "../../dns/contract.js";
import { DnsEvents } from "../../dns/domain/zone.js";
import { SubjectEvents } from "../../dns/domain/subjects.js";
import { ObjectEvents } from "../../dns/domain/objects.js";

describe("dns contract", () => {
  it("names exactly the event types the domain emits", () => {
    const emitted = new Set([...Object.values(DnsEvents), ...Object.values(SubjectEvents), ...Object.values(ObjectEvents), "CloudflareMirrorApplied"]);
    expect(new Set(Object.values(DnsEventTypes))).toEqual(emitted);
  });
});
