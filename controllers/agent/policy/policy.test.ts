// Table tests of the policy engine: each upstream semantic and the L3/L4 connectivity-test
// scenarios, judged by the verdict the computed map entries give under the datapath's lookup.
import { expect } from 'chai';
import type { CiliumClusterwideNetworkPolicy, CiliumNetworkPolicy, Rule as CiliumRule } from '../../../crds/gen/index.js';
import { IPPROTO_ICMP, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP } from '../../../datapath/maps/protocols.js';
import { RESERVED_IDENTITIES } from '../identity/reserved.js';
import type { KubeNetworkPolicy } from './parse.js';
import { PolicyRepository, ruleCookie } from './repository.js';
import { resolvePolicy, type ResolveOptions } from './resolve.js';
import { PolicyParseError, unsupportedMessage } from './rule.js';
import { passes, type Peer, podLabels } from './testing.js';

const NS = 'cilium-test';
const CLIENT = 1000;
const CLIENT2 = 1001;
const ECHO = 1002;
const OTHER_NS = 1003;
const OTHER_CLUSTER = 1004;
const { host: HOST, world: WORLD, 'remote-node': REMOTE_NODE, health: HEALTH, 'kube-apiserver': APISERVER } = RESERVED_IDENTITIES;

function cookieOf(name: string, path: string): number {
  return ruleCookie({ policy: { kind: 'CiliumNetworkPolicy', namespace: NS, name }, path });
}

function cnp(name: string, spec: CiliumRule | CiliumRule[], namespace = NS): CiliumNetworkPolicy {
  const body = Array.isArray(spec) ? { specs: spec } : { spec };
  return { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, namespace, uid: `uid-${name}` }, ...body };
}

function ccnp(name: string, spec: CiliumRule): CiliumClusterwideNetworkPolicy {
  return { apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name }, spec };
}

function knp(name: string, spec: KubeNetworkPolicy['spec']): KubeNetworkPolicy & { kind: 'NetworkPolicy' } {
  return { kind: 'NetworkPolicy', metadata: { name, namespace: NS }, spec };
}

function newRepo(): PolicyRepository {
  const repo = new PolicyRepository();
  repo.upsertIdentity(CLIENT, podLabels(NS, { kind: 'client', name: 'client' }, { team: 't1' }));
  repo.upsertIdentity(CLIENT2, podLabels(NS, { kind: 'client', name: 'client2', other: 'client' }, { team: 't1' }));
  repo.upsertIdentity(ECHO, podLabels(NS, { kind: 'echo', name: 'echo-same-node' }, { team: 't1' }));
  repo.upsertIdentity(OTHER_NS, podLabels('other', { kind: 'client', app: 'x' }, { team: 't2' }));
  repo.upsertIdentity(OTHER_CLUSTER, podLabels(NS, { kind: 'client' }, { team: 't1' }, 'elsewhere'));
  return repo;
}

const tcp = (peer: Peer, port: number, direction: 'ingress' | 'egress' = 'ingress') => ({ peer, direction, protocol: IPPROTO_TCP, port });
const id = (identity: number): Peer => ({ identity });
const ip = (addr: string): Peer => ({ ip: addr });

/** Verdicts of many probes at once, so a table row reads as one expectation. */
function verdicts(repo: PolicyRepository, ep: number, probes: Record<string, Parameters<typeof passes>[2]>, opts?: ResolveOptions): Record<string, boolean> {
  return Object.fromEntries(Object.entries(probes).map(([k, p]) => [k, passes(repo, { identity: ep }, p, opts)]));
}

describe('policy engine', function () {
  describe('connectivity-test scenarios (L3/L4)', function () {
    it('client-ingress: only client2 (other=client) reaches client', function () {
      const repo = newRepo();
      repo.upsert(cnp('client-ingress-from-client2', { endpointSelector: { matchLabels: { kind: 'client' } }, ingress: [{ fromEndpoints: [{ matchLabels: { other: 'client' } }] }] }));
      expect(verdicts(repo, CLIENT, { client2: tcp(id(CLIENT2), 8080), echo: tcp(id(ECHO), 8080), world: tcp(id(WORLD), 8080), egress: tcp(id(ECHO), 8080, 'egress') })).to.deep.equal({
        client2: true,
        echo: false,
        world: false,
        egress: true,
      });
    });

    it('all-ingress-deny: an empty ingress item selects nothing and turns on default deny', function () {
      const repo = newRepo();
      repo.upsert(cnp('all-ingress-deny', { endpointSelector: {}, ingress: [{}] }));
      expect(verdicts(repo, ECHO, { client: tcp(id(CLIENT), 8080), world: tcp(id(WORLD), 80), host: tcp(id(HOST), 80), out: tcp(id(CLIENT), 80, 'egress') })).to.deep.equal({
        client: false,
        world: false,
        host: true,
        out: true,
      });
      // The policy is namespaced: a pod elsewhere is untouched.
      expect(resolvePolicy(repo, { identity: OTHER_NS }).enforcement).to.deep.equal({ ingress: false, egress: false });
    });

    it('echo-ingress-from-other-client-deny: ingressDeny wins over an allow-all', function () {
      const repo = newRepo();
      repo.upsert(cnp('allow-all-ingress', { endpointSelector: {}, ingress: [{ fromEntities: ['all'] }] }));
      repo.upsert(cnp('echo-ingress-from-other-client-deny', { endpointSelector: { matchLabels: { kind: 'echo' } }, ingressDeny: [{ fromEndpoints: [{ matchLabels: { other: 'client' } }] }] }));
      expect(verdicts(repo, ECHO, { client: tcp(id(CLIENT), 8080), client2: tcp(id(CLIENT2), 8080), icmp: { peer: id(CLIENT2), direction: 'ingress', protocol: IPPROTO_ICMP, port: 8 } })).to.deep.equal({
        client: true,
        client2: false,
        icmp: false,
      });
    });

    it('client-egress-to-echo-deny: egressDeny on one port, the rest allowed', function () {
      const repo = newRepo();
      repo.upsert(cnp('allow-all-egress', { endpointSelector: {}, egress: [{ toEntities: ['all'] }] }));
      repo.upsert(
        cnp('client-egress-to-echo-deny', {
          endpointSelector: { matchLabels: { kind: 'client' } },
          egressDeny: [{ toEndpoints: [{ matchLabels: { kind: 'echo' } }], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }] }],
        }),
      );
      expect(verdicts(repo, CLIENT, { echo8080: tcp(id(ECHO), 8080, 'egress'), echo8081: tcp(id(ECHO), 8081, 'egress'), udp: { peer: id(ECHO), direction: 'egress', protocol: IPPROTO_UDP, port: 8080 }, world: tcp(ip('1.1.1.1'), 8080, 'egress') })).to.deep.equal({
        echo8080: false,
        echo8081: true,
        udp: true,
        world: true,
      });
    });

    it('to-entities-world: only :80 to the world; the DNS rule with L7 opens nothing and is named', function () {
      const repo = newRepo();
      repo.upsert(
        cnp('client-egress-to-entities-world', {
          endpointSelector: { matchLabels: { kind: 'client' } },
          egress: [
            { toEntities: ['world'], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] },
            { toEndpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'kube-system', 'k8s:k8s-app': 'kube-dns' } }], toPorts: [{ ports: [{ port: '53', protocol: 'ANY' }], rules: { dns: [{ matchPattern: '*' }] } }] },
          ],
        }),
      );
      const dns = 1010;
      repo.upsertIdentity(dns, podLabels('kube-system', { 'k8s-app': 'kube-dns' }));
      expect(verdicts(repo, CLIENT, { w80: tcp(ip('1.1.1.1'), 80, 'egress'), w443: tcp(ip('1.1.1.1'), 443, 'egress'), world80: tcp(id(WORLD), 80, 'egress'), dns: { peer: id(dns), direction: 'egress', protocol: IPPROTO_UDP, port: 53 }, echo: tcp(id(ECHO), 80, 'egress') })).to.deep.equal({
        w80: true,
        w443: false,
        world80: true,
        dns: false,
        echo: false,
      });
      const r = resolvePolicy(repo, { identity: CLIENT });
      expect(r.unsupported.map((u) => u.path)).to.deep.equal(['spec.egress[1].toPorts[0].rules']);
    });

    it('to-cidr-external: toCIDRSet with except; CIDR identities go to the ipcache', function () {
      const repo = newRepo();
      repo.upsert(cnp('client-egress-to-cidr', { endpointSelector: { matchLabels: { kind: 'client' } }, egress: [{ toCIDRSet: [{ cidr: '1.0.0.0/8', except: ['1.1.1.0/24'] }] }] }));
      expect(repo.ipcacheEntries()).to.deep.equal([
        { prefix: '1.0.0.0/8', identity: 16777217 },
        { prefix: '1.1.1.0/24', identity: 16777218 },
      ]);
      expect(verdicts(repo, CLIENT, { in: tcp(ip('1.0.0.1'), 443, 'egress'), hole: tcp(ip('1.1.1.1'), 443, 'egress'), out: tcp(ip('8.8.8.8'), 443, 'egress'), pod: tcp(id(ECHO), 443, 'egress') })).to.deep.equal({
        in: true,
        hole: false,
        out: false,
        pod: false,
      });
    });

    it('allow-all-except-world: the cluster entity, not the world', function () {
      const repo = newRepo();
      repo.upsert(cnp('allow-all-except-world', { endpointSelector: {}, ingress: [{ fromEntities: ['cluster'] }], egress: [{ toEntities: ['cluster'] }] }));
      expect(
        verdicts(repo, CLIENT, {
          echo: tcp(id(ECHO), 80, 'egress'),
          otherNs: tcp(id(OTHER_NS), 80, 'egress'),
          host: tcp(id(HOST), 80, 'egress'),
          remote: tcp(id(REMOTE_NODE), 80, 'egress'),
          apiserver: tcp(id(APISERVER), 443, 'egress'),
          health: tcp(id(HEALTH), 4240, 'ingress'),
          otherCluster: tcp(id(OTHER_CLUSTER), 80, 'egress'),
          world: tcp(ip('1.1.1.1'), 80, 'egress'),
          worldIn: tcp(id(WORLD), 80, 'ingress'),
        }),
      ).to.deep.equal({ echo: true, otherNs: true, host: true, remote: true, apiserver: true, health: true, otherCluster: false, world: false, worldIn: false });
    });

    it('host-entity-egress / host-entity-ingress', function () {
      const repo = newRepo();
      repo.upsert(cnp('host-entity-egress', { endpointSelector: { matchLabels: { kind: 'client' } }, egress: [{ toEntities: ['host'] }] }));
      repo.upsert(cnp('remote-node-ingress', { endpointSelector: { matchLabels: { kind: 'echo' } }, ingress: [{ fromEntities: ['remote-node'] }] }));
      expect(verdicts(repo, CLIENT, { host: tcp(id(HOST), 80, 'egress'), remote: tcp(id(REMOTE_NODE), 80, 'egress'), echo: tcp(id(ECHO), 80, 'egress') })).to.deep.equal({ host: true, remote: false, echo: false });
      // kube-apiserver's reserved identity carries remote-node too, as upstream's.
      expect(verdicts(repo, ECHO, { remote: tcp(id(REMOTE_NODE), 80), apiserver: tcp(id(APISERVER), 443), host: tcp(id(HOST), 80), client: tcp(id(CLIENT), 80) })).to.deep.equal({
        remote: true,
        apiserver: true,
        host: true,
        client: false,
      });
      // allow-localhost=policy: the node is only let in by policy.
      expect(verdicts(repo, ECHO, { host: tcp(id(HOST), 80) }, { allowLocalhost: false })).to.deep.equal({ host: false });
    });

    it('allow-localhost lets this node (host) in under default deny, not other nodes, and yields to a deny of the host', function () {
      const repo = newRepo();
      repo.upsert(cnp('all-ingress-deny', { endpointSelector: { matchLabels: { kind: 'echo' } }, ingress: [{}] }));
      // Kubelet probes come from this node: host (1); another node is remote-node (6), a policy matter.
      expect(verdicts(repo, ECHO, { probe: tcp(id(HOST), 8080), otherNode: tcp(id(REMOTE_NODE), 8080), health: tcp(id(HEALTH), 8080) })).to.deep.equal({ probe: true, otherNode: false, health: false });
      expect(resolvePolicy(repo, { identity: ECHO }).entries).to.deep.include({ identity: HOST, direction: 'ingress', protocol: 0, port: 0, deny: false });
      // Upstream inserts the localhost allow deny-preferred: an explicit deny of the host still wins.
      repo.upsert(cnp('deny-host', { endpointSelector: { matchLabels: { kind: 'echo' } }, ingressDeny: [{ fromEntities: ['host'] }] }));
      expect(verdicts(repo, ECHO, { probe: tcp(id(HOST), 8080) })).to.deep.equal({ probe: false });
      // No ingress enforcement: nothing to add, every peer is allowed anyway.
      expect(resolvePolicy(newRepo(), { identity: ECHO }).entries).to.deep.equal([]);
    });
  });

  describe('selectors', function () {
    it('CNP peer selectors default to the policy namespace unless they name one or namespace labels', function () {
      const repo = newRepo();
      repo.upsert(
        cnp('ns', {
          endpointSelector: { matchLabels: { name: 'echo-same-node' } },
          ingress: [
            { fromEndpoints: [{ matchLabels: { kind: 'client' } }], toPorts: [{ ports: [{ port: '1' }] }] },
            { fromEndpoints: [{ matchLabels: { kind: 'client', 'k8s:io.kubernetes.pod.namespace': 'other' } }], toPorts: [{ ports: [{ port: '2' }] }] },
            { fromEndpoints: [{ matchLabels: { 'io.cilium.k8s.namespace.labels.team': 't2' } }], toPorts: [{ ports: [{ port: '3' }] }] },
          ],
        }),
      );
      expect(verdicts(repo, ECHO, { same1: tcp(id(CLIENT), 1), other1: tcp(id(OTHER_NS), 1), same2: tcp(id(CLIENT), 2), other2: tcp(id(OTHER_NS), 2), same3: tcp(id(CLIENT), 3), other3: tcp(id(OTHER_NS), 3) })).to.deep.equal({
        same1: true,
        other1: false,
        same2: false,
        other2: true,
        same3: false,
        other3: true,
      });
    });

    it('the CNP endpointSelector only selects its own namespace; a CCNP selects everywhere but its {} peer is pods only', function () {
      const repo = newRepo();
      repo.upsert(cnp('sel', { endpointSelector: { matchLabels: { kind: 'client' } }, ingress: [{}] }));
      expect(resolvePolicy(repo, { identity: OTHER_NS }).enforcement.ingress).to.equal(false);
      repo.upsert(ccnp('cw', { endpointSelector: { matchLabels: { kind: 'client' } }, ingress: [{ fromEndpoints: [{}] }] }));
      expect(resolvePolicy(repo, { identity: OTHER_NS }).enforcement.ingress).to.equal(true);
      expect(verdicts(repo, OTHER_NS, { echo: tcp(id(ECHO), 80), remote: tcp(id(REMOTE_NODE), 80), world: tcp(id(WORLD), 80) })).to.deep.equal({ echo: true, remote: false, world: false });
    });

    it('matchExpressions In/NotIn/Exists/DoesNotExist and the k8s:/any:/reserved: sources', function () {
      const repo = newRepo();
      const rule = (port: string, sel: CiliumRule['endpointSelector']) => ({ fromEndpoints: [sel ?? {}], toPorts: [{ ports: [{ port, protocol: 'TCP' as const }] }] });
      repo.upsert(
        cnp('expr', {
          endpointSelector: { matchLabels: { kind: 'echo' } },
          ingress: [
            rule('1', { matchExpressions: [{ key: 'name', operator: 'In', values: ['client', 'x'] }] }),
            rule('2', { matchExpressions: [{ key: 'k8s:name', operator: 'NotIn', values: ['client'] }] }),
            rule('3', { matchExpressions: [{ key: 'any:other', operator: 'Exists' }] }),
            rule('4', { matchExpressions: [{ key: 'other', operator: 'DoesNotExist' }], matchLabels: { kind: 'client' } }),
            rule('5', { matchLabels: { 'reserved:remote-node': '' } }),
            rule('6', { matchLabels: { 'cni:name': 'client' } }),
          ],
        }),
      );
      const probes = (p: number) => ({ c: tcp(id(CLIENT), p), c2: tcp(id(CLIENT2), p), remote: tcp(id(REMOTE_NODE), p) });
      const table = [1, 2, 3, 4, 5, 6].map((p) => verdicts(repo, ECHO, probes(p)));
      expect(table).to.deep.equal([
        { c: true, c2: false, remote: false },
        { c: false, c2: true, remote: false },
        { c: false, c2: true, remote: false },
        { c: true, c2: false, remote: false },
        { c: false, c2: false, remote: true },
        { c: false, c2: false, remote: false },
      ]);
    });
  });

  describe('ports', function () {
    it('ports, endPort ranges, protocol ANY, ICMP names', function () {
      const repo = newRepo();
      repo.upsert(
        cnp('ports', {
          endpointSelector: { matchLabels: { kind: 'echo' } },
          ingress: [
            { toPorts: [{ ports: [{ port: '80', endPort: 90, protocol: 'TCP' }, { port: '53', protocol: 'ANY' }] }] },
            { fromEndpoints: [{ matchLabels: { kind: 'client' } }], icmps: [{ fields: [{ type: 'EchoRequest' }] }] },
          ],
        }),
      );
      expect(
        verdicts(repo, ECHO, {
          p80: tcp(id(WORLD), 80),
          p90: tcp(id(WORLD), 90),
          p91: tcp(id(WORLD), 91),
          udp80: { peer: id(WORLD), direction: 'ingress', protocol: IPPROTO_UDP, port: 80 },
          udp53: { peer: id(WORLD), direction: 'ingress', protocol: IPPROTO_UDP, port: 53 },
          sctp53: { peer: id(WORLD), direction: 'ingress', protocol: IPPROTO_SCTP, port: 53 },
          echoReq: { peer: id(CLIENT), direction: 'ingress', protocol: IPPROTO_ICMP, port: 8 },
          echoReply: { peer: id(CLIENT), direction: 'ingress', protocol: IPPROTO_ICMP, port: 0 },
          worldPing: { peer: id(WORLD), direction: 'ingress', protocol: IPPROTO_ICMP, port: 8 },
        }),
      ).to.deep.equal({ p80: true, p90: true, p91: false, udp80: false, udp53: true, sctp53: true, echoReq: true, echoReply: false, worldPing: false });
    });

    it('named ports: ingress against the endpoint, egress against the cluster; ambiguous or unknown names open nothing', function () {
      const repo = newRepo();
      repo.upsert(cnp('named-in', { endpointSelector: { matchLabels: { kind: 'echo' } }, ingress: [{ toPorts: [{ ports: [{ port: 'http' }, { port: 'metrics', protocol: 'UDP' }] }] }] }));
      repo.upsert(cnp('named-out', { endpointSelector: { matchLabels: { kind: 'client' } }, egress: [{ toEndpoints: [{ matchLabels: { kind: 'echo' } }], toPorts: [{ ports: [{ port: 'http-alt' }, { port: 'dup' }] }] }] }));
      const echo = { identity: ECHO, namedPorts: [{ name: 'http', port: 8080, protocol: IPPROTO_TCP }, { name: 'metrics', port: 9090, protocol: IPPROTO_TCP }] };
      const r = resolvePolicy(repo, echo);
      expect(r.entries.filter((e) => e.direction === 'ingress' && e.identity === 0)).to.deep.equal([{ identity: 0, direction: 'ingress', protocol: 0, port: 8080, deny: false, cookie: cookieOf('named-in', 'spec') }]);
      const cluster = {
        clusterNamedPorts: [
          { name: 'http-alt', port: 8081, protocol: IPPROTO_TCP },
          { name: 'http-alt', port: 8081, protocol: IPPROTO_TCP },
          { name: 'dup', port: 1, protocol: IPPROTO_TCP },
          { name: 'dup', port: 2, protocol: IPPROTO_TCP },
        ],
      };
      expect(verdicts(repo, CLIENT, { alt: tcp(id(ECHO), 8081, 'egress'), dup1: tcp(id(ECHO), 1, 'egress'), dup2: tcp(id(ECHO), 2, 'egress') }, cluster)).to.deep.equal({ alt: true, dup1: false, dup2: false });
    });
  });

  describe('default deny and modes', function () {
    it('enableDefaultDeny false adds allows without dropping the rest; its denies still apply', function () {
      const repo = newRepo();
      repo.upsert(
        cnp('no-default-deny', {
          endpointSelector: { matchLabels: { kind: 'echo' } },
          enableDefaultDeny: { ingress: false },
          ingress: [{ fromEndpoints: [{ matchLabels: { name: 'client' } }] }],
          ingressDeny: [{ fromEndpoints: [{ matchLabels: { name: 'client2' } }] }],
        }),
      );
      expect(verdicts(repo, ECHO, { client: tcp(id(CLIENT), 80), world: tcp(id(WORLD), 80), client2: tcp(id(CLIENT2), 80) })).to.deep.equal({ client: true, world: true, client2: false });
      // A second rule with default deny selecting the same endpoint turns it on.
      repo.upsert(cnp('default-deny', { endpointSelector: { matchLabels: { kind: 'echo' } }, ingress: [{}] }));
      expect(verdicts(repo, ECHO, { client: tcp(id(CLIENT), 80), world: tcp(id(WORLD), 80) })).to.deep.equal({ client: true, world: false });
    });

    it('a deny-only policy turns on default deny in its direction, as upstream', function () {
      const repo = newRepo();
      repo.upsert(cnp('deny-only', { endpointSelector: { matchLabels: { kind: 'echo' } }, ingressDeny: [{ fromEntities: ['world'] }] }));
      expect(resolvePolicy(repo, { identity: ECHO }).enforcement).to.deep.equal({ ingress: true, egress: false });
      expect(verdicts(repo, ECHO, { world: tcp(id(WORLD), 80), client: tcp(id(CLIENT), 80) })).to.deep.equal({ world: false, client: false });
    });

    it('specs lists apply every rule', function () {
      const repo = newRepo();
      repo.upsert(
        cnp('specs', [
          { endpointSelector: { matchLabels: { kind: 'echo' } }, ingress: [{ fromEndpoints: [{ matchLabels: { name: 'client' } }] }] },
          { endpointSelector: { matchLabels: { kind: 'echo' } }, ingress: [{ fromEntities: ['world'], toPorts: [{ ports: [{ port: '443', protocol: 'TCP' }] }] }] },
        ]),
      );
      expect(verdicts(repo, ECHO, { client: tcp(id(CLIENT), 80), w443: tcp(id(WORLD), 443), w80: tcp(id(WORLD), 80) })).to.deep.equal({ client: true, w443: true, w80: false });
    });

    it('--enable-policy always enforces without rules; never ignores every rule', function () {
      const repo = newRepo();
      expect(verdicts(repo, ECHO, { client: tcp(id(CLIENT), 80), out: tcp(id(CLIENT), 80, 'egress'), host: tcp(id(HOST), 80) }, { mode: 'always' })).to.deep.equal({ client: false, out: false, host: true });
      repo.upsert(cnp('deny', { endpointSelector: {}, ingressDeny: [{ fromEntities: ['all'] }] }));
      expect(verdicts(repo, ECHO, { client: tcp(id(CLIENT), 80) }, { mode: 'never' })).to.deep.equal({ client: true });
      expect(resolvePolicy(repo, { identity: ECHO }, { mode: 'never' })).to.include({ revision: 2 }).and.nested.include({ 'enforcement.ingress': false, 'enforcement.egress': false });
    });
    it('an init endpoint is default-deny both ways; a CCNP on reserved:init opens what it names (examples/policies/l4/init.yaml)', function () {
      const repo = newRepo();
      const INIT = RESERVED_IDENTITIES.init;
      expect(resolvePolicy(repo, { identity: INIT }).enforcement).to.deep.equal({ ingress: true, egress: true });
      repo.upsert(
        ccnp('init', {
          endpointSelector: { matchLabels: { 'reserved:init': '' } },
          egress: [{ toEndpoints: [{ matchLabels: { 'io.kubernetes.pod.namespace': NS, kind: 'echo' } }], toPorts: [{ ports: [{ port: '53', protocol: 'UDP' }] }] }],
          ingress: [{ fromEntities: ['host'] }],
        }),
      );
      expect(verdicts(repo, INIT, { dns: { peer: id(ECHO), direction: 'egress', protocol: IPPROTO_UDP, port: 53 }, other: tcp(id(ECHO), 80, 'egress'), in: tcp(id(CLIENT), 80) })).to.deep.equal({ dns: true, other: false, in: false });
    });

    it('the host endpoint is not enforced here (no host firewall)', function () {
      const repo = newRepo();
      repo.upsert(ccnp('all', { endpointSelector: {}, ingress: [{}] }));
      expect(resolvePolicy(repo, { identity: HOST }, { mode: 'always' })).to.deep.include({ entries: [], enforcement: { ingress: false, egress: false } });
    });
  });

  describe('Kubernetes NetworkPolicy', function () {
    it('default-deny-ingress: podSelector {} with policyTypes [Ingress]', function () {
      const repo = newRepo();
      repo.upsert(knp('default-deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] }));
      expect(resolvePolicy(repo, { identity: ECHO }).enforcement).to.deep.equal({ ingress: true, egress: false });
      expect(verdicts(repo, ECHO, { client: tcp(id(CLIENT), 80), out: tcp(id(WORLD), 80, 'egress') })).to.deep.equal({ client: false, out: true });
      expect(resolvePolicy(repo, { identity: OTHER_NS }).enforcement.ingress).to.equal(false);
    });

    it('namespaceSelector + podSelector in one peer are ANDed; podSelector alone is the policy namespace', function () {
      const repo = newRepo();
      repo.upsert(
        knp('ns-and-pod', {
          podSelector: { matchLabels: { kind: 'echo' } },
          ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 't2' } }, podSelector: { matchLabels: { app: 'x' } } }] }, { from: [{ podSelector: { matchLabels: { name: 'client2' } } }], ports: [{ port: 9 }] }],
        }),
      );
      repo.upsertIdentity(1020, podLabels('other', { app: 'y' }, { team: 't2' }));
      expect(verdicts(repo, ECHO, { otherX: tcp(id(OTHER_NS), 80), otherY: tcp(id(1020), 80), client: tcp(id(CLIENT), 80), client2At9: tcp(id(CLIENT2), 9), client2At80: tcp(id(CLIENT2), 80) })).to.deep.equal({
        otherX: true,
        otherY: false,
        client: false,
        client2At9: true,
        client2At80: false,
      });
    });

    it('ipBlock with except, and ports with endPort', function () {
      const repo = newRepo();
      repo.upsert(
        knp('egress', {
          podSelector: { matchLabels: { kind: 'client' } },
          policyTypes: ['Egress'],
          egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } }], ports: [{ protocol: 'TCP', port: 8000, endPort: 8080 }] }],
        }),
      );
      expect(resolvePolicy(repo, { identity: CLIENT }).enforcement).to.deep.equal({ ingress: false, egress: true });
      expect(
        verdicts(repo, CLIENT, {
          in8000: tcp(ip('10.2.0.1'), 8000, 'egress'),
          in8080: tcp(ip('10.2.0.1'), 8080, 'egress'),
          in8081: tcp(ip('10.2.0.1'), 8081, 'egress'),
          udp: { peer: ip('10.2.0.1'), direction: 'egress', protocol: IPPROTO_UDP, port: 8000 },
          hole: tcp(ip('10.1.2.3'), 8000, 'egress'),
          pod: tcp(id(ECHO), 8000, 'egress'),
        }),
      ).to.deep.equal({ in8000: true, in8080: true, in8081: false, udp: false, hole: false, pod: false });
    });

    it('an empty from allows every source, the world included', function () {
      const repo = newRepo();
      repo.upsert(knp('allow-80', { podSelector: {}, ingress: [{ ports: [{ port: 80 }] }] }));
      expect(verdicts(repo, ECHO, { world: tcp(ip('8.8.8.8'), 80), w81: tcp(ip('8.8.8.8'), 81) })).to.deep.equal({ world: true, w81: false });
    });
  });

  describe('unsupported rules and errors', function () {
    it('toFQDNs, toServices, authentication and L7 rules never open traffic and are named', function () {
      const repo = newRepo();
      repo.upsert(
        cnp('unsupported', {
          endpointSelector: { matchLabels: { kind: 'client' } },
          egress: [
            { toFQDNs: [{ matchName: 'one.one.one.one' }] },
            { toServices: [{ k8sService: { serviceName: 'echo', namespace: NS } }] },
            { toEndpoints: [{ matchLabels: { kind: 'echo' } }], authentication: { mode: 'required' } },
            { toEndpoints: [{ matchLabels: { kind: 'echo' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ method: 'GET' }] } }, { ports: [{ port: '443', protocol: 'TCP' }] }] },
          ],
        }),
      );
      expect(verdicts(repo, CLIENT, { world: tcp(ip('1.1.1.1'), 80, 'egress'), e80: tcp(id(ECHO), 80, 'egress'), e443: tcp(id(ECHO), 443, 'egress'), e8080: tcp(id(ECHO), 8080, 'egress') })).to.deep.equal({
        world: false,
        e80: false,
        e443: true,
        e8080: false,
      });
      expect(resolvePolicy(repo, { identity: CLIENT }).unsupported.map((u) => u.path)).to.deep.equal(['spec.egress[0].toFQDNs', 'spec.egress[1].toServices', 'spec.egress[2].authentication', 'spec.egress[3].toPorts[0].rules']);
    });

    it('empty lists: toPorts [] means every port (upstream len() == 0), fromEndpoints [] selects nobody', function () {
      const repo = newRepo();
      repo.upsert(cnp('empty', { endpointSelector: { matchLabels: { kind: 'echo' } }, ingress: [{ fromEndpoints: [{ matchLabels: { name: 'client' } }], toPorts: [] }, { fromEndpoints: [], toPorts: [{ ports: [{ port: '9' }] }] }] }));
      expect(verdicts(repo, ECHO, { client: tcp(id(CLIENT), 1234), other9: tcp(id(CLIENT2), 9), world9: tcp(id(WORLD), 9) })).to.deep.equal({ client: true, other9: false, world9: false });
    });

    it('the unsupported parts read as one status / log line', function () {
      const repo = newRepo();
      repo.upsert(cnp('fqdn', { endpointSelector: {}, egress: [{ toFQDNs: [{ matchName: 'a.example' }] }] }));
      expect(unsupportedMessage(resolvePolicy(repo, { identity: ECHO }).unsupported)).to.equal('not enforced (opens nothing): spec.egress[0].toFQDNs: toFQDNs (DNS-based policy) is not supported');
      expect(unsupportedMessage([])).to.equal('');
    });

    it('a nodeSelector (host) rule selects no endpoint and is named', function () {
      const repo = newRepo();
      const change = repo.upsert(ccnp('host-fw', { nodeSelector: {}, ingress: [{ fromEntities: ['cluster'] }] }));
      expect(change.affected.size).to.equal(0);
      expect(repo.get({ kind: 'CiliumClusterwideNetworkPolicy', namespace: '', name: 'host-fw' })?.unsupported).to.deep.equal([{ path: 'spec.nodeSelector', reason: 'host policies (nodeSelector) are not enforced' }]);
    });

    it('errors name the field and leave the repository unchanged', function () {
      const repo = newRepo();
      const bad = cnp('bad', { endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: '99999' }] }] }], egress: [{ toCIDRSet: [{ cidr: '10.0.0.0/16', except: ['10.1.0.0/24'] }] }] });
      expect(() => repo.upsert(bad))
        .to.throw(PolicyParseError)
        .with.property('errors')
        .that.deep.equals([
          { field: 'spec.ingress[0].toPorts[0].ports[0].port', reason: 'port 99999 is outside 0-65535' },
          { field: 'spec.egress[0].toCIDRSet[0].except[0]', reason: '10.1.0.0/24 is not inside 10.0.0.0/16' },
        ]);
      expect(repo.revision).to.equal(1);
      expect(repo.rules()).to.have.length(0);
    });
  });

  describe('repository', function () {
    it('bumps the revision from 1 and reports only the endpoints a change selects', function () {
      const repo = newRepo();
      expect(repo.revision).to.equal(1);
      const c1 = repo.upsert(cnp('echo-only', { endpointSelector: { matchLabels: { kind: 'echo' } }, ingress: [{}] }));
      expect(c1.revision).to.equal(2);
      expect([...c1.affected]).to.deep.equal([ECHO]);
      const c2 = repo.upsert(cnp('echo-only', { endpointSelector: { matchLabels: { kind: 'client' } }, ingress: [{}] }));
      expect([...c2.affected].sort()).to.deep.equal([CLIENT, CLIENT2, ECHO, OTHER_CLUSTER]);
      expect(repo.delete({ kind: 'CiliumNetworkPolicy', namespace: NS, name: 'echo-only' }).revision).to.equal(4);
    });

    it('a new peer identity affects the endpoints whose rules select it, and changes their entries', function () {
      const repo = newRepo();
      repo.upsert(cnp('from-x', { endpointSelector: { matchLabels: { kind: 'echo' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'new' } }] }] }));
      const change = repo.upsertIdentity(2000, podLabels(NS, { app: 'new' }));
      expect([...change.affected].sort()).to.deep.equal([ECHO, 2000]);
      expect(verdicts(repo, ECHO, { fresh: tcp(id(2000), 80) })).to.deep.equal({ fresh: true });
      expect([...repo.removeIdentity(2000).affected].sort()).to.deep.equal([ECHO, 2000]);
      expect(resolvePolicy(repo, { identity: ECHO }).entries.some((e) => e.identity === 2000)).to.equal(false);
    });

    it('entries carry their rule cookie, derived from policy and rule path: kept across updates and restarts, new for a new rule', function () {
      const first = cookieOf('first', 'spec');
      const second = cookieOf('second', 'specs[0]');
      const third = cookieOf('third', 'spec');
      expect(new Set([first, second, third, 0]).size, 'distinct and non-zero').to.equal(4);
      const load = (repo: PolicyRepository) => {
        repo.upsert(cnp('first', { endpointSelector: { matchLabels: { kind: 'echo' } }, ingress: [{ fromEndpoints: [{ matchLabels: { name: 'client' } }] }] }));
        repo.upsert(cnp('second', [{ endpointSelector: { matchLabels: { kind: 'echo' } }, ingressDeny: [{ fromEntities: ['world'] }] }, { endpointSelector: {}, egress: [{}] }]));
      };
      const repo = newRepo();
      load(repo);
      const cookies = (r = repo) => resolvePolicy(r, { identity: ECHO }).entries.map((e) => [e.identity, e.deny, e.cookie]);
      expect(cookies()).to.deep.equal([[CLIENT, false, first], [WORLD, true, second], [HOST, false, undefined]]);
      expect(repo.ruleOfCookie(second)).to.include({ path: 'specs[0]' }).and.nested.include({ 'policy.name': 'second' });
      repo.upsert(cnp('first', { endpointSelector: { matchLabels: { kind: 'echo' } }, ingress: [{ fromEndpoints: [{ matchLabels: { name: 'client2' } }] }] }));
      expect(cookies()).to.deep.equal([[CLIENT2, false, first], [WORLD, true, second], [HOST, false, undefined]]);
      repo.delete({ kind: 'CiliumNetworkPolicy', namespace: NS, name: 'first' });
      repo.upsert(cnp('third', { endpointSelector: { matchLabels: { kind: 'echo' } }, ingress: [{ fromEndpoints: [{ matchLabels: { name: 'client' } }] }] }));
      expect(cookies().map(([, , c]) => c)).to.have.members([second, third, undefined]);
      expect(repo.ruleOfCookie(first)).to.equal(undefined);
      // A restarted agent loads the same policies in another order and writes the same cookies.
      const restarted = newRepo();
      repo.delete({ kind: 'CiliumNetworkPolicy', namespace: NS, name: 'third' });
      restarted.upsert(cnp('second', [{ endpointSelector: { matchLabels: { kind: 'echo' } }, ingressDeny: [{ fromEntities: ['world'] }] }, { endpointSelector: {}, egress: [{}] }]));
      restarted.upsert(cnp('first', { endpointSelector: { matchLabels: { kind: 'echo' } }, ingress: [{ fromEndpoints: [{ matchLabels: { name: 'client2' } }] }] }));
      repo.upsert(cnp('first', { endpointSelector: { matchLabels: { kind: 'echo' } }, ingress: [{ fromEndpoints: [{ matchLabels: { name: 'client2' } }] }] }));
      expect(cookies(restarted)).to.deep.equal(cookies());
    });

    it('allocates CIDR identities deterministically, shares them, releases and reuses them', function () {
      const repo = newRepo();
      repo.upsert(cnp('a', { endpointSelector: {}, egress: [{ toCIDR: ['10.0.0.0/8', '192.168.0.0/16'] }] }));
      repo.upsert(cnp('b', { endpointSelector: {}, egress: [{ toCIDR: ['192.168.0.0/16'] }, { toEntities: ['world'] }] }));
      expect(repo.ipcacheEntries()).to.deep.equal([
        { prefix: '10.0.0.0/8', identity: 16777217 },
        { prefix: '192.168.0.0/16', identity: 16777218 },
      ]);
      // b's world peer now includes 10.0.0.0/8's identity; deleting a removes it from b's entries.
      expect(resolvePolicy(repo, { identity: CLIENT }).entries.some((e) => e.identity === 16777217)).to.equal(true);
      const del = repo.delete({ kind: 'CiliumNetworkPolicy', namespace: NS, name: 'a' });
      expect(del.affected.has(CLIENT)).to.equal(true);
      expect(repo.ipcacheEntries()).to.deep.equal([{ prefix: '192.168.0.0/16', identity: 16777218 }]);
      expect(resolvePolicy(repo, { identity: CLIENT }).entries.some((e) => e.identity === 16777217)).to.equal(false);
      repo.upsert(cnp('c', { endpointSelector: {}, egress: [{ toCIDR: ['172.16.0.0/12'] }] }));
      expect(repo.ipcacheEntries()).to.deep.include({ prefix: '172.16.0.0/12', identity: 16777217 });
    });
  });
});
