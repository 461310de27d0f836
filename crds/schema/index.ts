// The five cilium.io/v2 kinds we serve, in the order their YAML files are written.
import { customResourceDefinition } from './crd.js';
import type { CustomResourceDefinition, KindDefinition } from './crd.js';
import { ciliumEndpoint } from './endpoint.js';
import { ciliumIdentity } from './identity.js';
import { ciliumClusterwideNetworkPolicy, ciliumNetworkPolicy } from './network-policy.js';
import { ciliumNode } from './node.js';

export const kindDefinitions: readonly KindDefinition[] = [
  ciliumEndpoint,
  ciliumIdentity,
  ciliumNetworkPolicy,
  ciliumClusterwideNetworkPolicy,
  ciliumNode,
];

export function allCustomResourceDefinitions(): CustomResourceDefinition[] {
  return kindDefinitions.map(customResourceDefinition);
}
