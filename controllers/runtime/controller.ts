// A Controller binds Resources to a work queue and a Reconciler: events only enqueue keys; N
// workers take keys and call reconcile(key). The queue guarantees one key never runs on two
// workers at once; a failure is retried with backoff for that key alone.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import { objectKey, type KubeObject } from './kinds.js';
import { newLogger, type Logger } from './log.js';
import { runtimeMetrics, type RuntimeMetrics } from './metrics.js';
import type { RateLimiter } from './ratelimit.js';
import type { Resource } from './resource.js';
import { WorkQueue } from './workqueue.js';

export interface ReconcileResult {
  /** Reconcile this key again after this many ms (the failure streak is forgotten). */
  requeueAfter?: number;
}

export interface ReconcileContext {
  /** Aborts when the reconcile timeout passes. */
  signal: AbortSignal;
  /** Carries controller, key and reconcileID on every line. */
  log: Logger;
  reconcileId: string;
}

export interface Reconciler {
  reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult | void>;
}

/** A failure retrying cannot fix (e.g. an invalid spec): logged and counted, not requeued. */
export class TerminalError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TerminalError';
  }
}

export interface ControllerOptions {
  /** The `controller` label of the metrics and the queue's `name`. */
  name: string;
  reconciler: Reconciler;
  /** Concurrent reconciles (of distinct keys); default 1. */
  workers?: number;
  registry?: Registry;
  logger?: Logger;
  rateLimiter?: RateLimiter;
  /** Aborts ctx.signal after this long; default none. */
  reconcileTimeoutMs?: number;
  /** How long start() waits for the watched resources' first list; default 2 min. */
  cacheSyncTimeoutMs?: number;
  /** How long a shutdown waits for queued and running keys; default 30 s. */
  drainTimeoutMs?: number;
}

export class Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  private readonly resources: Resource<KubeObject>[] = [];
  private readonly log: Logger;
  private readonly metrics?: RuntimeMetrics['reconcile'];

  constructor(private readonly opts: ControllerOptions) {
    this.name = opts.name;
    this.log = opts.logger ?? newLogger(`controller/${opts.name}`);
    this.queue = new WorkQueue({ name: opts.name, rateLimiter: opts.rateLimiter, registry: opts.registry });
    if (opts.registry) this.metrics = runtimeMetrics(opts.registry).reconcile;
  }

  /**
   * Enqueues the keys `map` gives for each changed object (its own ns/name key by default); on an
   * update the keys of the old and the new object, so a key that stops matching is reconciled too.
   */
  watch<T extends KubeObject>(resource: Resource<T>, map: (obj: T) => string[] = (o) => [objectKey(o)]): this {
    this.resources.push(resource as unknown as Resource<KubeObject>);
    const enqueue = (obj: T) => map(obj).forEach((k) => this.queue.add(k));
    resource.on({
      add: enqueue,
      update: (oldObj, newObj) => {
        enqueue(oldObj);
        enqueue(newObj);
      },
      delete: enqueue,
    });
    return this;
  }

  enqueue(key: string): void {
    this.queue.add(key);
  }

  /**
   * Waits for the watched resources' first list, runs the workers until `signal` aborts, then
   * drains the queue (new events are dropped, queued keys still run) and resolves.
   */
  async start(signal: AbortSignal): Promise<void> {
    const syncTimeoutMs = this.opts.cacheSyncTimeoutMs ?? 120_000;
    const syncSignal = AbortSignal.any([signal, AbortSignal.timeout(syncTimeoutMs)]);
    try {
      await Promise.all(this.resources.map((r) => r.waitForSync(syncSignal)));
    } catch (err) {
      this.queue.shutDown();
      if (signal.aborted) return;
      throw new Error(`controller ${this.name}: caches not synced within ${syncTimeoutMs} ms: ${(err as Error).message}`, { cause: err });
    }
    const workers = this.opts.workers ?? 1;
    this.metrics?.maxConcurrent.set({ controller: this.name }, workers);
    this.metrics?.activeWorkers.set({ controller: this.name }, 0);
    this.log.info('starting workers', { controller: this.name, workers });
    const running = Array.from({ length: workers }, () => this.worker());
    // The queue closes in the abort itself, so nothing enqueued after stop() slips in.
    await new Promise<void>((resolve) => {
      const close = () => {
        this.queue.shutDown();
        resolve();
      };
      if (signal.aborted) close();
      else signal.addEventListener('abort', close, { once: true });
    });
    const drainMs = this.opts.drainTimeoutMs ?? 30_000;
    const drained = await this.queue.shutDownWithDrain(drainMs);
    if (!drained) this.log.warn('shutdown: queue not drained in time', { controller: this.name, drainMs, queued: this.queue.len() });
    else await Promise.all(running);
    this.log.info('workers stopped', { controller: this.name });
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.reconcileOne(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  private async reconcileOne(key: string): Promise<void> {
    const reconcileId = randomUUID();
    const log = this.log.child({ controller: this.name, key, reconcileID: reconcileId });
    const labels = { controller: this.name };
    const timeout = this.opts.reconcileTimeoutMs;
    const signal = timeout === undefined ? new AbortController().signal : AbortSignal.timeout(timeout);
    this.metrics?.activeWorkers.inc(labels);
    const started = performance.now();
    let result: ReconcileResult | void;
    try {
      result = await this.opts.reconciler.reconcile(key, { signal, log, reconcileId });
    } catch (err) {
      this.metrics?.errors.inc(labels);
      this.metrics?.total.inc({ ...labels, result: 'error' });
      if (err instanceof TerminalError) {
        this.metrics?.terminalErrors.inc(labels);
        this.queue.forget(key);
        log.error('reconcile failed permanently, not retrying', { error: err.message });
      } else {
        this.queue.addRateLimited(key);
        log.error('reconcile failed, retrying', { error: (err as Error).message, retries: this.queue.numRequeues(key) });
      }
      return;
    } finally {
      this.metrics?.time.observe(labels, (performance.now() - started) / 1000);
      this.metrics?.activeWorkers.dec(labels);
    }
    this.queue.forget(key);
    const after = result?.requeueAfter ?? 0;
    if (after > 0) {
      this.queue.addAfter(key, after);
      this.metrics?.total.inc({ ...labels, result: 'requeue_after' });
      log.debug('reconciled, requeued', { requeueAfterMs: after });
    } else {
      this.metrics?.total.inc({ ...labels, result: 'success' });
      log.debug('reconciled');
    }
  }
}
