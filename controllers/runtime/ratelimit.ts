// How long to wait before trying again: per-key retry delays for the workqueue (client-go's
// workqueue rate limiters) and a jittered exponential backoff for reconnect loops.

/** Per-key retry delays; `forget` ends a key's failure streak. */
export interface RateLimiter {
  /** The delay in ms before `key` may be retried; counts one more failure for it. */
  when(key: string): number;
  forget(key: string): void;
  numRequeues(key: string): number;
}

/** base·2^failures per key, capped at max (client-go ItemExponentialFailureRateLimiter). */
export function exponentialFailureRateLimiter(baseMs: number, maxMs: number): RateLimiter {
  const failures = new Map<string, number>();
  return {
    when(key) {
      const n = failures.get(key) ?? 0;
      failures.set(key, n + 1);
      return Math.min(maxMs, baseMs * 2 ** n);
    },
    forget: (key) => void failures.delete(key),
    numRequeues: (key) => failures.get(key) ?? 0,
  };
}

/**
 * An overall token bucket shared by all keys: `burst` retries at once, then `qps` per second
 * (client-go BucketRateLimiter). Reservations may run the bucket negative, as golang's rate.Limiter does.
 */
export function bucketRateLimiter(qps: number, burst: number, now: () => number = Date.now): RateLimiter {
  let tokens = burst;
  let last = now();
  return {
    when() {
      const t = now();
      tokens = Math.min(burst, tokens + ((t - last) / 1000) * qps);
      last = t;
      tokens -= 1;
      return tokens >= 0 ? 0 : Math.ceil((-tokens / qps) * 1000);
    },
    forget: () => undefined,
    numRequeues: () => 0,
  };
}

/** The longest delay any of `limiters` asks for. */
export function maxOfRateLimiter(...limiters: RateLimiter[]): RateLimiter {
  return {
    when: (key) => Math.max(...limiters.map((l) => l.when(key))),
    forget: (key) => limiters.forEach((l) => l.forget(key)),
    numRequeues: (key) => Math.max(...limiters.map((l) => l.numRequeues(key))),
  };
}

/** controller-runtime's default: 5 ms → 1000 s per key, and 10 qps / 100 burst overall. */
export function defaultControllerRateLimiter(): RateLimiter {
  return maxOfRateLimiter(exponentialFailureRateLimiter(5, 1_000_000), bucketRateLimiter(10, 100));
}

/** `ms` stretched by a random factor in [1, 1 + maxFactor) (client-go wait.Jitter). */
export function jitter(ms: number, maxFactor: number, random: () => number = Math.random): number {
  return ms + random() * maxFactor * ms;
}

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** Each delay is stretched by up to this fraction so that many clients do not retry in step. */
  jitter?: number;
}

/** Exponential backoff for one reconnect loop: initial, doubling per failure, capped, jittered. */
export class Backoff {
  private failures = 0;

  constructor(
    private readonly opts: BackoffOptions,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    const base = Math.min(this.opts.maxMs, this.opts.initialMs * 2 ** this.failures);
    this.failures++;
    return Math.min(this.opts.maxMs, jitter(base, this.opts.jitter ?? 0.5, this.random));
  }

  reset(): void {
    this.failures = 0;
  }
}
