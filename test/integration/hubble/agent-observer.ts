// What the Hubble integration tests on a real agent share: two nodes of the e2e harness (real
// apiserver, kernel, netns pods), an observer built from node B's AgentDaemon parts as the daemon
// wires it (its options, its parts as sources, its datapath's events), a client pod on node A and
// a server pod listening on node B. stop() removes all of it, also after a failed start.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CiliumEndpoint } from '../../../crds/gen/index.js';
import { HubbleObserver } from '../../../controllers/agent/hubble/observer.js';
import { hubbleSettings, HUBBLE_OPTIONS, type HubbleSettings } from '../../../controllers/agent/hubble/options.js';
import { agentObserverSources } from '../../../controllers/agent/hubble/sources.js';
import { ciliumEndpointResource } from '../../../controllers/agent/ipcache/resources.js';
import { loadConfig } from '../../../controllers/config/options.js';
import { newLogger } from '../../../controllers/runtime/log.js';
import type { Resource } from '../../../controllers/runtime/resource.js';
import { ChildSet } from '../../datapath/children.js';
import { PodAgent } from '../../datapath/pod-agent.js';
import { E2ECluster, NODE_A, NODE_B, type PodHandle } from '../../e2e/harness.js';
import { pollUntil } from '../../envtest/poll.js';

export const SERVER_PORT = 8080;
export const CONVERGE_MS = 15_000;

export class AgentObserver {
  cluster?: E2ECluster;
  observer!: HubbleObserver;
  settings!: HubbleSettings;
  clientPod!: PodHandle;
  serverPod!: PodHandle;
  /** The client pod's agent (connects) and the server pod's (listens on SERVER_PORT). */
  client!: PodAgent;
  server!: PodAgent;
  readonly children = new ChildSet();
  private dir?: string;
  private ceps?: Resource<CiliumEndpoint>;
  private readonly stopping = new AbortController();
  private running?: Promise<void>;
  private readonly podAgents: PodAgent[] = [];

  /** Starts it all with the agent options `args` (enable-hubble and the like). */
  async start(args: readonly string[], logName: string): Promise<void> {
    const logger = newLogger(logName, 'error');
    this.cluster = await E2ECluster.start();
    this.dir = mkdtempSync(path.join(tmpdir(), `${logName}-`));
    const daemon = this.cluster.agent(NODE_B);
    this.settings = hubbleSettings({ ...loadConfig('cilium-agent', HUBBLE_OPTIONS, [...args], {}), 'state-dir': this.dir });
    const ceps = ciliumEndpointResource('hubble-ceps', { client: daemon.client, logger });
    this.ceps = ceps;
    ceps.start();
    await ceps.waitForSync();
    const sources = agentObserverSources({ nodeName: NODE_B, clusterName: 'default', endpoints: daemon.endpoints, pods: daemon.resources.pods, repo: daemon.policy.repo, ciliumEndpoints: ceps });
    this.observer = new HubbleObserver({ settings: this.settings, sources, events: (signal, onLost, max) => daemon.datapath.events(signal, onLost, max), nodeAddress: '192.0.2.12', version: 'cilium-ts test', logger });
    this.running = this.observer.run(this.stopping.signal);
    const settings = this.settings;
    await pollUntil('the hubble server', () => existsSync(settings.socketPath) && (settings.metricsServer === '' || this.observer.metricsAddress() !== undefined), 10_000);

    this.clientPod = await this.cluster.addPod(NODE_A, { name: 'client', labels: { app: 'client' } });
    this.serverPod = await this.cluster.addPod(NODE_B, { name: 'server', labels: { app: 'server' } });
    this.server = await PodAgent.start(this.serverPod.net, this.serverPod.slot, this.children);
    this.podAgents.push(this.server);
    this.client = await PodAgent.start(this.clientPod.net, this.clientPod.slot, this.children);
    this.podAgents.push(this.client);
    await this.server.listen(SERVER_PORT);
    const ns = this.cluster.namespace;
    await pollUntil('the client pod`s CiliumEndpoint on node B', () => ceps.store.get(`${ns}/client`) !== undefined, CONVERGE_MS);
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.running?.catch(() => undefined);
    await Promise.all(this.podAgents.map((a) => a.stop()));
    await this.children.killAll();
    await this.ceps?.stop();
    await this.cluster?.destroy();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
