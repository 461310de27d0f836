import { expect } from 'chai';
import { Backoff, bucketRateLimiter, exponentialFailureRateLimiter, jitter, maxOfRateLimiter } from './ratelimit.js';

describe('rate limiters', () => {
  it('exponential: base·2^n per key, capped, independent per key, reset by forget', () => {
    const l = exponentialFailureRateLimiter(5, 100);
    expect([1, 2, 3, 4, 5, 6, 7].map(() => l.when('a'))).to.deep.equal([5, 10, 20, 40, 80, 100, 100]);
    expect(l.when('b')).to.equal(5);
    expect(l.numRequeues('a')).to.equal(7);
    l.forget('a');
    expect(l.numRequeues('a')).to.equal(0);
    expect(l.when('a')).to.equal(5);
  });

  it('bucket: burst without delay, then 1/qps apart, refilled by time', () => {
    let now = 0;
    const l = bucketRateLimiter(10, 3, () => now);
    expect([l.when('x'), l.when('y'), l.when('z')]).to.deep.equal([0, 0, 0]);
    expect(l.when('x')).to.equal(100);
    expect(l.when('x')).to.equal(200);
    now = 1000;
    expect(l.when('x')).to.equal(0);
  });

  it('max-of takes the longest delay', () => {
    let now = 0;
    const l = maxOfRateLimiter(exponentialFailureRateLimiter(5, 1000), bucketRateLimiter(1, 1, () => now));
    expect(l.when('a')).to.equal(5);
    expect(l.when('a')).to.equal(1000);
    now = 10_000;
    expect(l.when('a')).to.equal(20);
  });

  it('backoff doubles from initial to max with bounded jitter and resets', () => {
    const none = new Backoff({ initialMs: 500, maxMs: 30_000, jitter: 0 });
    expect(Array.from({ length: 8 }, () => none.next())).to.deep.equal([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    none.reset();
    expect(none.next()).to.equal(500);
    const full = new Backoff({ initialMs: 500, maxMs: 30_000, jitter: 0.5 }, () => 0.999);
    expect(full.next()).to.be.within(749, 750);
    expect(jitter(100, 1.2, () => 0.5)).to.equal(160);
    const random = new Backoff({ initialMs: 500, maxMs: 30_000 });
    for (let i = 0; i < 20; i++) expect(random.next()).to.be.at.most(30_000);
  });
});
