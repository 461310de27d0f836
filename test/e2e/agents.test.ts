// End to end on the real apiserver and kernel: an operator and two agents (nodes e2e-node-a and
// e2e-node-b) in this process, pods as network namespaces registered through each node's endpoint
// manager. Policies applied with kubectl change real TCP and ICMP connectivity between the nodes'
// pods, `kubectl get cep` shows what the agents realized, identities are shared across nodes and
// collected by the operator once unused, an agent restart (also SIGKILL) changes nothing it
// enforces, the operator fails over, an apiserver outage keeps enforcement, and pod churn leaves
// nothing behind.
import { expect } from 'chai';
import type { CiliumEndpoint } from '../../crds/gen/index.js';
import type { AgentDaemon } from '../../controllers/agent/daemon.js';
import { isNotFound } from '../../controllers/runtime/apiclient.js';
import { DEFAULT_NODE_UPDATE_INTERVAL_MS } from '../../controllers/agent/node/registration.js';
import { ciliumEndpoints, ciliumIdentities, collectionPath, objectPath } from '../../controllers/runtime/kinds.js';
import type { DropEvent } from '../../datapath/types.js';
import { IPPROTO_ICMP, IPPROTO_TCP } from '../../datapath/maps/protocols.js';
import { ChildSet } from '../datapath/children.js';
import { EventLog } from '../datapath/event-log.js';
import { DROP_POLICY, isDrop, ping } from '../datapath/harness.js';
import { PodAgent } from '../datapath/pod-agent.js';
import { pollUntil } from '../envtest/poll.js';
import { E2ECluster, IDENTITY_HEARTBEAT_MS, NODE_A, NODE_B, type PodHandle } from './harness.js';

const PORT = 8080;
const ALLOWED_WAIT_MS = 5000;
const DENIED_WAIT_MS = 1500;
const CONVERGE_MS = 15_000;
/** The count the issue asks for (about 75 s here); E2E_CYCLES sets fewer for a quick run. */
const CYCLES = Number(process.env.E2E_CYCLES ?? 1000);
const OUTAGE_MS = Number(process.env.E2E_OUTAGE_MS ?? 30_000);
/** The test operators' leader-election lease (harness OPERATOR_ARGS). */
const LEASE_MS = 2000;

/** kubectl's table output as one record per row, keyed by the header's column names. */
function parseTable(out: string): Record<string, string>[] {
  const [header, ...lines] = out.split('\n').filter((l) => l.trim() !== '');
  if (header === undefined) return [];
  // Columns start where a header name starts after two spaces (names like "ENDPOINT ID" hold one).
  const starts = [0, ...[...header.matchAll(/ {2,}(?=\S)/g)].map((m) => m.index + m[0].length)];
  const names = starts.map((s, i) => header.slice(s, starts[i + 1]).trim());
  return lines.map((line) => Object.fromEntries(names.map((n, i) => [n, line.slice(starts[i], starts[i + 1]).trim()])));
}

/** Polls an async check until it holds; fails naming `what` after `timeoutMs`. */
async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = CONVERGE_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('e2e: two agents and an operator (real apiserver, kernel, netns pods)', function () {
  this.timeout(120_000);
  let cluster: E2ECluster;
  const children = new ChildSet();
  const podAgents: PodAgent[] = [];
  const eventLogs: EventLog[] = [];

  before(async function () {
    this.timeout(60_000);
    cluster = await E2ECluster.start();
  });
  afterEach(async () => {
    await Promise.all(eventLogs.splice(0).map((l) => l.stop()));
    await Promise.all(podAgents.splice(0).map((a) => a.stop()));
    await children.killAll();
  });
  after(async function () {
    this.timeout(60_000);
    await cluster?.destroy();
  });

  const startPodAgent = async (pod: PodHandle): Promise<PodAgent> => {
    const agent = await PodAgent.start(pod.net, pod.slot, children);
    podAgents.push(agent);
    return agent;
  };
  const events = (node: string): EventLog => {
    const log = new EventLog(cluster.agent(node).datapath);
    eventLogs.push(log);
    return log;
  };
  // Agents write CiliumEndpoints asynchronously: absent is undefined, for the polls below.
  const cep = (name: string) =>
    cluster.client.request<CiliumEndpoint>('GET', objectPath(ciliumEndpoints, name, cluster.namespace)).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
  const ingressEnforced = (node: string, pod: PodHandle): boolean => cluster.agent(node).datapath.endpointPolicy(pod.endpoint.id).realized?.enforcement.ingress === true;

  const named = (id: number) => cluster.client.request('GET', objectPath(ciliumIdentities, String(id))).then(
    () => true,
    () => false,
  );
  const allowTcp = (name: string, to: string, from: string) => ({
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumNetworkPolicy',
    metadata: { name, namespace: cluster.namespace },
    spec: { endpointSelector: { matchLabels: { app: to } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: from } }], toPorts: [{ ports: [{ port: String(PORT), protocol: 'TCP' }] }] }] },
  });
  const cnp = (name: string, ingress: object[]) => ({
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumNetworkPolicy',
    metadata: { name, namespace: cluster.namespace },
    spec: { endpointSelector: { matchLabels: { app: 'server' } }, ingress },
  });

  it('kubectl-applied policies change real TCP and ICMP between pods on two nodes; kubectl get cep shows the endpoints', async () => {
    const [client] = await cluster.addPods(NODE_A, [{ name: 'client', labels: { app: 'client' } }]);
    const [server] = await cluster.addPods(NODE_B, [{ name: 'server', labels: { app: 'server' } }]);
    const clientAgent = await startPodAgent(client!);
    const serverAgent = await startPodAgent(server!);
    await serverAgent.listen(PORT);
    const tcp = (wait: number) => clientAgent.canConnect(server!.ip, PORT, wait);
    const icmp = () => ping(client!.net, client!.slot, server!.ip);

    // No policy selects the server: everything passes.
    expect(await tcp(ALLOWED_WAIT_MS), 'TCP without policy').to.equal(true);
    expect(await icmp(), 'ping without policy').to.equal(true);

    // kubectl get cep -A: both rows with id, identity, enforcement, state and IPv4.
    await eventually('both CiliumEndpoints ready', async () => (await Promise.all(['client', 'server'].map(cep))).every((c) => c?.status?.state === 'ready'));
    const rows = parseTable(await cluster.kubectl(['get', 'cep', '-A'])).filter((r) => r.NAMESPACE === cluster.namespace);
    expect(rows.map((r) => r.NAME).sort(), 'kubectl get cep -A rows of the test namespace').to.deep.equal(['client', 'server']);
    for (const pod of [client!, server!]) {
      expect(rows.find((r) => r.NAME === pod.name), `kubectl get cep row of ${pod.name}`).to.deep.include({
        'ENDPOINT ID': String(pod.endpoint.id),
        'IDENTITY ID': String(pod.endpoint.identity),
        'INGRESS ENFORCEMENT': 'false',
        'EGRESS ENFORCEMENT': 'false',
        'ENDPOINT STATE': 'ready',
        IPV4: pod.ip,
      });
    }

    // Ingress to the server only from app=other: the client's TCP and ping drop on node B (133).
    const nodeBEvents = events(NODE_B);
    await cluster.kubectlApply(cnp('server-from-other', [{ fromEndpoints: [{ matchLabels: { app: 'other' } }] }]));
    await pollUntil('node B enforces ingress on the server', () => ingressEnforced(NODE_B, server!), CONVERGE_MS);
    expect(await tcp(DENIED_WAIT_MS), 'TCP from client under from-other policy').to.equal(false);
    expect(await icmp(), 'ping from client under from-other policy').to.equal(false);
    const drop = await nodeBEvents.waitFor(
      'policy drop of the client TCP SYN on node B',
      (e): e is DropEvent => isDrop(e) && e.reason === DROP_POLICY && e.packet.srcIp === client!.ip && e.packet.protocol === IPPROTO_TCP && e.packet.dstPort === PORT,
    );
    expect(drop).to.deep.include({ srcIdentity: client!.endpoint.identity, dstIdentity: server!.endpoint.identity, endpointId: server!.endpoint.id });
    await nodeBEvents.waitFor('policy drop of the client ping on node B', (e): e is DropEvent => isDrop(e) && e.reason === DROP_POLICY && e.packet.srcIp === client!.ip && e.packet.protocol === IPPROTO_ICMP);
    await eventually('server CEP shows ingress enforcing', async () => (await cep('server'))?.status?.policy?.ingress?.enforcing === true);

    // Allow app=client on TCP 8080: TCP passes, ICMP still drops.
    await cluster.kubectlApply(cnp('server-from-client-tcp', [{ fromEndpoints: [{ matchLabels: { app: 'client' } }], toPorts: [{ ports: [{ port: String(PORT), protocol: 'TCP' }] }] }]));
    await eventually('client TCP allowed by port policy', () => tcp(ALLOWED_WAIT_MS));
    expect(await icmp(), 'ping from client under TCP-only policy').to.equal(false);

    // Both deleted: the server is no longer selected and everything passes again.
    await cluster.kubectl(['delete', 'cnp', 'server-from-other', 'server-from-client-tcp', '-n', cluster.namespace]);
    await pollUntil('node B stops enforcing ingress on the server', () => !ingressEnforced(NODE_B, server!), CONVERGE_MS);
    expect(await tcp(ALLOWED_WAIT_MS), 'TCP after the policies are deleted').to.equal(true);
    expect(await icmp(), 'ping after the policies are deleted').to.equal(true);
  });

  it('pods with the same labels on two nodes share one identity', async () => {
    const labels = { app: 'shared', tier: 'web' };
    const [a] = await cluster.addPods(NODE_A, [{ name: 'shared-a', labels }]);
    const [b] = await cluster.addPods(NODE_B, [{ name: 'shared-b', labels }]);
    expect(a!.endpoint.identity, 'identity of the pod on node A').to.be.above(255);
    expect(b!.endpoint.identity, 'identity of the pod on node B').to.equal(a!.endpoint.identity);
    await eventually('both CEPs show the identity', async () => (await Promise.all(['shared-a', 'shared-b'].map(cep))).every((c) => c?.status?.identity?.id === a!.endpoint.identity));
    const shared = (await cluster.identities()).filter((ci) => ci['security-labels']['k8s:app'] === 'shared');
    expect(shared.map((ci) => ci.metadata.name), 'CiliumIdentities with app=shared').to.deep.equal([String(a!.endpoint.identity)]);
  });

  it('a pod label change moves the endpoint to a new identity; the operator collects the old one after the grace', async () => {
    const [pod] = await cluster.addPods(NODE_A, [{ name: 'mover', labels: { app: 'mover-1' } }]);
    const oldId = pod!.endpoint.identity;
    expect(await named(oldId), 'the first identity exists').to.equal(true);
    const changedAt = Date.now();
    await cluster.patchPodLabels('mover', { app: 'mover-2' });
    await pollUntil('the endpoint moves to a new identity', () => (cluster.agent(NODE_A).endpoints.get(pod!.endpoint.id)?.identity ?? oldId) !== oldId, CONVERGE_MS);
    const newId = cluster.agent(NODE_A).endpoints.get(pod!.endpoint.id)!.identity;
    const [newIdentity] = (await cluster.identities()).filter((ci) => ci.metadata.name === String(newId));
    expect(newIdentity?.['security-labels']['k8s:app'], 'labels of the new identity').to.equal('mover-2');
    expect(cluster.agent(NODE_A).datapath.endpointPolicy(pod!.endpoint.id).open, 'endpoint open after the move').to.equal(true);
    await eventually('the CEP shows the new identity', async () => (await cep('mover'))?.status?.identity?.id === newId);
    await eventually('the operator deletes the old identity', async () => !(await named(oldId)), IDENTITY_HEARTBEAT_MS + CONVERGE_MS);
    // Not before the heartbeat timeout (1 s of slack: the mark has whole-second precision).
    expect(Date.now() - changedAt, 'time from the label change to the deletion').to.be.at.least(IDENTITY_HEARTBEAT_MS - 1000);
    expect(await named(newId), 'the new identity stays').to.equal(true);
  });

  it('an agent restart (stop, and SIGKILL) writes no map entry, changes no identity and keeps a TCP stream flowing', async () => {
    const [client] = await cluster.addPods(NODE_A, [{ name: 'stream-client', labels: { app: 'stream-client' } }]);
    const [server] = await cluster.addPods(NODE_B, [{ name: 'stream-server', labels: { app: 'stream-server' } }]);
    // Policy on both sides, so the restarted node has something to enforce and to keep.
    await cluster.kubectlApply(allowTcp('stream', 'stream-server', 'stream-client'));
    await cluster.kubectlApply({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'stream-egress', namespace: cluster.namespace },
      spec: { endpointSelector: { matchLabels: { app: 'stream-client' } }, egress: [{ toEndpoints: [{ matchLabels: { app: 'stream-server' } }] }] },
    });
    await pollUntil('node A enforces egress on the client', () => cluster.agent(NODE_A).datapath.endpointPolicy(client!.endpoint.id).realized?.enforcement.egress === true, CONVERGE_MS);
    await pollUntil('node B enforces ingress on the server', () => ingressEnforced(NODE_B, server!), CONVERGE_MS);
    const clientAgent = await startPodAgent(client!);
    const serverAgent = await startPodAgent(server!);
    await serverAgent.listen(PORT);
    await eventually('the stream connection opens', () => clientAgent.open('s', server!.ip, PORT).then(() => true, () => false));
    await clientAgent.startStream('s');
    const bytesIn = async () => (await serverAgent.serverStats(PORT)).bytesIn;
    const grows = async (what: string) => {
      const from = await bytesIn();
      await eventually(`bytes arriving ${what}`, async () => (await bytesIn()) > from, 5000);
    };

    const identitiesNow = async () => (await cluster.identities()).map((ci) => `${ci.metadata.name}@${ci.metadata.resourceVersion}`).sort();
    const identitiesBefore = await identitiesNow();
    const before = cluster.agent(NODE_A).endpoints.list();
    const policies = (daemon: AgentDaemon) => before.map((e) => daemon.datapath.endpointPolicy(e.id));
    const policiesBefore = policies(cluster.agent(NODE_A));
    await grows('before the restarts');

    for (const how of ['stop', 'SIGKILL'] as const) {
      await cluster.stopAgent(NODE_A);
      // SIGKILL: a second agent (its own process) restores the node, then dies without any shutdown.
      if (how === 'SIGKILL') await cluster.killedAgentProcess(NODE_A);
      await grows(`while the agent is down (${how})`);
      const restarted = (await cluster.startAgent(NODE_A)).daemon;
      expect(restarted.restoreReport, `restore report after ${how}`).to.deep.include({ restored: before.map((e) => e.id), pruned: [], problems: [] });
      expect(restarted.endpoints.list().map((e) => [e.id, e.identity, e.ipv4, e.state]), `endpoints after ${how}`).to.deep.equal(before.map((e) => [e.id, e.identity, e.ipv4, 'ready']));
      await grows(`after the restart (${how})`);
      // Long enough for the policy, ipcache and node loops to have synced at least once.
      await new Promise((r) => setTimeout(r, 2000));
      expect(policies(restarted), `realized policies after ${how}`).to.deep.equal(policiesBefore);
      expect(restarted.datapath.mapWrites(), `map writes after ${how}`).to.deep.equal({});
      expect(await identitiesNow(), `CiliumIdentities (name@resourceVersion) after ${how}`).to.deep.equal(identitiesBefore);
    }
    const count = await clientAgent.stopStream('s');
    expect(count.mismatches, 'stream bytes out of order').to.equal(0);
    expect(count.received, 'stream bytes echoed back').to.equal(count.sent);
    expect(count.sent, 'stream bytes sent').to.be.above(0);
    await cluster.kubectl(['delete', 'cnp', 'stream', 'stream-egress', '-n', cluster.namespace]);
  });

  it('operator failover: a standby takes the Lease when the leader stops and does its work from then on', async () => {
    const { standbyLedEarly, takeoverMs } = await cluster.failoverOperator();
    expect(standbyLedEarly, 'the standby led while the leader ran').to.equal(false);
    expect(takeoverMs, 'ms from the leader stop to the standby leading').to.be.below(LEASE_MS + 2000);
    // Identity GC runs on the leader only: an identity left unused is collected by the new one.
    const pod = await cluster.addPod(NODE_B, { name: 'failover', labels: { app: 'failover' } });
    await cluster.removePod(pod);
    await eventually('the new leader deletes the unused identity', async () => !(await named(pod.endpoint.identity)), IDENTITY_HEARTBEAT_MS + CONVERGE_MS);
  });

  it(`a ${OUTAGE_MS / 1000} s apiserver outage keeps enforcement and a TCP stream; everything converges after`, async function () {
    this.timeout(OUTAGE_MS + 90_000);
    const [client, other] = await cluster.addPods(NODE_A, [
      { name: 'out-client', labels: { app: 'out-client' } },
      { name: 'out-other', labels: { app: 'out-other' } },
    ]);
    const [server] = await cluster.addPods(NODE_B, [{ name: 'out-server', labels: { app: 'out-server' } }]);
    await cluster.kubectlApply(allowTcp('outage', 'out-server', 'out-client'));
    await pollUntil('node B enforces ingress on out-server', () => ingressEnforced(NODE_B, server!), CONVERGE_MS);
    const [clientAgent, otherAgent, serverAgent] = await Promise.all([client!, other!, server!].map(startPodAgent));
    await serverAgent!.listen(PORT);
    await eventually('out-client connects under the policy', () => clientAgent!.canConnect(server!.ip, PORT, ALLOWED_WAIT_MS));
    await clientAgent!.open('s', server!.ip, PORT);
    await clientAgent!.startStream('s');
    const bytesIn = async () => (await serverAgent!.serverStats(PORT)).bytesIn;

    let checks = 0;
    await cluster.apiserverOutage(OUTAGE_MS, async () => {
      const until = Date.now() + OUTAGE_MS - 3000;
      while (Date.now() < until) {
        const from = await bytesIn();
        expect(await clientAgent!.canConnect(server!.ip, PORT, ALLOWED_WAIT_MS), `allowed connect during the outage (check ${checks})`).to.equal(true);
        expect(await otherAgent!.canConnect(server!.ip, PORT, DENIED_WAIT_MS), `denied connect during the outage (check ${checks})`).to.equal(false);
        expect(await bytesIn(), `stream bytes arriving during the outage (check ${checks})`).to.be.above(from);
        checks++;
        await new Promise((r) => setTimeout(r, 2000));
      }
    });
    expect(checks, 'checks during the outage').to.be.at.least(Math.max(1, Math.floor(OUTAGE_MS / 10_000)));
    for (const node of [NODE_A, NODE_B]) expect(cluster.agents.has(node), `agent ${node} still running`).to.equal(true);
    // The leader could not renew its Lease: it exited, as upstream's does, and was started again.
    expect(cluster.operatorRestarts, 'operators restarted after losing the Lease').to.be.at.least(1);

    // Converges: a policy applied after the outage opens out-other, a pod created after it gets its CEP.
    await cluster.kubectlApply(allowTcp('outage-other', 'out-server', 'out-other'));
    await eventually('out-other connects under the policy applied after the outage', () => otherAgent!.canConnect(server!.ip, PORT, ALLOWED_WAIT_MS), 30_000);
    const late = await cluster.addPod(NODE_B, { name: 'out-late', labels: { app: 'out-client' } });
    expect(late.endpoint.identity, 'identity of a pod created after the outage').to.equal(client!.endpoint.identity);
    await eventually('the CEP of a pod created after the outage', async () => (await cep('out-late'))?.status?.state === 'ready', 30_000);
    await pollUntil('an operator leads again', () => cluster.operator.manager.isLeader, 30_000);
    const count = await clientAgent!.stopStream('s');
    expect(count.mismatches, 'stream bytes out of order').to.equal(0);
    expect(count.received, 'stream bytes echoed back').to.equal(count.sent);
    await cluster.removePod(late);
    await cluster.kubectl(['delete', 'cnp', 'outage', 'outage-other', '-n', cluster.namespace]);
  });

  it(`${CYCLES} pod create/delete cycles leave no identity, IP, endpoint, CEP or map entry behind`, async function () {
    this.timeout(60_000 + CYCLES * 500);
    const nodes = [NODE_A, NODE_B];
    // The nodes' IPAM as their pools hold it; status.ipam.used mirrors it at most once per interval.
    const ipamStatus = async () => Object.fromEntries(await Promise.all(nodes.map(async (n) => [n, Object.keys((await cluster.ciliumNode(n)).status?.ipam?.used ?? {}).sort()] as const)));
    const snapshot = async () => ({
      endpoints: Object.fromEntries(nodes.map((n) => [n, cluster.agent(n).endpoints.list().map((e) => e.id)])),
      ipam: Object.fromEntries(nodes.map((n) => [n, Object.keys(cluster.agent(n).node.used()).sort()])),
      maps: Object.fromEntries(nodes.map((n) => [n, cluster.mapEntries(n)])),
      ceps: (await cluster.client.request<{ items: CiliumEndpoint[] }>('GET', collectionPath(ciliumEndpoints, cluster.namespace))).items.map((c) => c.metadata.name).sort(),
      identities: (await cluster.identities()).map((ci) => ci.metadata.name).sort(),
    });
    const before = await snapshot();
    let next = 0;
    const started = Date.now();
    // Two workers per node, each running CNI ADD and DEL on one veth after another, as a node does.
    const worker = async (node: string) => {
      for (let i = next++; i < CYCLES; i = next++) {
        const pod = await cluster.addPod(node, { name: `cycle-${i}`, labels: { app: 'cycle', n: String(i % 10) } }, { ipamAllocates: true });
        expect(pod.endpoint.state, `cycle ${i} endpoint state`).to.equal('ready');
        await cluster.removePod(pod);
      }
    };
    await Promise.all(nodes.flatMap((n) => [worker(n), worker(n)]));
    const cycleMs = (Date.now() - started) / CYCLES;
    // The operator collects the cycles' identities after the heartbeat timeout; the other node's ipcache follows the CEPs.
    const settle = async <T>(what: string, read: () => Promise<T>, want: T, timeoutMs: number) => {
      let last: T | undefined;
      await eventually(
        what,
        async () => {
          last = await read();
          return JSON.stringify(last) === JSON.stringify(want);
        },
        timeoutMs,
      ).catch((err: Error) => expect(last, `${err.message}; after ${CYCLES} cycles`).to.deep.equal(want));
    };
    await settle('everything the cycles made to be gone', snapshot, before, IDENTITY_HEARTBEAT_MS + CONVERGE_MS);
    await settle('status.ipam.used to mirror the pools', ipamStatus, before.ipam, DEFAULT_NODE_UPDATE_INTERVAL_MS + CONVERGE_MS);
    expect(cycleMs, 'mean ms per create/delete cycle').to.be.below(1000);
  });
});
