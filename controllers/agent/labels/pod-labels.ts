// The labels the agent derives for a pod's security identity, as upstream's SanitizePodLabels
// does: the pod's own labels (minus any that pretend to be Cilium's), its namespace name and
// labels, service account and cluster name, all with source `k8s`, then filtered.
import type { LabelFilter } from './filter.js';
import { CILIUM_LABEL_PREFIX, NAMESPACE_LABELS_PREFIX, POD_NAMESPACE_LABEL, POLICY_LABEL_CLUSTER, POLICY_LABEL_SERVICE_ACCOUNT } from './keys.js';
import { LabelSet, SOURCE_K8S } from './labels.js';

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
  for (const [k, v] of Object.entries(input.namespaceLabels)) out[`${NAMESPACE_LABELS_PREFIX}${k}`] = v;
  out[POD_NAMESPACE_LABEL] = input.namespace;
  if (input.serviceAccount) out[POLICY_LABEL_SERVICE_ACCOUNT] = input.serviceAccount;
  out[POLICY_LABEL_CLUSTER] = input.clusterName;
  return LabelSet.fromRecord(SOURCE_K8S, out);
}

/** The pod's security labels (what its identity is allocated for) and its information labels. */
export function podSecurityLabels(input: PodLabelInput, filter: LabelFilter): { identity: LabelSet; information: LabelSet } {
  return filter.filter(podEndpointLabels(input));
}
