import { expect } from 'chai';
import { parseEndpointId } from './endpoint-id.js';
import { withPathId } from './routes-endpoint.js';

describe('PUT /endpoint/{id}: the path id and the body', () => {
  it('fills in what the path names', () => {
    expect(withPathId(parseEndpointId('cni-attachment-id:abc:net1'), { state: 'waiting-for-identity' })).to.deep.equal({
      state: 'waiting-for-identity',
      'container-id': 'abc',
      'container-interface-name': 'net1',
    });
    expect(withPathId(parseEndpointId('cni-attachment-id:abc'), {})).to.deep.equal({ 'container-id': 'abc' });
    expect(withPathId(parseEndpointId('1234'), { id: 0 })).to.deep.equal({ id: 1234 });
    expect(withPathId(parseEndpointId('container-id:abc'), { 'container-id': 'abc' })).to.deep.equal({ 'container-id': 'abc' });
  });

  it('refuses a body that names another endpoint, and ids that cannot name a new one', () => {
    expect(() => withPathId(parseEndpointId('1234'), { id: 5 })).to.throw(/^id: 5 differs from the path's endpoint id cilium-local:1234$/);
    expect(() => withPathId(parseEndpointId('cni-attachment-id:abc:eth0'), { 'container-interface-name': 'net1' })).to.throw(/^container-interface-name: "net1" differs/);
    expect(() => withPathId(parseEndpointId('ipv4:10.0.0.1'), {})).to.throw(/^endpoint id: prefix ipv4 cannot name a new endpoint/);
  });
});
