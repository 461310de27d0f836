import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { type Client, credentials, type ServiceError, status } from '@grpc/grpc-js';
import type { ClientReadableStream } from '@grpc/grpc-js';
import type { DatapathEvent } from '../../../datapath/types.js';
import { hubbleProtos } from '../../hubble/protos.js';
import { newLogger } from '../../runtime/log.js';
import { HubbleObserver } from './observer.js';
import { OBSERVER_HEALTH_SERVICE } from './server.js';
import { DENY_POLICY, policyDrop, testSources, traceNew } from './testing.js';

type Unary = (req: object, cb: (err: ServiceError | null, res: Record<string, unknown>) => void) => void;
type Streaming = (req: object) => ClientReadableStream<Record<string, unknown>>;

function unary(client: Client, method: string, req: object = {}): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => (client as unknown as Record<string, Unary>)[method]!(req, (err, res) => (err ? reject(err) : resolve(res))));
}

/** Every message of a server stream until it ends, or the first `max` (then the call is cancelled). */
function stream(client: Client, method: string, req: object, max = Infinity): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const call = (client as unknown as Record<string, Streaming>)[method]!(req);
    const out: Record<string, unknown>[] = [];
    call.on('data', (m: Record<string, unknown>) => {
      out.push(m);
      if (out.length === max) call.cancel();
    });
    call.on('end', () => resolve(out));
    call.on('error', (err: ServiceError) => (err.code === status.CANCELLED ? resolve(out) : reject(err)));
  });
}

async function rejection(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('expected the call to fail');
}

describe('hubble gRPC server (observer.Observer, peer.Peer, health) over the unix socket and TCP', function () {
  let dir: string;
  let observer: HubbleObserver;
  let feed: (ev: DatapathEvent) => void;
  let loseEvents: (n: number) => void;
  let ac: AbortController;
  let running: Promise<void>;
  let client: Client;
  let tcpClient: Client;
  const clients: Client[] = [];

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'hubble-server-'));
    const queue: DatapathEvent[] = [];
    let wake: (() => void) | undefined;
    feed = (ev) => {
      queue.push(ev);
      wake?.();
    };
    const events = async function* (signal: AbortSignal, onLost: (n: number) => void): AsyncGenerator<DatapathEvent> {
      loseEvents = onLost;
      signal.addEventListener('abort', () => wake?.());
      while (!signal.aborted) {
        const ev = queue.shift();
        if (ev) yield ev;
        else await new Promise<void>((r) => (wake = r));
      }
    };
    const settings = { enabled: true, socketPath: path.join(dir, 'run', 'hubble.sock'), listenAddress: '127.0.0.1:0', capacity: 63, queueSize: 16, metricsServer: '', metrics: '' };
    observer = new HubbleObserver({ settings, sources: testSources(), events, nodeAddress: '192.0.2.1', version: 'cilium-ts test', logger: newLogger('hubble-test', 'error') });
    ac = new AbortController();
    running = observer.run(ac.signal);
    for (let i = 0; i < 100 && observer.server.tcpPort === undefined; i++) await new Promise((r) => setTimeout(r, 20));
    const { ObserverClient } = hubbleProtos();
    client = new ObserverClient(`unix://${settings.socketPath}`, credentials.createInsecure());
    tcpClient = new ObserverClient(`127.0.0.1:${observer.server.tcpPort}`, credentials.createInsecure());
    clients.push(client, tcpClient);
    for (let port = 8000; port < 8006; port++) feed(port % 2 === 0 ? traceNew(port) : policyDrop(port));
    feed({ ...policyDrop(9000), reason: 181, cookie: 77 });
    for (let i = 0; i < 100 && observer.seenFlows < 7; i++) await new Promise((r) => setTimeout(r, 10));
  });

  after(async () => {
    for (const c of clients) c.close();
    ac.abort();
    await running;
    rmSync(dir, { recursive: true, force: true });
  });

  const flowPorts = (msgs: Record<string, unknown>[]) => msgs.map((m) => (m.flow as { l4: { TCP: { destination_port: number } } }).l4.TCP.destination_port);

  it('GetFlows: the last N flows, with node name and time', async () => {
    const msgs = await stream(client, 'GetFlows', { number: 3 });
    expect(flowPorts(msgs)).to.deep.equal([8004, 8005, 9000]);
    expect(msgs[2]).to.deep.include({ node_name: 'node-a', response_types: 'flow' });
    const flow = msgs[2]!.flow as Record<string, unknown>;
    expect(flow).to.deep.include({ verdict: 'DROPPED', drop_reason_desc: 'POLICY_DENY', traffic_direction: 'INGRESS', node_name: 'node-a', Type: 'L3_L4' });
    expect(flow.ingress_denied_by).to.deep.equal([DENY_POLICY]);
    expect((flow.destination as Record<string, unknown>).pod_name).to.equal('cart-5c4b9-xk2p');
    expect(msgs[2]!.time).to.deep.equal(flow.time);
  });

  it('GetFlows over TCP; `--all` (2^64-1) and filters', async () => {
    expect(flowPorts(await stream(tcpClient, 'GetFlows', { number: '18446744073709551615' }))).to.have.length(7);
    const drops = await stream(client, 'GetFlows', { whitelist: [{ verdict: ['DROPPED'], destination_pod: ['shop/cart'] }], blacklist: [{ drop_reason_desc: ['POLICY_DENY'] }] });
    expect(flowPorts(drops)).to.deep.equal([8001, 8003, 8005]);
  });

  it('GetFlows with a field mask sends only the masked fields', async () => {
    const [msg] = await stream(client, 'GetFlows', { number: 1, field_mask: { paths: ['verdict', 'destination.pod_name', 'l4'] } });
    const flow = msg!.flow as Record<string, unknown>;
    expect(flow.verdict).to.equal('DROPPED');
    expect((flow.destination as Record<string, unknown>).pod_name).to.equal('cart-5c4b9-xk2p');
    expect((flow.destination as Record<string, unknown>).identity, 'unmasked field: default').to.equal(0);
    expect(flow.uuid).to.equal('');
    expect(flow.source).to.equal(null);
  });

  it('GetFlows follow delivers new flows and lost events as they come', async () => {
    const got = stream(client, 'GetFlows', { follow: true }, 2);
    await new Promise((r) => setTimeout(r, 50));
    loseEvents(5);
    feed(traceNew(7777));
    const msgs = await got;
    expect(msgs[0]).to.deep.include({ response_types: 'lost_events', node_name: 'node-a' });
    expect(msgs[0]!.lost_events).to.deep.include({ source: 'OBSERVER_EVENTS_QUEUE', num_events_lost: '5' });
    expect(flowPorts([msgs[1]!])).to.deep.equal([7777]);
  });

  it('GetFlows refuses bad requests with INVALID_ARGUMENT naming the problem', async () => {
    const bad = await rejection(stream(client, 'GetFlows', { whitelist: [{ source_ip: ['not-an-ip'] }] }));
    expect(bad.code).to.equal(status.INVALID_ARGUMENT);
    expect(bad.details).to.match(/source_ip: "not-an-ip" is not an IP address/);
    expect((await rejection(stream(client, 'GetFlows', { first: true, follow: true }))).code).to.equal(status.INVALID_ARGUMENT);
    const mask = await rejection(stream(client, 'GetFlows', { field_mask: { paths: ['source.nope'] } }));
    expect(mask.details).to.match(/source.nope is not a field of flow.Flow/);
  });

  it('ServerStatus, GetNodes, GetNamespaces', async () => {
    const st = await unary(client, 'ServerStatus');
    expect(st).to.deep.include({ max_flows: '63', version: 'cilium-ts test' });
    expect(Number(st.num_flows)).to.be.at.least(7);
    expect(Number(st.seen_flows)).to.be.at.least(7);
    expect(Number(st.uptime_ns)).to.be.greaterThan(0);
    const nodes = (await unary(client, 'GetNodes')).nodes as Record<string, unknown>[];
    expect(nodes).to.have.length(1);
    expect(nodes[0]).to.deep.include({ name: 'node-a', address: '192.0.2.1', state: 'NODE_CONNECTED', max_flows: '63' });
    expect((await unary(client, 'GetNamespaces')).namespaces).to.deep.equal([{ cluster: 'prod', namespace: 'shop' }]);
    expect(await stream(client, 'GetAgentEvents', {})).to.deep.equal([]);
  });

  it('peer.Peer Notify announces this node; health answers for the observer', async () => {
    const { PeerClient, HealthClient } = hubbleProtos();
    const socket = `unix://${observer.opts.settings.socketPath}`;
    const peer = new PeerClient(socket, credentials.createInsecure());
    const health = new HealthClient(socket, credentials.createInsecure());
    clients.push(peer, health);
    expect(await stream(peer, 'Notify', {}, 1)).to.deep.equal([{ name: 'node-a', address: '192.0.2.1', type: 'PEER_ADDED', tls: null }]);
    expect(await unary(health, 'Check', { service: OBSERVER_HEALTH_SERVICE })).to.deep.equal({ status: 'SERVING' });
    expect((await rejection(unary(health, 'Check', { service: 'other' }))).code).to.equal(status.NOT_FOUND);
  });

  it('stopping removes the socket', async () => {
    const socket = observer.opts.settings.socketPath;
    expect(existsSync(socket)).to.equal(true);
    ac.abort();
    await running;
    expect(existsSync(socket)).to.equal(false);
  });
});
