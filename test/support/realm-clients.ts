import { realmClientRegistrations } from "../../identity/realm-clients.js";
import { RealmError } from "../../services/kernel/errors.js";

/**
 * Registers the realm's own OIDC clients (realm-cli, realm-console) through the `client.register` command,
 * with exactly the registrations the identity context makes itself at start. A client that exists already
 * (the context registered it) is left as it is.
 */
export async function registerRealmClients(register: (input: object) => Promise<unknown>, base: string): Promise<void> {
  for (const { id, registration } of realmClientRegistrations(base)) {
    const { principal: _none, ...input } = registration;
    try {
      await register({ id, ...input });
    } catch (err) {
      if (!(err instanceof RealmError && err.code === "ALREADY_EXISTS")) throw err;
    }
  }
}
