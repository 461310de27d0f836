// One managed endpoint as the manager keeps it and persists it: enough to rebuild its datapath
// entry, its CiliumEndpoint and its IPAM claim after an agent restart without asking anyone.
import type { Enforcement } from '../../../datapath/types.js';
import { bool, ifname, integer, ipv4, listOf, mac, object, oneOf, str, stringMap, uint32 } from './checks.js';
import { ENDPOINT_STATES, type EndpointState } from './change-request.js';
import { MAX_ENDPOINT_ID, MIN_ENDPOINT_ID } from './id-allocator.js';

export const NAMED_PORT_PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;

export interface NamedPort {
  name: string;
  port: number;
  protocol: (typeof NAMED_PORT_PROTOCOLS)[number];
}

export interface EndpointRecord {
  id: number;
  containerId: string;
  /** CNI_IFNAME, the interface inside the pod. */
  containerInterfaceName: string;
  containerName?: string;
  netnsPath?: string;
  netnsCookie?: string;
  namespace: string;
  podName: string;
  podUid?: string;
  /** Host-side veth. */
  ifname: string;
  ifindex: number;
  mac: string;
  hostMac: string;
  ipv4: string;
  /** The address came from outside the agent's IPAM: it is neither released nor claimed back. */
  externalIpam: boolean;
  identity: number;
  /** The security labels the identity stands for, sorted `source:key=value`. */
  identityLabels: string[];
  /** The pod's own labels, mirrored onto the CiliumEndpoint. */
  podLabels: Record<string, string>;
  serviceAccount?: string;
  namedPorts: NamedPort[];
  state: EndpointState;
  /** What the last successful policy sync enforces; absent before the first. */
  enforcement?: Enforcement;
}

/** `<container-id>:<ifname>`, upstream's cni-attachment-id. */
export function attachmentId(ep: Pick<EndpointRecord, 'containerId' | 'containerInterfaceName'>): string {
  return `${ep.containerId}:${ep.containerInterfaceName}`;
}

const namedPort = object({ name: str, port: integer(1, 65535), protocol: oneOf(NAMED_PORT_PROTOCOLS) }, ['name', 'port', 'protocol']);

/** Checks an EndpointRecord read back from JSON; throws InvalidFieldError naming the field. */
export const checkEndpointRecord = object(
  {
    id: integer(MIN_ENDPOINT_ID, MAX_ENDPOINT_ID),
    containerId: str,
    containerInterfaceName: str,
    containerName: str,
    netnsPath: str,
    netnsCookie: str,
    namespace: str,
    podName: str,
    podUid: str,
    ifname,
    ifindex: integer(1, 0x7fffffff),
    mac,
    hostMac: mac,
    ipv4,
    externalIpam: bool,
    identity: uint32,
    identityLabels: listOf(str),
    podLabels: stringMap,
    serviceAccount: str,
    namedPorts: listOf(namedPort),
    state: oneOf(ENDPOINT_STATES),
    enforcement: object({ ingress: bool, egress: bool }, ['ingress', 'egress']),
  },
  [
    'id',
    'containerId',
    'containerInterfaceName',
    'namespace',
    'podName',
    'ifname',
    'ifindex',
    'mac',
    'hostMac',
    'ipv4',
    'externalIpam',
    'identity',
    'identityLabels',
    'podLabels',
    'namedPorts',
    'state',
  ],
);
