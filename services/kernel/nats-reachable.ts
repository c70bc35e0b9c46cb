import type { NatsConnection } from "@nats-io/nats-core";

/**
 * True when the server answers a PING within `ms`: a disconnected client would otherwise wait for the
 * reconnect (what a last checkpoint or snapshot at stop must not do when NATS is gone).
 */
export async function answers(nc: NatsConnection, ms: number): Promise<boolean> {
  if (nc.isClosed()) return false;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([nc.flush().then(() => true, () => false), late]);
  } finally {
    clearTimeout(timer);
  }
}
