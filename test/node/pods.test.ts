// Issue 8's "done when" on the real local cluster: kubelet + containerd run pods of
// `kubectl create deployment` networked by cilium-cni; they get addresses from the node's podCIDR,
// reach each other over HTTP, a CNP applied with kubectl cuts that and deleting it restores it,
// HTTP readiness probes keep passing under an ingress default-deny (the local host is allowed),
// `kubectl get cep`/`ciliumid` and the agent API show the pods, and the agent-not-ready taint is
// gone once the agent is ready.
import { readFile } from 'node:fs/promises';
import { BlockList } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { AGENT_NOT_READY_TAINT_KEY } from '../../controllers/agent/node/taint.js';
import type { CiliumEndpoint, CiliumIdentity, CiliumNode } from '../../crds/gen/index.js';
import { CILIUM_CONFLIST } from '../../hack/cluster-daemons.js';
import {
  createTestboxDeployment,
  httpFromPod,
  isReady,
  kubectl,
  kubectlJson,
  kubectlOk,
  nodeTestNamespace,
  podsOf,
  stopLocalCluster,
  useLocalCluster,
  waitFor,
  type LocalCluster,
  type PodView,
} from './cluster.js';

/** What upstream's GET /v1/endpoint items carry that these tests read. */
interface ApiEndpoint {
  id: number;
  status?: { networking?: { addressing?: { ipv4?: string }[] }; identity?: { id?: number } };
}

describe('a real node: pods networked and policed by cilium-ts', function () {
  this.timeout(300_000);
  let cluster: LocalCluster | undefined;
  let ns: { name: string; cleanup(): Promise<void> } | undefined;
  let web: PodView[] = [];
  let client: PodView;

  const c = () => cluster as LocalCluster;
  const namespace = () => (ns as { name: string }).name;

  before(async function () {
    this.timeout(900_000);
    cluster = await useLocalCluster();
    ns = await nodeTestNamespace(cluster, 'node-pods');
    await createTestboxDeployment(cluster, ns.name, { name: 'web', replicas: 2, readinessProbe: true, node: cluster.node.name });
    await createTestboxDeployment(cluster, ns.name, { name: 'client', replicas: 1, node: cluster.node.name });
    for (const d of ['web', 'client']) await kubectlOk(cluster, ['rollout', 'status', '-n', ns.name, `deployment/${d}`, '--timeout=180s']);
    web = await podsOf(cluster, ns.name, 'app=web');
    [client] = (await podsOf(cluster, ns.name, 'app=client')) as [PodView];
  });

  after(async function () {
    this.timeout(600_000);
    try {
      await ns?.cleanup();
    } finally {
      await stopLocalCluster(cluster);
    }
  });

  it('is rid of the agent-not-ready taint and has the agent\'s CNI configuration (CNI 1.0.0, taken by containerd 1.6)', async () => {
    const node = await kubectlJson<{ spec: { taints?: { key: string }[] } }>(c(), ['get', 'node', c().node.name]);
    expect((node.spec.taints ?? []).map((t) => t.key)).to.not.include(AGENT_NOT_READY_TAINT_KEY);
    const conf = JSON.parse(await readFile(path.join(c().node.cniConfDir, CILIUM_CONFLIST), 'utf8')) as { cniVersion: string; name: string; plugins: { type: string }[] };
    expect(conf).to.include({ cniVersion: '1.0.0', name: 'cilium' });
    expect(conf.plugins.map((p) => p.type)).to.deep.equal(['cilium-cni']);
  });

  it('runs the deployment\'s pods with distinct addresses from the node\'s podCIDR', async () => {
    const cn = await kubectlJson<CiliumNode>(c(), ['get', 'ciliumnode', c().node.name]);
    const podCIDR = cn.spec.ipam?.podCIDRs?.find((p) => !p.includes(':'));
    expect(podCIDR, 'the operator gave the node a podCIDR').to.be.a('string');
    const [net, bits] = (podCIDR as string).split('/') as [string, string];
    const inCidr = new BlockList();
    inCidr.addSubnet(net, Number(bits), 'ipv4');
    const pods = [...web, client];
    expect(pods).to.have.length(3);
    for (const p of pods) {
      expect(p.status.phase, p.metadata.name).to.equal('Running');
      expect(p.spec.nodeName).to.equal(c().node.name);
      expect(inCidr.check(p.status.podIP ?? '', 'ipv4'), `${p.metadata.name} ${p.status.podIP} in ${podCIDR}`).to.equal(true);
    }
    expect(new Set(pods.map((p) => p.status.podIP)).size).to.equal(3);
  });

  it('carries pod-to-pod HTTP', async () => {
    for (const [from, to] of [[client, web[0]], [web[1], web[0]], [web[0], web[1]]] as [PodView, PodView][]) {
      const r = await httpFromPod(c(), namespace(), from.metadata.name, `http://${to.status.podIP}:8080/`);
      expect(r, `${from.metadata.name} → ${to.metadata.name}: ${r.stderr}`).to.include({ code: 0, stdout: 'cilium-ts testbox\n' });
    }
  });

  it('shows the pods in `kubectl get cep -A`, `kubectl get ciliumid` and the agent\'s endpoint list', async () => {
    const pods = [...web, client];
    const ceps = await waitFor(
      'a CiliumEndpoint with identity and address for every pod',
      async () => {
        const items = (await kubectlJson<{ items: CiliumEndpoint[] }>(c(), ['get', 'cep', '-n', namespace()])).items;
        const ready = items.filter((e) => e.status?.identity?.id !== undefined && e.status.networking?.addressing?.[0]?.ipv4 !== undefined);
        return ready.length === pods.length ? ready : undefined;
      },
      30_000,
    );
    for (const p of pods) {
      const cep = ceps.find((e) => e.metadata.name === p.metadata.name);
      expect(cep?.status?.networking?.addressing?.[0]?.ipv4, p.metadata.name).to.equal(p.status.podIP);
    }
    const table = await kubectlOk(c(), ['get', 'cep', '-A']);
    for (const p of pods) expect(table).to.match(new RegExp(`^${namespace()}\\s+${p.metadata.name}\\s+[0-9]+`, 'm'));

    const ids = (await kubectlJson<{ items: CiliumIdentity[] }>(c(), ['get', 'ciliumid', '-l', `io.kubernetes.pod.namespace=${namespace()}`])).items;
    expect(ids.map((i) => Number(i.metadata.name)).sort()).to.deep.equal([...new Set(ceps.map((e) => e.status?.identity?.id))].sort());
    const appOf = (i: CiliumIdentity) => i['security-labels']['k8s:app'];
    expect(ids.map(appOf).sort()).to.deep.equal(['client', 'web']);
    const listed = await kubectlOk(c(), ['get', 'ciliumid']);
    for (const i of ids) expect(listed).to.match(new RegExp(`^${i.metadata.name}\\s+${namespace()}\\s`, 'm'));

    const endpoints = await c().agent.request<ApiEndpoint[]>('GET', '/endpoint');
    for (const p of pods) {
      const ep = endpoints.find((e) => e.status?.networking?.addressing?.some((a) => a.ipv4 === p.status.podIP));
      expect(ep, `agent endpoint of ${p.metadata.name}`).to.not.equal(undefined);
      const cep = ceps.find((e) => e.metadata.name === p.metadata.name);
      expect(ep?.id).to.equal(cep?.status?.id);
      expect(ep?.status?.identity?.id).to.equal(cep?.status?.identity?.id);
    }
  });

  it('lets a CNP applied with kubectl block pod-to-pod HTTP and its deletion unblock it, with readiness probes passing throughout', async () => {
    const target = web[0] as PodView;
    const url = `http://${target.status.podIP}:8080/`;
    const fetch = () => httpFromPod(c(), namespace(), client.metadata.name, url, 3);
    const cnp = {
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'web-ingress-nobody', namespace: namespace() },
      spec: { endpointSelector: { matchLabels: { app: 'web' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'nobody' } }] }] },
    };
    try {
      await kubectlOk(c(), ['apply', '-f', '-'], { stdin: JSON.stringify(cnp) });
      await waitFor('the CNP to block client → web', async () => ((await fetch()).code !== 0 ? true : undefined), 30_000, 500);
      const again = await fetch();
      expect(again.code, `still blocked: ${again.stdout}`).to.not.equal(0);
      // Probes every second, one failure makes a pod unready: 5 s of samples under the deny.
      for (let i = 0; i < 10; i++) {
        const pods = await podsOf(c(), namespace(), 'app=web');
        expect(pods.map((p) => [p.metadata.name, isReady(p)]), 'web pods stay Ready under an ingress default-deny').to.deep.equal(pods.map((p) => [p.metadata.name, true]));
        await sleep(500);
      }
    } finally {
      await kubectl(c(), ['delete', 'cnp', '-n', namespace(), cnp.metadata.name, '--ignore-not-found']);
    }
    await waitFor('client → web to work again after the CNP is deleted', async () => ((await fetch()).code === 0 ? true : undefined), 30_000, 500);
    expect((await fetch()).stdout).to.equal('cilium-ts testbox\n');
  });
});
