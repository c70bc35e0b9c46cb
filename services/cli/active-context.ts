/**
 * The configuration context this `realm` run uses (services/cli/edge.ts picks it, once, before the verb runs):
 * what a flag or REALM_* variable does not say comes from it. Nothing here reads a file or the environment.
 */
export interface ActiveContext {
  name: string;
  /** The configuration file it comes from. */
  file: string;
  nats?: string | undefined;
  creds?: string | undefined;
  url?: string | undefined;
  data?: string | undefined;
  /** The API key or token the context points at (its file or variable is read when a call needs it). */
  token?: (() => string | undefined) | undefined;
}

let active: ActiveContext | undefined;

export const activeContext = (): ActiveContext | undefined => active;
export const setActiveContext = (c: ActiveContext | undefined): void => void (active = c);
