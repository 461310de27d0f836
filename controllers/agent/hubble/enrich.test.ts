import { expect } from 'chai';
import { loadConfig } from '../../config/options.js';
import { ENDPOINT_CACHE_MS, flowContext, flowLabels, workloadOf } from './enrich.js';
import { HUBBLE_OPTIONS, hubbleSettings } from './options.js';
import { CLIENT_IP, SERVER, SERVER_IP, testSources } from './testing.js';

describe('hubble enrichment from the agent caches', () => {
  const ctx = flowContext(testSources());

  it('a local endpoint: id, datapath identity, cluster, namespace, sorted labels, pod, workload', () => {
    expect(ctx.endpoint(SERVER_IP, 4242)).to.deep.equal({
      ID: 12,
      identity: 4242,
      cluster_name: 'prod',
      namespace: 'shop',
      labels: ['k8s:app=cart', 'k8s:io.cilium.k8s.policy.cluster=prod', 'k8s:io.kubernetes.pod.namespace=shop'],
      pod_name: 'cart-5c4b9-xk2p',
      workloads: [{ kind: 'Deployment', name: 'cart' }],
    });
    expect(ctx.endpoint(SERVER_IP, 0).identity, 'no datapath identity: the endpoint`s').to.equal(4242);
    expect(ctx.interfaceOf(12)).to.deep.equal({ index: 33, name: 'lxc0123' });
    expect(ctx.interfaceOf(0)).to.equal(undefined);
  });

  it('a pod of another node: its CiliumEndpoint`s pod and namespace, its identity`s labels', () => {
    expect(ctx.endpoint(CLIENT_IP, 0)).to.deep.equal({
      ID: 0,
      identity: 5000,
      cluster_name: 'prod',
      namespace: 'shop',
      labels: ['k8s:app=client', 'k8s:io.cilium.k8s.policy.cluster=prod'],
      pod_name: 'client-1',
      workloads: [],
    });
  });

  it('an address nobody owns: the datapath identity and its (reserved) labels', () => {
    expect(ctx.endpoint('1.1.1.1', 2)).to.deep.equal({ ID: 0, identity: 2, cluster_name: '', namespace: '', labels: ['reserved:world'], pod_name: '', workloads: [] });
    expect(ctx.endpoint('1.1.1.1', 0).labels).to.deep.equal([]);
  });

  it('CIDR identities show only their longest prefix', () => {
    const labels = ['cidr:10.0.0.0/8', 'cidr:10.1.0.0/16', 'cidr:0.0.0.0/0', 'reserved:world'];
    expect(flowLabels(labels, 16777217)).to.deep.equal(['cidr:10.1.0.0/16', 'reserved:world']);
    expect(flowLabels(labels, 300), 'a global identity keeps them all').to.have.length(4);
  });

  it('workloads from the controlling owner, as upstream', () => {
    const owner = (kind: string, name: string) => [{ apiVersion: 'v1', kind, name, uid: 'u', controller: true }];
    expect(workloadOf(SERVER.pod)).to.deep.equal([{ kind: 'Deployment', name: 'cart' }]);
    expect(workloadOf({ generateName: 'x-', ownerReferences: owner('ReplicaSet', 'plain-rs') })).to.deep.equal([{ kind: 'ReplicaSet', name: 'plain-rs' }]);
    expect(workloadOf({ generateName: 'x-', ownerReferences: owner('Job', 'backup-28901234') })).to.deep.equal([{ kind: 'CronJob', name: 'backup' }]);
    expect(workloadOf({ generateName: 'x-', ownerReferences: owner('StatefulSet', 'db') })).to.deep.equal([{ kind: 'StatefulSet', name: 'db' }]);
    expect(workloadOf({ generateName: 'x-', ownerReferences: owner('ReplicationController', 'rc'), labels: { deploymentconfig: 'dc' } })).to.deep.equal([{ kind: 'DeploymentConfig', name: 'dc' }]);
    expect(workloadOf({ ownerReferences: owner('StatefulSet', 'db') }), 'a pod with a fixed name has none').to.deep.equal([]);
    expect(workloadOf({ generateName: 'x-', ownerReferences: [{ ...owner('ReplicaSet', 'r')[0]!, controller: false }] })).to.deep.equal([]);
    expect(workloadOf(undefined)).to.deep.equal([]);
  });

  it('flows share a resolved endpoint for ENDPOINT_CACHE_MS; a cache change shows after it', () => {
    let clock = 0;
    let pod = 'client-1';
    const cached = flowContext(testSources({ remoteEndpoint: () => ({ namespace: 'shop', podName: pod }) }), () => clock);
    const first = cached.endpoint(CLIENT_IP, 5000);
    pod = 'client-2';
    expect(cached.endpoint(CLIENT_IP, 5000)).to.equal(first);
    expect(cached.endpoint(CLIENT_IP, 2).pod_name, 'another identity is another key').to.equal('client-2');
    clock += ENDPOINT_CACHE_MS;
    expect(cached.endpoint(CLIENT_IP, 5000).pod_name).to.equal('client-2');
  });

  it('the policy of a rule cookie', () => {
    expect(ctx.policy(77)?.name).to.equal('deny-icmp');
    expect(ctx.policy(78)).to.equal(undefined);
  });
});

describe('hubble options', () => {
  const STATE_DIR = { 'state-dir': '/var/run/cilium' };
  const load = (argv: string[], cpus = 4) => hubbleSettings({ ...loadConfig('cilium-agent', HUBBLE_OPTIONS, argv, {}), ...STATE_DIR }, cpus);

  it('upstream names and defaults', () => {
    expect(load([])).to.deep.equal({
      enabled: false,
      socketPath: '/var/run/cilium/hubble.sock',
      listenAddress: ':4244',
      capacity: 4095,
      queueSize: 4096,
      metricsServer: ':9965',
      metrics: '',
      history: { dir: '/var/run/cilium/hubble-history', maxBytes: 1 << 30, maxAgeMs: 0 },
    });
    expect(load([], 64).queueSize, 'at most 16384').to.equal(16384);
    expect(hubbleSettings({ ...loadConfig('cilium-agent', HUBBLE_OPTIONS, [], {}), 'state-dir': '/run/node-b' }).socketPath, 'the socket follows the state dir').to.equal('/run/node-b/hubble.sock');
    expect(load(['--hubble-socket-path=/tmp/h.sock']).socketPath).to.equal('/tmp/h.sock');
    expect(load(['--enable-hubble=true', '--hubble-listen-address=', '--hubble-event-buffer-capacity=65535', '--hubble-event-queue-size=10'])).to.deep.include({
      enabled: true,
      listenAddress: '',
      capacity: 65535,
      queueSize: 10,
    });
    expect(load(['--hubble-metrics-server=', '--hubble-metrics=drop:sourceContext=pod flow', '--hubble-history-dir=/data/h', '--hubble-history-max-size-mb=10', '--hubble-history-max-age=24h'])).to.deep.include({
      metricsServer: '',
      metrics: 'drop:sourceContext=pod flow',
      history: { dir: '/data/h', maxBytes: 10 << 20, maxAgeMs: 24 * 3600_000 },
    });
    expect(load(['--enable-hubble-history=false']).history).to.equal(undefined);
  });

  it('refuses a capacity that is not 2^n-1, a bad listen address, metric or history size', () => {
    expect(() => load(['--hubble-event-buffer-capacity=4096'])).to.throw(/hubble-event-buffer-capacity.*one less than a power of two/);
    expect(() => load(['--hubble-event-buffer-capacity=131071'])).to.throw(/hubble-event-buffer-capacity/);
    expect(() => load(['--hubble-listen-address=4244'])).to.throw(/hubble-listen-address/);
    expect(() => load(['--enable-hubble=yes'])).to.throw(/enable-hubble/);
    expect(() => load(['--hubble-metrics=drop:sourceContext=nope'])).to.throw(/hubble-metrics.*unknown context "nope"/);
    expect(() => load(['--hubble-metrics-server=9965'])).to.throw(/hubble-metrics-server/);
    expect(() => load(['--hubble-history-max-size-mb=0'])).to.throw(/hubble-history-max-size-mb/);
  });
});
