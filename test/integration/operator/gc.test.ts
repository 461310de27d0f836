// CiliumEndpoint GC and CiliumNode GC on the real apiserver.
import { expect } from 'chai';
import type { CiliumEndpoint, CiliumNode } from '../../../crds/gen/index.js';
import { SKIP_GC_ANNOTATION } from '../../../controllers/operator/nodegc/gc.js';
import type { Node } from '../../../controllers/operator/resources.js';
import { ciliumEndpoints, ciliumNodes, nodes, objectPath, pods } from '../../../controllers/runtime/kinds.js';
import { create, createPod, getObject, httpGet, operatorTestContext, testId, waitForObject, waitLeading } from './harness.js';

describe('operator garbage collection of CiliumEndpoints and CiliumNodes (real apiserver)', function () {
  this.timeout(60_000);
  const t = operatorTestContext();

  const cep = (name: string, owner?: { name: string; uid: string }) =>
    create<CiliumEndpoint>(
      t.client,
      ciliumEndpoints,
      {
        metadata: { name, namespace: t.ns, ...(owner ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: owner.name, uid: owner.uid }] } : {}) },
        status: { identity: { id: 5000 } },
      },
      t.ns,
    );

  it('deletes CiliumEndpoints whose Pod is gone, replaced or finished, keeps the others', async () => {
    const p1 = await createPod(t.client, t.ns, 'p1');
    const p3 = await createPod(t.client, t.ns, 'p3');
    await createPod(t.client, t.ns, 'p4');
    await createPod(t.client, t.ns, 'p5');
    await t.client.request('PATCH', `${objectPath(pods, 'p5', t.ns)}/status`, { body: { status: { phase: 'Succeeded' } }, contentType: 'application/merge-patch+json' });
    await cep('p5');
    await cep('c1', { name: 'p1', uid: p1.metadata.uid as string });
    await cep('c2', { name: 'gone', uid: '00000000-0000-0000-0000-000000000001' });
    await cep('c3', { name: 'p3', uid: '00000000-0000-0000-0000-000000000003' });
    await cep('p4');
    expect(p3.metadata.uid).not.to.equal('00000000-0000-0000-0000-000000000003');
    const op = t.operator({ args: ['--cilium-endpoint-gc-interval=200ms'] });
    await waitLeading(op);
    for (const gone of ['c2', 'c3', 'p5']) await waitForObject(t.client, ciliumEndpoints, gone, `CEP ${gone} deleted`, (o) => o === undefined, 10_000, t.ns);
    await new Promise((r) => setTimeout(r, 600));
    for (const kept of ['c1', 'p4']) expect(await getObject(t.client, ciliumEndpoints, kept, t.ns), kept).not.to.equal(undefined);
    expect((await httpGet(op.metricsAddress()?.port ?? 0, '/metrics')).body).to.include('cilium_operator_endpoint_gc_objects{outcome="success"} 3');
  });

  it('deletes a CiliumNode whose Node is gone after one interval as a candidate; keeps owned and do-not-gc ones', async () => {
    const id = testId();
    const name = (s: string) => `gc-${id}-${s}`;
    const addCiliumNode = async (n: string, metadata: object = {}) => {
      t.track(ciliumNodes, n);
      await create<CiliumNode>(t.client, ciliumNodes, { metadata: { name: n, ...metadata }, spec: {} });
    };
    t.track(nodes, name('with-node'));
    await create<Node>(t.client, nodes, { metadata: { name: name('with-node') } });
    await addCiliumNode(name('with-node'));
    await addCiliumNode(name('orphan'));
    await addCiliumNode(name('pinned'), { annotations: { [SKIP_GC_ANNOTATION]: 'true' } });
    await addCiliumNode(name('owned'), { ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: 'elsewhere', uid: '00000000-0000-0000-0000-00000000000a' }] });
    const op = t.operator({ args: ['--nodes-gc-interval=500ms'], nodeGC: true });
    await waitLeading(op);
    const t0 = Date.now();
    await waitForObject(t.client, ciliumNodes, name('orphan'), 'orphan CiliumNode deleted', (o) => o === undefined);
    // The first run marks, a run at least one interval later deletes.
    expect(Date.now() - t0).to.be.at.least(400);
    for (const kept of ['with-node', 'pinned', 'owned']) expect(await getObject(t.client, ciliumNodes, name(kept)), kept).not.to.equal(undefined);
  });
});
