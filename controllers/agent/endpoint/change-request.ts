// Upstream's EndpointChangeRequest (api/v1/openapi.yaml): the body of `PUT /endpoint/{id}` that
// the CNI plugin sends once it has plumbed a pod's veth, with upstream's JSON field names so
// upstream clients and ours speak the same wire format. The agent's own callers use it too.
import type { EndpointRecord } from './endpoint.js';
import { MAX_ENDPOINT_ID } from './id-allocator.js';
import { InvalidFieldError, bool, fail as checkFail, ifname, ipv4, listOf, mac, object, oneOf, str, uint32, type Check } from './checks.js';

/** Upstream's endpoint states, in lifecycle order (pkg/endpoint, models.EndpointState). */
export const ENDPOINT_STATES = [
  'creating',
  'waiting-for-identity',
  'not-ready',
  'waiting-to-regenerate',
  'regenerating',
  'restoring',
  'ready',
  'disconnecting',
  'disconnected',
  'invalid',
] as const;
export type EndpointState = (typeof ENDPOINT_STATES)[number];

export interface AddressPair {
  ipv4?: string;
  'ipv4-expiration-uuid'?: string;
  'ipv4-pool-name'?: string;
  ipv6?: string;
  'ipv6-expiration-uuid'?: string;
  'ipv6-pool-name'?: string;
}

export interface EndpointDatapathConfiguration {
  'require-arp-passthrough'?: boolean;
  'require-egress-prog'?: boolean;
  /** IPAM is done outside the agent: the address is neither released nor re-allocated by it. */
  'external-ipam'?: boolean;
  'require-routing'?: boolean;
  'install-endpoint-route'?: boolean;
  'disable-sip-verification'?: boolean;
}

export interface EndpointChangeRequest {
  /** Local endpoint id; 0 or absent: the agent picks one. */
  id?: number;
  'container-id'?: string;
  'container-name'?: string;
  /** The interface name inside the pod (CNI_IFNAME). */
  'container-interface-name'?: string;
  'container-netns-path'?: string;
  'docker-endpoint-id'?: string;
  'docker-network-id'?: string;
  labels?: string[];
  /** Host-side veth. */
  'interface-name'?: string;
  'interface-index'?: number;
  'parent-interface-index'?: number;
  'is-secondary-interface'?: boolean;
  state: EndpointState;
  /** Pod-side MAC. */
  mac?: string;
  /** Host-side MAC. */
  'host-mac'?: string;
  addressing?: AddressPair;
  'k8s-pod-name'?: string;
  'k8s-namespace'?: string;
  'k8s-uid'?: string;
  'datapath-map-id'?: number;
  'policy-enabled'?: boolean;
  pid?: number;
  /** Upstream sends the 64-bit cookie as a decimal string. */
  'netns-cookie'?: string;
  'sync-build-endpoint'?: boolean;
  'datapath-configuration'?: EndpointDatapathConfiguration;
  properties?: Record<string, unknown>;
}

/** A request the agent refuses (HTTP 400 on the REST API), naming the field and the reason. */
export class InvalidEndpointRequestError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`endpoint change request: ${field}: ${reason}`);
    this.name = 'InvalidEndpointRequestError';
  }
}

function fail(field: string, reason: string): never {
  throw new InvalidEndpointRequestError(field, reason);
}

const uint64String: Check = (v, f) => {
  str(v, f);
  if (!/^\d{1,20}$/.test(v as string) || BigInt(v as string) > 0xffffffffffffffffn)
    checkFail(f, `${JSON.stringify(v)} is not a decimal 64-bit unsigned integer`);
};

const addressPair = object({
  ipv4,
  'ipv4-expiration-uuid': str,
  'ipv4-pool-name': str,
  ipv6: str,
  'ipv6-expiration-uuid': str,
  'ipv6-pool-name': str,
});

const datapathConfiguration = object({
  'require-arp-passthrough': bool,
  'require-egress-prog': bool,
  'external-ipam': bool,
  'require-routing': bool,
  'install-endpoint-route': bool,
  'disable-sip-verification': bool,
});

const changeRequest = object(
  {
    id: uint32,
    'container-id': str,
    'container-name': str,
    'container-interface-name': str,
    'container-netns-path': str,
    'docker-endpoint-id': str,
    'docker-network-id': str,
    labels: listOf(str),
    'interface-name': ifname,
    'interface-index': uint32,
    'parent-interface-index': uint32,
    'is-secondary-interface': bool,
    state: oneOf(ENDPOINT_STATES),
    mac,
    'host-mac': mac,
    addressing: addressPair,
    'k8s-pod-name': str,
    'k8s-namespace': str,
    'k8s-uid': str,
    'datapath-map-id': uint32,
    'policy-enabled': bool,
    pid: uint32,
    'netns-cookie': uint64String,
    'sync-build-endpoint': bool,
    'datapath-configuration': datapathConfiguration,
    properties: object({}),
  },
  ['state'],
);

/**
 * Checks a decoded JSON body against upstream's schema plus the formats the datapath needs
 * (addresses, MACs, interface names). Fields upstream's server does not know are ignored, as
 * upstream ignores them; `null` counts as absent, as in Go.
 */
export function parseEndpointChangeRequest(input: unknown): EndpointChangeRequest {
  try {
    changeRequest(input, '');
  } catch (err) {
    if (err instanceof InvalidFieldError) fail(err.field, err.reason);
    throw err;
  }
  return input as EndpointChangeRequest;
}

/** What the manager needs of a request to create a pod's endpoint. */
export type EndpointCreateFields = Pick<
  EndpointRecord,
  'containerId' | 'containerInterfaceName' | 'namespace' | 'podName' | 'podUid' | 'ifname' | 'ifindex' | 'mac' | 'hostMac' | 'externalIpam'
> & {
  /** 0: the manager picks one. */
  id: number;
  /** Absent: the manager allocates one. */
  ipv4?: string;
};

const K8S_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function required<K extends keyof EndpointChangeRequest>(req: EndpointChangeRequest, field: K): NonNullable<EndpointChangeRequest[K]> {
  const v = req[field];
  if (v === undefined || v === null || v === '') fail(field, 'is required to create a pod endpoint');
  return v;
}

/**
 * The fields of a validated request that creating a pod endpoint relies on, or an error naming
 * the first one missing. This datapath is IPv4-only, so an IPv6 address is refused rather than
 * silently left without policy.
 */
export function endpointCreateFields(req: EndpointChangeRequest): EndpointCreateFields {
  const namespace = required(req, 'k8s-namespace');
  const podName = required(req, 'k8s-pod-name');
  if (!K8S_NAME.test(namespace)) fail('k8s-namespace', `${JSON.stringify(namespace)} is not a Kubernetes object name`);
  if (!K8S_NAME.test(podName)) fail('k8s-pod-name', `${JSON.stringify(podName)} is not a Kubernetes object name`);
  const ifindex = required(req, 'interface-index');
  if (ifindex === 0) fail('interface-index', 'must be the host-side veth ifindex, not 0');
  if (req.id !== undefined && req.id > MAX_ENDPOINT_ID) fail('id', `${req.id} is not an endpoint id (0 or 1..${MAX_ENDPOINT_ID})`);
  if (req.addressing?.ipv6) fail('addressing.ipv6', 'IPv6 is not supported by this datapath');
  return {
    id: req.id ?? 0,
    containerId: required(req, 'container-id'),
    containerInterfaceName: req['container-interface-name'] || 'eth0',
    namespace,
    podName,
    podUid: req['k8s-uid'] || undefined,
    ifname: required(req, 'interface-name'),
    ifindex,
    mac: required(req, 'mac'),
    hostMac: required(req, 'host-mac'),
    ipv4: req.addressing?.ipv4 || undefined,
    externalIpam: req['datapath-configuration']?.['external-ipam'] === true,
  };
}
