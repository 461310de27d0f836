// The CiliumEndpoint the agent writes for each pod endpoint on its node: named like the pod, owned
// by it (so the garbage collector removes it with the pod), and filled so that
// `kubectl get cep` shows identity, enforcement, state and address as upstream's columns do.
import type { CiliumEndpoint, EndpointPolicyDirection } from '../../../crds/gen/index.js';
import { validateCiliumEndpoint } from '../../../crds/validation.js';
import { attachmentId, type EndpointRecord } from './endpoint.js';

export interface CepOptions {
  /** The node the endpoint lives on (status.networking.node). */
  nodeName: string;
}

function direction(enforcing: boolean): EndpointPolicyDirection {
  return { enforcing, state: enforcing ? 'enforcing' : 'non-enforcing' };
}

/**
 * The object to server-side apply: metadata the agent owns (owner reference to the Pod as upstream
 * sets it: apiVersion, kind, name, uid, no controller flag; the pod's labels mirrored) and the
 * whole status. Throws naming the fields when the result fails the CRD's schema.
 */
export function buildCiliumEndpoint(ep: EndpointRecord, opts: CepOptions): CiliumEndpoint {
  const enforcement = ep.enforcement ?? { ingress: false, egress: false };
  const cep: CiliumEndpoint = {
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumEndpoint',
    metadata: {
      name: ep.podName,
      namespace: ep.namespace,
      labels: { ...ep.podLabels },
      ...(ep.podUid ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: ep.podName, uid: ep.podUid }] } : {}),
    },
    status: {
      id: ep.id,
      identity: { id: ep.identity, labels: [...ep.identityLabels].sort() },
      networking: { addressing: [{ ipv4: ep.ipv4 }], node: opts.nodeName },
      state: ep.state,
      policy: { ingress: direction(enforcement.ingress), egress: direction(enforcement.egress) },
      'named-ports': ep.namedPorts.map((p) => ({ name: p.name, port: p.port, protocol: p.protocol })),
      ...(ep.serviceAccount ? { 'service-account': ep.serviceAccount } : {}),
      'external-identifiers': {
        'container-id': ep.containerId,
        ...(ep.containerName ? { 'container-name': ep.containerName } : {}),
        'k8s-namespace': ep.namespace,
        'k8s-pod-name': ep.podName,
        'pod-name': `${ep.namespace}/${ep.podName}`,
        'cni-attachment-id': attachmentId(ep),
      },
    },
  };
  const r = validateCiliumEndpoint(cep);
  if (!r.ok) throw new Error(`CiliumEndpoint ${ep.namespace}/${ep.podName}: ${r.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`);
  return r.value;
}

/** The uid of the Pod a CiliumEndpoint belongs to (its Pod owner reference), if it names one. */
export function cepPodUid(cep: Pick<CiliumEndpoint, 'metadata'>): string | undefined {
  return cep.metadata.ownerReferences?.find((r) => r.kind === 'Pod' && r.apiVersion === 'v1')?.uid;
}
