// `cilium connectivity test` for cilium-ts (issue 9 §3), against the local cluster: each test
// applies upstream-style policies, waits until every node realized them, runs its scenarios and
// judges every action by the traffic's exit code and by the drop events of the node agents'
// monitor streams (reason, direction, endpoint, identities). Actions are grouped by where the
// destination is: same-node, cross-node (skipped, saying so, on a one-node cluster) and outside
// (the `cts-world` peer). Each test then checks that the datapath dropped
// nothing of the suite's pods it did not expect, and the suite ends with upstream's
// no-unexpected-packet-drops on every node's drop counters.
import { expect } from 'chai';
import { reasonName } from '../../controllers/cli/text/datapath-names.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { clusterCommand, kubectl, stopLocalCluster, waitFor } from '../node/cluster.js';
import {
  egressDrop,
  inParallel,
  ingressDrop,
  isExpectedDrop,
  judge,
  localityOf,
  OK,
  POLICY_DENY,
  isOfConnection,
  type Action,
  type Judged,
  type Locality,
  type Verdict,
} from './actions.js';
import { useConnectivityCluster, type ConnectivityCluster } from './cluster.js';
import { describeDrop, DropCollector, dropCountDelta, readDropCounts, type DropCounts } from './drops.js';
import * as m from './manifests.js';
import { PolicySet, type PolicyManifest } from './policies.js';
import {
  clientToClient,
  ID_HOST,
  ID_REMOTE_NODE,
  inTestNs,
  isClient,
  isEcho,
  peers,
  podToCIDR,
  podToHost,
  podToPod,
  podToPodPing,
  podToRemoteNode,
  podToWorld,
  type Suite,
} from './scenarios.js';
import { deployWorkloads, HTTP_PORT, OTHER_HTTP_PORT, type Peer, type Workloads } from './workloads.js';

/** upstream defaults.ExpectedDropReasons: drops no-unexpected-packet-drops tolerates. */
const EXPECTED_DROP_REASONS = new Set([
  'Policy denied',
  'Policy denied by denylist',
  'Unsupported L2 protocol',
  'Unsupported L3 protocol',
  'Stale or unroutable IP',
  'Authentication required',
  'Service backend not found',
  'Unsupported protocol for NAT masquerade',
  'Invalid source ip',
  'Unknown L3 target address',
  'Host datapath not ready',
  'Unknown ICMPv4 code',
  'Unknown ICMPv6 code',
  'Forbidden ICMPv6 message',
  'No egress gateway found',
]);

const PARALLEL_ACTIONS = 4;

interface ConnectivityTest {
  name: string;
  policies(s: Suite): PolicyManifest[];
  scenarios(s: Suite): Action[];
  expect(a: Action, s: Suite): Verdict;
}

const ns = (s: Suite) => s.workloads.namespace;
const toEcho = (a: Action) => a.to.peer !== undefined && isEcho(a.to.peer);
const toTestNsPeer = (a: Action, s: Suite) => a.to.peer !== undefined && inTestNs(s)(a.to.peer);
const port = (a: Action) => (a.probe.kind === 'http' ? a.probe.port : undefined);
const withPort = (s: Suite, p: number) => podToPod(s, { port: p });
const otherNsEchoes = (s: Suite) => podToPod(s, { echoes: peers(s, (p) => isEcho(p) && !inTestNs(s)(p)) });

const TESTS: ConnectivityTest[] = [
  {
    name: 'no-policies',
    policies: () => [],
    scenarios: (s) => [...podToPod(s), ...otherNsEchoes(s), ...clientToClient(s), ...podToHost(s), ...podToRemoteNode(s), ...podToWorld(s)],
    expect: () => OK,
  },
  {
    // Egress is not enforced and world's replies are replies: only pods behind the deny lose.
    name: 'all-ingress-deny',
    policies: (s) => [m.denyAllIngress(ns(s))],
    scenarios: (s) => [...podToPod(s), ...otherNsEchoes(s), ...clientToClient(s), ...podToHost(s), ...podToWorld(s)],
    expect: (a, s) => (toTestNsPeer(a, s) ? ingressDrop() : OK),
  },
  {
    name: 'all-egress-deny',
    policies: (s) => [m.denyAllEgress(ns(s))],
    scenarios: (s) => [...podToPod(s), ...otherNsEchoes(s), ...clientToClient(s), ...podToHost(s), ...podToRemoteNode(s), ...podToWorld(s)],
    expect: () => egressDrop(),
  },
  {
    name: 'client-egress-to-echo',
    policies: (s) => [m.clientEgressToEcho(ns(s))],
    scenarios: (s) => [...podToPod(s), ...withPort(s, OTHER_HTTP_PORT), ...otherNsEchoes(s), ...clientToClient(s)],
    expect: (a, s) => (toEcho(a) && toTestNsPeer(a, s) && port(a) === HTTP_PORT ? OK : egressDrop()),
  },
  {
    name: 'echo-ingress',
    policies: (s) => [m.echoIngressFromClient(ns(s))],
    scenarios: (s) => [
      ...podToPod(s),
      ...withPort(s, OTHER_HTTP_PORT),
      // Echo pods of the other namespace are no clients, and not of the policy's namespace.
      ...podToPod(s, { sources: peers(s, (p) => isEcho(p) && !inTestNs(s)(p)) }),
    ],
    expect: (a) => (isClient(a.from) && port(a) === HTTP_PORT ? OK : ingressDrop()),
  },
  {
    name: 'echo-ingress-from-other-client-deny',
    policies: (s) => [m.allowAllEgress(ns(s)), m.allowAllIngress(ns(s)), m.echoIngressFromOtherClientDeny(ns(s))],
    scenarios: (s) => [...podToPod(s), ...clientToClient(s)],
    expect: (a) => (a.from.labels.other === 'client' && toEcho(a) ? ingressDrop(POLICY_DENY) : OK),
  },
  {
    // upstream client-ingress (client-ingress-from-client2.yaml)
    name: 'client-ingress-from-client2',
    policies: (s) => [m.clientIngressFromClient2(ns(s))],
    scenarios: (s) => clientToClient(s),
    expect: (a) => (a.from.labels.other === 'client' ? OK : ingressDrop()),
  },
  {
    name: 'echo-ingress-named-port',
    policies: (s) => [m.echoIngressNamedPort(ns(s))],
    scenarios: (s) => [...podToPod(s), ...withPort(s, OTHER_HTTP_PORT)],
    expect: (a) => (port(a) === HTTP_PORT ? OK : ingressDrop()),
  },
  {
    name: 'client-ingress-to-echo-named-port-deny',
    policies: (s) => [m.allowAllIngress(ns(s)), m.clientIngressToEchoNamedPortDeny(ns(s))],
    scenarios: (s) => [...podToPod(s), ...withPort(s, OTHER_HTTP_PORT)],
    expect: (a) => (a.from.name === 'client' && port(a) === HTTP_PORT ? ingressDrop(POLICY_DENY) : OK),
  },
  {
    name: 'client-egress-to-echo-port-range',
    policies: (s) => [m.clientEgressToEchoPortRange(ns(s))],
    scenarios: (s) => [...podToPod(s), ...withPort(s, OTHER_HTTP_PORT)],
    expect: (a) => (port(a) === HTTP_PORT ? OK : egressDrop()),
  },
  {
    name: 'client-egress-to-echo-deny-port-range',
    policies: (s) => [m.allowAllEgress(ns(s)), m.clientEgressToEchoDenyPortRange(ns(s))],
    scenarios: (s) => [...podToPod(s), ...withPort(s, OTHER_HTTP_PORT)],
    expect: (a) => (port(a) === HTTP_PORT ? egressDrop(POLICY_DENY) : OK),
  },
  {
    // upstream host-entity-egress
    name: 'to-entities-host',
    policies: (s) => [m.clientEgressToEntities(ns(s), 'host')],
    scenarios: (s) => [...podToHost(s), ...podToRemoteNode(s), ...podToPod(s)],
    expect: (a) => (a.to.identity === ID_HOST ? OK : egressDrop()),
  },
  {
    name: 'to-entities-remote-node',
    policies: (s) => [m.clientEgressToEntities(ns(s), 'remote-node')],
    scenarios: (s) => [...podToHost(s), ...podToRemoteNode(s), ...podToPod(s)],
    expect: (a) => (a.to.identity === ID_REMOTE_NODE ? OK : egressDrop()),
  },
  {
    // upstream cluster-entity: every identity of the cluster, host and remote nodes too, never world.
    name: 'to-entities-cluster',
    policies: (s) => [m.clientEgressToEntities(ns(s), 'cluster')],
    scenarios: (s) => [...podToPod(s), ...otherNsEchoes(s), ...podToHost(s), ...podToRemoteNode(s), ...podToWorld(s)],
    expect: (a) => (a.to.node === undefined ? egressDrop() : OK),
  },
  {
    name: 'to-entities-world',
    policies: (s) => [m.clientEgressToEntitiesWorld(ns(s), s.cluster.world)],
    scenarios: (s) => [...podToWorld(s), ...podToPod(s), ...podToHost(s)],
    expect: (a) => (a.to.node === undefined ? OK : egressDrop()),
  },
  {
    // upstream to-cidr-external: toCIDRSet with except.
    name: 'to-cidr-external',
    policies: (s) => [m.clientEgressToCidrExternal(ns(s), s.cluster.world)],
    scenarios: (s) => [...podToCIDR(s), ...podToPod(s)],
    expect: (a) => (a.to.name === 'world' ? OK : egressDrop()),
  },
  {
    // upstream egress-to-specific-namespace-ccnp: a CCNP selecting the test namespace's clients, allowing the other namespace.
    name: 'ccnp-egress-to-specific-namespace',
    policies: (s) => [m.allowEgressSpecificNsCcnp(ns(s), s.workloads.otherNamespace)],
    scenarios: (s) => [...podToPod(s), ...otherNsEchoes(s)],
    expect: (a, s) => (toTestNsPeer(a, s) ? egressDrop() : OK),
  },
  {
    name: 'enable-default-deny-off',
    policies: (s) => [m.echoIngressFromClientNoDefaultDeny(ns(s))],
    scenarios: (s) => [...podToPod(s), ...podToPod(s, { sources: peers(s, (p) => isEcho(p) && !inTestNs(s)(p)) })],
    expect: () => OK,
  },
  {
    name: 'deny-only-policy',
    policies: (s) => [m.echoIngressDenyClient2(ns(s), true)],
    scenarios: (s) => podToPod(s),
    expect: (a) => (a.from.name === 'client2' ? ingressDrop(POLICY_DENY) : ingressDrop()),
  },
  {
    name: 'deny-only-policy-default-deny-off',
    policies: (s) => [m.echoIngressDenyClient2(ns(s), false)],
    scenarios: (s) => podToPod(s),
    expect: (a) => (a.from.name === 'client2' ? ingressDrop(POLICY_DENY) : OK),
  },
  {
    name: 'client-egress-icmp',
    policies: (s) => [m.clientEgressIcmp(ns(s))],
    scenarios: (s) => [...podToPodPing(s), ...podToPod(s), ...clientToClient(s)],
    expect: (a) => (toEcho(a) && a.probe.kind === 'ping' ? OK : egressDrop()),
  },
];

const LOCALITIES: Locality[] = ['same-node', 'cross-node', 'outside'];

function summarize(results: Judged[]): string {
  const failed = results.filter((r) => r.failure !== undefined);
  return `${results.length - failed.length}/${results.length} actions passed${failed.map((f) => `\n  FAIL ${f.failure}`).join('')}`;
}

describe('connectivity test (upstream cilium connectivity test, on the local cluster)', function () {
  this.timeout(300_000);
  let cluster: ConnectivityCluster | undefined;
  let workloads: Workloads | undefined;
  let collector: DropCollector | undefined;
  let countsAtStart: DropCounts | undefined;
  const suite = (): Suite => ({ cluster: cluster as ConnectivityCluster, workloads: workloads as Workloads });

  before(async function () {
    this.timeout(900_000);
    cluster = await useConnectivityCluster();
    console.log(`    cluster: ${cluster.nodes.map((n) => `${n.name} ${n.ip}`).join(', ')}; routing ${cluster.routingMode}; world ${cluster.world.ip}`);
    workloads = await deployWorkloads(cluster);
    collector = new DropCollector(cluster.nodes);
    await collector.start();
    countsAtStart = readDropCounts(cluster.nodes);
  });

  after(async function () {
    this.timeout(600_000);
    try {
      await collector?.stop();
      await workloads?.cleanup();
    } finally {
      await stopLocalCluster(cluster);
    }
  });

  for (const t of TESTS) {
    describe(t.name, function () {
      let policySet: PolicySet | undefined;
      let started = 0;
      let actions: Array<{ action: Action; verdict: Verdict }> = [];
      const results: Judged[] = [];

      before(async function () {
        this.timeout(120_000);
        const s = suite();
        started = Date.now();
        policySet = new PolicySet(s.cluster);
        await policySet.apply(t.policies(s));
        actions = t.scenarios(s).map((action) => ({ action, verdict: t.expect(action, s) }));
      });

      after(async function () {
        this.timeout(120_000);
        await policySet?.remove();
      });

      for (const where of LOCALITIES) {
        it(where, async function () {
          const mine = actions.filter((a) => localityOf(a.action) === where);
          if (mine.length === 0) {
            const why = where === 'cross-node' && suite().cluster.nodes.length === 1 ? 'the cluster has one node' : `${t.name} has no ${where} action`;
            console.log(`      skipped: ${why}`);
            this.skip();
          }
          const judged = await inParallel(mine, PARALLEL_ACTIONS, (a) => judge(suite().cluster, collector as DropCollector, a.action, a.verdict));
          results.push(...judged);
          (collector as DropCollector).assertHealthy();
          const text = summarize(judged);
          console.log(`      ${text.split('\n')[0]}`);
          expect(judged.flatMap((r) => r.failure ?? []), text.split('\n')[0]).to.deep.equal([]);
        });
      }

      it('drops nothing of the suite\'s pods it does not expect', function () {
        const ips = new Set((workloads as Workloads).peers.map((p: Peer) => p.ip));
        const failed = results.filter((r) => r.failure !== undefined).map((r) => r.action);
        const unexpected = (collector as DropCollector)
          .since(started)
          .filter((d) => ips.has(d.event.packet.srcIp) || ips.has(d.event.packet.dstIp))
          .filter((d) => !actions.some(({ action, verdict }) => !verdict.ok && isExpectedDrop(action, verdict, d)))
          .filter((d) => !failed.some((a) => isOfConnection(a, d)));
        expect(unexpected.map(describeDrop), `drops none of the ${actions.length} actions of ${t.name} expected`).to.deep.equal([]);
      });
    });
  }

  // issue 9: a node's agent killed and started again. An established cross-node TCP connection
  // (client on one node to client3 on the other, which no policy selects) keeps carrying data,
  // and right after each restart echo-ingress is enforced on both nodes as before, drops included.
  describe('agent-restart', function () {
    const echoIngress = TESTS.find((t) => t.name === 'echo-ingress') as ConnectivityTest;
    const STREAM_PORT = 7000;
    let policySet: PolicySet | undefined;
    const children: ChildProcess[] = [];
    let receiver: Peer | undefined;

    const received = async (): Promise<number> => {
      const r = await kubectl(suite().cluster, ['exec', '-n', receiver!.namespace, receiver!.pod, '--', 'sh', '-c', 'wc -l < /root/restart-stream']);
      return r.code === 0 ? Number(r.stdout.trim()) : 0;
    };
    const execIn = (peer: Peer, script: string): ChildProcess => {
      const kubeconfig = suite().cluster.kubeconfigPath;
      const child = spawn(`${process.cwd()}/.local/bin/kubectl`, ['--kubeconfig', kubeconfig, 'exec', '-n', peer.namespace, peer.pod, '--', 'sh', '-c', script], { stdio: 'ignore' });
      children.push(child);
      return child;
    };

    before(async function () {
      this.timeout(120_000);
      const s = suite();
      if (s.cluster.nodes.length < 2) return;
      policySet = new PolicySet(s.cluster);
      await policySet.apply(echoIngress.policies(s));
    });

    after(async function () {
      this.timeout(120_000);
      for (const c of children) c.kill('SIGKILL');
      const s = suite();
      for (const p of s.workloads.peers.filter((x) => x.name === 'client' || x.name === 'client3')) {
        await kubectl(s.cluster, ['exec', '-n', p.namespace, p.pod, '--', 'sh', '-c', "kill $(ps | awk '/[n]c /{print $1}') 2>/dev/null; rm -f /root/restart-stream; true"]);
      }
      await policySet?.remove();
    });

    it('keeps an established cross-node connection and enforces policy on both nodes across agent restarts', async function () {
      this.timeout(300_000);
      const s = suite();
      if (s.cluster.nodes.length < 2) {
        console.log('      skipped: the cluster has one node');
        this.skip();
      }
      const inNs = s.workloads.peers.filter(inTestNs(s));
      const sender = inNs.find((p) => p.name === 'client') as Peer;
      const to = inNs.find((p) => p.name === 'client3') as Peer;
      receiver = to;
      expect(sender.node, 'the connection crosses nodes').to.not.equal(to.node);
      // nc ends the connection once its stdin ends: the receiver's never does.
      execIn(to, `sleep 100000 | nc -l -p ${STREAM_PORT} > /root/restart-stream`);
      await waitFor('the receiver listening', async () => ((await kubectl(s.cluster, ['exec', '-n', to.namespace, to.pod, '--', 'sh', '-c', `netstat -ltn | grep -q :${STREAM_PORT}`])).code === 0 ? true : undefined), 30_000);
      const sending = execIn(sender, `while :; do echo tick; sleep 0.1; done | nc ${to.ip} ${STREAM_PORT}`);
      await waitFor('the connection carrying data', async () => ((await received()) >= 5 ? true : undefined), 30_000);

      const actions = echoIngress.scenarios(s).map((action) => ({ action, verdict: echoIngress.expect(action, s) }));
      for (const node of [to.node, sender.node]) {
        const restart = await clusterCommand(['restart-agent', node]);
        expect(restart.code, `restart-agent ${node}: ${restart.stdout}${restart.stderr}`).to.equal(0);
        await (collector as DropCollector).reopen(node);
        const before = await received();
        await waitFor(`data still flowing after ${node}'s agent restarted`, async () => ((await received()) >= before + 10 ? true : undefined), 30_000);
        expect(sending.exitCode, 'the sender\'s connection never broke').to.equal(null);
        const judged = await inParallel(actions, PARALLEL_ACTIONS, (a) => judge(s.cluster, collector as DropCollector, a.action, a.verdict));
        const text = summarize(judged);
        console.log(`      after restarting ${node}'s agent: echo-ingress ${text.split('\n')[0]}`);
        expect(judged.flatMap((r) => r.failure ?? []), text.split('\n')[0]).to.deep.equal([]);
      }
    });
  });

  describe('no-unexpected-packet-drops', function () {
    it('each node\'s drop counters grew only for reasons upstream expects', function () {
      const s = suite();
      const delta = dropCountDelta(countsAtStart as DropCounts, readDropCounts(s.cluster.nodes));
      console.log(`      drops during the suite: ${delta.map((d) => `${d.node} ${d.reason} (${reasonName(d.reason)}) ×${d.count}`).join(', ') || 'none'}`);
      const unexpected = delta.filter((d) => !EXPECTED_DROP_REASONS.has(reasonName(d.reason)));
      expect(unexpected.map((d) => `${d.node}: ${d.count} × ${d.reason} (${reasonName(d.reason)})`)).to.deep.equal([]);
    });
  });
});
