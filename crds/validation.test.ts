import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import fc from 'fast-check';
import { cidrAccepted, cidrCases } from '../test/fixtures/policies/cidr-cases.js';
import { invalidFixtures, refusesFixture, validFixtures } from '../test/fixtures/policies/index.js';
import { largePolicy, largePolicySize } from '../test/fixtures/policies/large-policy.js';
import { cidrPattern } from './cidr.js';
import { allCelRules, oneSubjectSelector, specOrSpecsRequired } from './schema/cel-rules.js';
import { crdFiles, parseCrd, schemaOf } from './crd-file.js';
import type { SchemaProps } from './schema/openapi.js';
import { convertChildren } from './schema/walk.js';
import {
  ciliumKinds,
  fieldPath,
  validateCiliumClusterwideNetworkPolicy,
  validateCiliumIdentity,
  validateCiliumNetworkPolicy,
  validateCiliumObject,
} from './validation.js';
import type { FieldError, ValidationResult } from './validation.js';
import type { InvalidFixture } from '../test/fixtures/policies/index.js';

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
    for (const fixture of invalidFixtures()) {
      it(`${fixture.file}: ${fixture.field}: ${fixture.reasons.join(' / ')}`, () => {
        const lines = errorLines(validateCiliumObject(fixture.object));
        expect(lines, 'refused').to.not.be.empty;
        expect(lines.some((l) => refusesFixture(l, fixture)), lines.join('\n')).to.equal(true);
      });
    }
  });

  describe('refusesFixture: the field must stand alone and every reason appear', () => {
    const fixture = (field: string, reasons: string[]): InvalidFixture => ({
      file: 'x.yaml',
      object: { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'x' } },
      field,
      reasons,
    });
    const cases: [string, InvalidFixture, boolean][] = [
      ['spec: exactly one', fixture('spec', ['exactly one']), true],
      ['is invalid: spec: Invalid value: exactly one', fixture('spec', ['exactly one']), true],
      ['specs[1]: exactly one', fixture('spec', ['exactly one']), false],
      ['spec.ingress[0]: exactly one', fixture('spec', ['exactly one']), false],
      ['spec: something else', fixture('spec', ['exactly one']), false],
      ['unknown field "spec.ingress[0].fromEndpoint"', fixture('spec.ingress[0].fromEndpoint', ['unknown field']), true],
      ['unknown field "spec.ingress[0].fromEndpoints"', fixture('spec.ingress[0].fromEndpoint', ['unknown field']), false],
      ['is invalid: <nil>: Invalid value: one of spec or specs is required', fixture('(root)', ['one of spec']), true],
      [': one of spec or specs is required', fixture('(root)', ['one of spec']), true],
      ['spec: one of spec or specs is required', fixture('(root)', ['one of spec']), false],
      ['a: Invalid value: "1": should match', fixture('a', ['Invalid value: "1"', 'should match']), true],
      ['a: Invalid value: "1": should be less', fixture('a', ['Invalid value: "1"', 'should match']), false],
    ];
    for (const [line, f, want] of cases) {
      it(`${JSON.stringify(line)} ${want ? 'refuses' : 'does not refuse'} ${f.field} for ${f.reasons.join(' / ')}`, () => {
        expect(refusesFixture(line, f)).to.equal(want);
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
      errors: ['security-labels["k8s:app"]: Invalid value: 1: must be of type string'],
    },
    { name: 'not an object', obj: 'CiliumIdentity', errors: [': Invalid value: "CiliumIdentity": must be of type object'] },
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

  describe('CIDR fields: format "cidr" and the CIDR pattern, each with its own message, as on the apiserver', () => {
    for (const c of cidrCases) {
      const [cidr, formatCidr, pattern] = c;
      const ok = cidrAccepted(c);
      it(`${JSON.stringify(cidr)} in fromCIDR, a CIDR set's except and a CiliumNode's podCIDRs: ${ok ? 'accepted' : 'refused'}`, () => {
        const cnp = {
          apiVersion: 'cilium.io/v2',
          kind: 'CiliumNetworkPolicy',
          metadata: { name: 'p' },
          spec: { endpointSelector: {}, ingress: [{ fromCIDR: [cidr], fromCIDRSet: [{ cidr: '10.0.0.0/8', except: [cidr] }] }] },
        };
        const node = { apiVersion: 'cilium.io/v2', kind: 'CiliumNode', metadata: { name: 'n' }, spec: { ipam: { podCIDRs: [cidr] } } };
        const invalid = `Invalid value: ${JSON.stringify(cidr)}`;
        const refusals = (path: string): string[] => [
          ...(formatCidr ? [] : [`${path}: ${invalid}: must be of type cidr`]),
          ...(pattern ? [] : [`${path}: ${invalid}: should match '${cidrPattern}'`]),
        ];
        expect(errorLines(validateCiliumNetworkPolicy(cnp)).sort()).to.deep.equal(
          [...refusals('spec.ingress[0].fromCIDR[0]'), ...refusals('spec.ingress[0].fromCIDRSet[0].except[0]')].sort(),
        );
        expect(errorLines(validateCiliumObject(node)).sort()).to.deep.equal(refusals('spec.ipam.podCIDRs[0]').sort());
      });
    }
  });

  it(`accepts a policy with ${largePolicySize.ingressRules} ingress rules, ${largePolicySize.toCidrs} CIDRs in one toCIDR and ${largePolicySize.specs} specs`, () => {
    expect(errorLines(validateCiliumNetworkPolicy(largePolicy('large')))).to.deep.equal([]);
  });

  describe('treats a null field as absent, as the apiserver does', () => {
    const ccnp = (spec: unknown): unknown => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'c' }, spec });

    it('endpointSelector: null beside a nodeSelector is accepted, and the value has no endpointSelector', () => {
      const r = validateCiliumClusterwideNetworkPolicy(ccnp({ endpointSelector: null, nodeSelector: {}, description: null }));
      expect(errorLines(r)).to.deep.equal([]);
      expect(r.ok && r.value.spec).to.deep.equal({ nodeSelector: {} });
    });

    it('two null selectors are neither selector', () => {
      expect(errorLines(validateCiliumClusterwideNetworkPolicy(ccnp({ endpointSelector: null, nodeSelector: null })))).to.deep.equal([
        `spec: ${oneSubjectSelector.message}`,
      ]);
    });

    it('spec: null with no specs is neither spec nor specs', () => {
      expect(errorLines(validateCiliumClusterwideNetworkPolicy(ccnp(null)))).to.deep.equal([`: ${specOrSpecsRequired.message}`]);
    });

    it('a null unknown field is still unknown; a null list item is still invalid', () => {
      expect(errorLines(validateCiliumClusterwideNetworkPolicy(ccnp({ endpointSelector: {}, egres: null })))).to.deep.equal([
        'spec.egres: unknown field',
      ]);
      expect(errorLines(validateCiliumClusterwideNetworkPolicy(ccnp({ endpointSelector: {}, egress: [null] })))).to.deep.equal([
        'spec.egress[0]: Invalid value: null: must be of type object',
      ]);
    });
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

  // Calls visit on every schema node of the five CRD YAMLs.
  function visitCrdSchemas(visit: (s: SchemaProps) => void): void {
    const walk = (s: SchemaProps): void => {
      visit(s);
      convertChildren(s, walk);
    };
    for (const { path } of crdFiles) walk(schemaOf(parseCrd(path, readFileSync(path, 'utf8'))));
  }

  it('has a TypeScript twin for every CEL rule in the CRD YAMLs', () => {
    const found: string[] = [];
    visitCrdSchemas((s) => found.push(...(s['x-kubernetes-validations'] ?? []).map((r) => r.rule)));
    expect(found).to.not.be.empty;
    const twins = new Set(allCelRules.map((r) => r.rule));
    expect(found.filter((r) => !twins.has(r))).to.deep.equal([]);
    expect(ciliumKinds).to.have.length(5);
    expect(crdFiles.map((f) => f.kind)).to.have.members([...ciliumKinds]);
  });

  it('bounds no list beyond upstream\'s two bounds (40 ports per port rule, 40 ICMP fields), so big policies from git apply', () => {
    const bounded = new Set<string>();
    visitCrdSchemas((s) => {
      if (s.maxItems !== undefined) bounded.add(`${s.items?.title ?? '?'} <= ${s.maxItems}`);
    });
    expect([...bounded].sort()).to.deep.equal(['ICMPField <= 40', 'PortProtocol <= 40']);
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
