// CRD-mode identity allocation on the real apiserver: racing agents end with one identity per
// label set, existing identities are reused (and their GC mark cleared), occupied ids skipped.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { expect } from 'chai';
import { CrdIdentityAllocator } from '../../controllers/agent/identity/crd-allocator.js';
import { ciliumIdentityFor, HEARTBEAT_ANNOTATION, identityLabels } from '../../controllers/agent/identity/cilium-identity.js';
import { identityCandidates } from '../../controllers/agent/identity/numeric.js';
import { LabelSet } from '../../controllers/agent/labels/labels.js';
import { newLogger } from '../../controllers/runtime/log.js';
import type { CiliumIdentity } from '../../crds/gen/index.js';
import { sharedControlPlane, type ControlPlane } from '../envtest/index.js';

const api = { group: 'cilium.io', version: 'v2', plural: 'ciliumidentities' };

describe('CRD identity allocator on the real apiserver', function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let client: CustomObjectsApi;
  // Every label set of one test carries its own namespace value, so the test finds (and deletes)
  // exactly the identities it made through their metadata.labels.
  let ns = '';

  before(async () => {
    cp = await sharedControlPlane();
    client = cp.kubeConfig.makeApiClient(CustomObjectsApi);
  });
  beforeEach(() => {
    ns = `alloc-${randomBytes(4).toString('hex')}`;
  });

  async function ours(): Promise<CiliumIdentity[]> {
    const list = (await client.listClusterCustomObject({ ...api, labelSelector: `io.kubernetes.pod.namespace=${ns}` })) as { items: CiliumIdentity[] };
    return list.items;
  }

  afterEach(async () => {
    for (const ci of await ours()) await client.deleteClusterCustomObject({ ...api, name: ci.metadata.name ?? '' });
    expect(await ours()).to.have.length(0);
  });

  function labelSet(i: number): LabelSet {
    return LabelSet.parse([`k8s:app=app-${i}`, `k8s:io.kubernetes.pod.namespace=${ns}`]);
  }

  it('two agents allocating the same 20 label sets at once end with 20 identities and agree', async () => {
    const a = new CrdIdentityAllocator(cp.kubeConfig);
    const b = new CrdIdentityAllocator(cp.kubeConfig);
    const sets = Array.from({ length: 20 }, (_, i) => labelSet(i));
    const [ra, rb] = await Promise.all([Promise.all(sets.map((s) => a.allocate(s))), Promise.all(sets.map((s) => b.allocate(s)))]);
    expect(ra.map((r) => r.id)).to.deep.equal(rb.map((r) => r.id));
    expect(new Set(ra.map((r) => r.id)).size).to.equal(20);
    const created = ra.filter((r) => r.created).length + rb.filter((r) => r.created).length;
    expect(created, 'each identity created exactly once').to.equal(20);
    const stored = await ours();
    expect(stored).to.have.length(20);
    for (const [i, s] of sets.entries()) {
      const ci = stored.find((c) => c.metadata.name === String(ra[i]?.id));
      expect(ci, `identity for ${s.key}`).to.not.equal(undefined);
      expect(identityLabels(ci as CiliumIdentity).equals(s)).to.equal(true);
      expect(ci?.metadata.labels).to.deep.equal({ 'io.kubernetes.pod.namespace': ns });
      expect(ra[i]?.id).to.be.within(a.range.min, a.range.max);
    }
  });

  it('reuses an identity made elsewhere at any id and clears its GC mark, defeating the GC delete', async () => {
    const set = labelSet(1);
    const first = identityCandidates(set, new CrdIdentityAllocator(cp.kubeConfig).range).next().value as number;
    const elsewhere = first === 60000 ? 60001 : 60000;
    const body = ciliumIdentityFor(elsewhere, set);
    body.metadata.annotations = { [HEARTBEAT_ANNOTATION]: new Date().toISOString() };
    const marked = (await client.createClusterCustomObject({ ...api, body })) as CiliumIdentity;

    // A fresh agent (no store injected) finds it through its one list.
    const r = await new CrdIdentityAllocator(cp.kubeConfig).allocate(set);
    expect(r).to.include({ id: elsewhere, created: false });
    expect(r.identity.metadata.annotations?.[HEARTBEAT_ANNOTATION]).to.equal(undefined);

    // The operator's delete carries the version it marked; it must now fail.
    const del = client.deleteClusterCustomObject({ ...api, name: String(elsewhere), body: { preconditions: { resourceVersion: marked.metadata.resourceVersion } } });
    await del.then(
      () => expect.fail('GC delete with the marked version succeeded after reuse'),
      (err: unknown) => expect((err as { code?: number }).code).to.equal(409),
    );
    expect(await ours()).to.have.length(1);
  });

  it('clears the GC mark even when its store copy is stale (precondition conflict, then re-read)', async () => {
    const set = labelSet(5);
    const body = ciliumIdentityFor(60005, set);
    body.metadata.annotations = { [HEARTBEAT_ANNOTATION]: '2026-01-01T00:00:00Z' };
    const stale = (await client.createClusterCustomObject({ ...api, body })) as CiliumIdentity;
    // The operator marks it again: the version the agent's store holds is now old.
    await client.patchClusterCustomObject({
      ...api,
      name: '60005',
      body: [{ op: 'replace', path: `/metadata/annotations/${HEARTBEAT_ANNOTATION}`, value: '2026-01-02T00:00:00Z' }],
    });
    const alloc = new CrdIdentityAllocator(cp.kubeConfig, { lookup: (key) => (key === set.key ? stale : undefined) });
    const r = await alloc.allocate(set);
    expect(r).to.include({ id: 60005, created: false });
    const now = (await client.getClusterCustomObject({ ...api, name: '60005' })) as CiliumIdentity;
    expect(now.metadata.annotations?.[HEARTBEAT_ANNOTATION]).to.equal(undefined);
    expect(now.metadata.resourceVersion).to.equal(r.identity.metadata.resourceVersion);
  });

  it('uses an injected store lookup before asking the apiserver', async () => {
    const set = labelSet(2);
    const existing = (await client.createClusterCustomObject({ ...api, body: ciliumIdentityFor(60002, set) })) as CiliumIdentity;
    const seen: string[] = [];
    const alloc = new CrdIdentityAllocator(cp.kubeConfig, {
      lookup: (key) => {
        seen.push(key);
        return key === set.key ? existing : undefined;
      },
    });
    expect(await alloc.allocate(set)).to.include({ id: 60002, created: false });
    expect(seen).to.deep.equal([set.key]);
  });

  it('skips a candidate id held by another label set and leaves that identity alone', async () => {
    const set = labelSet(3);
    const alloc = new CrdIdentityAllocator(cp.kubeConfig);
    const first = identityCandidates(set, alloc.range).next().value as number;
    const other = labelSet(4);
    await client.createClusterCustomObject({ ...api, body: ciliumIdentityFor(first, other) });
    const r = await alloc.allocate(set);
    expect(r.created).to.equal(true);
    expect(r.id).to.not.equal(first);
    const holder = (await client.getClusterCustomObject({ ...api, name: String(first) })) as CiliumIdentity;
    expect(identityLabels(holder).equals(other)).to.equal(true);
    expect(await alloc.allocate(set), 'second call reuses').to.include({ id: r.id, created: false });
  });

  it('allocates 200 new label sets, each once, and reports latency', async () => {
    const alloc = new CrdIdentityAllocator(cp.kubeConfig);
    const ms: number[] = [];
    const ids = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      const r = await alloc.allocate(labelSet(1000 + i));
      ms.push(performance.now() - t0);
      expect(r.created).to.equal(true);
      ids.add(r.id);
    }
    expect(ids.size).to.equal(200);
    ms.sort((x, y) => x - y);
    const p = (q: number) => Number((ms[Math.min(ms.length - 1, Math.ceil(q * ms.length) - 1)] ?? 0).toFixed(2));
    newLogger('identity-allocator-test').info('allocation latency', { count: ms.length, p50Ms: p(0.5), p99Ms: p(0.99), maxMs: p(1) });
    expect(await ours()).to.have.length(200);
  });
});
