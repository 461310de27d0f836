// This node's health endpoint (upstream cilium-health's): the node's health IP in a network
// namespace of its own behind a veth built as a pod's, an endpoint with the reserved health
// identity (4) on it, so every node can ping every other node's health IP through the datapath.
// Made again at each start (what a killed agent left is replaced; its endpoint id was pruned by the
// restore) and removed at stop: the namespace is named host-wide, so nothing else would remove it.
import { createHash } from 'node:crypto';
import type { Datapath } from '../../../datapath/types.js';
import { createNetns, deleteNetns } from '../../../datapath/netns/netns.js';
import { CommandError } from '../../../datapath/netns/run.js';
import { hostIfnameFor, removePodLink, setupPodLink } from '../../cni/pod-link.js';
import { newLogger, type Logger } from '../../runtime/log.js';
import { IDENTITY_HEALTH } from '../ipcache/compute.js';
import type { PodMtus } from './networking.js';
import type { NodeAddressing } from './registration.js';

/** Upstream's name of the interface inside the health namespace. */
export const HEALTH_IFNAME = 'cilium';
/** Stands for the container id in the host veth's name (lxc<hash>), as a pod's would. */
const HEALTH_ATTACHMENT = 'cilium-health';
const MAX_NETNS_NAME = 64;

/** The health namespace of `nodeName`: upstream's cilium-health, per node, as nodes here may share /run/netns. */
export function healthNetnsName(nodeName: string): string {
  const name = `cilium-health-${nodeName}`;
  return name.length <= MAX_NETNS_NAME ? name : `cilium-health-${createHash('sha256').update(nodeName).digest('hex').slice(0, 16)}`;
}

export interface HealthEndpointOptions {
  nodeName: string;
  datapath: Pick<Datapath, 'upsertEndpoint' | 'syncPolicy'>;
  /** A node-local endpoint id no pod holds. */
  reserveId: () => number;
  logger?: Logger;
}

export class HealthEndpoint {
  private readonly log: Logger;
  private id?: number;

  constructor(private readonly opts: HealthEndpointOptions) {
    this.log = opts.logger ?? newLogger('health-endpoint');
  }

  get netns(): string {
    return healthNetnsName(this.opts.nodeName);
  }

  /** The endpoint id, once made. */
  get endpointId(): number | undefined {
    return this.id;
  }

  /** Makes the namespace, the veth and the endpoint; again after a failure, keeping its id. */
  async ensure(addressing: NodeAddressing, mtus: PodMtus): Promise<void> {
    const netns = this.netns;
    await createNetns(netns).catch((err: unknown) => {
      if (!(err instanceof CommandError && /File exists/.test(err.stderr))) throw err;
    });
    const link = await setupPodLink({
      containerId: HEALTH_ATTACHMENT,
      ifname: HEALTH_IFNAME,
      netnsPath: `/run/netns/${netns}`,
      ip: addressing.healthIP,
      router: addressing.routerIP,
      mtu: mtus.deviceMTU,
      routeMtu: mtus.routeMTU,
    });
    this.id ??= this.opts.reserveId();
    const id = this.id;
    await this.opts.datapath.upsertEndpoint({ id, ipv4: addressing.healthIP, identity: IDENTITY_HEALTH, ifname: link.hostIfname, ifindex: link.hostIfindex, mac: link.podMac, nodeMac: link.hostMac });
    // Upstream's health endpoint enforces no policy: probes from anywhere in the cluster reach it.
    await this.opts.datapath.syncPolicy(id, [], { ingress: false, egress: false });
    this.log.info('health endpoint ready', { endpoint: id, ip: addressing.healthIP, netns, hostIfname: link.hostIfname });
  }

  /** Removes the veth and the namespace; what is already gone is fine. */
  async remove(): Promise<void> {
    await removePodLink(hostIfnameFor(HEALTH_ATTACHMENT, HEALTH_IFNAME));
    await deleteNetns(this.netns);
  }
}
