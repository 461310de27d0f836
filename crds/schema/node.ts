// CiliumNode: per-node addressing and IPAM state; the operator writes spec.ipam.podCIDRs, the
// agent the rest of spec and status.
import { cidrField } from './cidr-field.js';
import { ageColumn } from './crd.js';
import type { KindDefinition } from './crd.js';
import { arr, enumOf, int, mapOf, obj, opaque, str } from './openapi.js';
import type { SchemaProps } from './openapi.js';

export const nodeAddressTypes = ['InternalIP', 'ExternalIP', 'CiliumInternalIP', 'Hostname', 'InternalDNS', 'ExternalDNS'] as const;

function ipPair(title: string): SchemaProps {
  return obj({ ipv4: str(), ipv6: str() }, { title });
}

function allocationMap(): SchemaProps {
  return mapOf(obj({ owner: str(), resource: str() }, { title: 'AllocationIP' }), { description: 'IP to its owner' });
}

function ipamSpec(): SchemaProps {
  return obj(
    {
      podCIDRs: arr(cidrField()),
      pool: allocationMap(),
      'ipv6-pool': allocationMap(),
      pools: obj(
        {
          requested: arr(
            obj(
              {
                pool: str({ minLength: 1 }),
                needed: obj({ 'ipv4-addrs': int({ minimum: 0 }), 'ipv6-addrs': int({ minimum: 0 }) }, { title: 'IPAMPoolDemand' }),
              },
              { title: 'IPAMPoolRequest', required: ['pool'] },
            ),
          ),
          allocated: arr(
            obj(
              { pool: str({ minLength: 1 }), cidrs: arr(cidrField()) },
              { title: 'IPAMPoolAllocation', required: ['pool'] },
            ),
          ),
        },
        { title: 'IPAMPoolSpec' },
      ),
      'min-allocate': int({ minimum: 0 }),
      'max-allocate': int({ minimum: 0 }),
      'pre-allocate': int({ minimum: 0 }),
      'max-above-watermark': int({ minimum: 0 }),
      'static-ip-tags': mapOf(str()),
    },
    { title: 'IPAMSpec' },
  );
}

function releaseStatus(): SchemaProps {
  return enumOf(['marked-for-release', 'ready-for-release', 'do-not-release', 'released'], { title: 'IPReleaseStatus' });
}

function ipamStatus(): SchemaProps {
  return obj(
    {
      used: allocationMap(),
      'ipv6-used': allocationMap(),
      'pod-cidrs': mapOf(obj({ status: enumOf(['released', 'depleted', 'in-use']) }, { title: 'PodCIDRMapEntry' })),
      'operator-status': obj({ error: str() }, { title: 'IPAMOperatorStatus' }),
      'release-ips': mapOf(releaseStatus(), { description: 'IPv4 address to the state of its release handshake' }),
      'release-ipv6s': mapOf(releaseStatus(), { description: 'IPv6 address to the state of its release handshake' }),
      'assigned-static-ip': str({ description: 'static IP assigned to the node, e.g. an AWS Elastic IP' }),
    },
    { title: 'IPAMStatus' },
  );
}

export const ciliumNode: KindDefinition = {
  kind: 'CiliumNode',
  plural: 'ciliumnodes',
  singular: 'ciliumnode',
  shortNames: ['cn', 'ciliumn'],
  scope: 'Cluster',
  categories: ['cilium'],
  columns: [
    {
      name: 'CiliumInternalIP',
      type: 'string',
      jsonPath: '.spec.addresses[?(@.type=="CiliumInternalIP")].ip',
      description: 'IP of cilium_host, the router for this node\'s pods',
    },
    { name: 'InternalIP', type: 'string', jsonPath: '.spec.addresses[?(@.type=="InternalIP")].ip' },
    ageColumn,
  ],
  statusSubresource: true,
  fields: {
    spec: obj(
      {
        'instance-id': str(),
        bootid: str(),
        addresses: arr(obj({ type: enumOf(nodeAddressTypes), ip: str() }, { title: 'NodeAddress' })),
        health: ipPair('HealthAddressing'),
        ingress: ipPair('IngressAddressing'),
        encryption: obj({ key: int() }, { title: 'NodeEncryption' }),
        ipam: ipamSpec(),
        eni: opaque({ description: 'AWS ENI IPAM settings' }),
        azure: opaque({ description: 'Azure IPAM settings' }),
        'alibaba-cloud': opaque({ description: 'AlibabaCloud IPAM settings' }),
        nodeidentity: int({ format: 'int64', description: 'numeric security identity allocated for the node, if any' }),
      },
      { title: 'NodeSpec' },
    ),
    status: obj(
      {
        ipam: ipamStatus(),
        eni: opaque({ description: 'AWS ENI IPAM status' }),
        azure: opaque({ description: 'Azure IPAM status' }),
        'alibaba-cloud': opaque({ description: 'AlibabaCloud IPAM status' }),
      },
      { title: 'NodeStatus' },
    ),
  },
  required: ['spec'],
  description: 'CiliumNode holds the addressing and IPAM state of one node.',
};
