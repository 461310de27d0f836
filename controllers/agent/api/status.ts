// Upstream's StatusResponse (GET /healthz, what `cilium-dbg status` prints) from the agent's
// health: a plain function of what the agent knows, so the shape is checked without an agent.
import type { ResourceHealth } from '../../runtime/resource.js';
import type { AllocationIP } from '../ipam/pool.js';
import type { IdentityRange } from '../identity/numeric.js';

/** The events ring of bpf/lib/maps.h: 4 MiB shared by every CPU. */
export const EVENTS_RING_PAGES = 1024;
export const PAGE_SIZE = 4096;

/** How upstream names the watches in `Kubernetes APIs` (group/version::Kind). */
const K8S_API_NAMES: Readonly<Record<string, string>> = {
  ciliumnetworkpolicies: 'cilium/v2::CiliumNetworkPolicy',
  ciliumclusterwidenetworkpolicies: 'cilium/v2::CiliumClusterwideNetworkPolicy',
  ciliumidentities: 'cilium/v2::CiliumIdentity',
  ciliumendpoints: 'cilium/v2::CiliumEndpoint',
  ciliumnodes: 'cilium/v2::CiliumNode',
  networkpolicies: 'networking.k8s.io/v1::NetworkPolicy',
  pods: 'core/v1::Pods',
  namespaces: 'core/v1::Namespace',
};

/** Hubble's observer as /healthz reports it. */
export interface HubbleStatus {
  currentFlows: number;
  maxFlows: number;
  seenFlows: number;
  uptimeNs: number;
}

export interface StatusFacts {
  version: string;
  /** The apiserver probe: its version line when it answered, the error when not; not probed for a brief status. */
  kubernetes?: { ok: boolean; msg: string };
  /** The agent's watches, and its other readiness checks still failing. */
  resources: readonly ResourceHealth[];
  unsynced: readonly string[];
  stopping: boolean;
  /** The node's pool, once it has a podCIDR. */
  ipam?: { podCIDR: string; capacity: number; used: Readonly<Record<string, AllocationIP>> };
  identityRange: IdentityRange;
  /** The CNI configuration the agent writes when ready, if any. */
  cniConfFile?: string;
  cpus: number;
  /** Nodes known from CiliumNodes, as `<cluster>/<node>`. */
  nodes: readonly string[];
  self: string;
  brief: boolean;
  hubble?: HubbleStatus;
}

type State = 'Ok' | 'Warning' | 'Failure' | 'Disabled';

const KPR_FEATURES_DISABLED = {
  ...Object.fromEntries(
    ['nodePort', 'hostPort', 'externalIPs', 'socketLB', 'socketLBTracing', 'sessionAffinity', 'gracefulTermination', 'nat46X64', 'hostReachableServices'].map((f) => [f, { enabled: false }]),
  ),
  annotations: [],
};

const status = (state: State, msg: string) => ({ state, msg });

/** `IPv4: 3/254 allocated from 10.0.0.0/24, ` as upstream's ipam status line. */
export function ipamStatusLine(ipam: NonNullable<StatusFacts['ipam']>): string {
  return `IPv4: ${Object.keys(ipam.used).length}/${ipam.capacity} allocated from ${ipam.podCIDR}, `;
}

/** The resource names as upstream's `Kubernetes APIs` entries. */
export function k8sApiVersions(resources: readonly ResourceHealth[]): string[] {
  return [...new Set(resources.map((r) => K8S_API_NAMES[r.name.replace(/^ciliumnode-.*/, 'ciliumnodes')] ?? r.name))].sort();
}

export function statusResponse(f: StatusFacts): Record<string, unknown> {
  const ready = f.unsynced.length === 0 && !f.stopping;
  const cilium = f.stopping
    ? status('Failure', 'shutting down')
    : ready
      ? status('Ok', f.version)
      : status('Warning', `not ready: ${[...f.unsynced].sort().join(', ')} not synced`);
  if (f.brief) return { cilium };
  const probe = f.kubernetes === undefined ? status('Disabled', 'not probed') : status(f.kubernetes.ok ? 'Ok' : 'Failure', f.kubernetes.msg);
  const kubernetes = { ...probe, 'k8s-api-versions': k8sApiVersions(f.resources) };
  const ipam =
    f.ipam === undefined
      ? { status: 'waiting for the node podCIDR (spec.ipam.podCIDRs)' }
      : {
          ipv4: Object.keys(f.ipam.used),
          allocations: Object.fromEntries(Object.entries(f.ipam.used).map(([ip, a]) => [ip, a.owner])),
          status: ipamStatusLine(f.ipam),
        };
  return {
    cilium,
    kvstore: status('Disabled', 'Disabled'),
    kubernetes,
    'container-runtime': status('Disabled', 'Disabled'),
    'cni-file': f.cniConfFile === undefined ? status('Disabled', 'Disabled') : status(ready ? 'Ok' : 'Warning', f.cniConfFile),
    'cni-chaining': { mode: 'none' },
    nodeMonitor: { cpus: f.cpus, npages: EVENTS_RING_PAGES, pagesize: PAGE_SIZE, lost: 0, unknown: 0 },
    ipam,
    'identity-range': { 'min-identity': f.identityRange.min, 'max-identity': f.identityRange.max },
    controllers: controllerStatuses(f.resources),
    cluster: {
      ciliumHealth: status('Disabled', 'cilium-health is not part of this agent'),
      self: f.self,
      nodes: f.nodes.map((name) => ({ name })),
    },
    hubble:
      f.hubble === undefined
        ? { state: 'Disabled', msg: 'Disabled' }
        : {
            state: 'Ok',
            msg: '',
            observer: { 'current-flows': f.hubble.currentFlows, 'max-flows': f.hubble.maxFlows, 'seen-flows': f.hubble.seenFlows, uptime: f.hubble.uptimeNs },
          },
    // cilium-dbg's verbose status reads every feature: none may be absent.
    'kube-proxy-replacement': { mode: 'False', features: KPR_FEATURES_DISABLED },
    'host-routing': { mode: 'Legacy' },
    masquerading: { enabled: false, enabledProtocols: { ipv4: false, ipv6: false } },
    'bandwidth-manager': { enabled: false },
    'host-firewall': { mode: 'Disabled' },
    encryption: { mode: 'Disabled' },
  };
}

/**
 * Each watch as one of upstream's controllers: failing until its first list; its reconnects count
 * as failures with the last error (a watch that reconnected is not told apart from one still
 * retrying until its next event, so only the first list decides health).
 */
export function controllerStatuses(resources: readonly ResourceHealth[]): Record<string, unknown>[] {
  return resources.map((r) => ({
    name: `k8s-watch-${r.name}`,
    status: {
      'success-count': r.synced ? 1 + r.relists : 0,
      'failure-count': r.restarts,
      'consecutive-failure-count': r.synced ? 0 : 1,
      ...(r.lastError !== undefined || !r.synced ? { 'last-failure-msg': r.lastError ?? 'not synced yet' } : {}),
    },
  }));
}
