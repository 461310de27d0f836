import { expect } from 'chai';
import fc from 'fast-check';
import { LabelSet } from '../labels/labels.js';
import { ciliumIdentityFor, identityId, identityLabels } from './cilium-identity.js';
import { globalIdentityRange, identityCandidates } from './numeric.js';

describe('numeric identities', () => {
  it('global range per cluster id skips each block\'s first 256 ids', () => {
    expect(globalIdentityRange(0)).to.deep.equal({ min: 256, max: 65535 });
    expect(globalIdentityRange(1)).to.deep.equal({ min: 65536 + 256, max: 131071 });
    expect(globalIdentityRange(255)).to.deep.equal({ min: 255 * 65536 + 256, max: 256 * 65536 - 1 });
    expect(() => globalIdentityRange(256)).to.throw(/cluster-id: 256 is not an integer in 0\.\.255/);
    expect(() => globalIdentityRange(-1)).to.throw(/cluster-id/);
    expect(() => globalIdentityRange(1.5)).to.throw(/cluster-id/);
  });

  it('candidates: same order for the same labels, distinct, inside the range', () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { minLength: 1, maxLength: 5 }), fc.integer({ min: 0, max: 255 }), (values, cluster) => {
        const labels = LabelSet.parse(values.map((v, i) => `k8s:k${i}=${v}`));
        const range = globalIdentityRange(cluster);
        const take = (n: number) => {
          const out: number[] = [];
          for (const id of identityCandidates(labels, range)) if (out.push(id) >= n) break;
          return out;
        };
        const a = take(20);
        expect(a).to.deep.equal(take(20));
        expect(new Set(a).size).to.equal(20);
        for (const id of a) expect(id).to.be.within(range.min, range.max);
      }),
      { numRuns: 50 },
    );
  });

  it('candidates eventually cover a small range exactly once', () => {
    const range = { min: 256, max: 271 };
    const all = [...identityCandidates(LabelSet.parse(['k8s:a=b']), range)];
    expect([...all].sort((x, y) => x - y)).to.deep.equal(Array.from({ length: 16 }, (_, i) => 256 + i));
  });

  it('different label sets start at different ids', () => {
    const range = globalIdentityRange(0);
    const firsts = new Set(Array.from({ length: 50 }, (_, i) => identityCandidates(LabelSet.parse([`k8s:app=a${i}`]), range).next().value as number));
    expect(firsts.size).to.be.greaterThan(45);
  });
});

describe('CiliumIdentity objects', () => {
  it('name is the decimal id; metadata.labels only the pod namespace; security-labels the set', () => {
    const labels = LabelSet.parse(['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=shop', 'k8s:io.cilium.k8s.policy.cluster=default']);
    const ci = ciliumIdentityFor(4242, labels);
    expect(ci).to.deep.equal({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumIdentity',
      metadata: { name: '4242', labels: { 'io.kubernetes.pod.namespace': 'shop' } },
      'security-labels': { 'k8s:app': 'web', 'k8s:io.cilium.k8s.policy.cluster': 'default', 'k8s:io.kubernetes.pod.namespace': 'shop' },
    });
    expect(identityId(ci)).to.equal(4242);
    expect(identityLabels(ci).equals(labels)).to.equal(true);
    expect(ciliumIdentityFor(300, LabelSet.parse(['k8s:app=x'])).metadata).to.deep.equal({ name: '300' });
    expect(identityId({ ...ci, metadata: { name: '0x10' } })).to.equal(undefined);
  });
});
