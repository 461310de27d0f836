// The CiliumIdentity object for a label set, as upstream's CRD backend writes it.
import type { CiliumIdentity } from '../../../crds/gen/index.js';
import { POD_NAMESPACE_LABEL } from '../labels/keys.js';
import { LabelSet, SOURCE_K8S } from '../labels/labels.js';

/** Set by the operator on an identity it means to delete; an agent reusing it removes it. */
export const HEARTBEAT_ANNOTATION = 'io.cilium.heartbeat';

export const CILIUM_IDENTITY_GROUP = 'cilium.io';
export const CILIUM_IDENTITY_VERSION = 'v2';
export const CILIUM_IDENTITY_PLURAL = 'ciliumidentities';

/**
 * Name = the decimal id; `security-labels` = the label set; metadata.labels carries only the pod
 * namespace (newest upstream), which is what `kubectl get ciliumid` shows and selects on.
 */
export function ciliumIdentityFor(id: number, labels: LabelSet): CiliumIdentity {
  const namespace = labels.get(POD_NAMESPACE_LABEL, SOURCE_K8S);
  return {
    apiVersion: `${CILIUM_IDENTITY_GROUP}/${CILIUM_IDENTITY_VERSION}`,
    kind: 'CiliumIdentity',
    metadata: { name: String(id), ...(namespace === undefined ? {} : { labels: { [POD_NAMESPACE_LABEL]: namespace } }) },
    'security-labels': labels.toSecurityLabels(),
  };
}

/** The numeric id a CiliumIdentity stands for, or undefined when its name is not one. */
export function identityId(ci: CiliumIdentity): number | undefined {
  const name = ci.metadata.name ?? '';
  return /^[1-9][0-9]*$/.test(name) ? Number(name) : undefined;
}

export function identityLabels(ci: CiliumIdentity): LabelSet {
  const record: Record<string, string> = {};
  for (const [k, v] of Object.entries(ci['security-labels'])) if (v !== undefined) record[k] = v;
  return LabelSet.fromSecurityLabels(record);
}
