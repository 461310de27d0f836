import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { pollUntil } from '../../test/envtest/poll.js';
import { Controller, TerminalError, type ReconcileContext, type Reconciler } from './controller.js';
import { newLogger } from './log.js';
import { seriesValue } from './metrics.js';
import { exponentialFailureRateLimiter } from './ratelimit.js';

const quiet = newLogger('controller-test', 'error');

describe('Controller', () => {
  let stop: AbortController;
  let running: Promise<void> | undefined;

  beforeEach(() => {
    stop = new AbortController();
    running = undefined;
  });
  afterEach(async () => {
    stop.abort();
    await running;
  });

  it('never runs one key on two workers at once, while distinct keys run in parallel', async () => {
    const active = new Map<string, number>();
    let maxPerKey = 0;
    let maxOverall = 0;
    let calls = 0;
    const reconciler: Reconciler = {
      async reconcile(key) {
        calls++;
        active.set(key, (active.get(key) ?? 0) + 1);
        maxPerKey = Math.max(maxPerKey, active.get(key) ?? 0);
        maxOverall = Math.max(maxOverall, [...active.values()].reduce((a, b) => a + b, 0));
        await sleep(15);
        active.set(key, (active.get(key) ?? 0) - 1);
      },
    };
    const c = new Controller({ name: 'parallel', reconciler, workers: 4, logger: quiet });
    running = c.start(stop.signal);
    for (let round = 0; round < 10; round++) {
      for (const k of ['a', 'b', 'c', 'd']) c.enqueue(k);
      await sleep(4);
    }
    await pollUntil('queue empty and idle', () => c.queue.len() === 0 && [...active.values()].every((n) => n === 0), 5000);
    expect(maxPerKey).to.equal(1);
    expect(maxOverall).to.be.greaterThan(1);
    // 40 adds coalesce: each key ran far fewer than 10 times, and at least twice (re-added while running).
    expect(calls).to.be.within(8, 30);
  });

  it('isolates a failing key: it is retried with backoff, the others are reconciled once', async () => {
    const registry = new Registry();
    const seen: string[] = [];
    const ids = new Set<string>();
    const reconciler: Reconciler = {
      reconcile(key, ctx: ReconcileContext) {
        seen.push(key);
        ids.add(ctx.reconcileId);
        if (key === 'bad') return Promise.reject(new Error('boom'));
        return Promise.resolve();
      },
    };
    const c = new Controller({ name: 'isolate', reconciler, registry, logger: quiet, rateLimiter: exponentialFailureRateLimiter(10, 1000) });
    running = c.start(stop.signal);
    c.enqueue('bad');
    c.enqueue('good');
    await pollUntil('bad retried 3 times', () => seen.filter((k) => k === 'bad').length >= 4, 3000);
    expect(seen.filter((k) => k === 'good')).to.have.length(1);
    expect(c.queue.numRequeues('bad')).to.be.at.least(3);
    expect(ids.size, 'one reconcile id per call').to.equal(seen.length);
    const labels = { controller: 'isolate' };
    expect(await seriesValue(registry, 'controller_runtime_reconcile_total', { ...labels, result: 'success' })).to.equal(1);
    expect(await seriesValue(registry, 'controller_runtime_reconcile_errors_total', labels)).to.be.at.least(3);
    expect(await seriesValue(registry, 'controller_runtime_reconcile_time_seconds', labels, 'controller_runtime_reconcile_time_seconds_count')).to.be.at.least(4);
    expect(await seriesValue(registry, 'controller_runtime_max_concurrent_reconciles', labels)).to.equal(1);
  });

  it('does not retry a TerminalError and requeues after requeueAfter', async () => {
    const registry = new Registry();
    const seen: string[] = [];
    const reconciler: Reconciler = {
      reconcile(key) {
        seen.push(key);
        if (key === 'terminal') return Promise.reject(new TerminalError('spec invalid'));
        return Promise.resolve(seen.filter((k) => k === 'again').length < 3 ? { requeueAfter: 20 } : undefined);
      },
    };
    const c = new Controller({ name: 'results', reconciler, registry, logger: quiet, rateLimiter: exponentialFailureRateLimiter(5, 50) });
    running = c.start(stop.signal);
    c.enqueue('terminal');
    c.enqueue('again');
    await pollUntil('again reconciled 3 times', () => seen.filter((k) => k === 'again').length === 3, 3000);
    await sleep(100);
    expect(seen.filter((k) => k === 'terminal')).to.have.length(1);
    expect(seen.filter((k) => k === 'again')).to.have.length(3);
    const labels = { controller: 'results' };
    expect(await seriesValue(registry, 'controller_runtime_reconcile_total', { ...labels, result: 'requeue_after' })).to.equal(2);
    expect(await seriesValue(registry, 'controller_runtime_terminal_reconcile_errors_total', labels)).to.equal(1);
  });

  it('on stop, finishes queued keys before start() resolves and takes no new ones', async () => {
    const done: string[] = [];
    const reconciler: Reconciler = {
      async reconcile(key) {
        await sleep(10);
        done.push(key);
      },
    };
    const c = new Controller({ name: 'drain', reconciler, logger: quiet });
    running = c.start(stop.signal);
    for (const k of ['1', '2', '3', '4']) c.enqueue(k);
    await sleep(5);
    stop.abort();
    c.enqueue('after-stop');
    await running;
    expect(done).to.deep.equal(['1', '2', '3', '4']);
  });
});
