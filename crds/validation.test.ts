import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import fc from 'fast-check';
import { invalidFixtures, validFixtures } from '../test/fixtures/policies/index.js';
import { allCelRules } from './schema/cel-rules.js';
import { parseCrd, schemaOf } from './crd-file.js';
import type { SchemaProps } from './schema/openapi.js';
import {
  ciliumKinds,
  fieldPath,
  validateCiliumClusterwideNetworkPolicy,
  validateCiliumIdentity,
  validateCiliumNetworkPolicy,
  validateCiliumObject,
} from './validation.js';
import type { FieldError, ValidationResult } from './validation.js';

function errorLines(r: ValidationResult<unknown>): string[] {
  return r.ok ? [] : r.errors.map((e: FieldError) => `${e.path}: ${e.message}`);
}

function policyWithPort(port: string): unknown {
  return {
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumNetworkPolicy',
    metadata: { name: 'p', namespace: 'n' },
    spec: { endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port, protocol: 'TCP' }] }] }] },
  };
}

describe('crds/validation', () => {
  describe('accepts every valid fixture', () => {
    for (const { file, objects } of validFixtures()) {
      for (const obj of objects) {
        it(`${file}: ${obj.kind} ${obj.metadata.name}`, () => {
          const r = validateCiliumObject(obj);
          expect(errorLines(r)).to.deep.equal([]);
          expect(r.ok && r.value).to.equal(obj);
        });
      }
    }
  });

  describe('refuses every invalid fixture, naming the field', () => {
    for (const { file, object, expect: wanted } of invalidFixtures()) {
      it(`${file}: ${wanted.join(' / ')}`, () => {
        const lines = errorLines(validateCiliumObject(object));
        expect(lines, 'refused').to.not.be.empty;
        expect(lines.some((l) => wanted.every((w) => l.includes(w))), lines.join('\n')).to.equal(true);
      });
    }
  });

  it('refuses nodeSelector in a namespaced policy (upstream agent does) but not in a clusterwide one', () => {
    const rule = { nodeSelector: { matchLabels: { role: 'worker' } }, ingress: [{ fromEntities: ['cluster'] }] };
    const cnp = { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'a' }, spec: rule, specs: [rule] };
    expect(errorLines(validateCiliumNetworkPolicy(cnp))).to.deep.equal([
      'spec.nodeSelector: a namespaced CiliumNetworkPolicy cannot select nodes; use a CiliumClusterwideNetworkPolicy',
      'specs[0].nodeSelector: a namespaced CiliumNetworkPolicy cannot select nodes; use a CiliumClusterwideNetworkPolicy',
    ]);
    const ccnp = { ...cnp, kind: 'CiliumClusterwideNetworkPolicy' };
    expect(errorLines(validateCiliumClusterwideNetworkPolicy(ccnp))).to.deep.equal([]);
  });

  const table: { name: string; obj: unknown; errors: string[] }[] = [
    {
      name: 'a kind of another validator',
      obj: { apiVersion: 'cilium.io/v2', kind: 'CiliumNode', metadata: { name: 'x' }, 'security-labels': {} },
      errors: ['kind: expected CiliumIdentity, got "CiliumNode"'],
    },
    {
      name: 'another API version',
      obj: { apiVersion: 'cilium.io/v2alpha1', kind: 'CiliumIdentity', metadata: { name: 'x' }, 'security-labels': {} },
      errors: ['apiVersion: expected cilium.io/v2, got "cilium.io/v2alpha1"'],
    },
    {
      name: 'no metadata',
      obj: { apiVersion: 'cilium.io/v2', kind: 'CiliumIdentity', 'security-labels': {} },
      errors: ['metadata: Required value'],
    },
    {
      name: 'a label value that is not a string',
      obj: { apiVersion: 'cilium.io/v2', kind: 'CiliumIdentity', metadata: { name: 'x' }, 'security-labels': { 'k8s:app': 1 } },
      errors: ['security-labels["k8s:app"]: Invalid value 1: must be string'],
    },
    { name: 'not an object', obj: 'CiliumIdentity', errors: [': Invalid value "CiliumIdentity": must be object'] },
  ];
  for (const c of table) {
    it(`CiliumIdentity: refuses ${c.name}`, () => {
      expect(errorLines(validateCiliumIdentity(c.obj))).to.deep.equal(c.errors);
    });
  }

  it('reports both CIDR alternatives and a missing one in a CIDR set', () => {
    const obj = {
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'p' },
      spec: { endpointSelector: {}, egress: [{ toCIDRSet: [{ cidr: '10.0.0.0/8', cidrGroupRef: 'g' }, { except: ['10.0.0.0/9'] }] }] },
    };
    expect(errorLines(validateCiliumNetworkPolicy(obj))).to.deep.equal([
      'spec.egress[0].toCIDRSet[0]: exactly one of cidr, cidrGroupRef, cidrGroupSelector must be set',
      'spec.egress[0].toCIDRSet[1]: exactly one of cidr, cidrGroupRef, cidrGroupSelector must be set',
    ]);
  });

  it('accepts every numeric port 0-65535 and refuses every larger one', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 65535 }), (n) => validateCiliumNetworkPolicy(policyWithPort(String(n))).ok),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.integer({ min: 65536, max: 999_999_999 }), (n) => !validateCiliumNetworkPolicy(policyWithPort(String(n))).ok),
      { numRuns: 300 },
    );
  });

  it('accepts named ports and refuses malformed ones', () => {
    for (const p of ['http', 'http-metrics', 'h2c', 'dns-tcp', '8080a']) expect(validateCiliumNetworkPolicy(policyWithPort(p)).ok, p).to.equal(true);
    for (const p of ['-http', 'http-', 'web--ui', '', '80 ', 'a-very-long-port-name']) {
      expect(validateCiliumNetworkPolicy(policyWithPort(p)).ok, p).to.equal(false);
    }
  });

  it('has a TypeScript twin for every CEL rule in the CRD YAMLs', () => {
    const found: string[] = [];
    const walk = (s: SchemaProps): void => {
      for (const r of s['x-kubernetes-validations'] ?? []) found.push(r.rule);
      for (const child of [...Object.values(s.properties ?? {}), s.items, typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined]) {
        if (child) walk(child);
      }
    };
    for (const file of ['ciliumnetworkpolicies', 'ciliumclusterwidenetworkpolicies', 'ciliumendpoints', 'ciliumidentities', 'ciliumnodes']) {
      const url = new URL(`./cilium.io/v2/${file}.yaml`, import.meta.url);
      walk(schemaOf(parseCrd(url.pathname, readFileSync(url, 'utf8'))));
    }
    expect(found).to.not.be.empty;
    const twins = new Set(allCelRules.map((r) => r.rule));
    expect(found.filter((r) => !twins.has(r))).to.deep.equal([]);
    expect(ciliumKinds).to.have.length(5);
  });

  describe('fieldPath', () => {
    const paths: [string, string | undefined, string][] = [
      ['', undefined, ''],
      ['', 'security-labels', 'security-labels'],
      ['/spec/ingress/0/toPorts/12', undefined, 'spec.ingress[0].toPorts[12]'],
      ['/spec/endpointSelector/matchLabels/k8s:app', undefined, 'spec.endpointSelector.matchLabels["k8s:app"]'],
      ['/metadata/labels/a~1b', undefined, 'metadata.labels["a/b"]'],
      ['/specs/1', 'nodeSelector', 'specs[1].nodeSelector'],
    ];
    for (const [instancePath, child, want] of paths) {
      it(`${instancePath || '(root)'} + ${child ?? '-'} → ${want || '(empty)'}`, () => {
        expect(fieldPath(instancePath, child)).to.equal(want);
      });
    }
  });
});
