import { expect } from 'chai';
import { RESERVED_IDENTITIES, reservedIdentity, SINGLE_STACK_RESERVED } from './reserved.js';

describe('reserved identities', () => {
  it('ids and labels are upstream\'s', () => {
    expect(Object.entries(RESERVED_IDENTITIES)).to.deep.equal([
      ['host', 1],
      ['world', 2],
      ['unmanaged', 3],
      ['health', 4],
      ['init', 5],
      ['remote-node', 6],
      ['kube-apiserver', 7],
      ['ingress', 8],
      ['world-ipv4', 9],
      ['world-ipv6', 10],
    ]);
    expect(reservedIdentity('host')?.labels.strings).to.deep.equal(['reserved:host']);
    expect(reservedIdentity('kube-apiserver')?.labels.strings).to.deep.equal(['reserved:kube-apiserver', 'reserved:remote-node']);
    expect(reservedIdentity('nope')).to.equal(undefined);
  });

  it('a single-stack datapath assigns all but the per-family world identities', () => {
    expect(SINGLE_STACK_RESERVED.map((r) => r.id)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(SINGLE_STACK_RESERVED.find((r) => r.name === 'world')?.labels.strings).to.deep.equal(['reserved:world']);
  });
});
