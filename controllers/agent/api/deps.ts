// What the API reads and drives of the agent: its parts, as the daemon builds them.
import type { CiliumEndpoint, CiliumNode } from '../../../crds/gen/index.js';
import type { LinuxDatapath } from '../../../datapath/linux/linux-datapath.js';
import type { AgentConfig } from '../../config/agent.js';
import type { ApiClient } from '../../runtime/apiclient.js';
import type { HealthReport } from '../../runtime/manager.js';
import type { Resource } from '../../runtime/resource.js';
import type { EndpointManager } from '../endpoint/manager.js';
import type { EndpointIpam } from '../endpoint/ipam.js';
import type { PodMtus } from '../node/networking.js';
import type { NodeAddressing, NodeRegistration } from '../node/registration.js';
import type { PolicyResources } from '../policy/loop-resources.js';
import type { PolicyRepository } from '../policy/repository.js';
import type { HubbleStatus } from './status.js';

export interface AgentApiDeps {
  config: AgentConfig;
  endpoints: Pick<EndpointManager, 'create' | 'delete' | 'get' | 'list'>;
  node: Pick<NodeRegistration, 'waitForPodCIDR' | 'used'>;
  /** The endpoint manager's IPAM: fails until the node has its podCIDR and restored endpoints claimed theirs. */
  ipam: EndpointIpam;
  /** Whether `ipam` takes allocations yet. */
  ipamReady: () => boolean;
  /** The MTUs pods get (GET /config deviceMTU and routeMTU, what cilium-cni configures). */
  mtu: () => PodMtus;
  repo: Pick<PolicyRepository, 'revision' | 'selectorCache' | 'get' | 'rules'>;
  resources: PolicyResources;
  ciliumNodes: Resource<CiliumNode>;
  ciliumEndpoints: Resource<CiliumEndpoint>;
  datapath: Pick<LinuxDatapath, 'bpffsDir' | 'endpointPolicy' | 'events'>;
  health: () => HealthReport;
  /** The apiserver, for the Kubernetes probe of /healthz. */
  kube: Pick<ApiClient, 'request'>;
  /** Hubble's ring, when the observer runs. */
  hubble?: () => HubbleStatus | undefined;
}

/** The node's podCIDR, router and health addresses if it has them yet; never waits. */
export function addressingNow(node: AgentApiDeps['node']): Promise<NodeAddressing | undefined> {
  // An aborted signal turns the wait into a look: known addressing resolves, none rejects at once.
  return node.waitForPodCIDR(AbortSignal.abort()).catch(() => undefined);
}
