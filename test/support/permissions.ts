import type { NatsConnection } from "@nats-io/nats-core";

/**
 * Publishes to `subject` and reports the server's verdict: the permissions-violation error it sends for
 * this publish, or undefined when it took it. nats-server answers a refused publish with -ERR before it
 * answers the PING of the flush that follows, so once the flush resolved the verdict is known: no timer.
 */
export async function publishVerdict(nc: NatsConnection, subject: string): Promise<string | undefined> {
  let err: string | undefined;
  const statuses = nc.status()[Symbol.asyncIterator]();
  let pending = statuses.next();
  nc.publish(subject, "x");
  await nc.flush();
  for (;;) {
    const r = await Promise.race([pending, new Promise<null>((res) => setImmediate(() => res(null)))]);
    if (!r || r.done) break;
    if (r.value.type === "error") err = String((r.value as { error?: unknown }).error ?? r.value.type);
    pending = statuses.next();
  }
  return err && /permissions violation/i.test(err) ? err : undefined;
}

/** Subscribes to `subject` and reports the server's verdict the same way (a refused subscription errors). */
export async function subscribeVerdict(nc: NatsConnection, subject: string): Promise<string | undefined> {
  let err: string | undefined;
  const statuses = nc.status()[Symbol.asyncIterator]();
  let pending = statuses.next();
  const sub = nc.subscribe(subject, { callback: () => undefined });
  const closed = sub.closed.then(
    () => undefined,
    (e: unknown) => (err = String(e)),
  );
  await nc.flush();
  for (;;) {
    const r = await Promise.race([pending, new Promise<null>((res) => setImmediate(() => res(null)))]);
    if (!r || r.done) break;
    if (r.value.type === "error") err ??= String((r.value as { error?: unknown }).error ?? r.value.type);
    pending = statuses.next();
  }
  await Promise.race([closed, new Promise((res) => setImmediate(res))]);
  sub.unsubscribe();
  return err && /permissions violation/i.test(err) ? err : undefined;
}
