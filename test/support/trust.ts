import { generateTrust, type RealmTrust } from "../../services/kernel/trust.js";
import { eventsWildcard } from "../../services/kernel/subjects.js";

/** The realm's writers plus whatever test contexts a suite writes (each may sign only its own events). */
export const REALM_TEST_WRITERS = ["identity", "dns", "pki", "secrets", "realm"];

/** An in-memory trust (throw-away root) with a key per writer; reuse one per suite so restarts verify. */
export function testTrust(extraWriters: string[] = []): RealmTrust {
  return generateTrust("test-realm", [...new Set([...REALM_TEST_WRITERS, ...extraWriters])].map((name) => ({ name, subjects: [eventsWildcard(name)] })));
}
