import { expect } from 'chai';
import fc from 'fast-check';
import { HostScopePool, OWNER_HEALTH, OWNER_ROUTER } from './pool.js';

describe('host-scope IPAM pool', () => {
  it('router gets the lowest usable address, then health, then pods; used() is status.ipam.used', () => {
    const pool = new HostScopePool('10.0.3.0/24');
    expect(pool.allocate(OWNER_ROUTER)).to.equal('10.0.3.1');
    expect(pool.allocate(OWNER_HEALTH)).to.equal('10.0.3.2');
    expect(pool.allocate('shop/web-0', 'node-1')).to.equal('10.0.3.3');
    expect(pool.used()).to.deep.equal({
      '10.0.3.1': { owner: 'router' },
      '10.0.3.2': { owner: 'health' },
      '10.0.3.3': { owner: 'shop/web-0', resource: 'node-1' },
    });
    expect(pool.capacity).to.equal(254);
  });

  it('never hands out network or broadcast; a full pool says so', () => {
    const pool = new HostScopePool('10.0.0.4/30');
    expect([pool.allocate('a/1'), pool.allocate('a/2')]).to.deep.equal(['10.0.0.5', '10.0.0.6']);
    expect(() => pool.allocate('a/3')).to.throw(/podCIDR 10\.0\.0\.4\/30: all 2 addresses in use; cannot allocate for a\/3/);
    expect(() => new HostScopePool('10.0.0.4/31')).to.throw(/\/31 leaves no address/);
    expect(() => pool.release('10.0.0.4')).to.throw(/10\.0\.0\.4 is not a usable address/);
  });

  it('restore keeps what status.ipam.used recorded; bad entries are refused whole, naming the address', () => {
    const pool = new HostScopePool('10.0.3.0/24');
    pool.restore({ '10.0.3.1': { owner: 'router' }, '10.0.3.3': { owner: 'ns/p' } });
    expect(pool.allocate('ns/q')).to.equal('10.0.3.2');
    expect(pool.allocate('ns/r')).to.equal('10.0.3.4');
    const other = new HostScopePool('10.0.3.0/24');
    expect(() => other.restore({ '10.0.3.9': { owner: 'x/y' }, '10.0.4.1': { owner: 'ns/p' } })).to.throw(/10\.0\.4\.1 is not a usable address of podCIDR 10\.0\.3\.0\/24/);
    expect(other.used()).to.deep.equal({});
    expect(() => other.restore({ '10.0.3.255': { owner: 'x/y' } })).to.throw(/not a usable address/);
    expect(() => pool.restore({ '10.0.3.3': { owner: 'ns/other' } })).to.throw(/10\.0\.3\.3: restored for ns\/other but already allocated to ns\/p/);
  });

  it('property: no address twice, all usable and inside, release makes it reusable', () => {
    const op = fc.oneof(fc.constant({ kind: 'alloc' as const }), fc.nat(40).map((i) => ({ kind: 'release' as const, i })));
    fc.assert(
      fc.property(fc.integer({ min: 24, max: 30 }), fc.array(op, { maxLength: 150 }), (bits, ops) => {
        const pool = new HostScopePool(`192.168.7.0/${bits}`);
        const held = new Set<string>();
        let n = 0;
        for (const o of ops) {
          if (o.kind === 'alloc') {
            if (held.size === pool.capacity) {
              expect(() => pool.allocate(`ns/p${n}`)).to.throw(/in use/);
              continue;
            }
            const ip = pool.allocate(`ns/p${n++}`);
            expect(held.has(ip), `${ip} handed out twice`).to.equal(false);
            const last = Number(ip.split('.')[3]);
            expect(ip.startsWith('192.168.7.')).to.equal(true);
            expect(last).to.be.within(1, 2 ** (32 - bits) - 2);
            held.add(ip);
          } else {
            const ip = [...held][o.i % Math.max(1, held.size)];
            if (ip === undefined) continue;
            expect(pool.release(ip)).to.equal(true);
            held.delete(ip);
            expect(pool.release(ip), 'second release').to.equal(false);
            // The lowest free address is handed out next, so the released one comes back first
            // when nothing below it is free.
            const below = [...held].filter((h) => Number(h.split('.')[3]) < Number(ip.split('.')[3])).length;
            if (below === Number(ip.split('.')[3]) - 1) {
              expect(pool.allocate('ns/again')).to.equal(ip);
              held.add(ip);
            }
          }
        }
        expect(Object.keys(pool.used()).sort()).to.deep.equal([...held].sort());
      }),
      { numRuns: 200 },
    );
  });
});
