export * from "./errors.js";
export * from "./canonical.js";
export * from "./envelope.js";
export * from "./subjects.js";
export * from "./store.js";
export * from "./decider.js";
export * from "./projection.js";
export * from "./audit.js";
