import { expect } from "vitest";

/** The error a promise rejects with, checked to be an instance of `type` (fails the test if it resolves). */
export async function rejectionOf<E extends Error>(p: Promise<unknown>, type: abstract new (...args: never[]) => E): Promise<E> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(type);
    return e as E;
  }
  throw new Error("expected a rejection");
}
