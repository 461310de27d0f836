import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { seriesValue } from './metrics.js';
import { exponentialFailureRateLimiter } from './ratelimit.js';
import { WorkQueue } from './workqueue.js';


describe('WorkQueue', () => {
  it('coalesces adds of a waiting key and hands keys out in order', async () => {
    const q = new WorkQueue({ name: 'coalesce' });
    for (const k of ['a', 'b', 'a', 'a', 'c', 'b']) q.add(k);
    expect(q.len()).to.equal(3);
    expect([await q.get(), await q.get(), await q.get()]).to.deep.equal(['a', 'b', 'c']);
    expect(q.len()).to.equal(0);
  });

  it('holds back a key added while it is processed until done(), then queues it once', async () => {
    const q = new WorkQueue({ name: 'processing' });
    q.add('a');
    expect(await q.get()).to.equal('a');
    q.add('a');
    q.add('a');
    expect(q.len(), 'a is being processed: not handed to a second worker').to.equal(0);
    let second: string | undefined;
    void q.get().then((k) => (second = k));
    await sleep(5);
    expect(second).to.equal(undefined);
    q.done('a');
    await sleep(0);
    expect(second).to.equal('a');
    q.done('a');
    expect(q.len()).to.equal(0);
  });

  it('wakes a waiting worker on add', async () => {
    const q = new WorkQueue({ name: 'wake' });
    const got = q.get();
    q.add('x');
    expect(await got).to.equal('x');
  });

  it('addAfter delivers after the delay, the earliest of several delays wins', async () => {
    const q = new WorkQueue({ name: 'after' });
    const t0 = Date.now();
    q.addAfter('k', 600);
    q.addAfter('k', 30);
    q.addAfter('k', 900);
    await sleep(10);
    expect(q.len()).to.equal(0);
    expect(await q.get()).to.equal('k');
    // Well before the 600 ms timer, with slack for a loaded machine.
    expect(Date.now() - t0).to.be.within(28, 450);
    q.done('k');
    await sleep(1000 - (Date.now() - t0));
    expect(q.len(), 'the later timers were dropped, not added').to.equal(0);
  });

  it('retries with per-key exponential backoff and forget() resets it', async () => {
    const q = new WorkQueue({ name: 'retry', rateLimiter: exponentialFailureRateLimiter(20, 1000) });
    const delays: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      q.addRateLimited('k');
      expect(await q.get()).to.equal('k');
      delays.push(Date.now() - t0);
      q.done('k');
    }
    expect(q.numRequeues('k')).to.equal(3);
    // 20, 40, 80 ms: the lower bounds prove the doubling; the upper ones leave room for a busy machine.
    expect(delays[0]).to.be.within(18, 200);
    expect(delays[1]).to.be.within(38, 250);
    expect(delays[2]).to.be.within(78, 300);
    q.forget('k');
    expect(q.numRequeues('k')).to.equal(0);
  });

  it('shutDownWithDrain lets workers finish what is queued and drops new adds', async () => {
    const q = new WorkQueue({ name: 'drain' });
    for (const k of ['a', 'b', 'c']) q.add(k);
    const processed: string[] = [];
    const worker = (async () => {
      for (;;) {
        const k = await q.get();
        if (k === undefined) return;
        await sleep(20);
        processed.push(k);
        q.done(k);
      }
    })();
    await sleep(5);
    const drained = q.shutDownWithDrain(2000);
    q.add('late');
    q.addAfter('later', 1);
    expect(await drained).to.equal(true);
    await worker;
    expect(processed).to.deep.equal(['a', 'b', 'c']);
    expect(await q.get()).to.equal(undefined);
  });

  it('shutDownWithDrain gives up at its deadline when a key is never done', async () => {
    const q = new WorkQueue({ name: 'stuck' });
    q.add('stuck');
    expect(await q.get()).to.equal('stuck');
    const t0 = Date.now();
    expect(await q.shutDownWithDrain(50)).to.equal(false);
    expect(Date.now() - t0).to.be.within(40, 500);
  });

  it('reports controller-runtime workqueue metrics under its name', async () => {
    const registry = new Registry();
    const q = new WorkQueue({ name: 'metered', registry, rateLimiter: exponentialFailureRateLimiter(1, 10) });
    q.add('a');
    q.add('a');
    q.add('b');
    expect(await seriesValue(registry, 'workqueue_depth', { name: 'metered' })).to.equal(2);
    expect(await seriesValue(registry, 'workqueue_adds_total', { name: 'metered' })).to.equal(2);
    await q.get();
    await sleep(30);
    expect(await seriesValue(registry, 'workqueue_longest_running_processor_seconds', { name: 'metered' })).to.be.at.least(0.025);
    expect(await seriesValue(registry, 'workqueue_unfinished_work_seconds', { name: 'metered' })).to.be.at.least(0.025);
    q.done('a');
    q.addRateLimited('a');
    expect(await seriesValue(registry, 'workqueue_retries_total', { name: 'metered' })).to.equal(1);
    expect(await seriesValue(registry, 'workqueue_queue_duration_seconds', { name: 'metered' }, 'workqueue_queue_duration_seconds_count')).to.equal(1);
    expect(await seriesValue(registry, 'workqueue_work_duration_seconds', { name: 'metered' }, 'workqueue_work_duration_seconds_count')).to.equal(1);
    const text = await registry.metrics();
    expect(text).to.include('workqueue_depth{name="metered"} 1');
  });
});
