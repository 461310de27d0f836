// Property tests of the policy engine against the reference evaluator: random CNPs, CCNPs and
// NetworkPolicies, random pods and random packets; the verdict of the computed map entries under
// the datapath's lookup model must equal the direct evaluation of the policies.
import { expect } from 'chai';
import fc from 'fast-check';
import type { CIDRRule, CiliumClusterwideNetworkPolicy, CiliumNetworkPolicy, Entity, LabelSelector, LabelSelectorRequirement, PortRule, Rule } from '../../../crds/gen/index.js';
import { policyAllows } from '../../../datapath/maps/lookup-model.js';
import { IPPROTO_ICMP, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP } from '../../../datapath/maps/protocols.js';
import { SINGLE_STACK_RESERVED } from '../identity/reserved.js';
import type { LabelSet } from '../labels/labels.js';
import type { KubeNetworkPolicy } from './parse.js';
import { type RefPacket, type RefPeer, type RefPolicy, referenceVerdict, type RefWorld } from './reference-evaluator.js';
import { PolicyRepository } from './repository.js';
import { type NamedPort, type PolicyEnforcementMode, resolvePolicy, type ResolveOptions } from './resolve.js';
import { peerIdentity, podLabels } from './testing.js';

const NAMESPACES = { 'ns-a': { team: 't1' }, 'ns-b': { team: 't2' } } as const;
type Ns = keyof typeof NAMESPACES;
const IPS = ['10.0.0.1', '10.1.0.1', '10.1.1.1', '10.1.1.2', '192.168.1.1', '8.8.8.8', '172.16.0.1'];
const CIDRS = ['10.0.0.0/8', '10.1.0.0/16', '10.1.1.0/24', '10.1.1.1/32', '0.0.0.0/0', '192.168.0.0/16', '172.16.0.0/12', '8.8.8.8/32'];
const ENTITIES: Entity[] = ['all', 'world', 'cluster', 'host', 'remote-node', 'kube-apiserver', 'health', 'init', 'unmanaged', 'ingress', 'none'];
const PORTS = { min: 79, max: 83 };
const ICMP_TYPES = [0, 3, 8];
const NAMED: NamedPort[] = [
  { name: 'http', port: 80, protocol: IPPROTO_TCP },
  { name: 'dns', port: 81, protocol: IPPROTO_UDP },
  { name: 'dup', port: 82, protocol: IPPROTO_TCP },
];

interface Pod {
  id: number;
  ns: Ns;
  labels: Record<string, string>;
  cluster: string;
  namedPorts: NamedPort[];
}

const podArb = (id: number): fc.Arbitrary<Pod> =>
  fc.record({
    id: fc.constant(id),
    ns: fc.constantFrom<Ns>('ns-a', 'ns-b'),
    labels: fc.record({ app: fc.constantFrom('x', 'y'), role: fc.constantFrom('fe', 'be') }, { requiredKeys: ['app'] }),
    cluster: fc.constantFrom('default', 'default', 'default', 'other'),
    namedPorts: fc.subarray(NAMED),
  });

function inside(outer: string, inner: string): boolean {
  const [ob = '', obits = ''] = outer.split('/');
  const [ib = '', ibits = ''] = inner.split('/');
  const toInt = (ip: string): number => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(obits));
  return Number(ibits) > Number(obits) && Math.floor(toInt(ib) / size) === Math.floor(toInt(ob) / size);
}

const cidrRuleArb: fc.Arbitrary<CIDRRule> = fc.constantFrom(...CIDRS).chain((cidr) => {
  const holes = CIDRS.filter((c) => inside(cidr, c));
  if (holes.length === 0) return fc.constant({ cidr });
  return fc.record({ cidr: fc.constant(cidr), except: fc.option(fc.subarray(holes, { minLength: 1 }), { nil: undefined }) }, { requiredKeys: ['cidr'] });
});

const keyArb = (key: string): fc.Arbitrary<string> => fc.constantFrom(key, `k8s:${key}`, `any:${key}`);

const requirementArb: fc.Arbitrary<LabelSelectorRequirement> = fc.oneof(
  fc.record({ key: keyArb('app'), operator: fc.constantFrom('In' as const, 'NotIn' as const), values: fc.subarray(['x', 'y'], { minLength: 1 }) }),
  fc.record({ key: keyArb('role'), operator: fc.constantFrom('Exists' as const, 'DoesNotExist' as const) }),
);

const selectorArb: fc.Arbitrary<LabelSelector> = fc.oneof(
  fc.constant({}),
  fc.record({ matchLabels: fc.dictionary(fc.constantFrom('app', 'k8s:app', 'any:role'), fc.constantFrom('x', 'y', 'fe')) }),
  fc.record({ matchExpressions: fc.array(requirementArb, { minLength: 1, maxLength: 2 }) }),
  fc.record({ matchLabels: fc.constantFrom({ 'io.kubernetes.pod.namespace': 'ns-b' }, { 'k8s:io.cilium.k8s.namespace.labels.team': 't1' }, { 'reserved:host': '' }, { 'reserved:remote-node': '' }) }),
);

const portProtocolArb = fc.oneof(
  fc.record({ port: fc.integer(PORTS).map(String), endPort: fc.option(fc.integer({ min: PORTS.min, max: PORTS.max + 1 }), { nil: undefined }), protocol: fc.option(fc.constantFrom('TCP' as const, 'UDP' as const, 'SCTP' as const, 'ANY' as const), { nil: undefined }) }, { requiredKeys: ['port'] }),
  fc.record({ port: fc.constantFrom('0'), protocol: fc.constantFrom('TCP' as const, 'UDP' as const, 'ANY' as const) }),
  fc.record({ port: fc.constantFrom('http', 'dns', 'dup', 'nope'), protocol: fc.option(fc.constantFrom('TCP' as const, 'UDP' as const, 'ANY' as const), { nil: undefined }) }, { requiredKeys: ['port'] }),
);

// An endPort below the port is refused by the schema; drop it rather than generate invalid input.
// One port rule in ten carries L7 rules, which must open nothing.
const portRuleArb: fc.Arbitrary<PortRule> = fc
  .record({ ports: fc.array(portProtocolArb, { minLength: 1, maxLength: 2 }), l7: fc.integer({ min: 0, max: 9 }) })
  .map(({ ports, l7 }) => ({
    ports: ports.map((p) => ('endPort' in p && p.endPort !== undefined && p.endPort < Number(p.port) ? { ...p, endPort: undefined } : p)),
    ...(l7 === 0 ? { rules: { http: [{ method: 'GET' }] } } : {}),
  }));

const icmpsArb = fc.array(fc.record({ fields: fc.array(fc.record({ type: fc.constantFrom<number | string>(0, 3, 8, 'EchoRequest', 'EchoReply') }), { minLength: 1, maxLength: 2 }) }), { minLength: 1, maxLength: 1 });

function itemArb(direction: 'ingress' | 'egress', deny: boolean): fc.Arbitrary<Record<string, unknown>> {
  const p = direction === 'ingress' ? 'from' : 'to';
  const l4 = fc.record(
    { toPorts: fc.array(deny ? portRuleArb.map((r) => ({ ports: r.ports })) : portRuleArb, { maxLength: 2 }), icmps: icmpsArb },
    { requiredKeys: [] },
  );
  const l3 = fc.record(
    {
      [`${p}Endpoints`]: fc.array(selectorArb, { minLength: 1, maxLength: 2 }),
      [`${p}CIDRSet`]: fc.array(cidrRuleArb, { minLength: 1, maxLength: 2 }),
      [`${p}CIDR`]: fc.array(fc.constantFrom(...CIDRS), { minLength: 1, maxLength: 1 }),
      [`${p}Entities`]: fc.array(fc.constantFrom(...ENTITIES), { minLength: 1, maxLength: 2 }),
    },
    { requiredKeys: [] },
  );
  const extras = deny
    ? fc.constant({})
    : fc.oneof(
        { weight: 12, arbitrary: fc.constant({}) },
        { weight: 1, arbitrary: fc.constant(direction === 'egress' ? { toFQDNs: [{ matchName: 'one.one.one.one' }] } : { fromNodes: [{}] }) },
        { weight: 1, arbitrary: fc.constant({ authentication: { mode: 'required' } }) },
      );
  return fc.tuple(l3, l4, extras).map(([a, b, c]) => ({ ...a, ...b, ...c }));
}

const ruleArb: fc.Arbitrary<Rule> = fc
  .record(
    {
      endpointSelector: selectorArb.filter((s) => !Object.keys(s.matchLabels ?? {}).some((k) => k.includes('namespace') || k.startsWith('reserved:'))),
      ingress: fc.array(itemArb('ingress', false), { maxLength: 2 }),
      ingressDeny: fc.array(itemArb('ingress', true), { maxLength: 1 }),
      egress: fc.array(itemArb('egress', false), { maxLength: 2 }),
      egressDeny: fc.array(itemArb('egress', true), { maxLength: 1 }),
      enableDefaultDeny: fc.record({ ingress: fc.boolean(), egress: fc.boolean() }, { requiredKeys: [] }),
    },
    { requiredKeys: ['endpointSelector'] },
  )
  .map((r) => r as Rule);

const kubePeerArb = fc.oneof(
  fc.record({ podSelector: fc.record({ matchLabels: fc.dictionary(fc.constantFrom('app', 'role'), fc.constantFrom('x', 'y', 'fe')) }) }),
  fc.record({ namespaceSelector: fc.constantFrom({}, { matchLabels: { team: 't2' } }, { matchExpressions: [{ key: 'team', operator: 'In' as const, values: ['t1'] }] }), podSelector: fc.option(fc.constantFrom({}, { matchLabels: { app: 'x' } }), { nil: undefined }) }, { requiredKeys: ['namespaceSelector'] }),
  cidrRuleArb.map((c) => ({ ipBlock: { cidr: c.cidr ?? '', except: c.except } })),
);
const kubePortArb = fc.oneof(
  fc.record({ protocol: fc.option(fc.constantFrom('TCP', 'UDP', 'SCTP'), { nil: undefined }), port: fc.option(fc.integer(PORTS), { nil: undefined }) }, { requiredKeys: [] }),
  fc.record({ protocol: fc.constantFrom('TCP', 'UDP'), port: fc.integer(PORTS), endPort: fc.integer({ min: PORTS.max, max: PORTS.max + 2 }) }),
  fc.record({ port: fc.constantFrom('http', 'dns') }),
);
const kubeSpecArb = fc.record(
  {
    podSelector: fc.constantFrom({}, { matchLabels: { app: 'x' } }, { matchExpressions: [{ key: 'role', operator: 'Exists' as const }] }),
    policyTypes: fc.subarray(['Ingress', 'Egress'], { minLength: 1 }),
    ingress: fc.array(fc.record({ from: fc.array(kubePeerArb, { maxLength: 2 }), ports: fc.array(kubePortArb, { maxLength: 2 }) }, { requiredKeys: [] }), { maxLength: 2 }),
    egress: fc.array(fc.record({ to: fc.array(kubePeerArb, { maxLength: 2 }), ports: fc.array(kubePortArb, { maxLength: 2 }) }, { requiredKeys: [] }), { maxLength: 2 }),
  },
  { requiredKeys: ['podSelector'] },
) as fc.Arbitrary<KubeNetworkPolicy['spec']>;

const policyArb = (i: number): fc.Arbitrary<RefPolicy> =>
  fc.oneof(
    fc.record({ ns: fc.constantFrom<Ns>('ns-a', 'ns-b'), rules: fc.array(ruleArb, { minLength: 1, maxLength: 2 }) }).map(
      ({ ns, rules }): CiliumNetworkPolicy => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: `p${i}`, namespace: ns }, ...(rules.length === 1 ? { spec: rules[0] } : { specs: rules }) }),
    ),
    ruleArb.map((spec): CiliumClusterwideNetworkPolicy => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: `p${i}` }, spec })),
    fc.record({ ns: fc.constantFrom<Ns>('ns-a', 'ns-b'), spec: kubeSpecArb }).map(({ ns, spec }) => ({ kind: 'NetworkPolicy' as const, metadata: { name: `p${i}`, namespace: ns }, spec })),
  );

const packetArb = (podIds: number[]): fc.Arbitrary<{ ep: number; peer: { identity: number } | { ip: string }; direction: 'ingress' | 'egress'; protocol: number; port: number }> =>
  fc
    .record({
      ep: fc.constantFrom(...podIds),
      peer: fc.oneof(fc.constantFrom(...podIds).map((identity) => ({ identity })), fc.constantFrom(...SINGLE_STACK_RESERVED.map((r) => r.id)).map((identity) => ({ identity })), fc.constantFrom(...IPS).map((ip) => ({ ip }))),
      direction: fc.constantFrom('ingress' as const, 'egress' as const),
      protocol: fc.constantFrom(IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP),
      port: fc.integer({ min: PORTS.min - 1, max: PORTS.max + 1 }),
      icmpType: fc.constantFrom(...ICMP_TYPES),
    })
    .map(({ icmpType, ...p }) => (p.protocol === IPPROTO_ICMP ? { ...p, port: icmpType } : p));

const scenarioArb = fc
  .record({
    pods: fc.tuple(...[256, 257, 258, 259, 260].map(podArb)),
    late: fc.integer({ min: 0, max: 5 }),
    policies: fc.integer({ min: 1, max: 4 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => policyArb(i)))),
    removed: fc.integer({ min: 0, max: 5 }),
    mode: fc.constantFrom<PolicyEnforcementMode>('default', 'default', 'default', 'always', 'never'),
    allowLocalhost: fc.boolean(),
    extraNamed: fc.boolean(),
  })
  .chain((s) => fc.record({ s: fc.constant(s), packets: fc.array(packetArb(s.pods.map((p) => p.id)), { minLength: 20, maxLength: 20 }) }));

// Written out here rather than taken from the engine: kube-apiserver also carries remote-node.
const RESERVED_PEER_LABELS: Record<number, Record<string, string>> = {
  1: { 'reserved:host': '' },
  2: { 'reserved:world': '' },
  3: { 'reserved:unmanaged': '' },
  4: { 'reserved:health': '' },
  5: { 'reserved:init': '' },
  6: { 'reserved:remote-node': '' },
  7: { 'reserved:kube-apiserver': '', 'reserved:remote-node': '' },
  8: { 'reserved:ingress': '' },
};

function labelsOf(pod: Pod): LabelSet {
  return podLabels(pod.ns, pod.labels, NAMESPACES[pod.ns], pod.cluster);
}

describe('policy engine property', function () {
  this.timeout(120_000);

  it('map entries under the datapath lookup give the verdict of a direct evaluation (500 scenarios x 20 packets)', function () {
    let checked = 0;
    let allowed = 0;
    fc.assert(
      fc.property(scenarioArb, ({ s, packets }) => {
        const repo = new PolicyRepository();
        // Some pods exist before the policies and some appear after, so both the selector cache's
        // initial selection and its incremental updates are exercised; one policy may come and go.
        const early = s.pods.slice(0, s.late);
        const later = s.pods.slice(s.late);
        for (const p of early) repo.upsertIdentity(p.id, labelsOf(p));
        for (const pol of s.policies) repo.upsert(pol);
        for (const p of later) repo.upsertIdentity(p.id, labelsOf(p));
        const kept = s.policies.filter((_, i) => i !== s.removed);
        const gone = s.policies[s.removed];
        if (gone) repo.delete({ kind: gone.kind, namespace: gone.kind === 'CiliumClusterwideNetworkPolicy' ? '' : (gone.metadata?.namespace ?? 'default'), name: gone.metadata?.name ?? '' });

        const clusterNamedPorts = [...s.pods.flatMap((p) => p.namedPorts), ...(s.extraNamed ? [{ name: 'dup', port: 83, protocol: IPPROTO_TCP }] : [])];
        const opts: ResolveOptions = { mode: s.mode, allowLocalhost: s.allowLocalhost, clusterNamedPorts };
        const world: RefWorld = { mode: s.mode, allowLocalhost: s.allowLocalhost, clusterName: 'default', clusterNamedPorts };
        const byId = new Map(s.pods.map((p) => [p.id, p]));
        for (const pkt of packets) {
          const ep = byId.get(pkt.ep) as Pod;
          const resolved = resolvePolicy(repo, { identity: ep.id, namedPorts: ep.namedPorts }, opts);
          const engine = policyAllows(resolved.entries, resolved.enforcement, { peerIdentity: peerIdentity(pkt.peer, repo.ipcacheEntries()), direction: pkt.direction, protocol: pkt.protocol, port: pkt.port });
          const peerPod = 'identity' in pkt.peer ? byId.get(pkt.peer.identity) : undefined;
          const refPeer: RefPeer = 'ip' in pkt.peer ? pkt.peer : { identity: pkt.peer.identity, labels: peerPod ? labelsOf(peerPod).toSecurityLabels() : RESERVED_PEER_LABELS[pkt.peer.identity] ?? {} };
          const refPkt: RefPacket = { direction: pkt.direction, peer: refPeer, protocol: pkt.protocol, port: pkt.port };
          const expected = referenceVerdict(kept, { labels: labelsOf(ep).toSecurityLabels(), namedPorts: ep.namedPorts }, refPkt, world);
          if (engine !== expected) {
            throw new Error(`engine ${engine ? 'allows' : 'drops'} but the reference ${expected ? 'allows' : 'drops'} ${JSON.stringify(pkt)}; entries ${JSON.stringify(resolved.entries)} enforcement ${JSON.stringify(resolved.enforcement)} ipcache ${JSON.stringify(repo.ipcacheEntries())}`);
          }
          checked++;
          if (engine) allowed++;
        }
      }),
      { numRuns: 500 },
    );
    expect(checked).to.equal(500 * 20);
    // Neither verdict may dominate, or the comparison would say little.
    expect(allowed / checked).to.be.within(0.2, 0.8);
  });

  it('an endpoint a change does not report as affected keeps exactly its policy', function () {
    type Change = { policy: RefPolicy } | { pod: Pod } | { gone: number };
    const changeArb: fc.Arbitrary<Change[]> = fc.oneof(
      fc.tuple(policyArb(0), policyArb(1), policyArb(0)).map((ps) => ps.map((policy): Change => ({ policy }))),
      fc.tuple(policyArb(0), podArb(256), podArb(300)).map(([policy, relabel, fresh]): Change[] => [{ policy }, { pod: relabel }, { pod: fresh }, { gone: 257 }]),
    );
    fc.assert(
      fc.property(fc.tuple(...[256, 257, 258, 259].map(podArb)), changeArb, (initial, changes) => {
        const repo = new PolicyRepository();
        const pods = new Map(initial.map((p) => [p.id, p]));
        for (const p of initial) repo.upsertIdentity(p.id, labelsOf(p));
        const snapshot = () => new Map([...pods.values()].map((p) => [p.id, JSON.stringify(resolvePolicy(repo, { identity: p.id, namedPorts: p.namedPorts }).entries)]));
        for (const c of changes) {
          const before = snapshot();
          let change;
          if ('policy' in c) change = repo.upsert(c.policy);
          else if ('pod' in c) {
            pods.set(c.pod.id, c.pod);
            change = repo.upsertIdentity(c.pod.id, labelsOf(c.pod));
          } else {
            pods.delete(c.gone);
            change = repo.removeIdentity(c.gone);
          }
          const after = snapshot();
          for (const [podId, entries] of after) if (!change.affected.has(podId)) expect(entries, `pod ${podId} after ${JSON.stringify(c).slice(0, 80)}`).to.equal(before.get(podId));
        }
      }),
      { numRuns: 300 },
    );
  });
});
