// The agent-not-ready taint on the real apiserver: nothing is removed before the agent is ready;
// then every taint with the key goes (any effect) and every other stays, also when another writer
// changes the Node between the read and the write, when the taint comes back later, and when the
// Node is registered only after the agent became ready.
import { randomBytes } from 'node:crypto';
import type { V1Node, V1Taint } from '@kubernetes/client-node';
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { sharedControlPlane } from '../../envtest/index.js';
import { pollUntil } from '../../envtest/poll.js';
import { isNotFound, newApiClient, type ApiClient, type RequestOptions, type WatchEvent } from '../../../controllers/runtime/apiclient.js';
import { collectionPath, nodes, objectPath } from '../../../controllers/runtime/kinds.js';
import { newLogger } from '../../../controllers/runtime/log.js';
import { AGENT_NOT_READY_TAINT_KEY, AgentNotReadyTaint, removeNodeTaint } from '../../../controllers/agent/node/taint.js';

const log = newLogger('node-taint-test', 'error');
const OTHER: V1Taint = { key: 'example.com/other', value: 'x', effect: 'NoSchedule' };
const agentTaints: V1Taint[] = [
  { key: AGENT_NOT_READY_TAINT_KEY, effect: 'NoSchedule' },
  { key: AGENT_NOT_READY_TAINT_KEY, value: 'true', effect: 'NoExecute' },
];

/** The real client; `beforePatch` runs before each PATCH goes out (another writer racing us). */
class RacingClient implements ApiClient {
  patches = 0;
  beforePatch?: () => Promise<void>;
  constructor(private readonly inner: ApiClient) {}
  async request<T>(method: string, apiPath: string, opts?: RequestOptions): Promise<T> {
    if (method === 'PATCH') {
      this.patches++;
      const race = this.beforePatch;
      this.beforePatch = undefined;
      await race?.();
    }
    return this.inner.request<T>(method, apiPath, opts);
  }
  watch(apiPath: string, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    return this.inner.watch(apiPath, onEvent, signal);
  }
}

describe('agent-not-ready taint (real apiserver)', function () {
  this.timeout(60_000);
  let client: ApiClient;
  const created = new Set<string>();
  const running: { stop: AbortController; done: Promise<void> }[] = [];

  before(async () => {
    client = newApiClient((await sharedControlPlane()).kubeConfig);
  });
  afterEach(async () => {
    for (const r of running.splice(0)) {
      r.stop.abort();
      await r.done;
    }
  });
  after(async () => {
    for (const name of created) {
      await client.request('DELETE', objectPath(nodes, name)).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
    }
  });

  const newName = () => `taint-${randomBytes(4).toString('hex')}`;
  // Taints set after the create: the apiserver's TaintNodesByCondition admission adds
  // node.kubernetes.io/not-ready to a new Node, and these tests want the list to be exactly theirs.
  async function createNode(name: string, taints: V1Taint[]): Promise<V1Node> {
    created.add(name);
    await client.request<V1Node>('POST', collectionPath(nodes), { body: { apiVersion: 'v1', kind: 'Node', metadata: { name } } });
    return setTaints(name, taints);
  }
  const getNode = (name: string) => client.request<V1Node>('GET', objectPath(nodes, name));
  const taintsOf = async (name: string) => (await getNode(name)).spec?.taints ?? [];
  function setTaints(name: string, taints: V1Taint[]): Promise<V1Node> {
    return client.request<V1Node>('PATCH', objectPath(nodes, name), { contentType: 'application/merge-patch+json', body: { spec: { taints } } });
  }
  async function taintsBecome(name: string, what: string, check: (t: V1Taint[]) => boolean): Promise<V1Taint[]> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const taints = await taintsOf(name);
      if (check(taints)) return taints;
      if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}; taints: ${JSON.stringify(taints)}`);
      await sleep(50);
    }
  }
  const hasAgentTaint = (t: V1Taint[]) => t.some((x) => x.key === AGENT_NOT_READY_TAINT_KEY);

  function startTaint(nodeName: string, c: ApiClient = client): AgentNotReadyTaint {
    const taint = new AgentNotReadyTaint({ client: c, nodeName, logger: log });
    const stop = new AbortController();
    running.push({ stop, done: taint.start(stop.signal) });
    return taint;
  }

  it('removes only the agent taints, of every effect, once ready, and again when it comes back', async () => {
    const name = newName();
    await createNode(name, [agentTaints[0] as V1Taint, OTHER, agentTaints[1] as V1Taint]);
    const taint = startTaint(name);
    await pollUntil('the Node watch', () => taint.resource.synced, 10_000);
    await sleep(500);
    expect(await taintsOf(name), 'not ready yet: nothing removed').to.have.length(3);

    taint.markReady();
    const left = await taintsBecome(name, 'the agent taints to go', (t) => !hasAgentTaint(t));
    expect(left).to.deep.equal([OTHER]);

    // Re-added by someone else later: removed again, their other change kept.
    const late: V1Taint = { key: 'example.com/late', effect: 'PreferNoSchedule' };
    await setTaints(name, [OTHER, agentTaints[1] as V1Taint, late]);
    expect(await taintsBecome(name, 'the re-added taint to go', (t) => !hasAgentTaint(t))).to.deep.equal([OTHER, late]);
  });

  it('removes the field when the agent taint was the only one', async () => {
    const name = newName();
    await createNode(name, [agentTaints[1] as V1Taint]);
    expect(await removeNodeTaint(client, name, AGENT_NOT_READY_TAINT_KEY)).to.equal('removed');
    const node = await getNode(name);
    expect(node.spec?.taints).to.equal(undefined);
  });

  it('keeps a taint another writer adds between its read and its write (resourceVersion precondition, retried)', async () => {
    const name = newName();
    await createNode(name, [OTHER, agentTaints[0] as V1Taint]);
    const racing = new RacingClient(client);
    const raced: V1Taint = { key: 'example.com/raced', effect: 'NoExecute' };
    racing.beforePatch = async () => {
      await setTaints(name, [OTHER, agentTaints[0] as V1Taint, raced]);
    };
    expect(await removeNodeTaint(racing, name, AGENT_NOT_READY_TAINT_KEY)).to.equal('removed');
    expect(racing.patches, 'the first write conflicted and was redone from a fresh read').to.equal(2);
    expect(await taintsOf(name)).to.deep.equal([OTHER, raced]);
  });

  it('writes nothing when the taint is absent and reports a missing Node', async () => {
    const name = newName();
    const before = await createNode(name, [OTHER]);
    const racing = new RacingClient(client);
    expect(await removeNodeTaint(racing, name, AGENT_NOT_READY_TAINT_KEY)).to.equal('absent');
    expect(racing.patches).to.equal(0);
    expect((await getNode(name)).metadata?.resourceVersion).to.equal(before.metadata?.resourceVersion);
    expect(await removeNodeTaint(racing, newName(), AGENT_NOT_READY_TAINT_KEY)).to.equal('node-not-found');
  });

  it('removes the taint of a Node registered after the agent became ready', async () => {
    const name = newName();
    const taint = startTaint(name);
    taint.markReady();
    await pollUntil('the Node watch', () => taint.resource.synced, 10_000);
    await createNode(name, [agentTaints[1] as V1Taint, OTHER]);
    expect(await taintsBecome(name, 'the agent taint to go', (t) => !hasAgentTaint(t))).to.deep.equal([OTHER]);
  });
});
