// One pass over a schema node's children, shared by the tools that translate our OpenAPI schemas
// into another schema dialect (ajv's JSON Schema, json-schema-to-typescript's input).
import type { SchemaProps } from './openapi.js';

export interface ConvertedChildren<T> {
  properties?: Record<string, T>;
  items?: T;
  additionalProperties?: T;
  oneOf?: T[];
}

/**
 * Splits `s` into its own keywords (`rest`) and its child schemas converted by `convert`;
 * `additionalProperties: true/false` stays in `rest`.
 */
export function convertChildren<T>(
  s: SchemaProps,
  convert: (child: SchemaProps) => T,
): { rest: Omit<SchemaProps, 'properties' | 'items' | 'oneOf'>; children: ConvertedChildren<T> } {
  const { properties, items, additionalProperties, oneOf, ...rest } = s;
  const children: ConvertedChildren<T> = {};
  if (properties) children.properties = Object.fromEntries(Object.entries(properties).map(([k, v]) => [k, convert(v)]));
  if (items) children.items = convert(items);
  if (oneOf) children.oneOf = oneOf.map(convert);
  if (typeof additionalProperties === 'object') children.additionalProperties = convert(additionalProperties);
  else if (additionalProperties !== undefined) return { rest: { ...rest, additionalProperties }, children };
  return { rest, children };
}
