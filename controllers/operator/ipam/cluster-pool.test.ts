import { expect } from 'chai';
import fc from 'fast-check';
import { parseIPv4Prefix } from '../../../datapath/maps/ipv4.js';
import { ClusterPoolAllocator } from './cluster-pool.js';

describe('cluster-pool podCIDR allocator', () => {
  it('defaults to 10.0.0.0/8 in /24s; one CIDR per node, stable per node', () => {
    const a = new ClusterPoolAllocator();
    expect(a.allocate('n1')).to.equal('10.0.0.0/24');
    expect(a.allocate('n2')).to.equal('10.0.1.0/24');
    expect(a.allocate('n1')).to.equal('10.0.0.0/24');
    expect(a.get('n3')).to.equal(undefined);
  });

  it('spills into the next pool when the first is full, and fails naming the pools when all are', () => {
    const a = new ClusterPoolAllocator(['10.1.0.0/23', '10.2.0.0/24'], 24);
    expect(['a', 'b', 'c'].map((n) => a.allocate(n))).to.deep.equal(['10.1.0.0/24', '10.1.1.0/24', '10.2.0.0/24']);
    expect(() => a.allocate('d')).to.throw(/node d: no free \/24 left in cluster-pool-ipv4-cidr 10\.1\.0\.0\/23,10\.2\.0\.0\/24/);
    a.release('b');
    expect(a.allocate('d')).to.equal('10.1.1.0/24');
  });

  it('refuses bad configuration naming the option', () => {
    expect(() => new ClusterPoolAllocator([], 24)).to.throw(/cluster-pool-ipv4-cidr: empty/);
    expect(() => new ClusterPoolAllocator(['10.0.0.0/16'], 31)).to.throw(/cluster-pool-ipv4-mask-size: 31/);
    expect(() => new ClusterPoolAllocator(['10.0.0.0/16'], 8)).to.throw(/cluster-pool-ipv4-mask-size: \/8 is wider/);
    expect(() => new ClusterPoolAllocator(['10.0.0.0/8'], 25)).to.throw(/more than 2\^16/);
    expect(() => new ClusterPoolAllocator(['10.0.0.0/8', '10.5.0.0/16'], 24)).to.throw(/10\.0\.0\.0\/8 overlaps 10\.5\.0\.0\/16/);
    expect(() => new ClusterPoolAllocator(['10.0.0.300/8'], 24)).to.throw(/cluster-pool-ipv4-cidr/);
  });

  it('restore: first by name keeps a contested CIDR; bad claims are reported, not allocated', () => {
    const a = new ClusterPoolAllocator(['10.0.0.0/16'], 24);
    const conflicts = a.restore(
      new Map([
        ['zeta', ['10.0.5.0/24']],
        ['alpha', ['10.0.5.0/24', 'fd00::/120']],
        ['beta', ['10.9.0.0/24']],
        ['gamma', ['10.0.6.0/25']],
        ['delta', ['10.0.0.0/24']],
      ]),
    );
    expect(conflicts).to.deep.equal([
      { node: 'beta', cidr: '10.9.0.0/24', reason: 'podCIDR 10.9.0.0/24 is outside cluster-pool-ipv4-cidr' },
      { node: 'gamma', cidr: '10.0.6.0/25', reason: 'podCIDR 10.0.6.0/25 is not a /24 (cluster-pool-ipv4-mask-size)' },
      { node: 'zeta', cidr: '10.0.5.0/24', reason: 'podCIDR 10.0.5.0/24 is already allocated to node alpha' },
    ]);
    expect(a.get('alpha')).to.equal('10.0.5.0/24');
    expect(a.get('delta')).to.equal('10.0.0.0/24');
    expect(a.get('zeta')).to.equal(undefined);
    // New allocations skip every restored CIDR.
    expect(a.allocate('zeta')).to.equal('10.0.1.0/24');
    const all = [...a.allocations().values()];
    expect(new Set(all).size).to.equal(all.length);
  });

  it('property: never the same CIDR twice, all inside the pools, released CIDRs come back', () => {
    const op = fc.oneof(fc.nat(30).map((n) => ({ kind: 'alloc' as const, n })), fc.nat(30).map((n) => ({ kind: 'release' as const, n })));
    fc.assert(
      fc.property(fc.integer({ min: 27, max: 30 }), fc.array(op, { maxLength: 200 }), (mask, ops) => {
        const pools = ['172.16.0.0/26', '172.16.1.0/27'];
        const a = new ClusterPoolAllocator(pools, mask);
        const total = pools.reduce((t, p) => t + 2 ** (mask - parseIPv4Prefix(p).bits), 0);
        const model = new Map<string, string>();
        for (const o of ops) {
          const node = `n${o.n}`;
          if (o.kind === 'release') {
            a.release(node);
            model.delete(node);
            continue;
          }
          if (!model.has(node) && model.size === total) {
            expect(() => a.allocate(node)).to.throw(/no free/);
            continue;
          }
          const cidr = a.allocate(node);
          if (model.has(node)) expect(cidr).to.equal(model.get(node));
          else expect([...model.values()]).to.not.include(cidr);
          model.set(node, cidr);
          const p = parseIPv4Prefix(cidr);
          expect(p.bits).to.equal(mask);
          expect(cidr.startsWith('172.16.0.') || cidr.startsWith('172.16.1.')).to.equal(true);
          if (cidr.startsWith('172.16.1.')) expect(p.addr[3]).to.be.below(32);
          else expect(p.addr[3]).to.be.below(64);
        }
        expect(a.allocations()).to.deep.equal(model);
        // A fresh allocator restored from the result hands out none of them again.
        const b = new ClusterPoolAllocator(pools, mask);
        expect(b.restore(new Map([...model].map(([n, c]) => [n, [c]])))).to.deep.equal([]);
        if (model.size < total) expect([...model.values()]).to.not.include(b.allocate('newcomer'));
      }),
      { numRuns: 200 },
    );
  });
});
