// A work queue of keys with client-go's guarantees: a key waits in the queue at most once however
// often it is added (dirty set), a key is handed to at most one worker at a time (processing set),
// and a key added while it is processed comes back once the worker calls done().
import { performance } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import { runtimeMetrics, type InFlight, type RuntimeMetrics } from './metrics.js';
import { defaultControllerRateLimiter, type RateLimiter } from './ratelimit.js';

export interface WorkQueueOptions {
  /** The `name` label of the workqueue_* metrics. */
  name: string;
  rateLimiter?: RateLimiter;
  registry?: Registry;
}

export class WorkQueue {
  readonly name: string;
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Map<string, number>();
  private readonly addedAt = new Map<string, number>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private readonly idleWaiters: (() => void)[] = [];
  private readonly rateLimiter: RateLimiter;
  private readonly metrics?: RuntimeMetrics['workqueue'];
  private shuttingDown = false;

  constructor(opts: WorkQueueOptions) {
    this.name = opts.name;
    this.rateLimiter = opts.rateLimiter ?? defaultControllerRateLimiter();
    if (opts.registry) {
      this.metrics = runtimeMetrics(opts.registry).workqueue;
      // A queue made again under the same name (a controller restarted) takes over the series.
      this.metrics.inFlight.set(this.name, this.readInFlight);
      this.metrics.depth.set({ name: this.name }, 0);
    }
  }

  /** Queues `key` unless it already waits; dropped once the queue shuts down. */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    this.addedAt.set(key, performance.now());
    this.metrics?.adds.inc({ name: this.name });
    // A key being processed is queued again by done().
    if (this.processing.has(key)) return;
    this.push(key);
  }

  /** Adds `key` after `delayMs`; of several pending delays for one key the earliest wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const at = performance.now() + delayMs;
    const pending = this.delayed.get(key);
    if (pending !== undefined) {
      if (pending.at <= at) return;
      clearTimeout(pending.timer);
    }
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delayMs);
    this.delayed.set(key, { at, timer });
  }

  /** Adds `key` after the rate limiter's delay for it (one more failure). */
  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    this.metrics?.retries.inc({ name: this.name });
    this.addAfter(key, this.rateLimiter.when(key));
  }

  /** Ends `key`'s failure streak: its next retry starts from the shortest delay again. */
  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.rateLimiter.numRequeues(key);
  }

  /** Keys waiting to be handed out (not counting delayed or in-flight ones). */
  len(): number {
    return this.queue.length;
  }

  /**
   * The next key, waiting for one if needed; the caller owns it until done(key). Resolves to
   * undefined once the queue is shut down and empty.
   */
  get(): Promise<string | undefined> {
    const key = this.take();
    if (key !== undefined || this.shuttingDown) return Promise.resolve(key);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks `key` processed; if it was added meanwhile it goes back in the queue now. */
  done(key: string): void {
    const started = this.processing.get(key);
    if (started === undefined) return;
    this.processing.delete(key);
    this.metrics?.workDuration.observe({ name: this.name }, (performance.now() - started) / 1000);
    if (this.dirty.has(key)) this.push(key);
    else this.notifyIdle();
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Stops taking new keys and delayed adds; waiting workers get what is queued, then undefined. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    this.wake();
    this.notifyIdle();
  }

  /**
   * Shuts down, then waits until workers have taken and finished every queued key. Resolves true
   * when drained, false when `deadlineMs` passed first.
   */
  async shutDownWithDrain(deadlineMs: number): Promise<boolean> {
    this.shutDown();
    if (this.idle()) return true;
    let timer: NodeJS.Timeout | undefined;
    const drained = new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), deadlineMs)));
    try {
      return await Promise.race([drained, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  private idle(): boolean {
    return this.queue.length === 0 && this.processing.size === 0;
  }

  private notifyIdle(): void {
    if (!this.shuttingDown || !this.idle()) return;
    if (this.metrics?.inFlight.get(this.name) === this.readInFlight) this.metrics.inFlight.delete(this.name);
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private push(key: string): void {
    this.queue.push(key);
    this.metrics?.depth.set({ name: this.name }, this.queue.length);
    this.wake();
  }

  private take(): string | undefined {
    const key = this.queue.shift();
    if (key === undefined) return undefined;
    this.metrics?.depth.set({ name: this.name }, this.queue.length);
    const now = performance.now();
    const added = this.addedAt.get(key);
    if (added !== undefined) this.metrics?.queueDuration.observe({ name: this.name }, (now - added) / 1000);
    this.addedAt.delete(key);
    this.dirty.delete(key);
    this.processing.set(key, now);
    return key;
  }

  private wake(): void {
    while (this.waiters.length > 0) {
      const key = this.take();
      if (key === undefined && !this.shuttingDown) return;
      this.waiters.shift()?.(key);
    }
  }

  private readonly readInFlight = (): InFlight => {
    const now = performance.now();
    let unfinished = 0;
    let longest = 0;
    for (const started of this.processing.values()) {
      unfinished += now - started;
      longest = Math.max(longest, now - started);
    }
    return { unfinishedSeconds: unfinished / 1000, longestSeconds: longest / 1000 };
  };
}
