// The node's own networking and its routes to the other nodes (upstream: the datapath loader's
// node setup, then the node manager's route updates on every node event). Once the node has its
// router IP, setupNode makes cilium_host, the overlay and masquerading; from then on the routes to
// every other node's pod CIDR follow the CiliumNodes. One key, so a burst of node events costs one
// diff; a failed setup or sync is retried with the controller's backoff.
import { isDeepStrictEqual } from 'node:util';
import type { Registry } from 'prom-client';
import type { CiliumNode } from '../../../crds/gen/index.js';
import { TUNNEL_OVERHEAD } from '../../../datapath/linux/node-network.js';
import { parseIPv4Prefix } from '../../../datapath/maps/ipv4.js';
import type { Datapath, NodeNetworkSpec, NodeNetworkStatus, RemoteNodeRoute, RoutingMode } from '../../../datapath/types.js';
import type { AgentConfig } from '../../config/agent.js';
import { Controller } from '../../runtime/controller.js';
import { newLogger, type Logger } from '../../runtime/log.js';
import type { Resource } from '../../runtime/resource.js';
import { nodeIP } from '../ipcache/compute.js';
import { CACHE_SYNC_FOREVER_MS } from '../ipcache/resources.js';
import type { NodeAddressing } from './registration.js';

/** Upstream's MTU when none is configured or known. */
export const ETHERNET_MTU = 1500;

const KEY = 'node-networking';

/** The options that shape the node's networking. */
export interface NodeNetworkSettings {
  routingMode: RoutingMode;
  tunnelPort: number;
  masquerade: boolean;
  nativeRoutingCIDR?: string;
  /** The underlay MTU the option `mtu` forces; 0: the device's. */
  mtu: number;
}

export function nodeNetworkSettings(config: AgentConfig): NodeNetworkSettings {
  const cidr = config['ipv4-native-routing-cidr'];
  return {
    routingMode: config['routing-mode'] as RoutingMode,
    tunnelPort: config['tunnel-port'],
    masquerade: config['enable-ipv4-masquerade'] === 'true',
    ...(cidr === '' ? {} : { nativeRoutingCIDR: cidr }),
    mtu: config.mtu,
  };
}

/** The MTUs the CNI gives pods (upstream GetDeviceMTU / GetRouteMTU): the veth's, and its routes'. */
export interface PodMtus {
  deviceMTU: number;
  routeMTU: number;
}

/**
 * As upstream: the device MTU is the underlay's, the route MTU leaves room for the tunnel header.
 * The underlay's comes from the `mtu` option, else from what setupNode found, else 1500.
 */
export function podMtus(settings: Pick<NodeNetworkSettings, 'routingMode' | 'mtu'>, status?: Pick<NodeNetworkStatus, 'podMtu'>): PodMtus {
  const overhead = settings.routingMode === 'tunnel' ? TUNNEL_OVERHEAD : 0;
  const deviceMTU = settings.mtu > 0 ? settings.mtu : status !== undefined ? status.podMtu + overhead : ETHERNET_MTU;
  return { deviceMTU, routeMTU: deviceMTU - overhead };
}

/**
 * The routes to the other nodes' pods: every node but `nodeName` with an IPv4 podCIDR and an
 * address (the one its ipcache rows tunnel to), in podCIDR order. A podCIDR two nodes claim goes
 * to the first by name, so one route never flaps between two nodes.
 */
export function remoteNodeRoutes(nodeName: string, nodes: readonly CiliumNode[]): RemoteNodeRoute[] {
  const byCidr = new Map<string, RemoteNodeRoute>();
  const sorted = [...nodes].sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''));
  for (const n of sorted) {
    if (n.metadata.name === nodeName) continue;
    const ip = nodeIP(n);
    const podCIDR = (n.spec.ipam?.podCIDRs ?? []).find((c) => !c.includes(':'));
    if (ip === undefined || podCIDR === undefined) continue;
    try {
      parseIPv4Prefix(podCIDR, `CiliumNode ${n.metadata.name ?? ''} spec.ipam.podCIDRs`);
    } catch {
      // The schema checks the format: what passes it and not this is no route of ours.
      continue;
    }
    if (!byCidr.has(podCIDR)) byCidr.set(podCIDR, { podCIDR, nodeIP: ip });
  }
  return [...byCidr.values()].sort((a, b) => a.podCIDR.localeCompare(b.podCIDR));
}

export interface NodeNetworkingOptions {
  nodeName: string;
  /** This node's underlay address: tunnel source, masquerade address. */
  nodeIP: string;
  settings: NodeNetworkSettings;
  datapath: Pick<Datapath, 'setupNode' | 'syncNodeRoutes'>;
  /** Every CiliumNode of the cluster; started by the caller. */
  nodes: Resource<CiliumNode>;
  /** Called once setupNode succeeded (new local addresses, such as the router IP, exist now). */
  onSetup?: (status: NodeNetworkStatus) => void;
  registry?: Registry;
  logger?: Logger;
}

export class NodeNetworking {
  readonly controller: Controller;
  private readonly log: Logger;
  private spec?: NodeNetworkSpec;
  private setup?: NodeNetworkStatus;
  private synced?: RemoteNodeRoute[];
  private readonly waiters: ((s: NodeNetworkStatus) => void)[] = [];

  constructor(private readonly opts: NodeNetworkingOptions) {
    this.log = opts.logger ?? newLogger('node-networking');
    this.controller = new Controller({
      name: 'node-networking',
      reconciler: { reconcile: () => this.reconcile() },
      registry: opts.registry,
      logger: this.log,
      cacheSyncTimeoutMs: CACHE_SYNC_FOREVER_MS,
    });
    this.controller.watch(opts.nodes, () => [KEY]);
  }

  /** The node's router IP and podCIDR are known: the setup can run. */
  bind(addressing: NodeAddressing): void {
    const s = this.opts.settings;
    this.spec = {
      routingMode: s.routingMode,
      nodeIP: this.opts.nodeIP,
      routerIP: addressing.routerIP,
      podCIDR: addressing.podCIDR,
      ...(s.nativeRoutingCIDR === undefined ? {} : { nativeRoutingCIDR: s.nativeRoutingCIDR }),
      masquerade: s.masquerade,
      tunnelPort: s.tunnelPort,
      ...(s.mtu > 0 ? { mtu: s.mtu } : {}),
    };
    this.controller.enqueue(KEY);
  }

  /** What setupNode made, once it has. */
  get status(): NodeNetworkStatus | undefined {
    return this.setup;
  }

  /** The MTUs pods get now. */
  mtus(): PodMtus {
    return podMtus(this.opts.settings, this.setup);
  }

  /** Resolves once setupNode succeeded. */
  ready(signal?: AbortSignal): Promise<NodeNetworkStatus> {
    if (this.setup !== undefined) return Promise.resolve(this.setup);
    return new Promise((resolve, reject) => {
      const abort = () => reject(new Error(`node ${this.opts.nodeName}: stopped waiting for the node networking setup: ${String(signal?.reason)}`));
      if (signal?.aborted) return abort();
      signal?.addEventListener('abort', abort, { once: true });
      this.waiters.push((s) => {
        signal?.removeEventListener('abort', abort);
        resolve(s);
      });
    });
  }

  /** Runs until `signal` aborts; the nodes resource must be started by the caller. */
  async start(signal: AbortSignal): Promise<void> {
    this.controller.enqueue(KEY);
    await this.controller.start(signal);
  }

  private async reconcile(): Promise<void> {
    if (this.spec === undefined) return;
    if (this.setup === undefined) {
      const status = await this.opts.datapath.setupNode(this.spec).catch((err: unknown) => {
        throw new Error(`node ${this.opts.nodeName}: setupNode (${this.spec?.routingMode} mode, node IP ${this.spec?.nodeIP}, router IP ${this.spec?.routerIP}): ${(err as Error).message}`, { cause: err });
      });
      this.setup = status;
      this.log.info('node networking set up', { ...this.spec, ...status });
      this.opts.onSetup?.(status);
      for (const w of this.waiters.splice(0)) w(status);
    }
    const routes = remoteNodeRoutes(this.opts.nodeName, this.opts.nodes.store.list());
    if (isDeepStrictEqual(routes, this.synced)) return;
    const r = await this.opts.datapath.syncNodeRoutes(routes).catch((err: unknown) => {
      throw new Error(`node ${this.opts.nodeName}: syncing ${routes.length} routes to other nodes' pods: ${(err as Error).message}`, { cause: err });
    });
    this.synced = routes;
    this.log.info('routes to other nodes synced', { routes: routes.map((x) => `${x.podCIDR} via ${x.nodeIP}`), ...r });
  }
}
