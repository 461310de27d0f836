// The checks and route plans of node-network.ts that need no kernel.
import { expect } from 'chai';
import type { NodeNetworkSpec } from '../types.js';
import { checkNodeNetworkSpec, desiredNodeRoutes, type RouteMode } from './node-network.js';

const SPEC: NodeNetworkSpec = { routingMode: 'tunnel', nodeIP: '172.30.0.11', routerIP: '10.0.1.1', podCIDR: '10.0.1.0/24', nativeRoutingCIDR: '10.0.0.0/8', masquerade: true, tunnelPort: 8472 };
const TUNNEL: RouteMode = { routingMode: 'tunnel', routerIP: '10.0.1.1', podCIDR: '10.0.1.0/24', podMtu: 1450 };

describe('node network spec and routes', () => {
  it('accepts a well-formed spec and names the field of a bad one', () => {
    expect(() => checkNodeNetworkSpec(SPEC)).to.not.throw();
    expect(() => checkNodeNetworkSpec({ ...SPEC, routingMode: 'geneve' as never })).to.throw(/routingMode/);
    expect(() => checkNodeNetworkSpec({ ...SPEC, nodeIP: '172.30.0' })).to.throw(/nodeIP/);
    expect(() => checkNodeNetworkSpec({ ...SPEC, routerIP: '10.0.2.1' })).to.throw(/routerIP.*not in podCIDR/);
    expect(() => checkNodeNetworkSpec({ ...SPEC, podCIDR: '10.0.1.0' })).to.throw(/podCIDR/);
    expect(() => checkNodeNetworkSpec({ ...SPEC, nativeRoutingCIDR: '10.0.0.0/33' })).to.throw(/nativeRoutingCIDR/);
    expect(() => checkNodeNetworkSpec({ ...SPEC, tunnelPort: 70000 })).to.throw(/tunnelPort/);
    expect(() => checkNodeNetworkSpec({ ...SPEC, mtu: 0 })).to.not.throw();
    expect(() => checkNodeNetworkSpec({ ...SPEC, mtu: 500 })).to.throw(/mtu/);
  });

  it('routes other pod CIDRs through cilium_host with the pod MTU in tunnel mode and via the node in native mode', () => {
    const routes = [{ podCIDR: '10.0.2.0/24', nodeIP: '172.30.0.12' }];
    expect([...desiredNodeRoutes(routes, TUNNEL).values()]).to.deep.equal([{ dst: '10.0.2.0/24', gateway: '10.0.1.1', dev: 'cilium_host', mtu: 1450 }]);
    expect([...desiredNodeRoutes(routes, { ...TUNNEL, routingMode: 'native' }).values()]).to.deep.equal([{ dst: '10.0.2.0/24', gateway: '172.30.0.12' }]);
  });

  it("refuses a route overlapping this node's pod CIDR, a pod CIDR given to two nodes, and malformed input", () => {
    expect(() => desiredNodeRoutes([{ podCIDR: '10.0.0.0/16', nodeIP: '172.30.0.12' }], TUNNEL)).to.throw(/overlaps/);
    expect(() =>
      desiredNodeRoutes(
        [
          { podCIDR: '10.0.2.0/24', nodeIP: '172.30.0.12' },
          { podCIDR: '10.0.2.0/24', nodeIP: '172.30.0.13' },
        ],
        TUNNEL,
      ),
    ).to.throw(/also given to node 172\.30\.0\.12/);
    expect(() => desiredNodeRoutes([{ podCIDR: '10.0.2.0', nodeIP: '172.30.0.12' }], TUNNEL)).to.throw(/not a CIDR/);
    expect(() => desiredNodeRoutes([{ podCIDR: '10.0.2.0/24', nodeIP: 'node-2' }], TUNNEL)).to.throw(/nodeIP/);
  });
});
