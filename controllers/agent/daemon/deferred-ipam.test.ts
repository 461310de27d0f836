import { expect } from 'chai';
import { hostScopeIpam } from '../endpoint/ipam.js';
import { HostScopePool } from '../ipam/pool.js';
import { DeferredIpam } from './deferred-ipam.js';

describe('DeferredIpam', () => {
  it('records claims until the pool exists, refuses allocations meanwhile, then hands over', () => {
    const ipam = new DeferredIpam();
    ipam.claim('10.1.0.5', 'ns/a');
    ipam.claim('10.1.0.6', 'ns/b');
    expect(() => ipam.claim('10.1.0.5', 'ns/c')).to.throw('10.1.0.5 is claimed by ns/a, not ns/c');
    expect(ipam.release('10.1.0.6')).to.equal(true);
    expect(() => ipam.allocate('ns/d')).to.throw(/no podCIDR yet/);
    expect(ipam.claimed()).to.deep.equal({ '10.1.0.5': { owner: 'ns/a' } });

    const pool = new HostScopePool('10.1.0.0/29');
    pool.restore(ipam.claimed());
    ipam.bind(hostScopeIpam(pool));
    expect(ipam.claimed()).to.deep.equal({});
    expect(ipam.allocate('ns/d')).to.equal('10.1.0.1');
    expect(pool.used()).to.deep.equal({ '10.1.0.1': { owner: 'ns/d' }, '10.1.0.5': { owner: 'ns/a' } });
    expect(ipam.release('10.1.0.5')).to.equal(true);
  });
});
