// Kubernetes label selectors as Cilium uses them (keys may carry a source prefix such as "k8s:").
import { arr, enumOf, mapOf, obj, str } from './openapi.js';
import type { SchemaProps } from './openapi.js';

export const selectorOperators = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;

// Uses differ in what they select, so the description belongs to the use (it is optional: a list
// of selectors describes itself on the list).
export function labelSelector(description?: string): SchemaProps {
  return obj(
    {
      matchLabels: mapOf(str({ maxLength: 63 }), { description: 'label key (optionally source:key) to value, all must match' }),
      matchExpressions: arr(
        obj(
          {
            key: str({ minLength: 1, maxLength: 317 }),
            operator: enumOf(selectorOperators),
            values: arr(str({ maxLength: 63 })),
          },
          { title: 'LabelSelectorRequirement', required: ['key', 'operator'] },
        ),
      ),
    },
    { title: 'LabelSelector', ...(description === undefined ? {} : { description }) },
  );
}
