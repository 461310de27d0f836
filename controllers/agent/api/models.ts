// Upstream's API models (api/v1/openapi.yaml) built from the agent's own records: plain functions of
// plain data, so the JSON shapes upstream clients decode are checked without an agent.
import { createHash } from 'node:crypto';
import type { Enforcement, PolicyEntry } from '../../../datapath/types.js';
import type { EndpointState } from '../endpoint/change-request.js';
import { attachmentId, type EndpointRecord } from '../endpoint/endpoint.js';
import { LabelSet, parseLabel, SOURCE_K8S } from '../labels/labels.js';

/** swagger NodeAddressingElement. */
export interface NodeAddressingElement {
  enabled: boolean;
  ip?: string;
  'alloc-range'?: string;
  'address-type'?: string;
}

/** swagger NodeAddressing; this datapath is IPv4-only. */
export interface NodeAddressingModel {
  ipv4: NodeAddressingElement;
  ipv6: NodeAddressingElement;
}

export interface IdentityModel {
  id: number;
  labels: string[];
  labelsSHA256: string;
}

/**
 * Upstream's Labels.SHA256Sum, quirk included: it prints `sha512.New512_256().Sum(list)`, which is
 * the sorted `source:key=value;` list itself followed by the digest of nothing, in hex.
 */
export function labelsSHA256(labels: readonly string[]): string {
  const list = labels
    .map(parseLabel)
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((l) => `${l.source}:${l.key}=${l.value};`)
    .join('');
  return Buffer.concat([Buffer.from(list), createHash('sha512-256').digest()]).toString('hex');
}

export function identityModel(id: number, labels: readonly string[]): IdentityModel {
  const sorted = [...labels].sort();
  return { id, labels: sorted, labelsSHA256: labelsSHA256(sorted) };
}

export function nodeAddressing(router?: { routerIP: string; podCIDR: string }): NodeAddressingModel {
  return {
    ipv4: router ? { enabled: true, ip: router.routerIP, 'alloc-range': router.podCIDR } : { enabled: true },
    ipv6: { enabled: false },
  };
}

/** swagger EndpointPolicyEnabled from what the datapath enforces. */
export function policyEnabled(e: Enforcement): 'none' | 'ingress' | 'egress' | 'both' {
  if (e.ingress && e.egress) return 'both';
  if (e.ingress) return 'ingress';
  if (e.egress) return 'egress';
  return 'none';
}

type HealthStatus = 'OK' | 'Bootstrap' | 'Pending' | 'Warning' | 'Failure' | 'Disabled';

export interface EndpointHealthModel {
  bpf: HealthStatus;
  policy: HealthStatus;
  overallHealth: HealthStatus;
  connected: boolean;
}

/** swagger EndpointHealth, as upstream derives it from the endpoint's state. */
export function endpointHealth(state: EndpointState): EndpointHealthModel {
  const of = (bpf: HealthStatus, policy: HealthStatus, connected: boolean): EndpointHealthModel => ({
    bpf,
    policy,
    overallHealth: bpf === 'OK' && policy === 'OK' ? 'OK' : policy === 'OK' ? bpf : policy,
    connected,
  });
  switch (state) {
    case 'ready':
      return of('OK', 'OK', true);
    case 'creating':
    case 'waiting-for-identity':
    case 'restoring':
      return of('Bootstrap', 'Bootstrap', false);
    case 'waiting-to-regenerate':
    case 'regenerating':
      return of('Pending', 'Pending', true);
    case 'not-ready':
      // The endpoint drops its traffic until its policy computes (fail closed).
      return of('OK', 'Failure', true);
    case 'disconnecting':
    case 'disconnected':
      return of('Disabled', 'Disabled', false);
    case 'invalid':
      return of('Failure', 'Failure', false);
  }
}

/** Endpoint options upstream shows (ConfigurationMap); these are what this datapath always does. */
export const ENDPOINT_OPTIONS: Readonly<Record<string, string>> = {
  Conntrack: 'Enabled',
  ConntrackAccounting: 'Enabled',
  Debug: 'Disabled',
  DropNotification: 'Enabled',
  PolicyAuditMode: 'Disabled',
  PolicyVerdictNotification: 'Enabled',
  TraceNotification: 'Enabled',
};

/** The pod's labels that are not part of its identity, as upstream's `derived` list. */
export function derivedLabels(ep: Pick<EndpointRecord, 'podLabels' | 'identityLabels'>): string[] {
  const identity = new Set(ep.identityLabels);
  return LabelSet.fromRecord(SOURCE_K8S, ep.podLabels).strings.filter((l) => !identity.has(l));
}

export function labelConfiguration(ep: Pick<EndpointRecord, 'podLabels' | 'identityLabels'>): Record<string, unknown> {
  return {
    spec: { user: [] },
    status: { realized: { user: [] }, 'security-relevant': [...ep.identityLabels].sort(), derived: derivedLabels(ep), disabled: [] },
  };
}

/** swagger EndpointPolicy from the entries the datapath holds for the endpoint. */
export function endpointPolicy(identity: number, revision: number, realized: { entries: readonly PolicyEntry[]; enforcement: Enforcement }): Record<string, unknown> {
  const ids = (direction: PolicyEntry['direction'], deny: boolean) =>
    [...new Set(realized.entries.filter((e) => e.direction === direction && e.deny === deny).map((e) => e.identity))].sort((a, b) => a - b);
  return {
    id: identity,
    'policy-revision': revision,
    build: revision,
    'policy-enabled': policyEnabled(realized.enforcement),
    'allowed-ingress-identities': ids('ingress', false),
    'denied-ingress-identities': ids('ingress', true),
    'allowed-egress-identities': ids('egress', false),
    'denied-egress-identities': ids('egress', true),
  };
}

export interface EndpointModelContext {
  /** The policy revision the endpoint's last sync computed with. */
  policyRevision: number;
  /** What the datapath enforces for it now; absent before its first sync. */
  realized?: { entries: readonly PolicyEntry[]; enforcement: Enforcement };
  hostAddressing: NodeAddressingModel;
}

/** swagger Endpoint. */
export function endpointModel(ep: EndpointRecord, ctx: EndpointModelContext): Record<string, unknown> {
  const config = { options: { ...ENDPOINT_OPTIONS }, 'label-configuration': { user: [] } };
  const policy = ctx.realized === undefined ? undefined : endpointPolicy(ep.identity, ctx.policyRevision, ctx.realized);
  return {
    id: ep.id,
    spec: config,
    status: {
      state: ep.state,
      identity: identityModel(ep.identity, ep.identityLabels),
      labels: labelConfiguration(ep).status,
      'external-identifiers': {
        'container-id': ep.containerId,
        ...(ep.containerName ? { 'container-name': ep.containerName } : {}),
        'cni-attachment-id': attachmentId(ep),
        'k8s-namespace': ep.namespace,
        'k8s-pod-name': ep.podName,
        'pod-name': `${ep.namespace}/${ep.podName}`,
      },
      networking: {
        addressing: [{ ipv4: ep.ipv4 }],
        'host-addressing': ctx.hostAddressing,
        mac: ep.mac,
        'host-mac': ep.hostMac,
        'interface-name': ep.ifname,
        'interface-index': ep.ifindex,
        'container-interface-name': ep.containerInterfaceName,
      },
      realized: config,
      policy: policy === undefined ? { 'proxy-statistics': [] } : { realized: policy, spec: policy, 'proxy-statistics': [] },
      namedPorts: ep.namedPorts.map((p) => ({ name: p.name, port: p.port, protocol: p.protocol })),
      health: endpointHealth(ep.state),
      controllers: [],
      log: [],
    },
  };
}
