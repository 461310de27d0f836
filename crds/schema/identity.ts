// CiliumIdentity: cluster-scoped, named by its numeric identity, carrying the security-relevant
// labels at the top level (no spec).
import { ageColumn } from './crd.js';
import type { KindDefinition } from './crd.js';
import { mapOf, str } from './openapi.js';

export const ciliumIdentity: KindDefinition = {
  kind: 'CiliumIdentity',
  plural: 'ciliumidentities',
  singular: 'ciliumidentity',
  shortNames: ['ciliumid'],
  scope: 'Cluster',
  categories: ['cilium'],
  columns: [
    { name: 'Namespace', type: 'string', jsonPath: '.metadata.labels.io\\.kubernetes\\.pod\\.namespace' },
    ageColumn,
  ],
  statusSubresource: false,
  fields: {
    'security-labels': mapOf(str(), { description: 'labels that make up the identity, keys as source:key' }),
  },
  required: ['security-labels'],
  description: 'CiliumIdentity is a numeric security identity and the labels it stands for.',
};
