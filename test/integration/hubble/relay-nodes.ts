// Two nodes' Hubble servers for the relay and CLI tests: real HubbleObserver instances (ring,
// gRPC server on TCP) named after CiliumNodes in the envtest apiserver, node A's peer.Peer
// listing them from a real CiliumNode watch, and a real hubble-relay whose peer service is node A.
// Node A listens on 127.0.0.2, node B on 127.0.0.3, same port, as nodes of one cluster do.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CiliumNode } from '../../../crds/gen/index.js';
import { HubbleObserver } from '../../../controllers/agent/hubble/observer.js';
import { hubbleSettings, HUBBLE_OPTIONS } from '../../../controllers/agent/hubble/options.js';
import { ciliumNodePeers, type PeerSource } from '../../../controllers/agent/hubble/peer.js';
import { policyDrop, testSources, traceNew } from '../../../controllers/agent/hubble/testing.js';
import { loadConfig } from '../../../controllers/config/options.js';
import { relaySettings, RELAY_OPTIONS } from '../../../controllers/hubble/relay/options.js';
import { HubbleRelay } from '../../../controllers/hubble/relay/relay.js';
import { type ApiClient, newApiClient } from '../../../controllers/runtime/apiclient.js';
import { ciliumNodes } from '../../../controllers/runtime/kinds.js';
import { newLogger } from '../../../controllers/runtime/log.js';
import { Resource } from '../../../controllers/runtime/resource.js';
import { sharedControlPlane } from '../../envtest/index.js';
import { pollUntil } from '../../envtest/poll.js';

const TEST_LABEL = 'cilium-ts.io/test-relay';
const NODES_PATH = '/apis/cilium.io/v2/ciliumnodes';
const log = newLogger('hubble-relay-it', 'error');

export interface TestNode {
  name: string;
  ip: string;
  observer: HubbleObserver;
  stop: AbortController;
  running: Promise<void>;
}

async function startObserver(dir: string, name: string, listen: string, peers?: PeerSource): Promise<Omit<TestNode, 'ip'>> {
  const config = loadConfig('cilium-agent', HUBBLE_OPTIONS, ['--enable-hubble=true', `--hubble-listen-address=${listen}`, '--hubble-event-buffer-capacity=255', '--hubble-metrics-server=', '--enable-hubble-history=false'], {});
  const settings = hubbleSettings({ ...config, 'state-dir': path.join(dir, name) });
  // Flows come from ingest() with the times a test chooses; the datapath source stays silent.
  const events = async function* (signal: AbortSignal) {
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    yield* [];
  };
  const observer = new HubbleObserver({ settings, sources: testSources({ nodeName: name }), events, nodeAddress: listen, ...(peers ? { peers } : {}), version: 'cilium-ts test', logger: log });
  const stop = new AbortController();
  const running = observer.run(stop.signal);
  await pollUntil(`${name}'s hubble server`, () => observer.server.tcpPort !== undefined, 10_000);
  return { name, observer, stop, running };
}

export class RelayCluster {
  readonly id = randomBytes(4).toString('hex');
  dir = '';
  nodes: TestNode[] = [];
  relay!: HubbleRelay;
  port = 0;
  client?: ApiClient;
  private resource?: Resource<CiliumNode>;
  private readonly relayStop = new AbortController();
  private relayRunning?: Promise<void>;

  nodeName(suffix: string): string {
    return `relay-${this.id}-${suffix}`;
  }

  /** Creates (or replaces the address of) a CiliumNode named `name` with `ip` as its InternalIP. */
  async putNode(name: string, ip: string): Promise<void> {
    const body: CiliumNode = { apiVersion: 'cilium.io/v2', kind: 'CiliumNode', metadata: { name, labels: { [TEST_LABEL]: this.id } }, spec: { addresses: [{ type: 'InternalIP', ip }] } };
    const client = this.client!;
    try {
      await client.request('POST', NODES_PATH, { body });
    } catch {
      await client.request('PATCH', `${NODES_PATH}/${name}`, { body: { spec: body.spec }, contentType: 'application/merge-patch+json' });
    }
  }

  async deleteNode(name: string): Promise<void> {
    await this.client?.request('DELETE', `${NODES_PATH}/${name}`).catch(() => undefined);
  }

  async start(): Promise<void> {
    this.dir = mkdtempSync(path.join(tmpdir(), 'hubble-relay-'));
    const cp = await sharedControlPlane();
    const client = newApiClient(cp.kubeConfig);
    this.client = client;
    const a = this.nodeName('a');
    const b = this.nodeName('b');
    this.resource = new Resource<CiliumNode>({ name: 'relay-it-nodes', client, type: ciliumNodes, labelSelector: `${TEST_LABEL}=${this.id}`, logger: log });
    this.resource.start();
    await this.resource.waitForSync();
    // Node A serves peer.Peer over the CiliumNodes, as the agent does; the port is known once it listens.
    const resource = this.resource;
    const peers: PeerSource = { subscribe: (notify) => ciliumNodePeers(resource, 'default', this.port).subscribe(notify) };
    const nodeA = await startObserver(this.dir, a, '127.0.0.2:0', peers);
    this.port = nodeA.observer.server.tcpPort!;
    const nodeB = await startObserver(this.dir, b, `127.0.0.3:${this.port}`);
    this.nodes = [
      { ...nodeA, ip: '127.0.0.2' },
      { ...nodeB, ip: '127.0.0.3' },
    ];
    await this.putNode(a, '127.0.0.2');
    await this.putNode(b, '127.0.0.3');
    await pollUntil('both CiliumNodes watched', () => this.resource!.store.list().length === 2, 10_000);
    const config = loadConfig('hubble-relay', RELAY_OPTIONS, ['--listen-address', '127.0.0.1:0', '--peer-service', `127.0.0.2:${this.port}`, '--retry-timeout', '1s', '--dial-timeout', '2s', '--sort-buffer-drain-timeout', '200ms'], {});
    // Node errors reach the client after a short aggregation window (upstream's 10 s would only slow the tests).
    this.relay = new HubbleRelay({ ...relaySettings(config, 'cilium-ts relay test'), errorAggregationWindowMs: 300 }, log);
    this.relayRunning = this.relay.run(this.relayStop.signal);
    await pollUntil('the relay connected to both nodes', () => this.relay.server.port !== undefined && this.relay.peers.list().filter((p) => p.available).length === 2, 15_000);
  }

  get relayAddress(): string {
    return `127.0.0.1:${this.relay.server.port}`;
  }

  /** `count` flows on each node interleaved in time from `t0`: node A traces to the even ports from 8000, node B drops to the odd ones. */
  ingestInterleaved(count: number, t0: number): void {
    const [a, b] = this.nodes;
    for (let i = 0; i < count; i++) {
      a!.observer.ingest(traceNew(8000 + 2 * i), t0 + 20 * i);
      b!.observer.ingest(policyDrop(8001 + 2 * i), t0 + 20 * i + 10);
    }
  }

  /** Stops node `i`'s Hubble server as a node that goes down. */
  async stopNode(i: number): Promise<void> {
    const n = this.nodes[i]!;
    n.stop.abort();
    await n.running;
  }

  async destroy(): Promise<void> {
    this.relayStop.abort();
    await this.relayRunning?.catch(() => undefined);
    for (const n of this.nodes) {
      n.stop.abort();
      await n.running.catch(() => undefined);
    }
    await this.resource?.stop();
    if (this.client !== undefined) for (const suffix of ['a', 'b', 'c']) await this.deleteNode(this.nodeName(suffix));
    if (this.dir !== '') rmSync(this.dir, { recursive: true, force: true });
  }
}
