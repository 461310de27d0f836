import { expect } from 'chai';
import type { CiliumEndpoint, CiliumNode, NodeAddress } from '../../../crds/gen/index.js';
import { computeIPCache, FLAG_HAS_TUNNEL, IDENTITY_HEALTH, IDENTITY_HOST, IDENTITY_REMOTE_NODE } from './compute.js';

function node(name: string, addresses: NodeAddress[], health?: string): CiliumNode {
  return { apiVersion: 'cilium.io/v2', kind: 'CiliumNode', metadata: { name }, spec: { addresses, ...(health ? { health: { ipv4: health } } : {}) } };
}

function cep(name: string, nodeName: string | undefined, ipv4: string | undefined, identity: number | undefined, created?: string): CiliumEndpoint {
  return {
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumEndpoint',
    metadata: { name, namespace: 'ns', ...(created ? { creationTimestamp: new Date(created) } : {}) },
    status: {
      ...(identity === undefined ? {} : { identity: { id: identity } }),
      ...(ipv4 === undefined && nodeName === undefined ? {} : { networking: { addressing: ipv4 === undefined ? [] : [{ ipv4 }], node: nodeName } }),
    },
  };
}

const own = node('n1', [
  { type: 'InternalIP', ip: '192.168.0.1' },
  { type: 'CiliumInternalIP', ip: '10.0.1.1' },
  { type: 'Hostname', ip: 'n1.example' },
], '10.0.1.2');
const other = node('n2', [
  { type: 'CiliumInternalIP', ip: '10.0.2.1' },
  { type: 'InternalIP', ip: '192.168.0.2' },
], '10.0.2.2');

describe('computeIPCache', function () {
  it('maps this node to host, other nodes to remote-node tunnelled at their router, health everywhere', function () {
    const { rows, problems } = computeIPCache({ nodeName: 'n1', nodes: [other, own], endpoints: [] });
    expect(problems).to.deep.equal([]);
    expect(rows.local).to.deep.equal([
      { prefix: '10.0.1.1/32', identity: IDENTITY_HOST },
      { prefix: '10.0.1.2/32', identity: IDENTITY_HEALTH },
      { prefix: '192.168.0.1/32', identity: IDENTITY_HOST },
    ]);
    expect(rows.node).to.deep.equal([
      { prefix: '10.0.2.1/32', identity: IDENTITY_REMOTE_NODE, tunnelEndpoint: '192.168.0.2', flags: FLAG_HAS_TUNNEL },
      { prefix: '10.0.2.2/32', identity: IDENTITY_HEALTH, tunnelEndpoint: '192.168.0.2', flags: FLAG_HAS_TUNNEL },
      { prefix: '192.168.0.2/32', identity: IDENTITY_REMOTE_NODE },
    ]);
    expect([IDENTITY_HOST, IDENTITY_HEALTH, IDENTITY_REMOTE_NODE]).to.deep.equal([1, 4, 6]);
  });

  it('maps every address of the node\'s devices to host, keeping its health address health', function () {
    const { rows } = computeIPCache({ nodeName: 'n1', nodes: [own, other], endpoints: [], localAddresses: ['172.30.0.11', '10.0.1.1', '10.0.1.2', 'fd00::1'] });
    expect(rows.local).to.deep.equal([
      { prefix: '10.0.1.1/32', identity: IDENTITY_HOST },
      { prefix: '10.0.1.2/32', identity: IDENTITY_HEALTH },
      { prefix: '172.30.0.11/32', identity: IDENTITY_HOST },
      { prefix: '192.168.0.1/32', identity: IDENTITY_HOST },
    ]);
    const early = computeIPCache({ nodeName: 'n1', nodes: [], endpoints: [], localAddresses: ['172.30.0.11'] }).rows.local;
    expect(early, 'before its CiliumNode exists').to.deep.equal([{ prefix: '172.30.0.11/32', identity: IDENTITY_HOST }]);
  });

  it('gives pods their identity, tunnelled to their node unless they are local', function () {
    const { rows } = computeIPCache({
      nodeName: 'n1',
      nodes: [own, other],
      endpoints: [cep('a', 'n1', '10.0.1.10', 1000), cep('b', 'n2', '10.0.2.10', 2000), cep('c', '192.168.0.9', '10.0.9.10', 3000)],
    });
    expect(rows.endpoint).to.deep.equal([
      { prefix: '10.0.1.10/32', identity: 1000 },
      { prefix: '10.0.2.10/32', identity: 2000, tunnelEndpoint: '192.168.0.2', flags: FLAG_HAS_TUNNEL },
      // Upstream's CiliumEndpoints name the node by IP.
      { prefix: '10.0.9.10/32', identity: 3000, tunnelEndpoint: '192.168.0.9', flags: FLAG_HAS_TUNNEL },
    ]);
  });

  it('skips endpoints without address or identity and reports malformed fields', function () {
    const bad = cep('bad', 'n2', 'banana', 1000);
    const zero = cep('zero', 'n2', '10.0.2.11', 0);
    const { rows, problems } = computeIPCache({
      nodeName: 'n1',
      nodes: [own, other, node('n3', [{ type: 'InternalIP', ip: '999.1.1.1' }, { type: 'InternalIP', ip: 'fd00::1' }])],
      endpoints: [cep('creating', undefined, undefined, undefined), cep('no-ip', 'n2', undefined, 1000), cep('no-id', 'n2', '10.0.2.12', undefined), bad, zero],
    });
    expect(rows.endpoint).to.deep.equal([]);
    expect(problems.map((p) => [p.object.metadata?.name, p.path])).to.deep.equal([
      ['n3', 'spec.addresses[0].ip'],
      ['bad', 'status.networking.addressing[0].ipv4'],
      ['zero', 'status.identity.id'],
    ]);
  });

  it('resolves an address two endpoints claim: local endpoints, then this node, then the newest, then the name', function () {
    const older = cep('older', 'n2', '10.0.0.5', 100, '2026-01-01T00:00:00Z');
    const newer = cep('newer', 'n2', '10.0.0.5', 200, '2026-02-01T00:00:00Z');
    const same1 = cep('z', 'n2', '10.0.0.6', 300, '2026-01-01T00:00:00Z');
    const same2 = cep('a', 'n2', '10.0.0.6', 400, '2026-01-01T00:00:00Z');
    const local = cep('local', 'n1', '10.0.0.7', 500, '2026-01-01T00:00:00Z');
    const remote = cep('remote', 'n2', '10.0.0.7', 600, '2026-03-01T00:00:00Z');
    const inputs = { nodeName: 'n1', nodes: [own, other] };
    const ids = (endpoints: CiliumEndpoint[], localEndpoints = [{ ipv4: '10.0.0.8', identity: 700 }]) =>
      computeIPCache({ ...inputs, endpoints, localEndpoints }).rows.endpoint.map((r) => [r.prefix, r.identity]);
    const expected = [['10.0.0.5/32', 200], ['10.0.0.6/32', 400], ['10.0.0.7/32', 500], ['10.0.0.8/32', 700]];
    expect(ids([older, newer, same1, same2, local, remote, cep('stale', 'n2', '10.0.0.8', 800)])).to.deep.equal(expected);
    expect(ids([remote, local, same2, same1, newer, older, cep('stale', 'n2', '10.0.0.8', 800)]), 'whatever the input order').to.deep.equal(expected);
    expect(ids([], [{ ipv4: '10.0.0.9', identity: 0 }]), 'a local endpoint still waiting for its identity').to.deep.equal([]);
  });

  it('computes no cidr source (the policy loop owns it) and adds no world row', function () {
    const { rows } = computeIPCache({ nodeName: 'n1', nodes: [], endpoints: [] });
    expect(Object.keys(rows)).to.deep.equal(['local', 'node', 'endpoint']);
    expect(Object.values(rows).flat()).to.deep.equal([]);
  });
});
