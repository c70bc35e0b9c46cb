import type { QueuedIterator } from "@nats-io/nats-core";
import type { KvWatchEntry } from "@nats-io/kv";

/** Where a KV follower reports losing and regaining its watch (a pino logger fits). */
export interface KvFollowLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/**
 * Follows a KV watch until stopped, through any outage. nats.js ends a watch's iterator for good when its
 * ordered consumer could not be made again 30 times while it had delivered nothing (an `UpdatesOnly` watch
 * that saw no update, during an outage of a few minutes): the follower would then stop seeing other replicas'
 * writes without a word. Here a watch that ends (or throws) is opened again with `open(after, true)`, `after`
 * the revision of the last entry seen (undefined when none: `open` should then read the current values again),
 * after a backoff up to 5 s, each loss and recovery logged. The first `open` failing rejects (start fails).
 */
export async function followKv(what: string, open: (after: number | undefined, reopen: boolean) => Promise<QueuedIterator<KvWatchEntry>>, onEntry: (e: KvWatchEntry) => void, log?: KvFollowLog): Promise<() => void> {
  let stopped = false;
  let current = await open(undefined, false);
  let last: number | undefined;
  let wake: (() => void) | undefined;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  void (async () => {
    for (let attempt = 0; !stopped; ) {
      let why = "the watch ended";
      try {
        for await (const e of current) {
          last = e.revision;
          onEntry(e);
        }
      } catch (err) {
        why = err instanceof Error ? err.message : String(err);
      }
      if (stopped) return;
      log?.warn({ watch: what, after: last, reason: why }, `KV watch ${what} lost (${why}); opening it again`);
      for (;;) {
        await pause(Math.min(5_000, 250 * 2 ** Math.min(attempt++, 5)));
        if (stopped) return;
        try {
          current = await open(last, true);
          break;
        } catch {
          // NATS or JetStream still gone: try again after the next pause.
        }
      }
      log?.info({ watch: what, after: last, attempts: attempt }, `KV watch ${what} recovered`);
      attempt = 0;
    }
  })();
  return () => {
    stopped = true;
    wake?.();
    current.stop();
  };
}
