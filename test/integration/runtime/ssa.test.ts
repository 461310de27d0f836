// Server-side apply with per-controller field managers, status conditions through /status on a
// CiliumNetworkPolicy, and deduplicated Events, all on the real apiserver.
import type { V1ConfigMap } from '@kubernetes/client-node';
import { expect } from 'chai';
import type { CiliumNetworkPolicy } from '../../../crds/gen/index.js';
import { sharedControlPlane, testNamespace } from '../../envtest/index.js';
import { ApiError, newApiClient, type ApiClient } from '../../../controllers/runtime/apiclient.js';
import { findCondition, setCondition, type Condition } from '../../../controllers/runtime/conditions.js';
import { EventRecorder } from '../../../controllers/runtime/events.js';
import { ciliumNetworkPolicies, collectionPath, configMaps, coreEvents } from '../../../controllers/runtime/kinds.js';
import { newLogger } from '../../../controllers/runtime/log.js';
import { apply, applyStatus } from '../../../controllers/runtime/ssa.js';

type Cnp = CiliumNetworkPolicy & { status?: { conditions?: Condition[] } };

describe('server-side apply, status conditions and events (real apiserver)', function () {
  this.timeout(60_000);
  let client: ApiClient;
  let ns: { name: string; cleanup(): Promise<void> };

  before(async () => {
    const cp = await sharedControlPlane();
    client = newApiClient(cp.kubeConfig);
    ns = await testNamespace(cp);
  });
  after(async () => ns?.cleanup());

  const cm = (data: Record<string, string>): V1ConfigMap => ({ metadata: { name: 'shared', namespace: ns.name }, data });
  const managers = (obj: V1ConfigMap) => (obj.metadata?.managedFields ?? []).map((f) => f.manager).sort();

  it('keeps each manager\'s fields, refuses a conflicting apply and lets force take the field over', async () => {
    await apply(client, configMaps, cm({ a: '1' }), { fieldManager: 'ctrl-a' });
    const both = await apply(client, configMaps, cm({ b: '2' }), { fieldManager: 'ctrl-b' });
    expect(both.data).to.deep.equal({ a: '1', b: '2' });
    expect(managers(both)).to.deep.equal(['ctrl-a', 'ctrl-b']);
    const conflict = await apply(client, configMaps, cm({ a: 'x', b: '2' }), { fieldManager: 'ctrl-b' }).catch((e: unknown) => e);
    expect(conflict).to.be.instanceOf(ApiError);
    expect((conflict as ApiError).status).to.equal(409);
    expect((conflict as ApiError).message).to.match(/ctrl-a/);
    const forced = await apply(client, configMaps, cm({ a: 'x', b: '2' }), { fieldManager: 'ctrl-b', force: true });
    expect(forced.data).to.deep.equal({ a: 'x', b: '2' });
    // ctrl-a owns nothing any more; its next apply without `a` leaves b's value alone.
    const after = await apply(client, configMaps, cm({}), { fieldManager: 'ctrl-a' });
    expect(after.data).to.deep.equal({ a: 'x', b: '2' });
    // Dropping a field from one's own apply removes it.
    const dropped = await apply(client, configMaps, cm({ a: 'x' }), { fieldManager: 'ctrl-b' });
    expect(dropped.data).to.deep.equal({ a: 'x' });
  });

  it('writes conditions only through /status, with lastTransitionTime kept while the status holds', async () => {
    const policy: Cnp = {
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'conditions', namespace: ns.name },
      spec: { endpointSelector: { matchLabels: { app: 'web' } } },
    };
    const created = await apply(client, ciliumNetworkPolicies, policy, { fieldManager: 'test-author' });
    const generation = created.metadata.generation ?? 0;
    // Status sent to the main resource is ignored for a CRD with a status subresource.
    const ignored = await apply(client, ciliumNetworkPolicies, { ...policy, status: { conditions: [{ type: 'Valid', status: 'True' }] } }, { fieldManager: 'test-author' });
    expect(ignored.status?.conditions).to.equal(undefined);

    // Upstream's NetworkPolicyCondition (and so our CRD) has no observedGeneration, and apply
    // refuses fields the schema lacks: conditions for a CNP are set without a generation.
    const t0 = new Date('2026-01-01T00:00:00Z');
    let conditions = setCondition(undefined, { type: 'Valid', status: 'False', reason: 'Pending', message: 'not computed yet' }, undefined, t0);
    const status = (conds: Condition[]): Cnp => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'conditions', namespace: ns.name }, status: { conditions: conds } });
    let stored = await applyStatus(client, ciliumNetworkPolicies, status(conditions), { fieldManager: 'cilium-operator-policystatus' });
    expect(findCondition(stored.status?.conditions, 'Valid')).to.include({ status: 'False', reason: 'Pending', lastTransitionTime: '2026-01-01T00:00:00Z' });
    expect(stored.metadata.generation, 'a status write does not bump generation').to.equal(generation);

    conditions = setCondition(stored.status?.conditions, { type: 'Valid', status: 'False', reason: 'StillPending', message: 'again' }, undefined, new Date('2026-01-01T00:01:00Z'));
    stored = await applyStatus(client, ciliumNetworkPolicies, status(conditions), { fieldManager: 'cilium-operator-policystatus' });
    expect(findCondition(stored.status?.conditions, 'Valid')).to.include({ reason: 'StillPending', lastTransitionTime: '2026-01-01T00:00:00Z' });

    conditions = setCondition(stored.status?.conditions, { type: 'Valid', status: 'True', reason: 'Computed', message: 'ok' }, undefined, new Date('2026-01-01T00:02:00Z'));
    stored = await applyStatus(client, ciliumNetworkPolicies, status(conditions), { fieldManager: 'cilium-operator-policystatus' });
    expect(findCondition(stored.status?.conditions, 'Valid')).to.include({ status: 'True', lastTransitionTime: '2026-01-01T00:02:00Z' });
    expect(stored.spec).to.deep.equal(policy.spec);
    const statusManager = stored.metadata.managedFields?.find((f) => f.manager === 'cilium-operator-policystatus');
    expect(statusManager?.subresource).to.equal('status');
  });

  it('records an Event and counts its repeats on the same Event', async () => {
    const target: V1ConfigMap = await apply(client, configMaps, { metadata: { name: 'evented', namespace: ns.name } }, { fieldManager: 'ctrl-a' });
    const recorder = new EventRecorder({ client, component: 'cilium-operator', instance: 'node-1', logger: newLogger('events-test', 'error') });
    const subject = { ...target, apiVersion: 'v1', kind: 'ConfigMap' };
    await recorder.event(subject, 'Warning', 'PolicyInvalid', 'spec.ingress[0]: bad port');
    await recorder.event(subject, 'Warning', 'PolicyInvalid', 'spec.ingress[0]: bad port');
    await recorder.event(subject, 'Normal', 'PolicyValid', 'ok');
    const q = new URLSearchParams({ fieldSelector: `involvedObject.name=evented,involvedObject.uid=${target.metadata?.uid}` });
    const list = await client.request<{ items: { reason: string; type: string; count: number; message: string; source: { component: string }; involvedObject: { kind: string; uid: string } }[] }>(
      'GET',
      `${collectionPath(coreEvents, ns.name)}?${q.toString()}`,
    );
    const summary = list.items.map((e) => `${e.type} ${e.reason} x${e.count} ${e.involvedObject.kind} ${e.source.component}`).sort();
    expect(summary).to.deep.equal(['Normal PolicyValid x1 ConfigMap cilium-operator', 'Warning PolicyInvalid x2 ConfigMap cilium-operator']);
  });
});
