import { expect } from 'chai';
import type { CiliumNode } from '../../../crds/gen/index.js';
import type { ResourceHandler } from '../../runtime/resource.js';
import { type ChangeNotification, ciliumNodePeers, peerPort } from './peer.js';

function node(name: string, addresses: { type: 'InternalIP' | 'ExternalIP'; ip: string }[]): CiliumNode {
  return { apiVersion: 'cilium.io/v2', kind: 'CiliumNode', metadata: { name }, spec: { addresses } };
}

/** A CiliumNode watch holding `initial`; `handler` receives what a test changes. */
function watch(initial: CiliumNode[]) {
  let handler: ResourceHandler<CiliumNode> | undefined;
  return {
    on(h: ResourceHandler<CiliumNode>) {
      for (const n of initial) h.add?.(n);
      handler = h;
      return () => (handler = undefined);
    },
    get handler() {
      return handler;
    },
  };
}

describe('hubble peer.Peer over CiliumNodes', () => {
  it('lists the nodes as added with <IPv4 InternalIP>:port, then follows adds, address changes, renames and deletes', () => {
    const w = watch([node('n1', [{ type: 'InternalIP', ip: 'fd00::1' }, { type: 'InternalIP', ip: '172.30.0.11' }]), node('n2', [{ type: 'ExternalIP', ip: '198.51.100.2' }])]);
    const seen: ChangeNotification[] = [];
    const stop = ciliumNodePeers(w, 'default', 4244).subscribe((c) => seen.push(c));
    expect(seen).to.deep.equal([
      { name: 'n1', address: '172.30.0.11:4244', type: 'PEER_ADDED', tls: null },
      { name: 'n2', address: '198.51.100.2:4244', type: 'PEER_ADDED', tls: null },
    ]);
    seen.length = 0;
    const n3 = node('n3', [{ type: 'InternalIP', ip: '172.30.0.13' }]);
    w.handler!.add!(n3);
    // Same name and address (e.g. a status write): nothing to tell.
    w.handler!.update!(n3, { ...n3 });
    w.handler!.update!(n3, node('n3', [{ type: 'InternalIP', ip: '172.30.0.23' }]));
    w.handler!.update!(n3, node('n4', [{ type: 'InternalIP', ip: '172.30.0.23' }]));
    w.handler!.delete!(node('n4', [{ type: 'InternalIP', ip: '172.30.0.23' }]));
    expect(seen.map((c) => [c.type, c.name, c.address])).to.deep.equal([
      ['PEER_ADDED', 'n3', '172.30.0.13:4244'],
      ['PEER_UPDATED', 'n3', '172.30.0.23:4244'],
      ['PEER_DELETED', 'n3', '172.30.0.13:4244'],
      ['PEER_ADDED', 'n4', '172.30.0.23:4244'],
      ['PEER_DELETED', 'n4', '172.30.0.23:4244'],
    ]);
    stop();
    expect(w.handler).to.equal(undefined);
  });

  it('names nodes of a non-default cluster <cluster>/<node>; a node without address has none', () => {
    const seen: ChangeNotification[] = [];
    ciliumNodePeers(watch([node('n1', [])]), 'prod', 4244).subscribe((c) => seen.push(c));
    expect(seen).to.deep.equal([{ name: 'prod/n1', address: '', type: 'PEER_ADDED', tls: null }]);
  });

  it('peers are told the port of hubble-listen-address, 4244 when TCP is off', () => {
    expect(peerPort(':4244')).to.equal(4244);
    expect(peerPort('127.0.0.1:5555')).to.equal(5555);
    expect(peerPort('')).to.equal(4244);
  });
});
