import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { IpamExpirations } from './ipam-expiration.js';

describe('IPAM expiration timers', () => {
  it('releases an allocation no endpoint claimed in time, and only that one', async () => {
    const expired: string[] = [];
    const timers = new IpamExpirations((ip) => expired.push(ip), 30);
    const uuid = timers.start('10.0.0.5');
    timers.start('10.0.0.6');
    expect(uuid).to.match(/^[0-9a-f-]{36}$/);
    timers.stop('10.0.0.6');
    await sleep(80);
    expect(expired).to.deep.equal(['10.0.0.5']);
    expect(timers.has('10.0.0.5')).to.equal(false);
  });

  it('takes the allocation\'s own uuid only, and a restart of the timer gets a new one', () => {
    const timers = new IpamExpirations(() => undefined, 60_000);
    const first = timers.start('10.0.0.7');
    expect(timers.accepts('10.0.0.7', first)).to.equal(true);
    expect(timers.accepts('10.0.0.7', undefined)).to.equal(true);
    expect(timers.accepts('10.0.0.7', 'other')).to.equal(false);
    expect(timers.accepts('10.0.0.8', 'anything'), 'no timer').to.equal(true);
    const second = timers.start('10.0.0.7');
    expect(second).to.not.equal(first);
    expect(timers.accepts('10.0.0.7', first)).to.equal(false);
    timers.stopAll();
    expect(timers.has('10.0.0.7')).to.equal(false);
  });
});
