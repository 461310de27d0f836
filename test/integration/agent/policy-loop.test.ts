// The policy loop end to end: CiliumNetworkPolicies in the real apiserver change what a real
// endpoint (real datapath, veth, pinned maps) enforces, read back with datapath.endpointPolicy;
// an identity that appears joins the peers; L7 parts open nothing and are reported; an invalid
// version is refused with a Warning event naming the field and leaves enforcement as it was.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { CiliumNetworkPolicy } from '../../../crds/gen/index.js';
import { LinuxDatapath } from '../../../datapath/linux/linux-datapath.js';
import { createTestLink, makePinDir, removePinDir, removeTestLink, type TestLink } from '../../../datapath/linux/testing/fixtures.js';
import type { PolicyEntry } from '../../../datapath/types.js';
import { ciliumEndpointWriter, podSource, namespaceSource } from '../../../controllers/agent/daemon/sources.js';
import { hostScopeIpam } from '../../../controllers/agent/endpoint/ipam.js';
import { EndpointManager } from '../../../controllers/agent/endpoint/manager.js';
import { EndpointStateStore } from '../../../controllers/agent/endpoint/state-store.js';
import { identityLabels } from '../../../controllers/agent/identity/cilium-identity.js';
import { CrdIdentityAllocator } from '../../../controllers/agent/identity/crd-allocator.js';
import { HostScopePool } from '../../../controllers/agent/ipam/pool.js';
import { buildLabelFilter } from '../../../controllers/agent/labels/filter.js';
import { podSecurityLabels } from '../../../controllers/agent/labels/pod-labels.js';
import { PolicyLoop, REASON_POLICY_INVALID, REASON_POLICY_NOT_ENFORCED } from '../../../controllers/agent/policy/loop.js';
import { policyResourceList, policyResources, type PolicyResources } from '../../../controllers/agent/policy/loop-resources.js';
import { isNotFound, newApiClient, type ApiClient } from '../../../controllers/runtime/apiclient.js';
import { EventRecorder } from '../../../controllers/runtime/events.js';
import { ciliumClusterwideNetworkPolicies, ciliumIdentities, ciliumNetworkPolicies, collectionPath, coreEvents, namespaces, objectPath, pods } from '../../../controllers/runtime/kinds.js';
import { newLogger } from '../../../controllers/runtime/log.js';
import { seriesValue } from '../../../controllers/runtime/metrics.js';
import { Resource } from '../../../controllers/runtime/resource.js';
import { apply } from '../../../controllers/runtime/ssa.js';
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import { sharedControlPlane, testNamespace } from '../../envtest/index.js';
import { pollUntil } from '../../envtest/poll.js';

const log = newLogger('policy-loop-test', 'error');
const NODE = 'policy-loop-node';
const HOST = 1;
const WORLD = 2;
const CCNP = `policy-loop-${process.pid}`;

interface CoreEvent {
  involvedObject: { name: string; kind: string };
  reason: string;
  type: string;
  message: string;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

describe('PolicyLoop (real apiserver, real datapath)', function () {
  this.timeout(120_000);
  let client: ApiClient;
  let ns: { name: string; cleanup(): Promise<void> } | undefined;
  let pinDir: string | undefined;
  let stateDir: string | undefined;
  let link: TestLink | undefined;
  let dp: LinuxDatapath | undefined;
  let res: PolicyResources | undefined;
  let podRes: Resource<V1Pod> | undefined;
  let nsRes: Resource<V1Namespace> | undefined;
  let endpoints: EndpointManager | undefined;
  let loop: PolicyLoop | undefined;
  let endpointId = 0;
  const registry = new Registry();
  const stop = new AbortController();
  let loopDone: Promise<void> | undefined;

  const cleanups: (() => Promise<unknown>)[] = [
    async () => {
      stop.abort();
      await loopDone;
    },
    async () => {
      if (endpointId !== 0) await endpoints?.delete(endpointId);
    },
    async () => {
      for (const r of [...(res === undefined ? [] : policyResourceList(res)), podRes, nsRes]) await r?.stop();
    },
    async () => {
      // Identities of this test's namespace (the allocator created them; no operator GC runs here).
      if (ns === undefined) return;
      const list = await client.request<{ items: { metadata: { name: string } }[] }>(
        'GET',
        `${collectionPath(ciliumIdentities)}?labelSelector=${encodeURIComponent(`io.kubernetes.pod.namespace=${ns.name}`)}`,
      );
      for (const ci of list.items) {
        await client.request('DELETE', objectPath(ciliumIdentities, ci.metadata.name)).catch((err: unknown) => {
          if (!isNotFound(err)) throw err;
        });
      }
    },
    () =>
      client.request('DELETE', objectPath(ciliumClusterwideNetworkPolicies, CCNP)).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      }),
    async () => ns?.cleanup(),
    async () => dp?.close(),
    // eslint-disable-next-line @typescript-eslint/require-await
    async () => removePinDir(pinDir),
    async () => removeTestLink(link),
    async () => (stateDir === undefined ? undefined : rm(stateDir, { recursive: true, force: true })),
  ];

  after(async () => {
    const errors: unknown[] = [];
    for (const c of cleanups) await c().catch((err: unknown) => errors.push(err));
    if (errors.length > 0) throw new Error(`cleanup: ${errors.map(String).join('; ')}`);
  });

  let allocator: CrdIdentityAllocator;
  const filter = buildLabelFilter().filter;

  before(async () => {
    const cp = await sharedControlPlane();
    client = newApiClient(cp.kubeConfig);
    ns = await testNamespace(cp);
    pinDir = makePinDir();
    stateDir = await mkdtemp(path.join(tmpdir(), 'cilium-ts-policy-loop-'));
    link = await createTestLink('pl');
    dp = await LinuxDatapath.open({ bpffsDir: pinDir, logger: log });
    const datapath = dp;

    res = policyResources({ client, namespace: ns.name, logger: log });
    const identities = res.identities;
    identities.store.addIndex('labels', (ci) => [identityLabels(ci).key]);
    allocator = new CrdIdentityAllocator(cp.kubeConfig, { lookup: (key) => identities.store.byIndex('labels', key)[0] });
    podRes = new Resource<V1Pod>({ name: 'pods', client, type: pods, namespace: ns.name, fieldSelector: `spec.nodeName=${NODE}`, logger: log });
    nsRes = new Resource<V1Namespace>({ name: 'namespaces', client, type: namespaces, logger: log });
    const events = new EventRecorder({ client, component: 'cilium-agent', logger: log });
    loop = new PolicyLoop({ resources: res, events, registry, logger: log, ipcache: async (rows) => void (await datapath.syncIPCache('cidr', rows)) });
    endpoints = new EndpointManager({
      pods: podSource(client, podRes, pods),
      namespaces: namespaceSource(client, nsRes, namespaces),
      identities: allocator,
      datapath,
      policy: loop.policySource(),
      ceps: ciliumEndpointWriter(client),
      store: new EndpointStateStore(stateDir),
      ipam: hostScopeIpam(new HostScopePool('10.215.0.0/24')),
      nodeName: NODE,
      labelFilter: filter,
      logger: log,
    });
    loop.bindEndpoints(endpoints);
    const watches = [...policyResourceList(res), podRes, nsRes];
    for (const r of watches) r.start();
    await Promise.all(watches.map((r) => r.waitForSync()));
    await loop.prime();
    await endpoints.restore();
    loopDone = loop.start(stop.signal);

    await client.request('POST', collectionPath(pods, ns.name), {
      body: {
        metadata: { name: 'web', namespace: ns.name, labels: { app: 'web' } },
        spec: { nodeName: NODE, containers: [{ name: 'c', image: 'busybox', ports: [{ name: 'http', containerPort: 8080 }] }] },
      },
    });
    const ep = await endpoints.create({
      'container-id': 'c0ffee-policy-loop',
      'container-interface-name': 'eth0',
      'interface-name': link.ifname,
      'interface-index': link.ifindex,
      mac: '02:00:00:00:10:02',
      'host-mac': link.mac,
      'k8s-namespace': ns.name,
      'k8s-pod-name': 'web',
      state: 'waiting-for-identity',
    });
    endpointId = ep.id;
  });

  // Each test starts from no policy, whatever the one before left behind.
  afterEach(async () => {
    await client.request('DELETE', collectionPath(ciliumNetworkPolicies, ns?.name));
    await pollUntil('no policy enforced', () => realized()?.enforcement.ingress === false, 5_000);
  });

  const realized = () => (dp as LinuxDatapath).endpointPolicy(endpointId).realized;
  const entriesOf = (d: 'ingress' | 'egress'): PolicyEntry[] =>
    (realized()?.entries ?? []).filter((e) => e.direction === d).sort((a, b) => a.identity - b.identity || a.port - b.port);
  const plain = (entries: PolicyEntry[]) => entries.map(({ identity, protocol, port, deny }) => ({ identity, protocol, port, deny }));

  function cnp(name: string, toPorts: unknown[], from: Record<string, string> = { app: 'client' }): CiliumNetworkPolicy {
    return {
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name, namespace: ns?.name },
      spec: { endpointSelector: { matchLabels: { app: 'web' } }, ingress: [{ fromEndpoints: [{ matchLabels: from }], toPorts: toPorts as never }] },
    };
  }
  const applyCnp = (obj: CiliumNetworkPolicy) => apply(client, ciliumNetworkPolicies, obj, { fieldManager: 'policy-loop-test', force: true });
  const deleteCnp = (name: string) => client.request('DELETE', objectPath(ciliumNetworkPolicies, name, ns?.name));
  const tcp = (port: number) => [{ ports: [{ port: String(port), protocol: 'TCP' }] }];

  async function warnings(object: string, reason: string): Promise<CoreEvent[]> {
    let found: CoreEvent[] = [];
    const deadline = Date.now() + 10_000;
    while (found.length === 0 && Date.now() < deadline) {
      const list = await client.request<{ items: CoreEvent[] }>('GET', collectionPath(coreEvents, ns?.name));
      found = list.items.filter((e) => e.involvedObject.name === object && e.reason === reason && e.type === 'Warning');
      if (found.length === 0) await sleep(100);
    }
    return found;
  }

  it('enforces a policy within a second, adds a new peer identity, and reverts on delete', async () => {
    expect(realized()?.enforcement).to.deep.equal({ ingress: false, egress: false });

    const started = performance.now();
    await applyCnp(cnp('allow-client', tcp(80)));
    const applied = performance.now();
    await pollUntil('ingress enforcement', () => realized()?.enforcement.ingress === true, 5_000);
    const enforced = performance.now();
    console.log(`      first apply: apiserver answered in ${(applied - started).toFixed(0)} ms, enforced ${(enforced - applied).toFixed(0)} ms later`);
    expect(enforced - applied, 'apply answered → enforced (ms)').to.be.below(1000);
    // The client identity does not exist yet: only the node may reach the endpoint.
    expect(plain(entriesOf('ingress'))).to.deep.equal([{ identity: HOST, protocol: 0, port: 0, deny: false }]);

    const clientLabels = podSecurityLabels({ podLabels: { app: 'client' }, namespace: ns?.name as string, namespaceLabels: {}, clusterName: 'default' }, filter).identity;
    const clientId = (await allocator.allocate(clientLabels)).id;
    await pollUntil('the new client identity among the peers', () => entriesOf('ingress').some((e) => e.identity === clientId), 5_000);
    expect(plain(entriesOf('ingress'))).to.deep.equal([
      { identity: HOST, protocol: 0, port: 0, deny: false },
      { identity: clientId, protocol: 6, port: 80, deny: false },
    ]);

    await deleteCnp('allow-client');
    await pollUntil('enforcement reverting', () => realized()?.enforcement.ingress === false, 5_000);
    expect(entriesOf('ingress')).to.deep.equal([]);
  });

  it('reports an L7 rule and opens nothing for it', async () => {
    const clientLabels = podSecurityLabels({ podLabels: { app: 'client' }, namespace: ns?.name as string, namespaceLabels: {}, clusterName: 'default' }, filter).identity;
    const clientId = (await allocator.allocate(clientLabels)).id;
    await applyCnp(cnp('l7-http', [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ method: 'GET', path: '/public' }] } }]));
    await pollUntil('ingress enforcement', () => realized()?.enforcement.ingress === true, 5_000);
    const found = await warnings('l7-http', REASON_POLICY_NOT_ENFORCED);
    expect(found, 'a PolicyNotEnforced event').to.have.length(1);
    expect(found[0]?.message).to.include('spec.ingress[0].toPorts[0].rules');
    expect(entriesOf('ingress').filter((e) => e.identity === clientId), 'nothing opened for the L7 rule').to.deep.equal([]);
    await deleteCnp('l7-http');
    await pollUntil('enforcement reverting', () => realized()?.enforcement.ingress === false, 5_000);
  });

  it('refuses an invalid version with a Warning naming the field and keeps the previous one in force', async () => {
    await applyCnp(cnp('versioned', tcp(443)));
    await pollUntil('version 1 enforced', () => entriesOf('ingress').some((e) => e.port === 443), 5_000);
    const before = realized();

    const bad = cnp('versioned', [{ ports: [{ port: '8080', endPort: 70, protocol: 'TCP' }] }]);
    await applyCnp(bad);
    const found = await warnings('versioned', REASON_POLICY_INVALID);
    expect(found, 'a PolicyInvalid event').to.have.length(1);
    expect(found[0]?.message).to.include('spec.ingress[0].toPorts[0].ports[0].endPort');
    expect(found[0]?.message).to.include('previous version stays in force');
    await sleep(300);
    expect(realized(), 'enforcement unchanged').to.deep.equal(before);
    expect(await seriesValue(registry, 'cilium_policy_change_total', { outcome: 'fail' })).to.be.at.least(1);

    await deleteCnp('versioned');
    await pollUntil('enforcement reverting', () => realized()?.enforcement.ingress === false, 5_000);
  });

  it('enforces a clusterwide policy and reverts when it goes', async () => {
    await apply(
      client,
      ciliumClusterwideNetworkPolicies,
      {
        apiVersion: 'cilium.io/v2',
        kind: 'CiliumClusterwideNetworkPolicy',
        metadata: { name: CCNP },
        spec: {
          endpointSelector: { matchLabels: { app: 'web', 'k8s:io.kubernetes.pod.namespace': ns?.name as string } },
          egress: [{ toEntities: ['world'], toPorts: [{ ports: [{ port: '53', protocol: 'UDP' }] }] }],
        },
      },
      { fieldManager: 'policy-loop-test' },
    );
    await pollUntil('egress enforcement', () => realized()?.enforcement.egress === true, 5_000);
    expect(plain(entriesOf('egress'))).to.deep.equal([{ identity: WORLD, protocol: 17, port: 53, deny: false }]);
    await client.request('DELETE', objectPath(ciliumClusterwideNetworkPolicies, CCNP));
    await pollUntil('egress enforcement reverting', () => realized()?.enforcement.egress === false, 5_000);
  });

  it('measures apply → enforced latency over 50 applies', async () => {
    const samples: number[] = [];
    for (let i = 0; i < 50; i++) {
      const port = 2000 + i;
      const started = performance.now();
      await applyCnp(cnp('latency', tcp(port)));
      while (!entriesOf('ingress').some((e) => e.port === port)) {
        if (performance.now() - started > 5_000) throw new Error(`apply ${i}: port ${port} not enforced within 5 s`);
        await sleep(1);
      }
      samples.push(performance.now() - started);
    }
    samples.sort((a, b) => a - b);
    const p50 = percentile(samples, 50);
    const p99 = percentile(samples, 99);
    console.log(`      apply → enforced over ${samples.length} applies: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${samples[samples.length - 1]?.toFixed(1)} ms`);
    expect(p99).to.be.below(1000);
    const delays = await seriesValue(registry, 'cilium_policy_implementation_delay', { source: 'k8s' }, 'cilium_policy_implementation_delay_count');
    expect(delays, 'cilium_policy_implementation_delay observations').to.be.at.least(50);
    expect(await seriesValue(registry, 'cilium_policy_max_revision', {})).to.be.above(50);
    await deleteCnp('latency');
    await pollUntil('enforcement reverting', () => realized()?.enforcement.ingress === false, 5_000);
  });
});
