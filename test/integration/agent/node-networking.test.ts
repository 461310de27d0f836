// The node networking loop on the real apiserver: two agents register their nodes, the test gives
// them podCIDRs as the operator would, and one agent's loop sets its node up with the router IP its
// registration allocated, then routes the other node's pod CIDR through the other node's address
// until that node is gone. The datapath records (the kernel side is the datapath's own tests and the
// multi-node cluster's).
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { CiliumNode } from '../../../crds/gen/index.js';
import type { NodeNetworkSpec, NodeNetworkStatus, RemoteNodeRoute, SyncResult } from '../../../datapath/types.js';
import { sharedControlPlane } from '../../envtest/index.js';
import { pollUntil } from '../../envtest/poll.js';
import { isNotFound, newApiClient, type ApiClient } from '../../../controllers/runtime/apiclient.js';
import { ciliumNodes, objectPath } from '../../../controllers/runtime/kinds.js';
import { newLogger } from '../../../controllers/runtime/log.js';
import type { Resource } from '../../../controllers/runtime/resource.js';
import { ciliumNodeResource } from '../../../controllers/agent/ipcache/resources.js';
import { NodeNetworking } from '../../../controllers/agent/node/networking.js';
import { NodeRegistration } from '../../../controllers/agent/node/registration.js';

const log = newLogger('node-networking-test', 'error');

class RecordingDatapath {
  readonly setups: NodeNetworkSpec[] = [];
  readonly routes: RemoteNodeRoute[][] = [];
  setupNode(spec: NodeNetworkSpec): Promise<NodeNetworkStatus> {
    this.setups.push(spec);
    return Promise.resolve({ podMtu: 1450, hostIfindex: 3, overlayIfindex: 4 });
  }
  syncNodeRoutes(routes: readonly RemoteNodeRoute[]): Promise<SyncResult> {
    this.routes.push([...routes]);
    return Promise.resolve({ added: 0, updated: 0, removed: 0 });
  }
  get lastRoutes(): RemoteNodeRoute[] {
    return this.routes.at(-1) ?? [];
  }
}

describe('NodeNetworking (real apiserver)', function () {
  this.timeout(60_000);
  const suffix = randomBytes(4).toString('hex');
  const nodeA = `net-a-${suffix}`;
  const nodeB = `net-b-${suffix}`;
  let client: ApiClient;
  let nodes: Resource<CiliumNode> | undefined;
  const stop = new AbortController();
  const running: Promise<void>[] = [];

  before(async () => {
    client = newApiClient((await sharedControlPlane()).kubeConfig);
  });
  after(async () => {
    stop.abort();
    await Promise.all(running);
    await nodes?.stop();
    for (const name of [nodeA, nodeB]) {
      await client.request('DELETE', objectPath(ciliumNodes, name)).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
    }
  });

  const giveCIDR = (name: string, cidr: string) =>
    client.request('PATCH', objectPath(ciliumNodes, name), { body: { spec: { ipam: { podCIDRs: [cidr] } } }, contentType: 'application/merge-patch+json' });

  function register(name: string, nodeIP: string): NodeRegistration {
    const reg = new NodeRegistration({ client, nodeName: name, nodeIP, logger: log });
    running.push(reg.start(stop.signal));
    return reg;
  }

  it('sets the node up with its allocated router IP and routes the other node until it is deleted', async () => {
    const a = register(nodeA, '192.0.2.21');
    const b = register(nodeB, '192.0.2.22');
    nodes = ciliumNodeResource('all-nodes', { client, logger: log });
    nodes.start();
    const dp = new RecordingDatapath();
    const net = new NodeNetworking({
      nodeName: nodeA,
      nodeIP: '192.0.2.21',
      settings: { routingMode: 'tunnel', tunnelPort: 8472, masquerade: true, nativeRoutingCIDR: '10.231.0.0/16', mtu: 0 },
      datapath: dp,
      nodes,
      logger: log,
    });
    running.push(net.start(stop.signal));

    await pollUntil('both CiliumNodes registered', () => a.resource.store.has(nodeA) && b.resource.store.has(nodeB), 20_000);
    await giveCIDR(nodeA, '10.231.1.0/24');
    await giveCIDR(nodeB, '10.231.2.0/24');
    const addressing = await a.waitForPodCIDR(AbortSignal.timeout(20_000));
    expect(dp.setups, 'no setup before the router IP is known').to.deep.equal([]);

    net.bind(addressing);
    await net.ready(AbortSignal.timeout(20_000));
    expect(dp.setups).to.deep.equal([
      { routingMode: 'tunnel', nodeIP: '192.0.2.21', routerIP: addressing.routerIP, podCIDR: '10.231.1.0/24', nativeRoutingCIDR: '10.231.0.0/16', masquerade: true, tunnelPort: 8472 },
    ]);
    expect(addressing.routerIP).to.match(/^10\.231\.1\.\d+$/);
    expect(net.mtus()).to.deep.equal({ deviceMTU: 1500, routeMTU: 1450 });

    // Other tests' CiliumNodes may share this apiserver: only the two nodes of this test are asserted.
    const mine = () => dp.lastRoutes.filter((r) => r.podCIDR.startsWith('10.231.'));
    await pollUntil('the other node routed', () => mine().length === 1, 20_000);
    expect(mine()).to.deep.equal([{ podCIDR: '10.231.2.0/24', nodeIP: '192.0.2.22' }]);

    await client.request('DELETE', objectPath(ciliumNodes, nodeB));
    await pollUntil('the deleted node unrouted', () => mine().length === 0, 20_000);
    expect(dp.setups, 'set up once').to.have.length(1);
  });
});
