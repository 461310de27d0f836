// Who a flow's endpoints are and which policy decided it, from the agent's caches: a local
// endpoint by address (id, identity, labels, pod, namespace, workload from the pod's controller),
// otherwise the identity's labels and, for a pod of another node, its CiliumEndpoint's pod name
// and namespace; as upstream's endpoint resolver does, the datapath's identity wins when it has one.
import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { Endpoint, NetworkInterface, Policy, Workload } from '../../hubble/flow-types.js';
import type { FlowContext } from '../../hubble/decode.js';
import { POLICY_LABEL_CLUSTER } from '../labels/keys.js';
import { parseLabel } from '../labels/labels.js';
import { LOCAL_IDENTITY_FLAG } from '../policy/index.js';

export interface LocalEndpointInfo {
  id: number;
  ipv4: string;
  identity: number;
  /** Security labels, `source:key=value`. */
  labels: readonly string[];
  namespace: string;
  podName: string;
  /** Host-side veth the endpoint's programs run on. */
  ifindex: number;
  ifname: string;
  /** The pod's metadata, for its workload (owner references, generateName, labels). */
  pod?: Pick<V1ObjectMeta, 'generateName' | 'ownerReferences' | 'labels'>;
}

export interface RemoteEndpointInfo {
  namespace: string;
  podName: string;
  identity?: number;
}

/** What the observer reads of the agent; each is a lookup in a cache the agent keeps anyway. */
export interface ObserverSources {
  nodeName: string;
  clusterName: string;
  localEndpointByIp(ip: string): LocalEndpointInfo | undefined;
  localEndpointById(id: number): LocalEndpointInfo | undefined;
  /** Labels of any identity the agent knows, reserved and CIDR ones included. */
  identityLabels(id: number): readonly string[] | undefined;
  /** A pod of another node at this address (its CiliumEndpoint, or the ipcache). */
  remoteEndpoint(ip: string): RemoteEndpointInfo | undefined;
  /** The policy whose rule carries this cookie. */
  policyOfCookie(cookie: number): Policy | undefined;
}

const CRONJOB_NAME = /^(.+)-\d{8,10}$/;

/** The pod's workload as upstream derives it from a generated pod's controller (Deployment through its ReplicaSet, CronJob through its Job). */
export function workloadOf(pod: LocalEndpointInfo['pod']): Workload[] {
  if (!pod?.generateName) return [];
  const ctl = pod.ownerReferences?.find((r) => r.controller === true);
  if (ctl === undefined) return [];
  const hash = pod.labels?.['pod-template-hash'] ?? '';
  if (ctl.kind === 'ReplicaSet' && hash !== '' && ctl.name.endsWith(hash)) return [{ kind: 'Deployment', name: ctl.name.slice(0, -(hash.length + 1)) }];
  if (ctl.kind === 'ReplicationController' && pod.labels?.deploymentconfig) return [{ kind: 'DeploymentConfig', name: pod.labels.deploymentconfig }];
  const cron = ctl.kind === 'Job' ? CRONJOB_NAME.exec(ctl.name) : null;
  if (cron) return [{ kind: 'CronJob', name: cron[1]! }];
  return [{ kind: ctl.kind, name: ctl.name }];
}

function clusterOf(labels: readonly string[]): string {
  for (const text of labels) {
    const l = parseLabel(text);
    if (l.key === POLICY_LABEL_CLUSTER) return l.value;
  }
  return '';
}

function cidrBits(label: string): number {
  return Number(label.slice(label.lastIndexOf('/') + 1));
}

/** Sorted labels; a node-local (CIDR) identity shows only its longest prefix, as upstream's. */
export function flowLabels(labels: readonly string[], identity: number): string[] {
  let out = [...labels];
  if ((identity & LOCAL_IDENTITY_FLAG) !== 0) {
    const cidrs = out.filter((l) => l.startsWith('cidr:'));
    const longest = cidrs.reduce<string | undefined>((best, l) => (best === undefined || cidrBits(l) > cidrBits(best) ? l : best), undefined);
    out = [...out.filter((l) => !l.startsWith('cidr:')), ...(longest ? [longest] : [])];
  }
  return out.sort();
}

// Flows share the endpoint they resolve to for this long: a burst of flows between the same pods
// costs one lookup, and a change in the caches shows within it.
export const ENDPOINT_CACHE_MS = 1000;
const ENDPOINT_CACHE_MAX = 65_536;

export function flowContext(s: ObserverSources, now: () => number = Date.now): FlowContext {
  // By identity, then address: no key string is built per lookup.
  const cache = new Map<number, Map<string, { at: number; endpoint: Endpoint }>>();
  let cached = 0;
  const resolve = (ip: string, datapathIdentity: number): Endpoint => {
    const local = s.localEndpointByIp(ip);
    if (local) {
      const identity = datapathIdentity !== 0 ? datapathIdentity : local.identity;
      return {
        ID: local.id,
        identity,
        cluster_name: clusterOf(local.labels),
        namespace: local.namespace,
        labels: flowLabels(local.labels, identity),
        pod_name: local.podName,
        workloads: workloadOf(local.pod),
      };
    }
    const remote = s.remoteEndpoint(ip);
    const identity = datapathIdentity !== 0 ? datapathIdentity : (remote?.identity ?? 0);
    const labels = identity !== 0 ? (s.identityLabels(identity) ?? []) : [];
    return {
      ID: 0,
      identity,
      cluster_name: clusterOf(labels),
      namespace: remote?.namespace ?? '',
      labels: flowLabels(labels, identity),
      pod_name: remote?.podName ?? '',
      workloads: [],
    };
  };
  return {
    nodeName: s.nodeName,
    endpoint(ip: string, datapathIdentity: number): Endpoint {
      const t = now();
      let byIp = cache.get(datapathIdentity);
      const hit = byIp?.get(ip);
      if (hit !== undefined && t - hit.at < ENDPOINT_CACHE_MS) return hit.endpoint;
      if (cached >= ENDPOINT_CACHE_MAX) {
        cache.clear();
        cached = 0;
        byIp = undefined;
      }
      if (byIp === undefined) cache.set(datapathIdentity, (byIp = new Map<string, { at: number; endpoint: Endpoint }>()));
      const endpoint = resolve(ip, datapathIdentity);
      if (!byIp.has(ip)) cached++;
      byIp.set(ip, { at: t, endpoint });
      return endpoint;
    },
    policy: (cookie) => s.policyOfCookie(cookie),
    interfaceOf(endpointId: number): NetworkInterface | undefined {
      const ep = endpointId === 0 ? undefined : s.localEndpointById(endpointId);
      return ep && { index: ep.ifindex, name: ep.ifname };
    },
  };
}
