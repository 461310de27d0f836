// The shape of the operator's periodic duties (identity, endpoint and node GC): wait for the
// caches a pass reads, then one pass per interval until stopped. A failed pass is logged and the
// next one tries again: a GC is level-based, so the next pass sees the same garbage.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../runtime/log.js';
import type { Resource } from '../runtime/resource.js';

type Cache = Pick<Resource<never>, 'waitForSync'>;

export interface PeriodicOptions {
  /** Names the duty in logs. */
  name: string;
  /** Caches the pass reads; the first pass waits for their first list. */
  reads: Cache[];
  intervalMs: number;
  logger: Logger;
}

export async function runPeriodically(opts: PeriodicOptions, pass: (signal: AbortSignal) => Promise<unknown>, signal: AbortSignal): Promise<void> {
  try {
    await Promise.all(opts.reads.map((r) => r.waitForSync(signal)));
  } catch (err) {
    if (signal.aborted) return;
    throw err;
  }
  while (!signal.aborted) {
    await pass(signal).catch((err: Error) => opts.logger.error(`${opts.name} run failed`, { error: err.message }));
    await sleep(opts.intervalMs, undefined, { signal }).catch(() => undefined);
  }
}
