// Reading a committed CRD YAML back: what the runtime validator and the tests need, without the
// code generator's dependencies.
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { group, type CustomResourceDefinition } from './schema/crd.js';
import { kindDefinitions } from './schema/index.js';
import type { SchemaProps } from './schema/openapi.js';

export interface CrdFile {
  kind: string;
  /** The CRD's metadata.name, <plural>.cilium.io. */
  name: string;
  /** Absolute path of the committed YAML, crds/cilium.io/v2/<plural>.yaml. */
  path: string;
}

/** The committed YAML of every kind we serve, in kindDefinitions order. */
export const crdFiles: readonly CrdFile[] = kindDefinitions.map((d) => ({
  kind: d.kind,
  name: `${d.plural}.${group}`,
  path: fileURLToPath(new URL(`./cilium.io/v2/${d.plural}.yaml`, import.meta.url)),
}));

export function crdFileOf(kind: string): CrdFile {
  const file = crdFiles.find((f) => f.kind === kind);
  if (!file) throw new Error(`CRD file of kind ${kind}: not one of the served kinds (${crdFiles.map((f) => f.kind).join(', ')})`);
  return file;
}

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
