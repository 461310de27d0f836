// CNP/CCNP status on the real apiserver: `Valid` for a good, a semantically bad and a
// schema-refused policy; `Enforced` from what two nodes report in their CiliumNodes, written only
// when it changes.
import { expect } from 'chai';
import type { CiliumClusterwideNetworkPolicy, CiliumNetworkPolicy, CiliumNode, NetworkPolicyCondition } from '../../../crds/gen/index.js';
import { VALID_MESSAGE } from '../../../controllers/operator/policystatus/controller.js';
import { encodeRealized, REALIZED_ANNOTATION, type RealizedPolicy } from '../../../controllers/policystatus/realized.js';
import { ciliumClusterwideNetworkPolicies, ciliumNetworkPolicies, ciliumNodes, collectionPath, coreEvents, objectPath } from '../../../controllers/runtime/kinds.js';
import { pollUntil } from '../../envtest/poll.js';
import { newLogger } from '../../../controllers/runtime/log.js';
import { Resource } from '../../../controllers/runtime/resource.js';
import { create, getObject, operatorTestContext, testId, waitForObject, waitLeading } from './harness.js';

type Policy = CiliumNetworkPolicy | CiliumClusterwideNetworkPolicy;
const cond = (p: Policy | undefined, type: string): NetworkPolicyCondition | undefined => p?.status?.conditions?.find((c) => c.type === type);

const goodRule = {
  endpointSelector: { matchLabels: { app: 'web' } },
  ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }],
};

describe('operator policy status (real apiserver)', function () {
  this.timeout(60_000);
  const t = operatorTestContext();

  // Cluster-scoped objects of a test: CiliumNodes and one CCNP, all deleted after it.
  const nodesAndPolicy = async (id: string, nodeNames: string[]) => {
    await Promise.all(
      nodeNames.map(async (n) => {
        t.track(ciliumNodes, n);
        await create<CiliumNode>(t.client, ciliumNodes, { metadata: { name: n }, spec: {} });
      }),
    );
    const policy = await create<CiliumClusterwideNetworkPolicy>(t.client, ciliumClusterwideNetworkPolicies, { metadata: { name: `ccnp-${id}` }, spec: goodRule });
    t.track(ciliumClusterwideNetworkPolicies, `ccnp-${id}`);
    return { uid: policy.metadata.uid as string, gen: policy.metadata.generation as number };
  };
  // What an agent does: its report into its own CiliumNode.
  const report = (node: string, entries: Record<string, RealizedPolicy>) =>
    t.client.request('PATCH', objectPath(ciliumNodes, node), {
      body: { metadata: { annotations: { [REALIZED_ANNOTATION]: encodeRealized(new Map(Object.entries(entries))) } } },
      contentType: 'application/merge-patch+json',
    });
  const operator = async () => {
    const op = t.operator();
    await waitLeading(op);
    return op;
  };

  it('sets Valid for a good policy, Valid=False naming the field for a semantically bad one and for one the validator refuses', async () => {
    await operator();
    await create(t.client, ciliumNetworkPolicies, { metadata: { name: 'good', namespace: t.ns }, spec: goodRule }, t.ns);
    await create(
      t.client,
      ciliumNetworkPolicies,
      { metadata: { name: 'bad-except', namespace: t.ns }, spec: { endpointSelector: {}, egress: [{ toCIDRSet: [{ cidr: '10.0.0.0/16', except: ['192.168.0.0/24'] }] }] } },
      t.ns,
    );
    await create(
      t.client,
      ciliumNetworkPolicies,
      { metadata: { name: 'node-selector', namespace: t.ns }, spec: { nodeSelector: { matchLabels: { role: 'x' } }, ingress: [{ fromEntities: ['world'] }] } },
      t.ns,
    );
    const good = await waitForObject<Policy>(t.client, ciliumNetworkPolicies, 'good', 'good policy Valid', (p) => cond(p, 'Valid') !== undefined, 10_000, t.ns);
    expect(cond(good, 'Valid')).to.include({ status: 'True', message: VALID_MESSAGE });
    expect(cond(good, 'Valid')?.lastTransitionTime).to.be.a('string');
    const bad = await waitForObject<Policy>(t.client, ciliumNetworkPolicies, 'bad-except', 'bad policy Valid', (p) => cond(p, 'Valid') !== undefined, 10_000, t.ns);
    expect(cond(bad, 'Valid')).to.include({ status: 'False', message: 'spec.egress[0].toCIDRSet[0].except[0]: 192.168.0.0/24 is not inside 10.0.0.0/16' });
    const refused = await waitForObject<Policy>(t.client, ciliumNetworkPolicies, 'node-selector', 'refused policy Valid', (p) => cond(p, 'Valid') !== undefined, 10_000, t.ns);
    expect(cond(refused, 'Valid')?.status).to.equal('False');
    expect(cond(refused, 'Valid')?.message).to.match(/^spec\.nodeSelector: a namespaced CiliumNetworkPolicy cannot select nodes/);
    // And the refused object got a Warning event naming the field.
    type EventList = { items: { type?: string; reason?: string; message?: string; involvedObject?: { name?: string } }[] };
    let events: EventList = { items: [] };
    const deadline = Date.now() + 5000;
    while (!events.items.some((e) => e.involvedObject?.name === 'node-selector') && Date.now() < deadline) {
      events = await t.client.request<EventList>('GET', collectionPath(coreEvents, t.ns));
      await new Promise((r) => setTimeout(r, 100));
    }
    const ev = events.items.find((e) => e.involvedObject?.name === 'node-selector');
    expect(ev).to.include({ type: 'Warning', reason: 'InvalidObject' });
    expect(ev?.message).to.include('spec.nodeSelector');
  });

  it('sets Enforced from two node reports and rewrites status only when it changes', async () => {
    const id = testId();
    const [n1, n2] = [`ps-${id}-1`, `ps-${id}-2`];
    const { uid, gen } = await nodesAndPolicy(id, [n1, n2]);
    await operator();
    const enforced = (p: Policy | undefined) => cond(p, 'Enforced');
    const waitEnforced = (what: string, check: (c: NetworkPolicyCondition) => boolean) =>
      waitForObject<Policy>(t.client, ciliumClusterwideNetworkPolicies, `ccnp-${id}`, what, (p) => {
        const c = enforced(p);
        return c !== undefined && check(c);
      });

    let p = await waitEnforced('pending', (c) => c.reason === 'EnforcementPending');
    expect(enforced(p)).to.include({ status: 'Unknown', message: `0/2 nodes enforce generation ${gen}; 2 pending` });
    await report(n1, { [uid]: { generation: gen } });
    await report(n2, { [uid]: { generation: gen, error: 'policy map full' } });
    p = await waitEnforced('failed', (c) => c.status === 'False');
    expect(enforced(p)).to.include({ reason: 'EnforcementFailed', message: `1/2 nodes enforce generation ${gen}; 1 failed: ${n2}: policy map full` });
    await report(n2, { [uid]: { generation: gen } });
    p = await waitEnforced('enforced', (c) => c.status === 'True');
    expect(enforced(p)).to.include({ reason: 'Enforced', message: `2/2 nodes enforce generation ${gen}` });
    expect(cond(p, 'Valid')).to.include({ status: 'True' });

    // Reports about other policies, and repeated equal reports, cost no status write.
    const rv = p?.metadata.resourceVersion;
    await report(n1, { [uid]: { generation: gen }, 'other-uid': { generation: 7 } });
    await report(n2, { [uid]: { generation: gen }, 'other-uid': { generation: 7, error: 'x' } });
    await new Promise((r) => setTimeout(r, 600));
    expect((await getObject<Policy>(t.client, ciliumClusterwideNetworkPolicies, `ccnp-${id}`))?.metadata.resourceVersion).to.equal(rv);

    // A new generation is pending until the nodes report it.
    await t.client.request('PATCH', objectPath(ciliumClusterwideNetworkPolicies, `ccnp-${id}`), {
      body: { spec: { ...goodRule, description: 'v2' } },
      contentType: 'application/merge-patch+json',
    });
    p = await waitEnforced('pending again', (c) => c.reason === 'EnforcementPending');
    expect(enforced(p)?.message).to.equal(`0/2 nodes enforce generation ${gen + 1}; 2 pending`);
  });

  it('a roll-out reported by 100 nodes costs a handful of status writes, not one per node', async () => {
    const id = testId();
    const names = Array.from({ length: 100 }, (_, i) => `ps-${id}-${String(i).padStart(3, '0')}`);
    const { uid, gen } = await nodesAndPolicy(id, names);
    const writes: string[] = [];
    const watch = new Resource<CiliumClusterwideNetworkPolicy>({
      name: 'ccnp-writes',
      client: t.client,
      type: ciliumClusterwideNetworkPolicies,
      fieldSelector: `metadata.name=ccnp-${id}`,
      logger: newLogger('policystatus-test', 'error'),
    });
    watch.on({ update: (_o, n) => void writes.push(cond(n, 'Enforced')?.message ?? '') });
    watch.start();
    t.onCleanup(() => watch.stop());
    await watch.waitForSync();
    await waitLeading(t.operator());
    await waitForObject<Policy>(t.client, ciliumClusterwideNetworkPolicies, `ccnp-${id}`, 'pending', (p) => cond(p, 'Enforced')?.reason === 'EnforcementPending');
    const t0 = Date.now();
    await Promise.all(names.map((n) => report(n, { [uid]: { generation: gen } })));
    const reported = Date.now() - t0;
    await waitForObject<Policy>(t.client, ciliumClusterwideNetworkPolicies, `ccnp-${id}`, 'enforced', (p) => cond(p, 'Enforced')?.status === 'True');
    await pollUntil('last write seen', () => writes.at(-1) === `100/100 nodes enforce generation ${gen}`, 5000);
    // The operator sees the reports as their watch events arrive, after the calls returned: one
    // write for the first condition, then at most one per debounce window (100 ms) until it has
    // seen them all.
    const rollout = Date.now() - t0;
    expect(writes.length, `${writes.length} writes; 100 reports took ${reported} ms, the roll-out ${rollout} ms: ${writes.join(' | ')}`).to.be.at.most(2 + Math.ceil(rollout / 100));
    expect(writes.length).to.be.below(20);
  });
});
