// The subset of apiextensions.k8s.io/v1 JSONSchemaProps our CRDs use, and small builders so the
// schemas read like the upstream field list rather than like nested object literals.

export interface CelRule {
  rule: string;
  message: string;
}

export interface SchemaProps {
  title?: string;
  description?: string;
  type?: 'object' | 'array' | 'string' | 'integer' | 'boolean' | 'number';
  format?: string;
  properties?: Record<string, SchemaProps>;
  additionalProperties?: SchemaProps | boolean;
  required?: string[];
  items?: SchemaProps;
  enum?: string[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  default?: string | number | boolean;
  oneOf?: SchemaProps[];
  'x-kubernetes-int-or-string'?: true;
  'x-kubernetes-preserve-unknown-fields'?: true;
  'x-kubernetes-validations'?: CelRule[];
}

export type Extra = Omit<SchemaProps, 'type' | 'properties' | 'items'>;

export function str(extra: Extra = {}): SchemaProps {
  return { type: 'string', ...extra };
}

export function enumOf(values: readonly string[], extra: Extra = {}): SchemaProps {
  return { type: 'string', enum: [...values], ...extra };
}

export function int(extra: Extra = {}): SchemaProps {
  return { type: 'integer', ...extra };
}

export function bool(extra: Extra = {}): SchemaProps {
  return { type: 'boolean', ...extra };
}

export function arr(items: SchemaProps, extra: Extra = {}): SchemaProps {
  return { type: 'array', items, ...extra };
}

export function obj(properties: Record<string, SchemaProps>, extra: Extra = {}): SchemaProps {
  return { type: 'object', properties, ...extra };
}

export function mapOf(values: SchemaProps, extra: Extra = {}): SchemaProps {
  return { type: 'object', additionalProperties: values, ...extra };
}

/** An object whose content Cilium defines elsewhere (cloud IPAM blocks) and we only carry. */
export function opaque(extra: Extra = {}): SchemaProps {
  return { type: 'object', 'x-kubernetes-preserve-unknown-fields': true, ...extra };
}

/** Exactly one of `fields` must be present; OpenAPI oneOf costs nothing in the CEL budget. */
export function exactlyOneOf(fields: readonly string[]): Pick<SchemaProps, 'oneOf'> {
  return { oneOf: fields.map((f) => ({ required: [f] })) };
}
