// Which REST collection holds a kind, and the ns/name keys the runtime uses for objects.
import type { V1ObjectMeta } from '@kubernetes/client-node';

export interface ResourceType {
  /** "v1" for the core group, otherwise "group/version". */
  apiVersion: string;
  kind: string;
  plural: string;
  namespaced: boolean;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: V1ObjectMeta;
}

function groupVersionPath(t: ResourceType): string {
  return t.apiVersion.includes('/') ? `/apis/${t.apiVersion}` : `/api/${t.apiVersion}`;
}

/** The collection of `t`: across all namespaces when `namespace` is undefined. */
export function collectionPath(t: ResourceType, namespace?: string): string {
  if (t.namespaced && namespace !== undefined) return `${groupVersionPath(t)}/namespaces/${namespace}/${t.plural}`;
  return `${groupVersionPath(t)}/${t.plural}`;
}

export function objectPath(t: ResourceType, name: string, namespace?: string): string {
  if (t.namespaced && namespace === undefined) throw new Error(`${t.kind} ${name}: namespaced kind needs a namespace`);
  return `${collectionPath(t, namespace)}/${encodeURIComponent(name)}`;
}

/** "namespace/name" for namespaced objects, "name" for cluster-scoped ones (client-go's key format). */
export function objectKey(obj: KubeObject): string {
  const name = obj.metadata?.name;
  if (!name) throw new Error(`object key: ${obj.kind ?? 'object'} has no metadata.name`);
  const ns = obj.metadata?.namespace;
  return ns ? `${ns}/${name}` : name;
}

export function splitKey(key: string): { namespace?: string; name: string } {
  const slash = key.indexOf('/');
  return slash < 0 ? { name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

export const configMaps: ResourceType = { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true };
export const pods: ResourceType = { apiVersion: 'v1', kind: 'Pod', plural: 'pods', namespaced: true };
export const nodes: ResourceType = { apiVersion: 'v1', kind: 'Node', plural: 'nodes', namespaced: false };
export const namespaces: ResourceType = { apiVersion: 'v1', kind: 'Namespace', plural: 'namespaces', namespaced: false };
export const coreEvents: ResourceType = { apiVersion: 'v1', kind: 'Event', plural: 'events', namespaced: true };
export const leases: ResourceType = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', plural: 'leases', namespaced: true };

const cilium = (kind: string, plural: string, namespaced: boolean): ResourceType => ({ apiVersion: 'cilium.io/v2', kind, plural, namespaced });
export const ciliumNetworkPolicies = cilium('CiliumNetworkPolicy', 'ciliumnetworkpolicies', true);
export const ciliumClusterwideNetworkPolicies = cilium('CiliumClusterwideNetworkPolicy', 'ciliumclusterwidenetworkpolicies', false);
export const ciliumEndpoints = cilium('CiliumEndpoint', 'ciliumendpoints', true);
export const ciliumIdentities = cilium('CiliumIdentity', 'ciliumidentities', false);
export const ciliumNodes = cilium('CiliumNode', 'ciliumnodes', false);
