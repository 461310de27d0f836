// The entities of the policy language (pkg/policy/api/entity.go) as selectors over the reserved
// identities' labels, and the labels of local-scope CIDR identities (pkg/labels/cidr.go).
import type { Entity } from '../../../crds/gen/index.js';
import { formatIPv4Prefix, type IPv4Prefix } from '../../../datapath/maps/ipv4.js';
import { POLICY_LABEL_CLUSTER } from '../labels/keys.js';
import { LabelSet, SOURCE_K8S, SOURCE_RESERVED } from '../labels/labels.js';
import { EndpointSelector, type Requirement } from './selector.js';

/** Local-scope identities (CIDR) carry bit 24; the first is 2^24 | 1. */
export const LOCAL_IDENTITY_FLAG = 1 << 24;
export const SOURCE_CIDR = 'cidr';

export function isLocalScope(id: number): boolean {
  return (id & LOCAL_IDENTITY_FLAG) !== 0;
}

function reservedReq(name: string): Requirement {
  return { source: SOURCE_RESERVED, key: name, operator: 'Exists', values: [] };
}

/**
 * What an entity selects. `cluster` is every reserved identity but world plus the pods labelled with
 * the local cluster's name; `all` is the wildcard; IPv6-only entities select nothing here (the
 * datapath is IPv4).
 */
export function entitySelectors(entity: Entity, clusterName: string): EndpointSelector[] {
  const reserved = (...names: string[]): EndpointSelector[] => names.map((n) => new EndpointSelector([reservedReq(n)]));
  const clusterPods = new EndpointSelector([{ source: SOURCE_K8S, key: POLICY_LABEL_CLUSTER, operator: 'In', values: [clusterName] }]);
  const clusterReserved = reserved('host', 'remote-node', 'kube-apiserver', 'init', 'health', 'unmanaged', 'ingress');
  switch (entity) {
    case 'all':
      return [EndpointSelector.WILDCARD];
    case 'world':
    case 'world-ipv4':
      return reserved('world');
    case 'cluster':
      return [...clusterReserved, clusterPods];
    case 'cluster-mesh':
      return [...clusterReserved, new EndpointSelector([{ source: SOURCE_K8S, key: POLICY_LABEL_CLUSTER, operator: 'Exists', values: [] }])];
    case 'host':
    case 'remote-node':
    case 'kube-apiserver':
    case 'ingress':
    case 'init':
    case 'health':
    case 'unmanaged':
      return reserved(entity);
    case 'world-ipv6':
    case 'none':
      return [];
  }
  return [];
}

/**
 * A CIDR identity's labels: `cidr:<p>` for the prefix and every shorter prefix covering it (so a
 * selector on any covering prefix matches), plus `reserved:world`.
 */
export function cidrLabels(p: IPv4Prefix): LabelSet {
  const base = p.addr.readUInt32BE(0);
  const labels = [{ source: SOURCE_RESERVED, key: 'world', value: '' }];
  for (let bits = 0; bits <= p.bits; bits++) {
    const masked = bits === 0 ? 0 : (base & (~0 << (32 - bits))) >>> 0;
    const addr = Buffer.alloc(4);
    addr.writeUInt32BE(masked, 0);
    labels.push({ source: SOURCE_CIDR, key: formatIPv4Prefix({ addr, bits }), value: '' });
  }
  return new LabelSet(labels);
}

/** The selector for a CIDR with its holes; 0.0.0.0/0 is the world (upstream maps it so). */
export function cidrSelector(p: IPv4Prefix, except: readonly IPv4Prefix[]): EndpointSelector {
  const reqs: Requirement[] =
    p.bits === 0 ? [reservedReq('world')] : [{ source: SOURCE_CIDR, key: formatIPv4Prefix(p), operator: 'Exists', values: [] }];
  for (const e of except) reqs.push({ source: SOURCE_CIDR, key: formatIPv4Prefix(e), operator: 'DoesNotExist', values: [] });
  return new EndpointSelector(reqs);
}
