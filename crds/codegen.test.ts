import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { parse } from 'yaml';
import { crdDir, filesInGeneratedDirs, renderCrdFiles, renderTypeFiles, typesDir } from './codegen.js';
import { customResourceDefinition } from './schema/crd.js';
import type { CustomResourceDefinition } from './schema/crd.js';
import { exactlyOneOf, mapOf, obj, opaque, str } from './schema/openapi.js';
import type { SchemaProps } from './schema/openapi.js';

const repo = new URL('../', import.meta.url);

describe('crds/codegen', function () {
  this.timeout(60_000);

  it('the committed CRD YAMLs and generated types are what `npm run gen-types` writes, and nothing else', async () => {
    const crds = renderCrdFiles();
    const rendered = new Map([...crds, ...(await renderTypeFiles(crds))]);
    expect(rendered.size).to.equal(11);
    const stale: string[] = [];
    for (const [path, content] of rendered) {
      const committed = await readFile(new URL(path, repo), 'utf8').catch(() => '<missing>');
      if (committed !== content) stale.push(path);
    }
    expect(stale, 'stale generated files; run `npm run gen-types`').to.deep.equal([]);
    const orphans = (await filesInGeneratedDirs(fileURLToPath(repo))).filter((p) => !rendered.has(p));
    expect(orphans, 'files gen-types no longer writes; run `npm run gen-types` to delete them').to.deep.equal([]);
  });

  it('finds orphans: lists every file under the generated directories', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cilium-ts-codegen-'));
    try {
      await mkdir(join(dir, typesDir, 'old'), { recursive: true });
      await mkdir(join(dir, crdDir), { recursive: true });
      await writeFile(join(dir, typesDir, 'old', 'gone.ts'), '');
      await writeFile(join(dir, crdDir, 'ciliumgones.yaml'), '');
      expect(await filesInGeneratedDirs(dir)).to.deep.equal([`${crdDir}/ciliumgones.yaml`, `${typesDir}/old/gone.ts`]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('renders one CRD per kind with only v2 served and stored, under the upstream names', () => {
    const crds = [...renderCrdFiles().values()].map((t) => parse(t) as CustomResourceDefinition);
    const names = crds.map((c) => [c.metadata.name, c.spec.scope, c.spec.names.shortNames.join(','), c.spec.names.categories.join(',')]);
    expect(names).to.deep.equal([
      ['ciliumendpoints.cilium.io', 'Namespaced', 'cep,ciliumep', 'cilium'],
      ['ciliumidentities.cilium.io', 'Cluster', 'ciliumid', 'cilium'],
      ['ciliumnetworkpolicies.cilium.io', 'Namespaced', 'cnp,ciliumnp', 'cilium,ciliumpolicy'],
      ['ciliumclusterwidenetworkpolicies.cilium.io', 'Cluster', 'ccnp', 'cilium,ciliumpolicy'],
      ['ciliumnodes.cilium.io', 'Cluster', 'cn,ciliumn', 'cilium'],
    ]);
    for (const crd of crds) {
      expect(crd.spec.versions.map((v) => [v.name, v.served, v.storage]), crd.metadata.name).to.deep.equal([['v2', true, true]]);
    }
    const withStatus = crds.filter((c) => c.spec.versions[0]?.subresources?.status).map((c) => c.spec.names.kind);
    expect(withStatus).to.deep.equal(['CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy', 'CiliumNode']);
  });

  it('keeps no unknown fields in policies: no x-kubernetes-preserve-unknown-fields in CNP/CCNP', () => {
    const preserved: string[] = [];
    const walk = (at: string, sch: SchemaProps): void => {
      if (sch['x-kubernetes-preserve-unknown-fields']) preserved.push(at);
      for (const [k, v] of Object.entries(sch.properties ?? {})) walk(`${at}.${k}`, v);
      if (sch.items) walk(`${at}[]`, sch.items);
      if (typeof sch.additionalProperties === 'object') walk(`${at}{}`, sch.additionalProperties);
    };
    for (const [path, text] of renderCrdFiles()) {
      if (!path.includes('networkpolicies')) continue;
      const crd = parse(text) as CustomResourceDefinition;
      walk(crd.spec.names.kind, crd.spec.versions[0]?.schema.openAPIV3Schema ?? {});
    }
    expect(preserved).to.deep.equal([]);
  });

  it('declares each shared type once, with a description only where every use agrees', async () => {
    const types = await renderTypeFiles(renderCrdFiles());
    const all = [...types.values()].join('\n');
    for (const name of ['Entity', 'LabelSelector', 'Rule', 'CIDRRule', 'IdentityTuple']) {
      expect(all.match(new RegExp(`^export (interface|type) ${name}\\b`, 'gm')), name).to.have.length(1);
    }
    const cnp = types.get('crds/gen/ciliumnetworkpolicy.ts') ?? '';
    // Uses of LabelSelector select different things: no type-level comment, one per property.
    expect(cnp).to.match(/\}\nexport interface LabelSelector \{/);
    expect(cnp).to.match(/selects the endpoints this rule applies to\s*\*\/\s*endpointSelector\?: LabelSelector;/);
    expect(cnp).to.match(/peer nodes, selected by their labels\s*\*\/\s*fromNodes\?: LabelSelector\[\];/);
    expect(cnp).to.match(/the traffic it allows or denies\s*\*\/\s*export interface Rule \{/);
    expect(types.get('crds/gen/ciliumclusterwidenetworkpolicy.ts')).to.match(/import type \{.*\bRule\b.*\} from '\.\/ciliumnetworkpolicy\.js';/);
    expect(cnp).to.include('toEntities?: Entity[];');
    expect(all).to.not.include('was referenced by');
  });

  it('maps Kubernetes schema extensions to TypeScript types', async () => {
    const crd = customResourceDefinition({
      kind: 'CiliumExample',
      plural: 'ciliumexamples',
      singular: 'ciliumexample',
      shortNames: [],
      scope: 'Cluster',
      categories: [],
      columns: [],
      statusSubresource: false,
      fields: {
        spec: obj(
          {
            port: { 'x-kubernetes-int-or-string': true },
            blob: opaque(),
            labels: mapOf(str()),
            a: str(),
            b: str(),
          },
          { title: 'ExampleSpec', required: ['port'], ...exactlyOneOf(['a', 'b']) },
        ),
      },
      description: 'an example kind',
    });
    const types = await renderTypeFiles(renderCrdFiles([crd]));
    const ts = types.get('crds/gen/ciliumexample.ts') ?? '';
    expect(ts).to.match(/^\/\/ Generated by `npm run gen-types`.*do not edit\./);
    expect(ts).to.include("import type {V1ObjectMeta} from '@kubernetes/client-node';");
    expect(ts).to.include("apiVersion: 'cilium.io/v2';");
    expect(ts).to.include("kind: 'CiliumExample';");
    expect(ts).to.include('metadata: V1ObjectMeta;');
    expect(ts).to.include('port: number | string;');
    expect(ts).to.match(/blob\?: \{\s*\[k: string\]: unknown \| undefined;\s*\};/);
    expect(ts).to.match(/labels\?: \{\s*\[k: string\]: string \| undefined;\s*\};/);
    // oneOf only says which fields are required; it must not turn the type into a union.
    expect(ts).to.include('export interface ExampleSpec {');
    expect(ts).to.match(/a\?: string;\s*b\?: string;/);
    expect(types.get('crds/gen/index.ts')).to.include("export type * from './ciliumexample.js';");
  });
});
