import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { pollUntil } from '../../../test/envtest/poll.js';
import { HostScopePool } from '../ipam/pool.js';
import { InvalidEndpointRequestError } from './change-request.js';
import { hostScopeIpam } from './ipam.js';
import { EndpointConflictError, EndpointManager, EndpointNotFoundError } from './manager.js';
import { EndpointStateStore } from './state-store.js';
import { cniRequest, FakeCeps, FakeCluster, FakeDatapath, FakeIdentities, FakePolicy, silentLogger } from './testing.js';
import { Registry } from 'prom-client';
import { rejection } from '../../../test/support/rejection.js';

const POD_CIDR = '10.0.1.0/24';
/** How long a CEP write may take through the sync's queue (retries start at 5 ms). */
const CEP_SYNC_MS = 2_000;

/** Every agent of a test, its CEP sync running until afterEach stops it. */
const running: { stop: AbortController; done: Promise<void>; manager: EndpointManager }[] = [];

/** One agent's view: its fakes, real IPAM pool and real state store on a temp dir. */
class Agent {
  readonly identities = new FakeIdentities();
  readonly policy = new FakePolicy();
  readonly ceps = new FakeCeps();
  readonly pool = new HostScopePool(POD_CIDR);
  readonly store: EndpointStateStore;
  readonly manager: EndpointManager;
  readonly registry = new Registry();

  constructor(
    readonly stateDir: string,
    readonly cluster: FakeCluster,
    readonly datapath: FakeDatapath,
  ) {
    this.store = new EndpointStateStore(stateDir);
    this.manager = new EndpointManager({
      pods: cluster.podSource,
      namespaces: cluster.namespaceSource,
      identities: this.identities,
      datapath,
      policy: this.policy,
      ceps: this.ceps,
      store: this.store,
      ipam: hostScopeIpam(this.pool),
      nodeName: 'node-1',
      logger: silentLogger(),
      onChange: () => this.changes++,
      registry: this.registry,
    });
    const stop = new AbortController();
    running.push({ stop, done: this.manager.start(stop.signal), manager: this.manager });
  }

  /** The same node's next agent, once this one's state files are written. */
  async restart(): Promise<Agent> {
    await this.manager.stateSaved();
    return new Agent(this.stateDir, this.cluster, this.datapath);
  }

  changes = 0;

  cep(name: string) {
    return this.ceps.objects.get(`default/${name}`);
  }

  async stateFiles(): Promise<string[]> {
    return (await readdir(this.stateDir).catch(() => [])).sort();
  }
}

describe('EndpointManager', () => {
  let dir = '';
  let cluster: FakeCluster;
  let datapath: FakeDatapath;
  let agent: Agent;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ep-manager-'));
    cluster = new FakeCluster();
    cluster.addNamespace('default', { team: 'a' });
    cluster.addPod('default', 'web-0', { app: 'web', 'pod-template-hash': '5d4f8c7b9' });
    cluster.addPod('default', 'web-1', { app: 'web' });
    datapath = new FakeDatapath();
    agent = new Agent(path.join(dir, 'state'), cluster, datapath);
  });
  afterEach(async () => {
    for (const r of running.splice(0)) {
      r.stop.abort();
      await r.done;
      await r.manager.stateSaved();
    }
    await rm(dir, { recursive: true, force: true });
  });

  describe('create', () => {
    it('derives labels, gets an identity, upserts, syncs policy, persists and writes the CEP', async () => {
      const ep = await agent.manager.create(cniRequest({ addressing: null }));
      expect(ep.id).to.equal(1);
      expect(ep.state).to.equal('ready');
      expect(ep.ipv4, 'lowest pool address').to.equal('10.0.1.1');
      expect(ep.identityLabels).to.deep.equal([
        'k8s:app=web',
        'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=default',
        'k8s:io.cilium.k8s.namespace.labels.team=a',
        'k8s:io.cilium.k8s.policy.cluster=default',
        'k8s:io.cilium.k8s.policy.serviceaccount=web-sa',
        'k8s:io.kubernetes.pod.namespace=default',
      ]);
      expect(datapath.endpoints.get(1)).to.deep.equal({
        id: 1,
        ipv4: '10.0.1.1',
        identity: ep.identity,
        ifname: 'lxc0123456789ab',
        ifindex: 42,
        mac: '02:00:00:00:00:02',
        nodeMac: '02:00:00:00:00:01',
      });
      expect(datapath.policies.get(1)?.enforcement).to.deep.equal({ ingress: true, egress: false });
      expect(agent.pool.used()).to.deep.equal({ '10.0.1.1': { owner: 'default/web-0' } });
      await agent.manager.stateSaved();
      expect(await agent.stateFiles()).to.deep.equal(['endpoint-00001.json']);
      await pollUntil('CEP written', () => agent.cep('web-0') !== undefined, CEP_SYNC_MS);
      const cep = agent.cep('web-0');
      expect(cep?.metadata.ownerReferences).to.deep.equal([{ apiVersion: 'v1', kind: 'Pod', name: 'web-0', uid: 'uid-default-web-0' }]);
      expect(cep?.metadata.labels, 'pod labels mirrored').to.deep.equal({ app: 'web', 'pod-template-hash': '5d4f8c7b9' });
      expect(cep?.status?.identity?.id).to.equal(ep.identity);
      expect(cep?.status?.state).to.equal('ready');
      expect(cep?.status?.policy?.ingress).to.deep.equal({ enforcing: true, state: 'enforcing' });
      expect(cep?.status?.['named-ports']).to.deep.equal([{ name: 'http', port: 8080, protocol: 'TCP' }]);
      expect(agent.manager.get(1)).to.deep.equal(ep);
      expect(agent.manager.list()).to.deep.equal([ep]);
    });

    it('keeps the address the CNI allocated and gives two pods with equal labels one identity', async () => {
      const a = await agent.manager.create(cniRequest());
      const b = await agent.manager.create(
        cniRequest({
          'container-id': 'beef',
          'k8s-pod-name': 'web-1',
          'k8s-uid': 'uid-default-web-1',
          addressing: { ipv4: '10.0.1.21' },
          'interface-index': 43,
        }),
      );
      expect([a.ipv4, b.ipv4]).to.deep.equal(['10.0.1.20', '10.0.1.21']);
      expect([a.id, b.id]).to.deep.equal([1, 2]);
      expect(b.identity).to.equal(a.identity);
    });

    it('refuses a bad request naming the field, before touching anything', async () => {
      const err = await rejection(agent.manager.create(cniRequest({ addressing: { ipv4: '10.0.0.300' } })));
      expect(err).to.be.instanceOf(InvalidEndpointRequestError);
      expect(err.message).to.equal('endpoint change request: addressing.ipv4: "10.0.0.300": not a dotted-quad IPv4 address');
      expect(datapath.writes).to.equal(0);
      expect(agent.manager.list()).to.deep.equal([]);
    });

    it('refuses a second endpoint for the same attachment or address', async () => {
      await agent.manager.create(cniRequest());
      expect(await rejection(agent.manager.create(cniRequest()))).to.be.instanceOf(EndpointConflictError);
      const sameIp = await rejection(agent.manager.create(cniRequest({ 'container-id': 'other', 'k8s-pod-name': 'web-1', 'k8s-uid': undefined })));
      expect(sameIp).to.be.instanceOf(EndpointConflictError);
      expect(sameIp.message).to.match(/endpoint 1 \(c0ffee:eth0, 10\.0\.1\.20\) already exists/);
    });

    it('takes the id a request names, and refuses one in use', async () => {
      expect((await agent.manager.create(cniRequest({ id: 100 }))).id).to.equal(100);
      const err = await rejection(
        agent.manager.create(cniRequest({ id: 100, 'container-id': 'beef', 'k8s-pod-name': 'web-1', 'k8s-uid': undefined, addressing: null })),
      );
      expect(err).to.be.instanceOf(EndpointConflictError);
      expect(err.message).to.match(/endpoint id 100: already in use/);
    });

    it('lets only one of two concurrent creates for one attachment through', async () => {
      const results = await Promise.allSettled([agent.manager.create(cniRequest()), agent.manager.create(cniRequest())]);
      expect(results.map((r) => r.status).sort()).to.deep.equal(['fulfilled', 'rejected']);
      expect(agent.manager.list()).to.have.length(1);
    });

    it('rolls everything back when identity allocation fails', async () => {
      agent.identities.failNext = new Error('apiserver unavailable');
      const err = await rejection(agent.manager.create(cniRequest({ addressing: null })));
      expect(err.message).to.equal('create endpoint for pod default/web-0 (c0ffee:eth0): apiserver unavailable');
      expect(datapath.endpoints.size).to.equal(0);
      expect(agent.pool.used(), 'address released').to.deep.equal({});
      expect(await agent.stateFiles()).to.deep.equal([]);
      expect(agent.ceps.objects.size).to.equal(0);
      expect(agent.manager.list()).to.deep.equal([]);
      const again = await agent.manager.create(cniRequest({ addressing: null }));
      expect([again.id, again.ipv4], 'id and address free again').to.deep.equal([1, '10.0.1.1']);
    });

    it('rolls back the datapath endpoint and the identity use when the first policy sync fails', async () => {
      datapath.failNext.set('syncPolicy', new Error('policy map full'));
      const err = await rejection(agent.manager.create(cniRequest()));
      expect(err.message).to.match(/: policy map full$/);
      expect(datapath.endpoints.size).to.equal(0);
      expect(agent.identities.released).to.have.length(1);
      expect(await agent.stateFiles()).to.deep.equal([]);
      expect(agent.pool.used(), 'the CNI allocated the address; the CNI releases it').to.deep.equal({});
    });

    it('fails naming a missing pod or namespace, or a pod re-created under the same name', async () => {
      expect((await rejection(agent.manager.create(cniRequest({ 'k8s-pod-name': 'nope' })))).message).to.match(/pod default\/nope: not found/);
      cluster.addPod('other', 'web-0', {});
      expect((await rejection(agent.manager.create(cniRequest({ 'k8s-namespace': 'other' })))).message).to.match(/namespace other: not found/);
      expect((await rejection(agent.manager.create(cniRequest({ 'k8s-uid': 'old-uid' })))).message).to.match(
        /has uid uid-default-web-0, not the request's k8s-uid old-uid/,
      );
      expect(datapath.writes).to.equal(0);
    });

    it('keeps a working endpoint when the CEP write fails, and retries the write until it lands', async () => {
      agent.ceps.failApplies = 3;
      const ep = await agent.manager.create(cniRequest());
      expect(ep.state).to.equal('ready');
      await pollUntil('CEP written after 3 failures', () => agent.cep('web-0') !== undefined, CEP_SYNC_MS);
      expect(agent.ceps.failApplies, 'every failure was retried').to.equal(0);
      expect(agent.ceps.applies).to.equal(1);
      expect(agent.cep('web-0')?.status?.id).to.equal(ep.id);
    });

    it('ends with no CEP when the endpoint is deleted while its write is owed', async () => {
      await agent.manager.create(cniRequest());
      await pollUntil('first CEP written', () => agent.cep('web-0') !== undefined, CEP_SYNC_MS);
      agent.ceps.failApplies = 1_000;
      const pod = cluster.pods.get('default/web-0');
      if (pod?.metadata?.labels) pod.metadata.labels.app = 'api';
      await agent.manager.updateLabels('default', 'web-0');
      await pollUntil('the update failing', () => agent.ceps.failApplies < 1_000, CEP_SYNC_MS);
      await agent.manager.delete(1);
      await pollUntil('CEP deleted', () => agent.ceps.objects.size === 0, CEP_SYNC_MS);
      agent.ceps.failApplies = 0;
      // A write still queued for the gone endpoint would land now.
      await new Promise((r) => setTimeout(r, 100));
      expect(agent.ceps.objects.size).to.equal(0);
    });

    it('leaves the CEP of a pod re-created under the same name alone', async () => {
      await agent.manager.create(cniRequest());
      await pollUntil('CEP written', () => agent.cep('web-0') !== undefined, CEP_SYNC_MS);
      // The StatefulSet pod is re-created (on another node, whose agent writes its CEP).
      const theirs = structuredClone(agent.cep('web-0'));
      if (theirs?.metadata.ownerReferences?.[0] === undefined || theirs.status?.networking === undefined) throw new Error('CEP has no owner');
      theirs.metadata.ownerReferences[0].uid = 'uid-new-pod';
      theirs.status.networking.node = 'node-2';
      agent.ceps.objects.set('default/web-0', theirs);
      // A change of ours (state not-ready) would overwrite it.
      datapath.failNext.set('syncPolicy', new Error('map full'));
      await rejection(agent.manager.regenerate(1));
      await pollUntil('our update refused', () => agent.ceps.refused > 0, CEP_SYNC_MS);
      await agent.manager.delete(1);
      await new Promise((r) => setTimeout(r, 50));
      expect(agent.cep('web-0'), 'the new pod keeps its CEP').to.deep.equal(theirs);
    });

    it('makes a CNI DEL wait for the ADD of its container still in flight', async () => {
      const get = cluster.podSource.get;
      let lookups = 0;
      cluster.podSource.get = async (ns, name) => {
        lookups++;
        await new Promise((r) => setTimeout(r, 50));
        return get(ns, name);
      };
      const created = agent.manager.create(cniRequest({ addressing: null }));
      await new Promise((r) => setImmediate(r));
      expect(lookups, 'the DEL comes during the pod lookup').to.equal(1);
      const deleted = await agent.manager.delete('c0ffee');
      expect((await created).id).to.equal(1);
      expect(deleted.map((e) => e.id)).to.deep.equal([1]);
      expect(agent.manager.list()).to.deep.equal([]);
      expect(datapath.endpoints.size).to.equal(0);
      expect(agent.pool.used(), 'address released').to.deep.equal({});
      expect(agent.identities.released, 'identity use released').to.have.length(1);
    });

    it('still answers NotFound to a DEL whose ADD failed', async () => {
      cluster.pods.delete('default/web-0');
      const created = agent.manager.create(cniRequest());
      expect(await rejection(agent.manager.delete('c0ffee'))).to.be.instanceOf(EndpointNotFoundError);
      expect((await rejection(created)).message).to.match(/pod default\/web-0: not found/);
    });

    it('counts every regeneration (create, policy change, relabel, restore) by outcome', async () => {
      const count = async (r: Registry, outcome: string) => (await r.getSingleMetric('cilium_endpoint_regenerations_total')?.get())?.values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
      await agent.manager.create(cniRequest());
      await agent.manager.regenerate(1);
      datapath.failNext.set('syncPolicy', new Error('map full'));
      await rejection(agent.manager.regenerate(1));
      const pod = cluster.pods.get('default/web-0');
      if (pod?.metadata?.labels) pod.metadata.labels.app = 'api';
      await agent.manager.updateLabels('default', 'web-0');
      expect(await count(agent.registry, 'success')).to.equal(3);
      expect(await count(agent.registry, 'fail')).to.equal(1);
      const restarted = await agent.restart();
      await restarted.manager.restore();
      expect(await count(restarted.registry, 'success')).to.equal(1);
    });

    it('writes deny-all for a policy that cannot be computed and says the endpoint is not ready', async () => {
      await agent.manager.create(cniRequest());
      agent.policy.computeError = 'selector cache lost identity 1007';
      expect((await rejection(agent.manager.regenerate(1))).message).to.match(/policy could not be computed.*selector cache lost/);
      expect(datapath.policies.get(1), 'deny-all written').to.deep.equal({ entries: [], enforcement: { ingress: true, egress: true } });
      expect(agent.manager.get(1)).to.deep.include({ state: 'not-ready', enforcement: { ingress: true, egress: true } });
      agent.policy.computeError = undefined;
      expect((await agent.manager.regenerate(1)).state).to.equal('ready');
      const restarted = await agent.restart();
      restarted.policy.computeError = 'still broken';
      const report = await restarted.manager.restore();
      expect(report.restored, 'a restart keeps the endpoint, denying all').to.deep.equal([1]);
      expect(restarted.manager.get(1)?.state).to.equal('not-ready');
    });

    it('tells onChange when endpoints come, go or change identity', async () => {
      await agent.manager.create(cniRequest());
      expect(agent.changes).to.equal(1);
      await agent.manager.regenerate(1);
      expect(agent.changes, 'same identity and address').to.equal(1);
      const pod = cluster.pods.get('default/web-0');
      if (pod?.metadata?.labels) pod.metadata.labels.app = 'api';
      await agent.manager.updateLabels('default', 'web-0');
      expect(agent.changes).to.equal(2);
      await agent.manager.delete(1);
      expect(agent.changes).to.equal(3);
      const restarted = await agent.restart();
      await restarted.manager.restore();
      expect(restarted.changes).to.equal(1);
    });
  });

  describe('label changes', () => {
    it('moves the endpoint to the identity of its new pod labels', async () => {
      const before = await agent.manager.create(cniRequest());
      const pod = cluster.pods.get('default/web-0');
      if (pod?.metadata?.labels) pod.metadata.labels.app = 'api';
      const [after] = await agent.manager.updateLabels('default', 'web-0');
      expect(after?.identity).to.not.equal(before.identity);
      expect(after?.identityLabels).to.include('k8s:app=api');
      expect(after?.state).to.equal('ready');
      expect(datapath.endpoints.get(1)?.identity).to.equal(after?.identity);
      expect(agent.policy.computedFor.at(-1), 'policy recomputed for the new identity').to.equal(after?.identity);
      await pollUntil('CEP names the new labels', () => agent.cep('web-0')?.status?.identity?.labels?.includes('k8s:app=api') === true, CEP_SYNC_MS);
      expect(agent.identities.released).to.deep.equal([before.identity]);
      const saved = JSON.parse(await readFile(path.join(agent.stateDir, 'endpoint-00001.json'), 'utf8')) as { endpoint: { identity: number } };
      expect(saved.endpoint.identity).to.equal(after?.identity);
    });

    it('moves every endpoint of a namespace when the namespace labels change', async () => {
      const a = await agent.manager.create(cniRequest());
      await agent.manager.create(cniRequest({ 'container-id': 'beef', 'k8s-pod-name': 'web-1', 'k8s-uid': undefined, addressing: { ipv4: '10.0.1.21' } }));
      cluster.addNamespace('default', { team: 'b' });
      const moved = await agent.manager.updateNamespace('default');
      expect(moved).to.have.length(2);
      for (const ep of moved) {
        expect(ep.identity).to.not.equal(a.identity);
        expect(ep.identityLabels).to.include('k8s:io.cilium.k8s.namespace.labels.team=b');
      }
      expect(moved[0]?.identity, 'same labels, same identity').to.equal(moved[1]?.identity);
    });

    it('writes nothing when only labels the filter drops change', async () => {
      const before = await agent.manager.create(cniRequest());
      const writes = datapath.writes;
      const pod = cluster.pods.get('default/web-0');
      if (pod?.metadata?.labels) pod.metadata.labels['pod-template-hash'] = 'other';
      const [after] = await agent.manager.updateLabels('default', 'web-0');
      expect(after?.identity).to.equal(before.identity);
      expect(datapath.writes).to.equal(writes);
      await pollUntil('CEP mirrors pod labels', () => agent.cep('web-0')?.metadata.labels?.['pod-template-hash'] === 'other', CEP_SYNC_MS);
    });

    it('stays on its old identity when the new one cannot be allocated', async () => {
      const before = await agent.manager.create(cniRequest());
      const pod = cluster.pods.get('default/web-0');
      if (pod?.metadata?.labels) pod.metadata.labels.app = 'api';
      agent.identities.failNext = new Error('quota');
      expect((await rejection(agent.manager.updateLabels('default', 'web-0'))).message).to.equal('quota');
      expect(agent.manager.get(1)?.identity).to.equal(before.identity);
      expect(datapath.endpoints.get(1)?.identity).to.equal(before.identity);
    });

    it('stays on its old identity, ready, when the datapath cannot take the new one', async () => {
      const before = await agent.manager.create(cniRequest());
      const pod = cluster.pods.get('default/web-0');
      if (pod?.metadata?.labels) pod.metadata.labels.app = 'api';
      datapath.failNext.set('upsertEndpoint', new Error('lxc map: EBUSY'));
      expect((await rejection(agent.manager.updateLabels('default', 'web-0'))).message).to.match(/endpoint 1 \(pod default\/web-0\): move to identity \d+: lxc map: EBUSY/);
      const ep = agent.manager.get(1);
      expect([ep?.identity, ep?.state, ep?.identityLabels]).to.deep.equal([before.identity, 'ready', before.identityLabels]);
      expect(datapath.endpoints.get(1)?.identity).to.equal(before.identity);
      expect(agent.identities.released, 'the new identity use dropped, the old kept').to.have.length(1);
      expect(agent.identities.released).to.not.include(before.identity);
      const [moved] = await agent.manager.updateLabels('default', 'web-0');
      expect(moved?.identity, 'the next relabel moves it').to.not.equal(before.identity);
    });

    it('is not-ready on its old identity when neither identity can be written to the datapath', async () => {
      const before = await agent.manager.create(cniRequest());
      const pod = cluster.pods.get('default/web-0');
      if (pod?.metadata?.labels) pod.metadata.labels.app = 'api';
      const upsert = datapath.upsertEndpoint.bind(datapath);
      datapath.upsertEndpoint = () => Promise.reject(new Error('lxc map: EIO'));
      await rejection(agent.manager.updateLabels('default', 'web-0'));
      datapath.upsertEndpoint = upsert;
      const ep = agent.manager.get(1);
      expect([ep?.identity, ep?.state, ep?.enforcement]).to.deep.equal([before.identity, 'not-ready', undefined]);
    });

    it('leaves the endpoint not-ready when policy for the new identity cannot be synced', async () => {
      await agent.manager.create(cniRequest());
      const pod = cluster.pods.get('default/web-0');
      if (pod?.metadata?.labels) pod.metadata.labels.app = 'api';
      agent.policy.failNext = new Error('selector cache not synced');
      expect((await rejection(agent.manager.updateLabels('default', 'web-0'))).message).to.match(
        /endpoint 1 \(pod default\/web-0\): move to identity \d+: selector cache not synced/,
      );
      expect(agent.manager.get(1)?.state).to.equal('not-ready');
      await pollUntil('CEP not-ready', () => agent.cep('web-0')?.status?.state === 'not-ready', CEP_SYNC_MS);
      expect((await agent.manager.regenerate(1)).state).to.equal('ready');
    });
  });

  describe('state file', () => {
    it('is written after the create answered; a write that fails leaves the endpoint working', async () => {
      // A state dir under a regular file: every save fails.
      await writeFile(path.join(dir, 'not-a-dir'), '');
      const broken = new Agent(path.join(dir, 'not-a-dir', 'state'), cluster, datapath);
      const ep = await broken.manager.create(cniRequest());
      expect(ep.state).to.equal('ready');
      await broken.manager.stateSaved();
      expect(broken.manager.get(ep.id)?.state).to.equal('ready');
      expect(datapath.endpoints.has(ep.id)).to.equal(true);
    });

    it('of an endpoint deleted right after its create is gone, not written after the delete', async () => {
      await agent.manager.create(cniRequest());
      await agent.manager.delete(1);
      await agent.manager.stateSaved();
      expect(await agent.stateFiles()).to.deep.equal([]);
    });
  });

  describe('delete', () => {
    it('removes datapath endpoint, CEP, state, address and id', async () => {
      await agent.manager.create(cniRequest({ addressing: null }));
      const [gone] = await agent.manager.delete(1);
      expect(gone?.state).to.equal('disconnected');
      expect(datapath.endpoints.size).to.equal(0);
      await pollUntil('CEP deleted', () => agent.ceps.objects.size === 0, CEP_SYNC_MS);
      expect(await agent.stateFiles()).to.deep.equal([]);
      expect(agent.pool.used()).to.deep.equal({});
      expect(agent.manager.list()).to.deep.equal([]);
      expect(await rejection(agent.manager.delete(1))).to.be.instanceOf(EndpointNotFoundError);
      expect((await agent.manager.create(cniRequest())).id, 'id free again').to.equal(1);
    });

    it('deletes by container id (CNI DEL) and keeps an external-ipam address', async () => {
      agent.pool.restore({ '10.0.1.20': { owner: 'outside' } });
      await agent.manager.create(cniRequest({ 'datapath-configuration': { 'external-ipam': true } }));
      const gone = await agent.manager.delete('c0ffee');
      expect(gone.map((e) => e.id)).to.deep.equal([1]);
      expect(agent.pool.used()).to.deep.equal({ '10.0.1.20': { owner: 'outside' } });
    });

    it('forgets the endpoint even when a step fails, and reports the step', async () => {
      await agent.manager.create(cniRequest());
      datapath.failNext.set('removeEndpoint', new Error('bpf: EPERM'));
      expect((await rejection(agent.manager.delete(1))).message).to.equal('delete endpoint 1: endpoint 1: remove datapath endpoint: bpf: EPERM');
      expect(agent.manager.list()).to.deep.equal([]);
      expect(await agent.stateFiles()).to.deep.equal([]);
    });
  });

  describe('restart', () => {
    it('restores endpoints with no datapath writes, prunes stale ones, keeps ids and addresses', async () => {
      const a = await agent.manager.create(cniRequest({ addressing: null }));
      const b = await agent.manager.create(
        cniRequest({ 'container-id': 'beef', 'k8s-pod-name': 'web-1', 'k8s-uid': undefined, addressing: null, 'interface-index': 43 }),
      );
      await datapath.upsertEndpoint({
        id: 77,
        ipv4: '10.0.1.77',
        identity: 5,
        ifname: 'lxcstale',
        ifindex: 77,
        mac: '02:00:00:00:00:07',
        nodeMac: '02:00:00:00:00:01',
      });
      await agent.manager.stateSaved();
      const files = await Promise.all((await agent.stateFiles()).map((f) => readFile(path.join(agent.stateDir, f), 'utf8')));
      datapath.writes = 0;

      const restarted = await agent.restart();
      const report = await restarted.manager.restore();
      expect(report).to.deep.equal({ restored: [1, 2], pruned: [77], problems: [] });
      expect(datapath.writes, 'only the stale endpoint is removed').to.equal(1);
      expect(restarted.manager.list()).to.deep.equal([a, b]);
      const after = await Promise.all((await restarted.stateFiles()).map((f) => readFile(path.join(agent.stateDir, f), 'utf8')));
      expect(after, 'state files not rewritten').to.deep.equal(files);
      expect(restarted.pool.used()).to.deep.equal({ '10.0.1.1': { owner: 'default/web-0' }, '10.0.1.2': { owner: 'default/web-1' } });
      await pollUntil('restored CEP written', () => restarted.cep('web-1')?.status?.state === 'ready', CEP_SYNC_MS);
      cluster.addPod('default', 'web-2', { app: 'web' });
      const c = await restarted.manager.create(cniRequest({ 'container-id': 'cafe', 'k8s-pod-name': 'web-2', 'k8s-uid': undefined, addressing: null }));
      expect([c.id, c.ipv4], 'new endpoint goes around the restored ones').to.deep.equal([3, '10.0.1.3']);
      expect((await rejection(restarted.manager.restore())).message).to.match(/must run once, before any endpoint is created/);
    });

    it('reports a corrupt state file and prunes its datapath endpoint', async () => {
      await agent.manager.create(cniRequest());
      await agent.manager.create(cniRequest({ 'container-id': 'beef', 'k8s-pod-name': 'web-1', 'k8s-uid': undefined, addressing: null }));
      await agent.manager.stateSaved();
      await writeFile(path.join(agent.stateDir, 'endpoint-00002.json'), '{"version":1,"endpoint":{"id":2');
      const restarted = await agent.restart();
      const report = await restarted.manager.restore();
      expect(report.restored).to.deep.equal([1]);
      expect(report.pruned).to.deep.equal([2]);
      expect(report.problems).to.have.length(1);
      expect(report.problems[0]?.file).to.match(/endpoint-00002\.json$/);
      expect(report.problems[0]?.reason).to.match(/^not JSON/);
    });

    it('drops an endpoint whose address IPAM gives to another owner', async () => {
      await agent.manager.create(cniRequest({ addressing: null }));
      const restarted = await agent.restart();
      restarted.pool.restore({ '10.0.1.1': { owner: 'router' } });
      const report = await restarted.manager.restore();
      expect(report.restored).to.deep.equal([]);
      expect(report.pruned).to.deep.equal([1]);
      expect(report.problems).to.deep.equal([{ file: 'endpoint 1', reason: '10.0.1.1: restored for default/web-0 but already allocated to router' }]);
      expect(restarted.pool.used(), 'the other owner keeps it').to.deep.equal({ '10.0.1.1': { owner: 'router' } });
    });

    it('drops an endpoint whose identity cannot be confirmed, with its state', async () => {
      await agent.manager.create(cniRequest());
      const restarted = await agent.restart();
      restarted.identities.failNext = new Error('apiserver unavailable');
      const report = await restarted.manager.restore();
      expect(report).to.deep.equal({ restored: [], pruned: [1], problems: [{ file: 'endpoint 1', reason: 'apiserver unavailable' }] });
      expect(await restarted.stateFiles()).to.deep.equal([]);
      expect(restarted.pool.used()).to.deep.equal({});
      expect(restarted.manager.list()).to.deep.equal([]);
    });
  });

  it('serializes operations on one endpoint', async () => {
    await agent.manager.create(cniRequest());
    const order: string[] = [];
    const compute = agent.policy.compute.bind(agent.policy);
    agent.policy.compute = async (ep) => {
      order.push('start');
      await new Promise((r) => setTimeout(r, 20));
      order.push('end');
      return compute(ep);
    };
    await Promise.all([agent.manager.regenerate(1), agent.manager.regenerate(1), agent.manager.delete(1)]);
    expect(order).to.deep.equal(['start', 'end', 'start', 'end']);
    expect(agent.manager.list()).to.deep.equal([]);
  });
});
