// The node networking loop against a recording datapath and an in-memory API: nothing before the
// router IP is known, one setup, routes that follow the CiliumNodes, retries of failures; and the
// MTUs pods get.
import { expect } from 'chai';
import type { CiliumNode } from '../../../crds/gen/index.js';
import type { NodeNetworkSpec, NodeNetworkStatus, RemoteNodeRoute, SyncResult } from '../../../datapath/types.js';
import { loadAgentConfig } from '../../config/agent.js';
import { newLogger } from '../../runtime/log.js';
import { pollUntil } from '../../../test/envtest/poll.js';
import { ciliumNodeResource } from '../ipcache/resources.js';
import { loopsUnderTest, MemoryApi } from '../testing.js';
import { NodeNetworking, nodeNetworkSettings, podMtus, remoteNodeRoutes } from './networking.js';

const log = newLogger('node-networking-test', 'error');

function node(name: string, ip: string | undefined, podCIDRs: string[] | undefined, rv = '1'): CiliumNode {
  return {
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumNode',
    metadata: { name, resourceVersion: rv, uid: `u-${name}` },
    spec: { addresses: ip === undefined ? [] : [{ type: 'InternalIP', ip }, { type: 'CiliumInternalIP', ip: '10.9.9.9' }], ...(podCIDRs ? { ipam: { podCIDRs } } : {}) },
  };
}

class RecordingDatapath {
  readonly setups: NodeNetworkSpec[] = [];
  readonly routes: RemoteNodeRoute[][] = [];
  failSetups = 0;
  failRoutes = 0;
  setupNode(spec: NodeNetworkSpec): Promise<NodeNetworkStatus> {
    this.setups.push(spec);
    if (this.failSetups-- > 0) return Promise.reject(new Error('cilium_host: operation not permitted'));
    return Promise.resolve({ podMtu: 1450, hostIfindex: 7, overlayIfindex: 8 });
  }
  syncNodeRoutes(routes: readonly RemoteNodeRoute[]): Promise<SyncResult> {
    this.routes.push([...routes]);
    if (this.failRoutes-- > 0) return Promise.reject(new Error('RTNETLINK answers: network unreachable'));
    return Promise.resolve({ added: routes.length, updated: 0, removed: 0 });
  }
}

describe('remoteNodeRoutes', function () {
  it('routes every other node with an IPv4 podCIDR and an address, never this node', function () {
    const nodes = [
      node('n3', '172.30.0.13', ['10.0.3.0/24']),
      node('n1', '172.30.0.11', ['10.0.1.0/24']),
      node('n2', '172.30.0.12', ['fd00:2::/64', '10.0.2.0/24']),
      node('no-cidr', '172.30.0.14', undefined),
      node('no-ip', undefined, ['10.0.5.0/24']),
      node('bad-cidr', '172.30.0.16', ['10.0.6.0/33']),
    ];
    expect(remoteNodeRoutes('n1', nodes)).to.deep.equal([
      { podCIDR: '10.0.2.0/24', nodeIP: '172.30.0.12' },
      { podCIDR: '10.0.3.0/24', nodeIP: '172.30.0.13' },
    ]);
  });

  it('gives a podCIDR two nodes claim to the first by name, whatever the order', function () {
    const a = node('a', '172.30.0.21', ['10.0.7.0/24']);
    const b = node('b', '172.30.0.22', ['10.0.7.0/24']);
    expect(remoteNodeRoutes('n1', [b, a])).to.deep.equal([{ podCIDR: '10.0.7.0/24', nodeIP: '172.30.0.21' }]);
    expect(remoteNodeRoutes('n1', [a, b])).to.deep.equal([{ podCIDR: '10.0.7.0/24', nodeIP: '172.30.0.21' }]);
  });
});

describe('podMtus', function () {
  it('leaves room for the VXLAN header on routes in tunnel mode, as upstream', function () {
    expect(podMtus({ routingMode: 'tunnel', mtu: 0 })).to.deep.equal({ deviceMTU: 1500, routeMTU: 1450 });
    expect(podMtus({ routingMode: 'tunnel', mtu: 0 }, { podMtu: 8950 })).to.deep.equal({ deviceMTU: 9000, routeMTU: 8950 });
    expect(podMtus({ routingMode: 'tunnel', mtu: 1400 }, { podMtu: 1450 })).to.deep.equal({ deviceMTU: 1400, routeMTU: 1350 });
    expect(podMtus({ routingMode: 'native', mtu: 0 }, { podMtu: 1500 })).to.deep.equal({ deviceMTU: 1500, routeMTU: 1500 });
    expect(podMtus({ routingMode: 'native', mtu: 9000 })).to.deep.equal({ deviceMTU: 9000, routeMTU: 9000 });
  });

  it('takes the settings from the agent options', function () {
    expect(nodeNetworkSettings(loadAgentConfig([], {}))).to.deep.equal({ routingMode: 'tunnel', tunnelPort: 8472, masquerade: true, mtu: 0 });
    const native = loadAgentConfig(['--routing-mode', 'native', '--enable-ipv4-masquerade', 'false', '--ipv4-native-routing-cidr', '10.0.0.0/8', '--mtu', '9000'], {});
    expect(nodeNetworkSettings(native)).to.deep.equal({ routingMode: 'native', tunnelPort: 8472, masquerade: false, nativeRoutingCIDR: '10.0.0.0/8', mtu: 9000 });
  });
});

describe('NodeNetworking', function () {
  const loops = loopsUnderTest();

  const addressing = { podCIDR: '10.0.1.0/24', routerIP: '10.0.1.1', healthIP: '10.0.1.2' };
  const settings = { routingMode: 'tunnel' as const, tunnelPort: 8472, masquerade: true, nativeRoutingCIDR: '10.0.0.0/8', mtu: 0 };

  function startLoop(api: MemoryApi, dp: RecordingDatapath, loopSettings = settings) {
    const nodes = ciliumNodeResource('nodes', { client: api, logger: log });
    const setups: NodeNetworkStatus[] = [];
    const loop = new NodeNetworking({ nodeName: 'n1', nodeIP: '172.30.0.11', settings: loopSettings, datapath: dp, nodes, onSetup: (s) => setups.push(s), logger: log });
    nodes.start();
    loops.own(nodes);
    loops.run(loop.start(loops.signal));
    return { loop, setups };
  }

  it('hands a forced MTU to the setup, so the routes it makes agree with what the CNI is told', async function () {
    const dp = new RecordingDatapath();
    const { loop } = startLoop(new MemoryApi({ ciliumnodes: [node('n1', '172.30.0.11', ['10.0.1.0/24'])] }), dp, { ...settings, mtu: 1400 });
    loop.bind(addressing);
    await loop.ready(AbortSignal.timeout(5_000));
    expect(dp.setups.map((s) => s.mtu)).to.deep.equal([1400]);
    expect(loop.mtus()).to.deep.equal({ deviceMTU: 1400, routeMTU: 1350 });
  });

  it('sets the node up once its router IP is known, then keeps the routes to the other nodes in step', async function () {
    const api = new MemoryApi({ ciliumnodes: [node('n1', '172.30.0.11', ['10.0.1.0/24']), node('n2', '172.30.0.12', ['10.0.2.0/24'])] });
    const dp = new RecordingDatapath();
    const { loop, setups } = startLoop(api, dp);
    await new Promise((r) => setTimeout(r, 100));
    expect(dp.setups, 'nothing before the router IP is known').to.deep.equal([]);
    expect(loop.mtus(), 'the MTUs before the setup: upstream defaults').to.deep.equal({ deviceMTU: 1500, routeMTU: 1450 });

    loop.bind(addressing);
    const status = await loop.ready(AbortSignal.timeout(5_000));
    expect(status.podMtu).to.equal(1450);
    expect(dp.setups).to.deep.equal([
      { routingMode: 'tunnel', nodeIP: '172.30.0.11', routerIP: '10.0.1.1', podCIDR: '10.0.1.0/24', nativeRoutingCIDR: '10.0.0.0/8', masquerade: true, tunnelPort: 8472 },
    ]);
    expect(setups).to.have.length(1);
    await pollUntil('first route sync', () => dp.routes.length === 1, 5_000);
    expect(dp.routes[0]).to.deep.equal([{ podCIDR: '10.0.2.0/24', nodeIP: '172.30.0.12' }]);

    await api.push('ciliumnodes', 'ADDED', node('n3', '172.30.0.13', undefined));
    await api.push('ciliumnodes', 'MODIFIED', node('n1', '172.30.0.11', ['10.0.1.0/24'], '2'));
    await new Promise((r) => setTimeout(r, 100));
    expect(dp.routes, 'a node without podCIDR and a change of this node move no route').to.have.length(1);

    await api.push('ciliumnodes', 'MODIFIED', node('n3', '172.30.0.13', ['10.0.3.0/24'], '2'));
    await pollUntil('the new node routed', () => dp.routes.length === 2, 5_000);
    expect(dp.routes[1]).to.deep.equal([
      { podCIDR: '10.0.2.0/24', nodeIP: '172.30.0.12' },
      { podCIDR: '10.0.3.0/24', nodeIP: '172.30.0.13' },
    ]);
    await api.push('ciliumnodes', 'DELETED', node('n2', '172.30.0.12', ['10.0.2.0/24'], '3'));
    await pollUntil('the deleted node unrouted', () => dp.routes.length === 3, 5_000);
    expect(dp.routes[2]).to.deep.equal([{ podCIDR: '10.0.3.0/24', nodeIP: '172.30.0.13' }]);
    expect(dp.setups, 'set up once').to.have.length(1);
    expect(loop.mtus()).to.deep.equal({ deviceMTU: 1500, routeMTU: 1450 });
  });

  it('retries a failed setup and a failed route sync until they succeed', async function () {
    const api = new MemoryApi({ ciliumnodes: [node('n2', '172.30.0.12', ['10.0.2.0/24'])] });
    const dp = new RecordingDatapath();
    dp.failSetups = 2;
    dp.failRoutes = 1;
    const { loop } = startLoop(api, dp);
    loop.bind(addressing);
    await loop.ready(AbortSignal.timeout(5_000));
    expect(dp.setups).to.have.length(3);
    await pollUntil('routes synced after a failure', () => dp.routes.length === 2, 5_000);
    expect(dp.routes[1]).to.deep.equal([{ podCIDR: '10.0.2.0/24', nodeIP: '172.30.0.12' }]);
    expect(dp.setups, 'a failed route sync does not redo the setup').to.have.length(3);
  });

  it('stops promptly while the setup keeps failing', async function () {
    const api = new MemoryApi({ ciliumnodes: [] });
    const dp = new RecordingDatapath();
    dp.failSetups = Infinity;
    const nodes = ciliumNodeResource('nodes', { client: api, logger: log });
    loops.own(nodes);
    nodes.start();
    const loop = new NodeNetworking({ nodeName: 'n1', nodeIP: '172.30.0.11', settings, datapath: dp, nodes, logger: log });
    const own = new AbortController();
    const done = loop.start(own.signal);
    loop.bind(addressing);
    await pollUntil('a few failed setups', () => dp.setups.length >= 3, 5_000);
    const t0 = Date.now();
    own.abort();
    await done;
    expect(Date.now() - t0).to.be.below(2_000);
  });

  it('stops waiting for the setup when its signal aborts', async function () {
    const api = new MemoryApi({ ciliumnodes: [] });
    const { loop } = startLoop(api, new RecordingDatapath());
    const waiting = new AbortController();
    const ready = loop.ready(waiting.signal);
    waiting.abort('stopping');
    let error: Error | undefined;
    await ready.catch((err: Error) => (error = err));
    expect(error?.message).to.equal('node n1: stopped waiting for the node networking setup: stopping');
  });
});
