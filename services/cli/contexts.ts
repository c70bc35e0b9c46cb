import type { ContextFactory } from "../host/context.js";

/** The bounded contexts `realm up` hosts, in start order. */
export const contextFactories: { name: string; factory: ContextFactory }[] = [];
