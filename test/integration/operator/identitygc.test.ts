// Identity GC on the real apiserver: an unused identity is marked, then deleted after the
// heartbeat timeout; a used one is never marked; a marked one used again is unmarked and kept;
// a delete decided on a stale read fails on its resourceVersion precondition.
import { randomInt } from 'node:crypto';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { CiliumEndpoint, CiliumIdentity } from '../../../crds/gen/index.js';
import { validateCiliumEndpoint, validateCiliumIdentity } from '../../../crds/validation.js';
import { HEARTBEAT_ANNOTATION } from '../../../controllers/agent/identity/cilium-identity.js';
import { IdentityGC } from '../../../controllers/operator/identitygc/gc.js';
import { ciliumEndpoints, ciliumIdentities, objectPath } from '../../../controllers/runtime/kinds.js';
import { newLogger } from '../../../controllers/runtime/log.js';
import { Resource } from '../../../controllers/runtime/resource.js';
import { create, createPod, getObject, httpGet, operatorTestContext, waitForObject, waitLeading } from './harness.js';

describe('operator identity GC (real apiserver)', function () {
  this.timeout(60_000);
  const t = operatorTestContext();
  const log = newLogger('identitygc-test', 'error');

  const addIdentity = async (app: string, annotations?: Record<string, string>): Promise<string> => {
    const name = String(randomInt(40_000, 60_000));
    t.track(ciliumIdentities, name);
    await create(t.client, ciliumIdentities, {
      metadata: { name, ...(annotations ? { annotations } : {}) },
      'security-labels': { 'k8s:app': app, 'k8s:io.kubernetes.pod.namespace': t.ns },
    });
    return name;
  };
  // With its Pod, or the CEP GC would (rightly) delete it.
  const addEndpoint = async (name: string, identity: string) => {
    await createPod(t.client, t.ns, name);
    const body = { apiVersion: 'cilium.io/v2', kind: 'CiliumEndpoint', metadata: { name, namespace: t.ns }, status: { identity: { id: Number(identity) } } };
    expect(validateCiliumEndpoint(body).ok).to.equal(true);
    await create(t.client, ciliumEndpoints, body, t.ns);
  };
  const mark = (ci: CiliumIdentity | undefined) => ci?.metadata.annotations?.[HEARTBEAT_ANNOTATION];
  // The GC's caches, outside any operator, so a test can freeze or trim what the GC sees.
  const caches = async () => {
    const ids = new Resource<CiliumIdentity>({ name: 'ids', client: t.client, type: ciliumIdentities, validate: validateCiliumIdentity, logger: log });
    const eps = new Resource<CiliumEndpoint>({ name: 'eps', client: t.client, type: ciliumEndpoints, namespace: t.ns, validate: validateCiliumEndpoint, logger: log });
    ids.start();
    eps.start();
    t.onCleanup(() => Promise.all([ids.stop(), eps.stop()]));
    await Promise.all([ids.waitForSync(), eps.waitForSync()]);
    return { ids, eps };
  };

  it('marks an unused identity, deletes it after the heartbeat timeout, keeps used and re-used ones', async () => {
    const unused = await addIdentity('unused');
    const used = await addIdentity('used');
    const reused = await addIdentity('reused');
    await addEndpoint('ep-used', used);
    const op = t.operator({ args: ['--identity-gc-interval=250ms', '--identity-heartbeat-timeout=1500ms'] });
    await waitLeading(op);
    const marked = await waitForObject<CiliumIdentity>(t.client, ciliumIdentities, unused, 'unused identity marked', (ci) => mark(ci) !== undefined);
    const markedAt = Date.parse(mark(marked) as string);
    expect(Math.abs(Date.now() - markedAt)).to.be.below(5000);
    await waitForObject<CiliumIdentity>(t.client, ciliumIdentities, reused, 'reused identity marked', (ci) => mark(ci) !== undefined);
    await addEndpoint('ep-reused', reused);
    await waitForObject<CiliumIdentity>(t.client, ciliumIdentities, reused, 'reused identity unmarked', (ci) => ci !== undefined && mark(ci) === undefined);
    await waitForObject(t.client, ciliumIdentities, unused, 'unused identity deleted', (ci) => ci === undefined);
    // Deleted no earlier than the heartbeat timeout after the mark (1 s of slack for whole-second clocks).
    expect(Date.now() - markedAt).to.be.above(1500 - 1000);
    // Longer than a heartbeat timeout more: the used and re-used identities stay, unmarked.
    await new Promise((r) => setTimeout(r, 2000));
    for (const name of [used, reused]) {
      const ci = await getObject<CiliumIdentity>(t.client, ciliumIdentities, name);
      expect(ci, name).not.to.equal(undefined);
      expect(mark(ci), name).to.equal(undefined);
    }
    const metrics = (await httpGet(op.metricsAddress()?.port ?? 0, '/metrics')).body;
    expect(metrics).to.match(/cilium_operator_identity_gc_runs\{outcome="success",identity_type="crd"\} [1-9]/);
    expect(metrics).to.match(/cilium_operator_identity_gc_entries\{status="alive",identity_type="crd"\} [1-9]/);
    expect(metrics).to.include('cilium_operator_identity_gc_entries{status="deleted",identity_type="crd"}');
  });

  it('does not delete an identity that changed since the GC read it (resourceVersion precondition)', async () => {
    const longAgo = new Date(Date.now() - 3_600_000).toISOString();
    const name = await addIdentity('stale-read', { [HEARTBEAT_ANNOTATION]: longAgo });
    const { ids, eps } = await caches();
    // Freeze the GC's view, then let an agent re-use the identity: it removes the mark.
    await ids.stop();
    expect(mark(ids.store.get(name))).to.equal(longAgo);
    await t.client.request('PATCH', objectPath(ciliumIdentities, name), {
      body: { metadata: { annotations: { [HEARTBEAT_ANNOTATION]: null } } },
      contentType: 'application/merge-patch+json',
    });
    const gc = new IdentityGC({ client: t.client, identities: ids, endpoints: eps, intervalMs: 60_000, heartbeatTimeoutMs: 1000, rateLimit: 100, rateIntervalMs: 60_000, registry: new Registry(), logger: log });
    const result = await gc.runOnce();
    expect(result.deleted).to.equal(0);
    expect(result.conflicts).to.be.at.least(1);
    const ci = await getObject<CiliumIdentity>(t.client, ciliumIdentities, name);
    expect(ci, 'still there').not.to.equal(undefined);
    expect(validateCiliumIdentity(ci).ok).to.equal(true);
  });

  it('deletes at most identity-gc-rate-limit identities per interval', async () => {
    const longAgo = new Date(Date.now() - 3_600_000).toISOString();
    const names: string[] = [];
    for (let i = 0; i < 4; i++) names.push(await addIdentity(`rate-${i}`, { [HEARTBEAT_ANNOTATION]: longAgo }));
    const { ids, eps } = await caches();
    const ours = new Set(names);
    const theirs = ids.store.list().filter((ci) => !ours.has(ci.metadata.name ?? ''));
    for (const ci of theirs) ids.store.delete(ci.metadata.name ?? '');
    // 2 per second: 4 deletions need at least 1 s after the burst of 2.
    const gc = new IdentityGC({ client: t.client, identities: ids, endpoints: eps, intervalMs: 60_000, heartbeatTimeoutMs: 1000, rateLimit: 2, rateIntervalMs: 1000, registry: new Registry(), logger: log });
    const t0 = Date.now();
    const result = await gc.runOnce();
    expect(result.deleted).to.equal(4);
    expect(Date.now() - t0).to.be.within(900, 3000);
  });
});
