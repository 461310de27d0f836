// The labels the agent derives for a pod's security identity, as upstream's SanitizePodLabels
// does: the pod's own labels (minus any that pretend to be Cilium's), its namespace name and
// labels, service account and cluster name, all with source `k8s`, then filtered.
import type { LabelFilter } from './filter.js';
import { LabelSet, SOURCE_K8S } from './labels.js';

/** Label keys with this prefix are Cilium's to set; a pod that carries them has them dropped. */
export const CILIUM_LABEL_PREFIX = 'io.cilium.k8s';
export const POD_NAMESPACE_LABEL = 'io.kubernetes.pod.namespace';
export const POD_NAMESPACE_META_LABELS = 'io.cilium.k8s.namespace.labels';
export const POLICY_LABEL_SERVICE_ACCOUNT = 'io.cilium.k8s.policy.serviceaccount';
export const POLICY_LABEL_CLUSTER = 'io.cilium.k8s.policy.cluster';

export interface PodLabelInput {
  podLabels: Readonly<Record<string, string>>;
  namespace: string;
  namespaceLabels: Readonly<Record<string, string>>;
  /** Empty or absent: no service-account label. */
  serviceAccount?: string;
  clusterName: string;
}

/** Every label upstream attaches to the pod's endpoint, before filtering. */
export function podEndpointLabels(input: PodLabelInput): LabelSet {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.podLabels)) if (!k.startsWith(CILIUM_LABEL_PREFIX)) out[k] = v;
  for (const [k, v] of Object.entries(input.namespaceLabels)) out[`${POD_NAMESPACE_META_LABELS}.${k}`] = v;
  out[POD_NAMESPACE_LABEL] = input.namespace;
  if (input.serviceAccount) out[POLICY_LABEL_SERVICE_ACCOUNT] = input.serviceAccount;
  out[POLICY_LABEL_CLUSTER] = input.clusterName;
  return LabelSet.fromRecord(SOURCE_K8S, out);
}

/** The pod's security labels (what its identity is allocated for) and its information labels. */
export function podSecurityLabels(input: PodLabelInput, filter: LabelFilter): { identity: LabelSet; information: LabelSet } {
  return filter.filter(podEndpointLabels(input));
}
