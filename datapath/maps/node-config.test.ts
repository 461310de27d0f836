import { expect } from 'chai';
import { decodeNodeConfig, encodeNodeConfig, NODE_CONFIG_LAYOUT } from './node-config.js';

describe('cilium_node_config codec', () => {
  it('writes routing mode, ifindexes and the node IP at the struct offsets and reads them back', () => {
    const buf = encodeNodeConfig({ routingMode: 'tunnel', overlayIfindex: 7, hostIfindex: 5, nodeIP: '172.30.0.11' });
    expect(buf.length).to.equal(NODE_CONFIG_LAYOUT.size);
    expect([...buf]).to.deep.equal([1, 0, 0, 0, 7, 0, 0, 0, 5, 0, 0, 0, 172, 30, 0, 11]);
    expect(decodeNodeConfig(buf)).to.deep.equal({ routingMode: 'tunnel', overlayIfindex: 7, hostIfindex: 5, nodeIP: '172.30.0.11' });
    expect(decodeNodeConfig(Buffer.alloc(16)).routingMode).to.equal('native');
    expect(() => decodeNodeConfig(Buffer.from([9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))).to.throw(/routing_mode 9/);
  });
});
