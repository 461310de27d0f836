// The cilium.io/v2 CRDs on a real kube-apiserver: every rule type is accepted, each bad input is
// refused with its field named, kubectl shows upstream's columns, and server-side apply of an
// unchanged policy changes nothing. The runtime validator (crds/validation.ts) must agree with the
// apiserver on every fixture.
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { crdFiles, parseCrd } from '../../crds/crd-file.js';
import { cidrPattern } from '../../crds/cidr.js';
import { validateCiliumNetworkPolicy, validateCiliumObject } from '../../crds/validation.js';
import { kubectl } from '../envtest/index.js';
import { cidrAccepted, cidrCases } from '../fixtures/policies/cidr-cases.js';
import { invalidFixtures, refusesFixture, validFixtures, type ManifestObject } from '../fixtures/policies/index.js';
import { largePolicy, largePolicySize } from '../fixtures/policies/large-policy.js';
import { applyVerdicts, tableRows, useCrdSuite } from './crd-support.js';

const crdNames = [
  'ciliumendpoints.cilium.io',
  'ciliumidentities.cilium.io',
  'ciliumnetworkpolicies.cilium.io',
  'ciliumclusterwidenetworkpolicies.cilium.io',
  'ciliumnodes.cilium.io',
];

interface CrdStatus {
  spec: { names: { shortNames?: string[] }; versions: { name: string; served: boolean; storage: boolean }[] };
  status: { conditions?: { type: string; status: string; message?: string }[] };
}

function fixtureObject(file: string, kind: string): ManifestObject {
  const obj = validFixtures()
    .find((f) => f.file === file)
    ?.objects.find((o) => o.kind === kind);
  if (!obj) throw new Error(`fixture valid/${file} has no ${kind}`);
  return obj;
}

describe('cilium.io/v2 CRDs on the real apiserver', function () {
  this.timeout(120_000);
  const suite = useCrdSuite();

  it('serves all five CRDs: Established, names accepted, structural, only v2', async () => {
    for (const name of crdNames) {
      const r = await kubectl(suite.cp, ['get', 'crd', name, '-o', 'json']);
      expect(r.code, `${name}: ${r.stderr}`).to.equal(0);
      const crd = JSON.parse(r.stdout) as CrdStatus;
      const conditions = Object.fromEntries((crd.status.conditions ?? []).map((c) => [c.type, c.status]));
      expect(conditions, name).to.deep.equal({ Established: 'True', NamesAccepted: 'True' });
      expect(crd.spec.versions.map((v) => [v.name, v.served, v.storage]), name).to.deep.equal([['v2', true, true]]);
      for (const short of crd.spec.names.shortNames ?? []) {
        const g = await kubectl(suite.cp, ['get', short, '-A']);
        expect(g.code, `kubectl get ${short}: ${g.stderr}`).to.equal(0);
      }
    }
  });

  it('serves each CRD exactly as its YAML defines it (schema with CEL rules, columns, names)', async () => {
    expect(crdFiles.map((f) => f.name)).to.have.members(crdNames);
    for (const { name, path } of crdFiles) {
      const want = parseCrd(path, readFileSync(path, 'utf8')).spec;
      const r = await kubectl(suite.cp, ['get', 'crd', name, '-o', 'json']);
      expect(r.code, `${name}: ${r.stderr}`).to.equal(0);
      const served = (JSON.parse(r.stdout) as { spec: typeof want }).spec;
      expect(served.names, `${name} names`).to.deep.equal(want.names);
      expect(served.scope, `${name} scope`).to.equal(want.scope);
      expect(served.versions, `${name} versions as served (an installer that drops x-kubernetes-* fields fails here)`).to.deep.equal(
        want.versions,
      );
    }
  });

  describe('accepts every rule type in the valid fixtures', () => {
    for (const { file, objects } of validFixtures()) {
      it(file, async () => {
        const r = await suite.run.apply(objects.map((o) => suite.run.place(o)));
        expect(r.code, r.stderr).to.equal(0);
        expect(r.stdout.trim().split('\n')).to.have.length(objects.length);
        for (const obj of objects) expect(validateCiliumObject(obj).ok, `validator on ${obj.metadata.name}`).to.equal(true);
      });
    }
  });

  it(`accepts a policy with ${largePolicySize.ingressRules} ingress rules, ${largePolicySize.toCidrs} CIDRs in one toCIDR and ${largePolicySize.specs} specs, and stores all of it`, async () => {
    const policy = suite.run.place(largePolicy('large-policy'));
    const r = await suite.run.apply([policy]);
    expect(r.code, r.stderr).to.equal(0);
    expect(validateCiliumObject(policy).ok, 'runtime validator').to.equal(true);
    const got = await kubectl(suite.cp, ['get', 'cnp', policy.metadata.name, '-n', suite.run.namespace, '-o', 'json']);
    expect(got.code, got.stderr).to.equal(0);
    const stored = JSON.parse(got.stdout) as ManifestObject;
    expect({ spec: stored.spec, specs: stored.specs }).to.deep.equal({ spec: policy.spec, specs: policy.specs });
  });

  describe('refuses each bad input, naming the field and the reason', () => {
    for (const fixture of invalidFixtures()) {
      it(`${fixture.file}: ${fixture.field}: ${fixture.reasons.join(' / ')}`, async () => {
        const r = await suite.run.apply([suite.run.place(fixture.object)]);
        expect(r.code, `apiserver accepted invalid/${fixture.file}`).to.not.equal(0);
        expect(r.stderr.split('\n').some((l) => refusesFixture(l, fixture)), r.stderr).to.equal(true);
        expect(validateCiliumObject(fixture.object).ok, 'runtime validator agrees').to.equal(false);
      });
    }

    it('decides every CIDR in the table by format "cidr" and the CIDR pattern, each refusal with its message, as the validator does', async () => {
      const policies = cidrCases.map(([cidr], i) =>
        suite.run.place({
          apiVersion: 'cilium.io/v2',
          kind: 'CiliumNetworkPolicy',
          metadata: { name: `cidr-${i}` },
          spec: { endpointSelector: {}, egress: [{ toCIDRSet: [{ cidr: '0.0.0.0/0', except: [cidr] }] }] },
        }),
      );
      const r = await suite.run.apply(policies, ['--dry-run=server']);
      const verdicts = applyVerdicts(r, policies);
      const field = 'spec.egress[0].toCIDRSet[0].except[0]';
      const wrong = cidrCases.flatMap((c, i) => {
        const [cidr, formatCidr, pattern] = c;
        const v = verdicts.get(`cidr-${i}`);
        const says = (text: string): boolean => v?.errors.some((l) => l.includes(field) && l.includes(text)) ?? false;
        const right =
          v?.ok === cidrAccepted(c) &&
          says('must be of type cidr') === !formatCidr &&
          says(`should match '${cidrPattern}'`) === !pattern &&
          validateCiliumObject(policies[i]).ok === v.ok;
        return right ? [] : [`${JSON.stringify(cidr)}: ${JSON.stringify(v)}`];
      });
      expect(wrong, r.stderr).to.deep.equal([]);
    });

    it('refuses unknown fields with server-side apply too (strict field validation)', async () => {
      const typo = invalidFixtures().find((f) => f.file === 'unknown-field-in-rule.yaml');
      if (!typo) throw new Error('fixture invalid/unknown-field-in-rule.yaml is missing');
      const r = await suite.run.apply([suite.run.place(typo.object)], ['--server-side', '--field-manager', 'crd-test']);
      expect(r.code).to.not.equal(0);
      expect(r.stderr).to.include('.spec.ingress[0].fromEndpoint: field not declared in schema');
    });

    it('drops null fields before checking: endpointSelector: null beside a nodeSelector is one selector, as for the validator', async () => {
      const ccnp = suite.run.place({
        apiVersion: 'cilium.io/v2',
        kind: 'CiliumClusterwideNetworkPolicy',
        metadata: { name: 'null-endpoint-selector' },
        spec: { endpointSelector: null, nodeSelector: {}, ingress: [{ fromEntities: ['cluster'] }] },
      });
      const r = await suite.run.apply([ccnp]);
      expect(r.code, r.stderr).to.equal(0);
      expect(validateCiliumObject(ccnp).ok).to.equal(true);
      const got = await kubectl(suite.cp, ['get', 'ccnp', ccnp.metadata.name, '-o', 'jsonpath={.spec}']);
      expect(JSON.parse(got.stdout)).to.not.have.property('endpointSelector');
    });
  });

  it('accepts nodeSelector in a namespaced policy as upstream does; the runtime validator refuses it', async () => {
    const cnp = suite.run.place({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'node-selector-in-cnp' },
      spec: { nodeSelector: { matchLabels: { role: 'worker' } }, ingress: [{ fromEntities: ['cluster'] }] },
    });
    const r = await suite.run.apply([cnp]);
    expect(r.code, r.stderr).to.equal(0);
    const v = validateCiliumNetworkPolicy(cnp);
    expect(v.ok ? [] : v.errors.map((e) => e.path)).to.deep.equal(['spec.nodeSelector']);
  });

  it('stores a CiliumNode status as upstream writes it through the status subresource, and refuses a bad one', async () => {
    const cn = suite.run.place(fixtureObject('endpoint-identity-node.yaml', 'CiliumNode'));
    const r = await suite.run.apply([cn]);
    expect(r.code, r.stderr).to.equal(0);
    const patch = (status: unknown) =>
      kubectl(suite.cp, ['patch', 'ciliumnode', cn.metadata.name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]);
    const p = await patch(cn.status);
    expect(p.code, p.stderr).to.equal(0);
    const got = await kubectl(suite.cp, ['get', 'ciliumnode', cn.metadata.name, '-o', 'jsonpath={.status}']);
    expect(JSON.parse(got.stdout)).to.deep.equal(cn.status);
    const bad = await patch({ ipam: { 'release-ipv6s': { 'fd00:1::41': 'gone' } } });
    expect(bad.code).to.not.equal(0);
    expect(bad.stderr).to.include('status.ipam.release-ipv6s').and.include('Unsupported value: "gone"');
  });

  describe('kubectl get columns', () => {
    // Applies one fixture object in the current test's run; returns it as placed.
    async function applied(file: string, kind: string): Promise<ManifestObject> {
      const obj = suite.run.place(fixtureObject(file, kind));
      const r = await suite.run.apply([obj]);
      if (r.code !== 0) throw new Error(`applying ${kind} from valid/${file} failed: ${r.stderr}`);
      return obj;
    }

    it('ciliumendpoints -A: NAMESPACE NAME ENDPOINT ID IDENTITY ID INGRESS/EGRESS ENFORCEMENT VISIBILITY POLICY ENDPOINT STATE IPV4 IPV6', async () => {
      await applied('endpoint-identity-node.yaml', 'CiliumEndpoint');
      const r = await kubectl(suite.cp, ['get', 'ciliumendpoints', '-A']);
      expect(r.code, r.stderr).to.equal(0);
      const [header, ...rows] = tableRows(r.stdout);
      expect(header).to.deep.equal([
        'NAMESPACE', 'NAME', 'ENDPOINT ID', 'IDENTITY ID', 'INGRESS ENFORCEMENT', 'EGRESS ENFORCEMENT',
        'VISIBILITY POLICY', 'ENDPOINT STATE', 'IPV4', 'IPV6',
      ]);
      expect(rows.find((row) => row[0] === suite.run.namespace)).to.deep.equal([
        suite.run.namespace, 'web-7d9f8', '1234', '56789', 'true', 'false', '<status disabled>', 'ready', '10.0.1.23', 'fd00::17',
      ]);
    });

    it('ciliumidentities: NAME NAMESPACE AGE', async () => {
      const cid = await applied('endpoint-identity-node.yaml', 'CiliumIdentity');
      const r = await kubectl(suite.cp, ['get', 'ciliumidentities', cid.metadata.name]);
      expect(r.code, r.stderr).to.equal(0);
      const [header, row] = tableRows(r.stdout);
      expect(header).to.deep.equal(['NAME', 'NAMESPACE', 'AGE']);
      expect(row?.slice(0, 2)).to.deep.equal([cid.metadata.name, 'default']);
    });

    it('ciliumnetworkpolicies: NAME AGE VALID, VALID read from the Valid condition in status', async () => {
      await applied('l3-entities.yaml', 'CiliumNetworkPolicy');
      const patch = JSON.stringify({ status: { conditions: [{ type: 'Valid', status: 'True', reason: 'Tested' }] } });
      const p = await kubectl(suite.cp, ['patch', 'cnp', 'l3-entities', '-n', suite.run.namespace, '--subresource=status', '--type=merge', '-p', patch]);
      expect(p.code, p.stderr).to.equal(0);
      const r = await kubectl(suite.cp, ['get', 'cnp', 'l3-entities', '-n', suite.run.namespace]);
      const [header, row] = tableRows(r.stdout);
      expect(header).to.deep.equal(['NAME', 'AGE', 'VALID']);
      expect([row?.[0], row?.[2]]).to.deep.equal(['l3-entities', 'True']);
      const all = await kubectl(suite.cp, ['get', 'ciliumnetworkpolicies', '-A']);
      expect(tableRows(all.stdout)[0]).to.deep.equal(['NAMESPACE', 'NAME', 'AGE', 'VALID']);
    });

    it('ciliumclusterwidenetworkpolicies: NAME AGE VALID', async () => {
      const ccnp = await applied('ccnp-specs.yaml', 'CiliumClusterwideNetworkPolicy');
      const r = await kubectl(suite.cp, ['get', 'ccnp', ccnp.metadata.name]);
      expect(r.code, r.stderr).to.equal(0);
      const [header, row] = tableRows(r.stdout);
      expect(header).to.deep.equal(['NAME', 'AGE', 'VALID']);
      expect(row?.[0]).to.equal(ccnp.metadata.name);
    });

    it('ciliumnodes: NAME CILIUMINTERNALIP INTERNALIP AGE', async () => {
      const cn = await applied('endpoint-identity-node.yaml', 'CiliumNode');
      const r = await kubectl(suite.cp, ['get', 'ciliumnodes', cn.metadata.name]);
      expect(r.code, r.stderr).to.equal(0);
      const [header, row] = tableRows(r.stdout);
      expect(header).to.deep.equal(['NAME', 'CILIUMINTERNALIP', 'INTERNALIP', 'AGE']);
      expect(row?.slice(0, 3)).to.deep.equal([cn.metadata.name, '10.0.1.1', '192.168.1.10']);
    });
  });

  it('server-side apply of unchanged policies changes nothing (same resourceVersion)', async () => {
    const policies = validFixtures()
      .flatMap((f) => f.objects)
      .filter((o) => o.kind.endsWith('NetworkPolicy'))
      .map((o) => suite.run.place(o));
    const ssa = ['--server-side', '--field-manager', 'gitops'];
    const versions = async (): Promise<Record<string, string>> => {
      const entries: [string, string][] = [];
      for (const p of policies) {
        const args = ['get', p.kind, p.metadata.name, '-o', 'jsonpath={.metadata.resourceVersion}'];
        const r = await kubectl(suite.cp, p.metadata.namespace ? [...args, '-n', p.metadata.namespace] : args);
        expect(r.code, r.stderr).to.equal(0);
        entries.push([`${p.kind}/${p.metadata.name}`, r.stdout]);
      }
      return Object.fromEntries(entries);
    };
    const first = await suite.run.apply(policies, ssa);
    expect(first.code, first.stderr).to.equal(0);
    const before = await versions();
    const second = await suite.run.apply(policies, ssa);
    expect(second.code, second.stderr).to.equal(0);
    expect(second.stdout.split('\n').filter((l) => l.includes('serverside-applied'))).to.have.length(policies.length);
    expect(await versions()).to.deep.equal(before);
  });
});
