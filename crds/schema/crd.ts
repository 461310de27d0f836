// Wraps a kind's schema into a cilium.io/v2 CustomResourceDefinition: names, scope, categories,
// printer columns and subresources are what `kubectl get` and RBAC see, so they follow upstream.
import { obj, str } from './openapi.js';
import type { CelRule, SchemaProps } from './openapi.js';

export const group = 'cilium.io';
export const version = 'v2';

export interface PrinterColumn {
  name: string;
  type: 'integer' | 'string' | 'boolean' | 'date' | 'number';
  jsonPath: string;
  description?: string;
}

export interface KindDefinition {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  scope: 'Namespaced' | 'Cluster';
  categories: string[];
  columns: PrinterColumn[];
  statusSubresource: boolean;
  /** Top-level fields besides apiVersion, kind and metadata. */
  fields: Record<string, SchemaProps>;
  required?: string[];
  validations?: CelRule[];
  description: string;
}

export interface CustomResourceDefinition {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string };
  spec: {
    group: string;
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames: string[]; categories: string[] };
    scope: 'Namespaced' | 'Cluster';
    versions: {
      name: string;
      served: true;
      storage: true;
      additionalPrinterColumns: PrinterColumn[];
      subresources?: { status: Record<string, never> };
      schema: { openAPIV3Schema: SchemaProps };
    }[];
  };
}

export const ageColumn: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

export function customResourceDefinition(d: KindDefinition): CustomResourceDefinition {
  const root = obj(
    {
      apiVersion: str({ description: 'cilium.io/v2' }),
      kind: str({ description: d.kind }),
      metadata: { type: 'object' },
      ...d.fields,
    },
    { title: d.kind, description: d.description },
  );
  if (d.required) root.required = d.required;
  if (d.validations) root['x-kubernetes-validations'] = d.validations;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${d.plural}.${group}` },
    spec: {
      group,
      names: {
        kind: d.kind,
        listKind: `${d.kind}List`,
        plural: d.plural,
        singular: d.singular,
        shortNames: d.shortNames,
        categories: d.categories,
      },
      scope: d.scope,
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          additionalPrinterColumns: d.columns,
          ...(d.statusSubresource ? { subresources: { status: {} } } : {}),
          schema: { openAPIV3Schema: root },
        },
      ],
    },
  };
}
