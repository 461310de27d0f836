// hubble-relay over two nodes' Hubble servers (relay-nodes.ts): it learns the nodes from node A's
// peer.Peer (a real CiliumNode watch), merges their flows by time with node_name set, reports
// node_status, and keeps serving when a node goes down, with the unavailable node counted.
import { expect } from 'chai';
import { type Client, type ClientReadableStream, credentials, type ServiceError, status } from '@grpc/grpc-js';
import { policyDrop, traceNew } from '../../../controllers/agent/hubble/testing.js';
import { timestampMs } from '../../../controllers/hubble/flow-types.js';
import { hubbleProtos } from '../../../controllers/hubble/protos.js';
import { pollUntil } from '../../envtest/poll.js';
import { RelayCluster } from './relay-nodes.js';

type Msg = Record<string, unknown> & { flow?: { node_name: string; l4: { TCP: { destination_port: number } } }; node_status?: { state_change: string; node_names: string[]; message: string }; node_name: string; time: { seconds: string; nanos: number } };

function call<T>(client: Client, method: string, req: object = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, (r: object, cb: (e: ServiceError | null, res: T) => void) => void>)[method]!(req, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

function open(client: Client, method: string, req: object): ClientReadableStream<Msg> {
  return (client as unknown as Record<string, (r: object) => ClientReadableStream<Msg>>)[method]!(req);
}

/** Every message of a stream that ends. */
function all(client: Client, req: object): Promise<Msg[]> {
  return new Promise((resolve, reject) => {
    const out: Msg[] = [];
    const s = open(client, 'GetFlows', req);
    s.on('data', (m: Msg) => out.push(m));
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
}

const ports = (msgs: Msg[]) => msgs.filter((m) => m.flow).map((m) => m.flow!.l4.TCP.destination_port);

describe('hubble-relay across two nodes: discovery, merge by time, a node going down', function () {
  this.timeout(120_000);
  const cluster = new RelayCluster();
  let relay: Client;
  const t0 = Date.now() - 60_000;

  before(async function () {
    this.timeout(60_000);
    await cluster.start();
    relay = new (hubbleProtos().ObserverClient)(cluster.relayAddress, credentials.createInsecure());
    cluster.ingestInterleaved(6, t0);
  });

  after(async function () {
    this.timeout(30_000);
    relay?.close();
    await cluster.destroy();
  });

  it('learns both nodes from peer.Peer (CiliumNodes) and reports them connected', async () => {
    const [a, b] = [cluster.nodeName('a'), cluster.nodeName('b')];
    const nodes = await call<{ nodes: { name: string; address: string; state: string; num_flows: string; max_flows: string; version: string }[] }>(relay, 'GetNodes');
    expect(nodes.nodes.map((n) => [n.name, n.address, n.state])).to.deep.equal([
      [a, `127.0.0.2:${cluster.port}`, 'NODE_CONNECTED'],
      [b, `127.0.0.3:${cluster.port}`, 'NODE_CONNECTED'],
    ]);
    expect(nodes.nodes.map((n) => [n.num_flows, n.max_flows, n.version])).to.deep.equal([
      ['6', '255', 'cilium-ts test'],
      ['6', '255', 'cilium-ts test'],
    ]);
    const st = await call<Record<string, unknown>>(relay, 'ServerStatus');
    expect(st).to.deep.include({ num_flows: '12', max_flows: '510', seen_flows: '12', num_connected_nodes: { value: 2 }, num_unavailable_nodes: { value: 0 }, unavailable_nodes: [], version: 'cilium-ts relay test' });
  });

  it('GetFlows: NODE_CONNECTED first, then both nodes` flows merged in time order with their node names', async () => {
    const msgs = await all(relay, { number: 4 });
    expect(msgs[0]!.node_status).to.deep.include({ state_change: 'NODE_CONNECTED', node_names: [cluster.nodeName('a'), cluster.nodeName('b')] });
    expect(msgs[0]!.node_name).to.equal(cluster.relay.server.nodeName);
    const flows = msgs.slice(1);
    // The last 4 of each node, merged: 8004..8011 in time order.
    expect(ports(flows)).to.deep.equal([8004, 8005, 8006, 8007, 8008, 8009, 8010, 8011]);
    expect(flows.map((m) => m.node_name)).to.deep.equal([0, 1, 0, 1, 0, 1, 0, 1].map((i) => cluster.nodes[i]!.name));
    const times = flows.map((m) => timestampMs(m.time));
    expect(times).to.deep.equal([...times].sort((x, y) => x - y));
    // Filters reach every node: only B drops.
    expect(ports(await all(relay, { number: 100, whitelist: [{ verdict: ['DROPPED'] }] }))).to.deep.equal([8001, 8003, 8005, 8007, 8009, 8011]);
  });

  it('follow: new flows of both nodes in order; a node going down is NODE_ERROR, the stream goes on, and it counts as unavailable', async () => {
    const [a, b] = cluster.nodes;
    const got: Msg[] = [];
    const follow = open(relay, 'GetFlows', { follow: true, number: 0 });
    follow.on('data', (m: Msg) => got.push(m));
    let ended: ServiceError | undefined;
    follow.on('error', (e: ServiceError) => (ended = e));
    await pollUntil('the follow`s NODE_CONNECTED', () => got.some((m) => m.node_status?.state_change === 'NODE_CONNECTED'), 5_000);
    const t1 = Date.now();
    a!.observer.ingest(traceNew(9100), t1);
    b!.observer.ingest(policyDrop(9101), t1 + 1);
    a!.observer.ingest(traceNew(9102), t1 + 2);
    await pollUntil('three followed flows', () => ports(got).length >= 3, 10_000);
    expect(ports(got)).to.deep.equal([9100, 9101, 9102]);

    await cluster.stopNode(1);
    await pollUntil('NODE_ERROR for node b', () => got.some((m) => m.node_status?.state_change === 'NODE_ERROR'), 10_000);
    const err = got.find((m) => m.node_status?.state_change === 'NODE_ERROR')!;
    expect(err.node_status!.node_names).to.deep.equal([b!.name]);
    expect(err.node_status!.message).to.not.equal('');
    a!.observer.ingest(traceNew(9104), Date.now());
    await pollUntil('node a`s flow after b went down', () => ports(got).includes(9104), 10_000);
    expect(ended, 'the follow stream is still open').to.equal(undefined);
    follow.cancel();

    await pollUntil('node b unavailable to the relay', () => cluster.relay.peers.list().find((p) => p.name === b!.name)?.available === false, 15_000);
    const st = await call<Record<string, unknown>>(relay, 'ServerStatus');
    expect(st).to.deep.include({ num_connected_nodes: { value: 1 }, num_unavailable_nodes: { value: 1 }, unavailable_nodes: [b!.name], num_flows: String(a!.observer.ring.length) });
    const nodes = await call<{ nodes: { name: string; state: string }[] }>(relay, 'GetNodes');
    expect(nodes.nodes.map((n) => [n.name, n.state])).to.deep.equal([
      [a!.name, 'NODE_CONNECTED'],
      [b!.name, 'NODE_UNAVAILABLE'],
    ]);
    // A new request says which node it cannot read and still answers with the other's flows.
    const msgs = await all(relay, { number: 2 });
    expect(msgs.slice(0, 2).map((m) => [m.node_status?.state_change, m.node_status?.node_names])).to.deep.equal([
      ['NODE_CONNECTED', [a!.name]],
      ['NODE_UNAVAILABLE', [b!.name]],
    ]);
    expect(ports(msgs)).to.deep.equal([9102, 9104]);
  });

  it('peer.Peer Notify follows the CiliumNodes: added, updated on a new address, deleted; the relay follows too', async () => {
    const seen: { name: string; address: string; type: string }[] = [];
    const peer = new (hubbleProtos().PeerClient)(`127.0.0.2:${cluster.port}`, credentials.createInsecure());
    const notify = open(peer, 'Notify', {}) as unknown as ClientReadableStream<{ name: string; address: string; type: string }>;
    notify.on('data', (cn: { name: string; address: string; type: string }) => seen.push({ name: cn.name, address: cn.address, type: cn.type }));
    notify.on('error', () => undefined);
    try {
      const [a, b, c] = ['a', 'b', 'c'].map((s) => cluster.nodeName(s));
      await pollUntil('the current nodes', () => seen.length >= 2, 5_000);
      expect(seen).to.deep.equal([
        { name: a, address: `127.0.0.2:${cluster.port}`, type: 'PEER_ADDED' },
        { name: b, address: `127.0.0.3:${cluster.port}`, type: 'PEER_ADDED' },
      ]);
      await cluster.putNode(c!, '127.0.0.4');
      await pollUntil('node c added', () => seen.length >= 3, 10_000);
      await cluster.putNode(c!, '127.0.0.5');
      await pollUntil('node c updated', () => seen.length >= 4, 10_000);
      await pollUntil('the relay knows node c at its new address', () => cluster.relay.peers.list().some((p) => p.name === c && p.address === `127.0.0.5:${cluster.port}`), 10_000);
      await cluster.deleteNode(c!);
      await pollUntil('node c deleted', () => seen.length >= 5, 10_000);
      expect(seen.slice(2)).to.deep.equal([
        { name: c, address: `127.0.0.4:${cluster.port}`, type: 'PEER_ADDED' },
        { name: c, address: `127.0.0.5:${cluster.port}`, type: 'PEER_UPDATED' },
        { name: c, address: `127.0.0.5:${cluster.port}`, type: 'PEER_DELETED' },
      ]);
      await pollUntil('the relay forgot node c', () => !cluster.relay.peers.list().some((p) => p.name === c), 10_000);
    } finally {
      notify.cancel();
      peer.close();
    }
  });

  it('GetAgentEvents is not served by the relay, as upstream', async () => {
    const err = await new Promise<ServiceError>((resolve) => {
      const s = open(relay, 'GetAgentEvents', {});
      s.on('data', () => undefined);
      s.on('error', resolve);
    });
    expect(err.code).to.equal(status.UNIMPLEMENTED);
  });
});
