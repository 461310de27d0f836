// cilium-agent assembled from its loaded options: the watches, the datapath, the identity
// allocator, the endpoint manager and the policy, node and ipcache loops, with /healthz on
// agent-health-port and metrics on prometheus-serve-addr. The entry point (cmd/cilium-agent.ts)
// and the tests build it here, so what the tests run is what ships.
//
// Start order: watches synced → policy repository primed from them → endpoints restored (each
// with the policy it had) → loops. A restored endpoint is never synced against an empty
// repository, which would open what its policy closed. With node networking, the node's devices
// and routes are made once IPAM is bound, before the CNI configuration is written. Stop: loops and
// watches end, the health endpoint goes, the datapath closes; endpoints, programs, pins and the
// node's devices stay, so enforcement carries on until the next start.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { KubeConfig } from '@kubernetes/client-node';
import { type V1Namespace, type V1Pod } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { LinuxDatapath } from '../../datapath/linux/linux-datapath.js';
import type { CiliumEndpoint } from '../../crds/gen/index.js';
import { agentSocketPath, type AgentConfig } from '../config/agent.js';
import { MetricsServer } from '../runtime/metrics-server.js';
import { loadKubeConfig, newApiClient, type ApiClient } from '../runtime/apiclient.js';
import { EventRecorder } from '../runtime/events.js';
import { namespaces as namespaceType, pods as podType, type KubeObject } from '../runtime/kinds.js';
import { newLogger, type Logger } from '../runtime/log.js';
import { Manager } from '../runtime/manager.js';
import { Resource } from '../runtime/resource.js';
import { AgentApi } from './api/agent-api.js';
import { drainDeleteQueue } from '../cni/delete-queue.js';
import { agentConflist, writeCniConfig } from './cni-config.js';
import { AgentNotReadyTaint } from './node/taint.js';
import { DeferredIpam } from './daemon/deferred-ipam.js';
import { ciliumEndpointWriter, namespaceSource, podSource } from './daemon/sources.js';
import { EndpointManager, EndpointNotFoundError, type RestoreReport } from './endpoint/manager.js';
import { hubbleSettings } from './hubble/options.js';
import { HubbleObserver } from './hubble/observer.js';
import { agentObserverSources } from './hubble/sources.js';
import { ciliumNodePeers, peerPort } from './hubble/peer.js';
import { EndpointStateStore } from './endpoint/state-store.js';
import { identityLabels } from './identity/cilium-identity.js';
import { CrdIdentityAllocator } from './identity/crd-allocator.js';
import { IPCacheLoop } from './ipcache/loop.js';
import { ciliumEndpointResource, ciliumNodeResource, InvalidObjectReporter } from './ipcache/resources.js';
import { buildLabelFilter } from './labels/filter.js';
import { registerDatapathCounters, registerStateGauges } from './metrics.js';
import { firstNodeIPv4, nodeIPv4Addresses } from './node/addresses.js';
import { HealthEndpoint } from './node/health-endpoint.js';
import { NodeNetworking, nodeNetworkSettings, podMtus, type PodMtus } from './node/networking.js';
import { NodeRegistration, type NodeAddressing } from './node/registration.js';
import { ciliumEndpointNamedPorts, PolicyLoop } from './policy/loop.js';
import { RealizedReportWriter } from './policy/loop-report.js';
import { policyResourceList, policyResources, type PolicyResources } from './policy/loop-resources.js';
import { LOCAL_IDENTITY_FLAG, type PolicyEnforcementMode, RESERVED_IDENTITIES } from './policy/index.js';

export const COMPONENT = 'cilium-agent';

/** `cilium-ts <package version>`, as /healthz and /debuginfo report it. */
const AGENT_VERSION = `cilium-ts ${(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version}`;

const LABEL_KEY_INDEX = 'security-labels';
const HEALTH_RETRY_MIN_MS = 1_000;
const HEALTH_RETRY_MAX_MS = 60_000;

export interface AgentDaemonOptions {
  config: AgentConfig;
  logger?: Logger;
  /** The address other nodes reach this one at (CiliumNode InternalIP); default the first IPv4 of a device the agent did not make. */
  nodeIP?: string;
  /**
   * Whether the agent makes the node's networking (cilium_host, overlay, masquerade, routes to the
   * other nodes) in its network namespace, as cilium-agent does. Off for agents that share one
   * network namespace with others (tests running several in one process).
   */
  nodeNetworking?: boolean;
}

export class AgentDaemon {
  readonly registry = new Registry();
  readonly manager: Manager;
  readonly endpoints: EndpointManager;
  readonly policy: PolicyLoop;
  readonly node: NodeRegistration;
  readonly ipcache: IPCacheLoop;
  /** The node's devices and routes, when the agent makes them (nodeNetworking). */
  readonly networking?: NodeNetworking;
  /** The node's health endpoint, made with the node networking. */
  readonly health?: HealthEndpoint;
  readonly policyReport: RealizedReportWriter;
  readonly resources: PolicyResources & { pods: Resource<V1Pod>; namespaces: Resource<V1Namespace> };
  /** The REST API on socket-path (upstream's cilium.sock). */
  readonly api: AgentApi;
  /** Hubble's flow server, when enable-hubble is true. */
  readonly hubble?: HubbleObserver;
  /** Removes node.cilium.io/agent-not-ready from this node's Node once markReady() is called. */
  readonly taint: AgentNotReadyTaint;
  /** What the start restored, once it has. */
  restoreReport?: RestoreReport;
  private readonly log: Logger;
  private readonly ipam = new DeferredIpam();
  private ipamBound = false;
  private readonly metrics?: MetricsServer;

  private constructor(
    private readonly opts: AgentDaemonOptions,
    readonly client: ApiClient,
    kubeConfig: KubeConfig,
    readonly datapath: LinuxDatapath,
    log: Logger,
  ) {
    const config = opts.config;
    const nodeName = config['node-name'];
    const nodeIP = opts.nodeIP ?? firstNodeIPv4();
    const networkSettings = nodeNetworkSettings(config);
    this.log = log;
    const events = new EventRecorder({ client, component: COMPONENT, instance: nodeName, logger: log });
    const reporter = new InvalidObjectReporter(events);
    const policyRes = policyResources({ client, reporter, logger: log });
    const pods = new Resource<V1Pod>({ name: 'pods', client, type: podType, fieldSelector: `spec.nodeName=${nodeName}`, logger: log });
    const namespaces = new Resource<V1Namespace>({ name: 'namespaces', client, type: namespaceType, logger: log });
    this.resources = { ...policyRes, pods, namespaces };
    const ciliumNodes = ciliumNodeResource('ciliumnodes', { client, events, logger: log }, reporter);
    const ceps = ciliumEndpointResource('ciliumendpoints', { client, events, logger: log }, reporter);

    policyRes.identities.store.addIndex(LABEL_KEY_INDEX, (ci) => [identityLabels(ci).key]);
    const allocator = new CrdIdentityAllocator(kubeConfig, {
      clusterId: config['cluster-id'],
      lookup: (key) => policyRes.identities.store.byIndex(LABEL_KEY_INDEX, key)[0],
    });

    this.ipcache = new IPCacheLoop({
      nodeName,
      datapath,
      nodes: ciliumNodes,
      endpoints: ceps,
      localEndpoints: () => this.endpoints.summaries(),
      localAddresses: () => nodeIPv4Addresses().map((a) => a.address),
      reporter,
      registry: this.registry,
      logger: log,
    });
    this.policy = new PolicyLoop({
      resources: policyRes,
      clusterName: config['cluster-name'],
      mode: config['enable-policy'] as PolicyEnforcementMode,
      allowLocalhost: config['allow-localhost'] !== 'policy',
      clusterNamedPorts: () => ciliumEndpointNamedPorts(ceps.store.list()),
      // The policy loop is the only writer of the `cidr` source: it orders these writes around
      // its regenerations (new rows before endpoints use them, old ones after).
      ipcache: async (rows) => {
        await datapath.syncIPCache('cidr', rows);
      },
      events,
      onRealized: () => this.policyReport.refresh(),
      registry: this.registry,
      logger: log,
    });

    const { filter, warnings } = buildLabelFilter({ labels: config.labels, labelPrefixFile: config['label-prefix-file'] });
    for (const w of warnings) log.warn('identity label prefixes', { warning: w });
    this.endpoints = new EndpointManager({
      pods: podSource(client, pods, podType),
      namespaces: namespaceSource(client, namespaces, namespaceType),
      identities: allocator,
      datapath,
      policy: this.policy.policySource(),
      ceps: ciliumEndpointWriter(client),
      store: new EndpointStateStore(path.join(config['state-dir'], 'endpoints')),
      ipam: this.ipam,
      onChange: () => {
        this.ipcache.refresh();
        this.policy.endpointsChanged();
      },
      nodeName,
      clusterName: config['cluster-name'],
      labelFilter: filter,
      logger: log,
      registry: this.registry,
    });
    this.policy.bindEndpoints(this.endpoints);
    // Egress named ports resolve against every pod's named ports: a change re-resolves them.
    const namedPorts = (cep: CiliumEndpoint) => JSON.stringify(cep.status?.['named-ports'] ?? []);
    const namedPortsChanged = (before: string, after: string) => {
      if (before !== after) this.policy.namedPortsChanged();
    };
    ceps.on({
      add: (cep) => namedPortsChanged('[]', namedPorts(cep)),
      update: (o, n) => namedPortsChanged(namedPorts(o), namedPorts(n)),
      delete: (cep) => namedPortsChanged(namedPorts(cep), '[]'),
    });
    this.node = new NodeRegistration({ client, nodeName, nodeIP, events, registry: this.registry, logger: log });
    if (opts.nodeNetworking === true) {
      this.networking = new NodeNetworking({
        nodeName,
        nodeIP,
        settings: networkSettings,
        datapath,
        nodes: ciliumNodes,
        // cilium_host has the router IP now: it is the host's like every local address.
        onSetup: () => this.ipcache.refresh(),
        registry: this.registry,
        logger: log,
      });
      this.health = new HealthEndpoint({ nodeName, datapath, reserveId: () => this.endpoints.reserveId(), logger: log });
    }
    this.taint = new AgentNotReadyTaint({ client, nodeName, registry: this.registry, logger: log });
    this.policyReport = new RealizedReportWriter({ client, nodeName, node: this.node.resource, report: () => this.policy.realized(), registry: this.registry, logger: log });

    registerStateGauges(this.registry, {
      endpointStates: () => {
        const out: Record<string, number> = {};
        for (const ep of this.endpoints.summaries()) out[ep.state] = (out[ep.state] ?? 0) + 1;
        return out;
      },
      identities: () => {
        const global = policyRes.identities.store.size;
        const local = this.policy.repo.selectorCache.identityIds().filter((id) => (id & LOCAL_IDENTITY_FLAG) !== 0).length;
        return { cluster_local: global, node_local: local, reserved: Object.keys(RESERVED_IDENTITIES).length };
      },
    });

    registerDatapathCounters(this.registry, () => datapath.metrics(), (err) => log.warn('datapath metrics map not read', { error: (err as Error).message }));

    this.manager = new Manager({ name: COMPONENT, registry: this.registry, logger: log, health: { host: '127.0.0.1', port: config['agent-health-port'] } });
    for (const r of [...this.watches(), ciliumNodes, ceps, this.node.resource] as Resource<KubeObject>[]) this.manager.addResource(r);
    this.manager.add('agent', (signal) => this.run(signal));
    this.manager.add('endpoint-cep-sync', (signal) => this.endpoints.start(signal));
    // Before its endpoints are restored the agent is not ready: a CNI ADD then would race them.
    this.manager.addHealthCheck('endpoint-restore', () => this.restoreReport !== undefined);
    this.api = new AgentApi({
      socketPath: agentSocketPath(config),
      deps: {
        config,
        endpoints: this.endpoints,
        node: this.node,
        ipam: this.ipam,
        ipamReady: () => this.ipamReady,
        mtu: () => this.networking?.mtus() ?? podMtus(networkSettings),
        repo: this.policy.repo,
        resources: policyRes,
        ciliumNodes,
        ciliumEndpoints: ceps,
        datapath,
        health: () => this.manager.health(),
        kube: client,
        hubble: () => {
          const h = this.hubble;
          return h === undefined ? undefined : { currentFlows: h.ring.length, maxFlows: h.ring.capacity, seenFlows: h.seenFlows, uptimeNs: (Date.now() - h.startedAt) * 1e6 };
        },
      },
      version: AGENT_VERSION,
      ...(config['write-cni-conf-when-ready'] ? { cniConfFile: config['write-cni-conf-when-ready'] } : {}),
      restored: () => this.restoreReport !== undefined,
      logger: log,
    });
    this.manager.add('api-server', (signal) => this.api.run(signal));
    const hubble = hubbleSettings(config);
    if (hubble.enabled) {
      const sources = agentObserverSources({ nodeName, clusterName: config['cluster-name'], endpoints: this.endpoints, pods, repo: this.policy.repo, ciliumEndpoints: ceps });
      this.hubble = new HubbleObserver({ settings: hubble, sources, events: (s, l, m) => datapath.events(s, l, m), nodeAddress: nodeIP, peers: ciliumNodePeers(ciliumNodes, config['cluster-name'], peerPort(hubble.listenAddress)), version: AGENT_VERSION, logger: log });
      const observer = this.hubble;
      this.manager.add('hubble', (signal) => observer.run(signal));
    }
    const metricsAddr = config['prometheus-serve-addr'];
    if (metricsAddr !== '') {
      const metrics = new MetricsServer(this.registry, metricsAddr, log);
      this.metrics = metrics;
      this.manager.add('metrics-server', (signal) => metrics.run(signal));
    }
  }

  /** Opens the datapath and builds every part; nothing runs until start(). */
  static async open(opts: AgentDaemonOptions): Promise<AgentDaemon> {
    const log = opts.logger ?? newLogger(COMPONENT);
    const kubeConfig = loadKubeConfig(opts.config['k8s-kubeconfig-path']);
    const client = newApiClient(kubeConfig);
    const datapath = await LinuxDatapath.open({ bpffsDir: opts.config['bpf-pin-dir'], logger: log });
    try {
      return new AgentDaemon(opts, client, kubeConfig, datapath, log);
    } catch (err) {
      await datapath.close();
      throw err;
    }
  }

  /** Where /healthz (and /metrics) answer, once started. */
  get healthAddress() {
    return this.manager.healthAddress;
  }

  /** Whether pod addresses can be allocated: the node has its podCIDR and restored endpoints claimed theirs. */
  get ipamReady(): boolean {
    return this.ipamBound;
  }

  /** Where prometheus-serve-addr answers, once started. */
  get metricsAddress() {
    return this.metrics?.address();
  }

  /** Stops on SIGTERM/SIGINT of the process; returns the function removing the handlers. */
  handleSignals(): () => void {
    return this.manager.handleSignals();
  }

  stop(): void {
    this.manager.stop();
  }

  /** Runs until stop() or a signal; resolves after the datapath is closed (endpoints and pins stay). */
  async start(): Promise<void> {
    this.log.info('starting', { node: this.opts.config['node-name'], pinDir: this.datapath.bpffsDir, stateDir: this.opts.config['state-dir'] });
    try {
      await this.manager.start();
    } finally {
      // A restart must find every endpoint this agent answered for.
      await this.endpoints.stateSaved();
      await this.health?.remove().catch((err: Error) => this.log.warn('health endpoint not removed', { netns: this.health?.netns, error: err.message }));
      await this.datapath.close();
      this.log.info('datapath closed; endpoints keep enforcing');
    }
  }

  private async run(signal: AbortSignal): Promise<void> {
    const waits = this.watches().map((r) => r.waitForSync(signal));
    try {
      await Promise.all(waits);
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
    await this.policy.prime();
    this.restoreReport = await this.endpoints.restore();
    await this.drainCniDeletes();
    this.watchLabels(signal);
    await Promise.all([
      this.bindIpamWhenReady(signal),
      this.policy.start(signal),
      this.policyReport.start(signal),
      this.ipcache.start(signal),
      this.networking?.start(signal),
      this.node.start(signal),
      this.taint.start(signal),
    ]);
  }

  /** The watches the start waits for: what the policy repository and the endpoints read. */
  private watches(): Resource<KubeObject>[] {
    const { pods, namespaces } = this.resources;
    return [...policyResourceList(this.resources), pods, namespaces] as Resource<KubeObject>[];
  }

  /**
   * Pod and namespace label changes move endpoints to the identity of their new labels after
   * identity-change-grace-period, as upstream waits for the new identity to reach the other nodes.
   * Changes within the period fold into one relabel; the handlers end with `signal`.
   */
  private watchLabels(signal: AbortSignal): void {
    const graceMs = this.opts.config['identity-change-grace-period'];
    const pending = new Map<string, NodeJS.Timeout>();
    const relabel = (what: string, work: () => Promise<unknown>) => {
      if (pending.has(what) || signal.aborted) return;
      const timer = setTimeout(() => {
        pending.delete(what);
        void work().catch((err: Error) => this.log.warn('endpoint relabel failed', { object: what, error: err.message }));
      }, graceMs);
      pending.set(what, timer);
    };
    const labelsChanged = (o: KubeObject, n: KubeObject) => !isDeepStrictEqual(o.metadata?.labels, n.metadata?.labels);
    const unsubscribe = [
      this.resources.pods.on({
        update: (o, n) => {
          if (!labelsChanged(o, n)) return;
          const ns = n.metadata?.namespace ?? '';
          const name = n.metadata?.name ?? '';
          relabel(`pod ${ns}/${name}`, () => this.endpoints.updateLabels(ns, name));
        },
      }),
      this.resources.namespaces.on({
        update: (o, n) => {
          if (!labelsChanged(o, n)) return;
          const name = n.metadata?.name ?? '';
          relabel(`namespace ${name}`, () => this.endpoints.updateNamespace(name));
        },
      }),
    ];
    signal.addEventListener(
      'abort',
      () => {
        for (const u of unsubscribe) u();
        for (const t of pending.values()) clearTimeout(t);
      },
      { once: true },
    );
  }

  /** CNI DELs the plugin queued while the agent was down (upstream's deletion fallback). */
  private async drainCniDeletes(): Promise<void> {
    const dir = path.join(this.opts.config['state-dir'], 'deleteQueue');
    const report = await drainDeleteQueue(
      dir,
      async (req) => {
        await this.endpoints.delete(req['container-id']).catch((err: unknown) => {
          if (!(err instanceof EndpointNotFoundError)) throw err;
        });
      },
      this.log,
    );
    if (report.deleted + report.failed > 0) this.log.info('queued CNI deletes drained', { dir, ...report });
  }

  private async bindIpamWhenReady(signal: AbortSignal): Promise<void> {
    try {
      await this.node.waitForPodCIDR(signal);
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
    // Claims one by one when the batch fails (e.g. the podCIDR changed): every address that fits
    // the pool is kept from new allocations, the others are named.
    const claimed = this.ipam.claimed();
    try {
      this.node.restore(claimed);
    } catch {
      for (const [ip, a] of Object.entries(claimed)) {
        try {
          this.node.restore({ [ip]: a });
        } catch (err) {
          this.log.error('restored endpoint address not in the node pool', { ip, owner: a.owner, error: (err as Error).message });
        }
      }
    }
    this.ipam.bind(this.node.ipam());
    this.ipamBound = true;
    const addressing = await this.node.waitForPodCIDR();
    this.log.info('IPAM ready', { podCIDR: addressing.podCIDR });
    if (this.networking !== undefined) {
      this.networking.bind(addressing);
      try {
        await this.networking.ready(signal);
      } catch (err) {
        if (signal.aborted) return;
        throw err;
      }
    }
    // Ready for CNI ADDs: endpoints restored, IPAM bound, node networking made (pods get their
    // gateway and MTU), API serving. Only now may the runtime see the conflist and the scheduler
    // place pods here.
    const conf = this.opts.config['write-cni-conf-when-ready'];
    if (conf !== undefined && conf !== '') {
      const result = await writeCniConfig(conf, agentConflist(this.opts.config['state-dir'], agentSocketPath(this.opts.config)));
      this.log.info('CNI configuration', { path: conf, result });
    }
    this.taint.markReady();
    if (this.health !== undefined && this.networking !== undefined) await this.keepHealthEndpoint(this.health, addressing, this.networking.mtus(), signal);
  }

  /** Makes the health endpoint, retrying with backoff (not holding back readiness: upstream's is a probe target, not a pod). */
  private async keepHealthEndpoint(health: HealthEndpoint, addressing: NodeAddressing, mtus: PodMtus, signal: AbortSignal): Promise<void> {
    for (let delay = HEALTH_RETRY_MIN_MS; !signal.aborted; delay = Math.min(delay * 2, HEALTH_RETRY_MAX_MS)) {
      try {
        await health.ensure(addressing, mtus);
        return;
      } catch (err) {
        this.log.warn('health endpoint not made, retrying', { error: (err as Error).message, retryInMs: delay });
      }
      await sleep(delay, undefined, { signal }).catch(() => undefined);
    }
  }
}
