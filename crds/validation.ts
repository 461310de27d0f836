// Runtime validation of cilium.io/v2 objects read from the API (or from files), compiled with ajv
// from the same CRD YAMLs the apiserver serves. What the apiserver checks with CEL is checked here
// by the TypeScript twin of each rule (crds/schema/cel-rules.ts). On top of the schema, a
// CiliumNetworkPolicy may not use nodeSelector: upstream's CRD accepts it, but its agent refuses
// such a policy when parsing it ("rule cannot have NodeSelector"), and so do we.
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import type { ErrorObject, SchemaObject, ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { isLooseCidr } from './cidr.js';
import { crdFileOf, parseCrd, schemaOf } from './crd-file.js';
import type {
  CiliumClusterwideNetworkPolicy,
  CiliumEndpoint,
  CiliumIdentity,
  CiliumNetworkPolicy,
  CiliumNode,
} from './gen/index.js';
import { allCelRules } from './schema/cel-rules.js';
import type { CelRule, SchemaProps } from './schema/openapi.js';
import { convertChildren } from './schema/walk.js';

export interface FieldError {
  /** Field path in the apiserver's notation, e.g. spec.ingress[0].toPorts[0].ports[0].port. */
  path: string;
  message: string;
}

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

export const ciliumKinds = ['CiliumEndpoint', 'CiliumIdentity', 'CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy', 'CiliumNode'] as const;

export type CiliumKind = (typeof ciliumKinds)[number];

const celKeyword = 'x-kubernetes-validations';

function newAjv(): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    verbose: true,
    strict: true,
    strictRequired: false,
    allowUnionTypes: true,
    // Patterns are RE2 on the apiserver; with the u flag JavaScript reads them as strictly.
    unicodeRegExp: true,
  });
  addFormats.default(ajv, { formats: ['date-time', 'int32', 'int64'] });
  // Lenient like the apiserver's format; the pattern on every CIDR field refuses the rest.
  ajv.addFormat('cidr', { type: 'string', validate: isLooseCidr });
  ajv.addKeyword({
    keyword: celKeyword,
    schemaType: 'array',
    errors: true,
    compile(rules: CelRule[]) {
      const twins = rules.map((r) => {
        const twin = allCelRules.find((t) => t.rule === r.rule);
        if (!twin) throw new Error(`CEL rule "${r.rule}" has no TypeScript twin in crds/schema/cel-rules.ts`);
        return twin;
      });
      const check = (data: unknown): boolean => {
        const failed = twins.filter((t) => !t.holds(data));
        check.errors = failed.map((t) => ({ keyword: celKeyword, message: t.message, params: { rule: t.rule } }));
        return failed.length === 0;
      };
      check.errors = [] as Partial<ErrorObject>[];
      return check;
    },
  });
  return ajv;
}

// The apiserver's structural-schema semantics in JSON Schema terms: fields not declared are
// unknown (it prunes or, with strict field validation, refuses them) unless the schema keeps them.
function toJsonSchema(s: SchemaProps): SchemaObject {
  const { rest, children } = convertChildren(s, toJsonSchema);
  const out: SchemaObject = { ...rest, ...children };
  delete out['x-kubernetes-preserve-unknown-fields'];
  delete out['x-kubernetes-int-or-string'];
  if (s['x-kubernetes-int-or-string']) out.type = ['integer', 'string'];
  if (s.properties && out.additionalProperties === undefined && !s['x-kubernetes-preserve-unknown-fields']) {
    out.additionalProperties = false;
  }
  return out;
}

// Before validating, the apiserver drops every field whose value is null and whose schema is
// neither nullable nor defaulted (ours never are nullable; a defaulted null gets its valid default),
// so `endpointSelector: null` counts as absent. Fields without a schema keep their null and are
// then refused as unknown. Returns `value` itself when it holds no such null.
function dropNullFields(value: unknown, s: SchemaProps | undefined): unknown {
  if (s === undefined || typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    const items = value.map((v) => dropNullFields(v, s.items));
    return items.some((v, i) => v !== value[i]) ? items : value;
  }
  let changed = false;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const field = s.properties?.[k] ?? (typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined);
    if (v === null && field !== undefined) {
      changed = true;
      continue;
    }
    const kept = dropNullFields(v, field);
    changed ||= kept !== v;
    out[k] = kept;
  }
  return changed ? out : value;
}

interface CompiledKind {
  schema: SchemaProps;
  validate: ValidateFunction;
}

function compileKind(ajv: Ajv, kind: CiliumKind): CompiledKind {
  const { path } = crdFileOf(kind);
  const schema = schemaOf(parseCrd(path, readFileSync(path, 'utf8')));
  const jsonSchema = toJsonSchema(schema);
  jsonSchema.required = [...new Set(['apiVersion', 'kind', 'metadata', ...(schema.required ?? [])])];
  return { schema, validate: ajv.compile(jsonSchema) };
}

const identifier = /^[A-Za-z_][-A-Za-z0-9_]*$/;

/** Turns an ajv instancePath (/spec/ingress/0) plus an optional child into spec.ingress[0]. */
export function fieldPath(instancePath: string, child?: string): string {
  const segments = instancePath === '' ? [] : instancePath.slice(1).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (child !== undefined) segments.push(child);
  let path = '';
  for (const seg of segments) {
    if (/^[0-9]+$/.test(seg)) path += `[${seg}]`;
    else if (identifier.test(seg)) path += path === '' ? seg : `.${seg}`;
    else path += `[${JSON.stringify(seg)}]`;
  }
  return path;
}

// Messages use the apiserver's wording, so one expectation fits both judges.
function fieldErrorOf(e: ErrorObject): FieldError | undefined {
  const p = e.params as Record<string, unknown>;
  const path = fieldPath(e.instancePath);
  const invalid = `Invalid value: ${JSON.stringify(e.data)}`;
  switch (e.keyword) {
    case 'required':
      return { path: fieldPath(e.instancePath, String(p.missingProperty)), message: 'Required value' };
    case 'additionalProperties':
      return { path: fieldPath(e.instancePath, String(p.additionalProperty)), message: 'unknown field' };
    case 'oneOf': {
      const alternatives = ((e.schema as SchemaObject[] | undefined) ?? []).flatMap((o) => (o.required as string[] | undefined) ?? []);
      return { path, message: `exactly one of ${alternatives.join(', ')} must be set` };
    }
    case celKeyword:
      return { path, message: e.message ?? e.keyword };
    case 'enum':
      return {
        path,
        message: `Unsupported value: ${JSON.stringify(e.data)}: supported values: ${(p.allowedValues as string[]).map((v) => JSON.stringify(v)).join(', ')}`,
      };
    case 'type':
      return { path, message: `${invalid}: must be of type ${String(p.type)}` };
    case 'format':
      return { path, message: `${invalid}: must be of type ${String(p.format)}` };
    case 'pattern':
      return { path, message: `${invalid}: should match '${String(p.pattern)}'` };
    case 'maximum':
      return { path, message: `${invalid}: should be less than or equal to ${String(p.limit)}` };
    case 'minimum':
      return { path, message: `${invalid}: should be greater than or equal to ${String(p.limit)}` };
    default:
      return { path, message: `${invalid}: ${e.message ?? e.keyword}` };
  }
}

// Errors inside a oneOf alternative only say which alternative failed; the oneOf error says it all.
// Like the apiserver, CEL rules count only for an object that passed every other check.
function fieldErrors(errors: ErrorObject[]): FieldError[] {
  const relevant = errors.filter((e) => !e.schemaPath.includes('/oneOf/'));
  const schemaErrors = relevant.filter((e) => e.keyword !== celKeyword);
  return (schemaErrors.length > 0 ? schemaErrors : relevant).flatMap((e) => fieldErrorOf(e) ?? []);
}

function namespacedPolicyErrors(obj: CiliumNetworkPolicy): FieldError[] {
  const message = 'a namespaced CiliumNetworkPolicy cannot select nodes; use a CiliumClusterwideNetworkPolicy';
  const errors: FieldError[] = [];
  if (obj.spec?.nodeSelector) errors.push({ path: 'spec.nodeSelector', message });
  (obj.specs ?? []).forEach((r, i) => {
    if (r.nodeSelector) errors.push({ path: `specs[${i}].nodeSelector`, message });
  });
  return errors;
}

const compiled = new Map<CiliumKind, CompiledKind>();
let sharedAjv: Ajv | undefined;

function validatorFor(kind: CiliumKind): CompiledKind {
  let fn = compiled.get(kind);
  if (!fn) {
    sharedAjv ??= newAjv();
    fn = compileKind(sharedAjv, kind);
    compiled.set(kind, fn);
  }
  return fn;
}

function validateKind<T>(kind: CiliumKind, input: unknown, extra?: (value: T) => FieldError[]): ValidationResult<T> {
  const { schema, validate } = validatorFor(kind);
  const obj = dropNullFields(input, schema);
  const errors: FieldError[] = validate(obj) ? [] : fieldErrors(validate.errors ?? []);
  const o = obj as Record<string, unknown> | null;
  if (typeof o === 'object' && o !== null) {
    if (o.apiVersion !== undefined && o.apiVersion !== 'cilium.io/v2') {
      errors.push({ path: 'apiVersion', message: `expected cilium.io/v2, got ${JSON.stringify(o.apiVersion)}` });
    }
    if (o.kind !== undefined && o.kind !== kind) {
      errors.push({ path: 'kind', message: `expected ${kind}, got ${JSON.stringify(o.kind)}` });
    }
  }
  if (errors.length === 0 && extra) errors.push(...extra(obj as T));
  return errors.length === 0 ? { ok: true, value: obj as T } : { ok: false, errors };
}

export function validateCiliumEndpoint(obj: unknown): ValidationResult<CiliumEndpoint> {
  return validateKind('CiliumEndpoint', obj);
}

export function validateCiliumIdentity(obj: unknown): ValidationResult<CiliumIdentity> {
  return validateKind('CiliumIdentity', obj);
}

export function validateCiliumNetworkPolicy(obj: unknown): ValidationResult<CiliumNetworkPolicy> {
  return validateKind('CiliumNetworkPolicy', obj, namespacedPolicyErrors);
}

export function validateCiliumClusterwideNetworkPolicy(obj: unknown): ValidationResult<CiliumClusterwideNetworkPolicy> {
  return validateKind('CiliumClusterwideNetworkPolicy', obj);
}

export function validateCiliumNode(obj: unknown): ValidationResult<CiliumNode> {
  return validateKind('CiliumNode', obj);
}

/** Validates an object of any of the five kinds, chosen by its `kind` field. */
export function validateCiliumObject(obj: unknown): ValidationResult<unknown> {
  const kind = (obj as { kind?: unknown } | null)?.kind;
  switch (kind) {
    case 'CiliumEndpoint':
      return validateCiliumEndpoint(obj);
    case 'CiliumIdentity':
      return validateCiliumIdentity(obj);
    case 'CiliumNetworkPolicy':
      return validateCiliumNetworkPolicy(obj);
    case 'CiliumClusterwideNetworkPolicy':
      return validateCiliumClusterwideNetworkPolicy(obj);
    case 'CiliumNode':
      return validateCiliumNode(obj);
    default:
      return { ok: false, errors: [{ path: 'kind', message: `not a cilium.io/v2 kind: ${JSON.stringify(kind)}` }] };
  }
}
