// Reading a committed CRD YAML back: what the runtime validator and the tests need, without the
// code generator's dependencies.
import { parse } from 'yaml';
import type { CustomResourceDefinition } from './schema/crd.js';
import type { SchemaProps } from './schema/openapi.js';

export function parseCrd(path: string, text: string): CustomResourceDefinition {
  const crd = parse(text) as CustomResourceDefinition | null;
  if (crd?.kind !== 'CustomResourceDefinition') throw new Error(`${path}: not a CustomResourceDefinition`);
  return crd;
}

export function schemaOf(crd: CustomResourceDefinition): SchemaProps {
  const v = crd.spec.versions[0];
  if (!v) throw new Error(`CustomResourceDefinition ${crd.metadata.name}: spec.versions is empty`);
  return v.schema.openAPIV3Schema;
}
