// Cross-checks our CRDs against two other judges on generated policies: objects that
// @kubernetes-models/cilium (validators generated from upstream's CRDs) accepts must be accepted by
// the apiserver serving our CRDs, except where we refuse on purpose; and our runtime validator must
// reach the apiserver's verdict on every object.
import { expect } from 'chai';
import fc from 'fast-check';
import { CiliumClusterwideNetworkPolicy as ModelCCNP } from '@kubernetes-models/cilium/cilium.io/v2/CiliumClusterwideNetworkPolicy';
import { CiliumNetworkPolicy as ModelCNP } from '@kubernetes-models/cilium/cilium.io/v2/CiliumNetworkPolicy';
import { validateCiliumObject } from '../../crds/validation.js';
import { kubectl } from '../envtest/index.js';
import type { ManifestObject } from '../fixtures/policies/index.js';
import { useCrdSuite } from './crd-support.js';

// Values are mostly ones every judge accepts, now and then one that some judge refuses, so that
// whole objects land on both sides of each verdict.
function mostly<T>(good: T[], bad: T[]): fc.Arbitrary<T> {
  return fc.oneof({ weight: 30, arbitrary: fc.constantFrom(...good) }, { weight: 1, arbitrary: fc.constantFrom(...bad) });
}

const selector = mostly<object>(
  [
    {},
    { matchLabels: { app: 'web' } },
    { matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'kube-system', 'k8s:k8s-app': 'kube-dns' } },
    { matchExpressions: [{ key: 'tier', operator: 'In', values: ['a', 'b'] }] },
    { matchExpressions: [{ key: 'tier', operator: 'Exists' }] },
  ],
  [{ matchExpressions: [{ key: 'tier', operator: 'Equals', values: ['a'] }] }],
);
const cidr = mostly(['10.0.0.0/8', '192.168.1.0/24', '0.0.0.0/0', '2001:db8::/64', '10.0.0.1/32'], ['10.0.0.0/33', '10.0.0.0', '::/200']);
const port = mostly(['0', '80', '443', '8080', '65535', 'http', 'dns-tcp'], ['65536', '99999', '-1', 'http-']);
const protocol = mostly(['TCP', 'UDP', 'SCTP', 'ANY', 'VRRP', 'IGMP'], ['ICMP', 'tcp']);
const entity = mostly(['world', 'cluster', 'host', 'remote-node', 'kube-apiserver', 'all', 'health'], ['internet']);
const icmpType = mostly<number | string>([0, 8, 255, 'EchoRequest', 'DestinationUnreachable', '3'], [256, 'Ping', '300']);
const icmpFamily = mostly(['IPv4', 'IPv6'], ['IPv5']);
const fqdn = mostly<object>(
  [{ matchName: 'example.com' }, { matchName: 'api.example.com.' }, { matchPattern: '*.example.com' }],
  [{ matchName: 'exa mple.com' }, { matchPattern: '*.ex$ample.com' }],
);
const endPort = mostly([1024, 8080, 65535], [-1, 65536, 70_000]);

const ports = fc.record(
  {
    port,
    protocol,
    endPort,
  },
  { requiredKeys: ['port'] },
);
const portRule = fc.record({ ports: fc.array(ports, { minLength: 1, maxLength: 2 }) });
const icmps = fc.array(
  fc.record({ fields: fc.array(fc.record({ type: icmpType, family: icmpFamily }, { requiredKeys: ['type'] }), { minLength: 1, maxLength: 2 }) }),
  { minLength: 1, maxLength: 1 },
);
const ingress = fc.record(
  {
    fromEndpoints: fc.array(selector, { minLength: 1, maxLength: 2 }),
    fromCIDR: fc.array(cidr, { minLength: 1, maxLength: 2 }),
    fromCIDRSet: fc.array(fc.record({ cidr, except: fc.array(cidr, { maxLength: 2 }) }), { minLength: 1, maxLength: 1 }),
    fromEntities: fc.array(entity, { minLength: 1, maxLength: 2 }),
    toPorts: fc.array(portRule, { minLength: 1, maxLength: 1 }),
    icmps,
  },
  { requiredKeys: [] },
);
const egress = fc.record(
  {
    toEndpoints: fc.array(selector, { minLength: 1, maxLength: 2 }),
    toCIDRSet: fc.array(fc.record({ cidr, except: fc.array(cidr, { maxLength: 2 }) }), { minLength: 1, maxLength: 1 }),
    toEntities: fc.array(entity, { minLength: 1, maxLength: 2 }),
    toFQDNs: fc.array(fqdn, { minLength: 1, maxLength: 2 }),
    toPorts: fc.array(portRule, { minLength: 1, maxLength: 1 }),
  },
  { requiredKeys: [] },
);
const rule = fc.record(
  {
    endpointSelector: selector,
    ingress: fc.array(ingress, { minLength: 1, maxLength: 2 }),
    egress: fc.array(egress, { minLength: 1, maxLength: 2 }),
    ingressDeny: fc.array(fc.record({ fromEntities: fc.array(entity, { minLength: 1, maxLength: 1 }), toPorts: fc.array(portRule, { maxLength: 1 }) }), { minLength: 1, maxLength: 1 }),
  },
  { requiredKeys: ['endpointSelector'] },
);

function generatedPolicies(count: number): ManifestObject[] {
  return fc.sample(fc.tuple(fc.boolean(), rule), { numRuns: count, seed: 20261123 }).map(([clusterwide, spec], i) => ({
    apiVersion: 'cilium.io/v2',
    kind: clusterwide ? 'CiliumClusterwideNetworkPolicy' : 'CiliumNetworkPolicy',
    metadata: { name: `generated-${i}` },
    spec,
  }));
}

function modelsAccept(obj: ManifestObject): boolean {
  try {
    if (obj.kind === 'CiliumNetworkPolicy') new ModelCNP(obj).validate();
    else new ModelCCNP(obj).validate();
    return true;
  } catch {
    return false;
  }
}

// Deliberate divergences from upstream's schema, each demanded by issue 2.
function refusedOnPurpose(obj: ManifestObject): string | undefined {
  const numericPorts = JSON.stringify(obj).match(/"port":"[0-9]+"/g) ?? [];
  if (numericPorts.some((p) => Number(p.slice(8, -1)) > 65535)) return 'numeric port string above 65535';
  return undefined;
}

describe('cilium.io/v2 CRDs cross-checked on generated policies', function () {
  this.timeout(180_000);
  const suite = useCrdSuite();

  it('accepts what @kubernetes-models/cilium accepts, and the runtime validator agrees with the apiserver', async () => {
    const disagreements: string[] = [];
    let modelsAccepted = 0;
    let apiserverAccepted = 0;
    const policies = generatedPolicies(80);
    for (const policy of policies) {
      const placed = suite.run.place(policy);
      const r = await kubectl(suite.cp, ['apply', '--dry-run=server', '-f', '-'], { stdin: JSON.stringify(placed) });
      const apiserver = r.code === 0;
      const ours = validateCiliumObject(policy).ok;
      const models = modelsAccept(policy);
      if (apiserver) apiserverAccepted++;
      if (models) modelsAccepted++;
      const name = `${policy.kind}/${policy.metadata.name}`;
      if (models && !apiserver && !refusedOnPurpose(policy)) disagreements.push(`${name}: models accept, apiserver refuses: ${r.stderr}`);
      if (ours !== apiserver) disagreements.push(`${name}: runtime validator ${ours ? 'accepts' : 'refuses'}, apiserver ${apiserver ? 'accepts' : 'refuses'}: ${r.stderr}`);
    }
    expect(disagreements, JSON.stringify(disagreements, null, 2)).to.deep.equal([]);
    // The generator must exercise both verdicts, or this test proves nothing.
    expect(modelsAccepted, 'objects the models accept').to.be.greaterThan(5);
    expect(apiserverAccepted, 'objects the apiserver accepts').to.be.greaterThan(5);
    expect(apiserverAccepted, 'objects the apiserver refuses').to.be.lessThan(policies.length - 5);
  });
});
