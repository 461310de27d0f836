// Waiting in a test for something another process brings about. The deadline turns a condition
// that never comes into a failure naming it, instead of a hang until mocha's timeout.
import { setTimeout as sleep } from 'node:timers/promises';

const POLL_INTERVAL_MS = 20;

/** Resolves once `check` holds; rejects naming `what` when it still does not after `timeoutMs`. */
export async function pollUntil(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() >= deadline) throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}`);
    await sleep(POLL_INTERVAL_MS);
  }
}
