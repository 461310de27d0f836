// 200 real pods through kubelet, containerd and cilium-cni, then none: a Deployment scaled to 200
// and back to 0 leaves nothing behind on the node. Compared with what was there before: the
// CiliumNode's status.ipam.used (besides router and health), the agent's endpoints, CiliumEndpoints,
// lxc veths and cilium_lxc entries; of the namespace's identities only the one label set's remains
// (until the operator's GC), none per pod.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { expect } from 'chai';
import type { CiliumEndpoint, CiliumIdentity, CiliumNode } from '../../crds/gen/index.js';
import { BpfMap } from '../../datapath/libbpf/map.js';
import { OWNER_HEALTH, OWNER_ROUTER } from '../../controllers/agent/ipam/pool.js';
import { createTestboxDeployment, kubectlJson, kubectlOk, nodeTestNamespace, podsOf, stopLocalCluster, useLocalCluster, waitFor, type LocalCluster } from './cluster.js';

const PODS = Number(process.env.NODE_SCALE_PODS ?? 200);
// status.ipam.used is mirrored at most every 15 s (ipam-cilium-node-update-rate).
const SETTLE_MS = 90_000;

interface NodeState {
  podIPs: string[];
  endpoints: number[];
  veths: string[];
  lxcEntries: number;
}

describe(`a real node: ${PODS} pods created and deleted leave nothing behind`, function () {
  this.timeout(1_200_000);
  let cluster: LocalCluster | undefined;
  let ns: { name: string; cleanup(): Promise<void> } | undefined;
  const c = () => cluster as LocalCluster;

  async function nodeState(): Promise<NodeState> {
    const cn = await kubectlJson<CiliumNode>(c(), ['get', 'ciliumnode', c().node.name]);
    const used = cn.status?.ipam?.used ?? {};
    const podIPs = Object.entries(used)
      .filter(([, a]) => a?.owner !== OWNER_ROUTER && a?.owner !== OWNER_HEALTH)
      .map(([ip]) => ip)
      .sort();
    const endpoints = (await c().agent.request<{ id: number }[]>('GET', '/endpoint')).map((e) => e.id).sort((a, b) => a - b);
    const links = JSON.parse(execFileSync('nsenter', [`--net=${c().node.netns}`, 'ip', '-j', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string }[];
    const veths = links.map((l) => l.ifname).filter((n) => n.startsWith('lxc')).sort();
    const lxc = BpfMap.openPinned(path.join(c().node.bpfPinDir, 'cilium_lxc'));
    let lxcEntries: number;
    try {
      lxcEntries = lxc.lookupBatch().length;
    } finally {
      lxc.close();
    }
    return { podIPs, endpoints, veths, lxcEntries };
  }

  before(async function () {
    this.timeout(900_000);
    cluster = await useLocalCluster();
    ns = await nodeTestNamespace(cluster, 'node-scale');
  });

  after(async function () {
    this.timeout(900_000);
    try {
      await ns?.cleanup();
    } finally {
      await stopLocalCluster(cluster);
    }
  });

  it(`scales a Deployment to ${PODS} and to 0`, async () => {
    const name = (ns as { name: string }).name;
    const before = await nodeState();
    await createTestboxDeployment(c(), name, { name: 'scale', replicas: 0, node: c().node.name });
    await kubectlOk(c(), ['scale', '-n', name, 'deployment/scale', `--replicas=${PODS}`]);
    const running = await waitFor(
      `${PODS} pods Running`,
      async () => {
        const pods = await podsOf(c(), name, 'app=scale');
        const up = pods.filter((p) => p.status.phase === 'Running' && p.status.podIP !== undefined);
        return up.length === PODS ? up : undefined;
      },
      900_000,
      2_000,
    );
    expect(new Set(running.map((p) => p.status.podIP)).size, 'distinct pod addresses').to.equal(PODS);
    const ceps = await waitFor(
      `${PODS} CiliumEndpoints with identities`,
      async () => {
        const items = (await kubectlJson<{ items: CiliumEndpoint[] }>(c(), ['get', 'cep', '-n', name])).items.filter((e) => e.status?.identity?.id !== undefined);
        return items.length === PODS ? items : undefined;
      },
      120_000,
      2_000,
    );
    const seen = new Set(ceps.map((e) => String(e.status?.identity?.id)));
    expect(seen.size, 'one label set, one identity').to.equal(1);
    const peak = await nodeState();
    expect(peak.endpoints.length - before.endpoints.length).to.equal(PODS);
    expect(peak.veths.length - before.veths.length).to.equal(PODS);
    expect(peak.lxcEntries - before.lxcEntries).to.equal(PODS);

    await kubectlOk(c(), ['scale', '-n', name, 'deployment/scale', '--replicas=0']);
    await waitFor('every pod gone', async () => ((await podsOf(c(), name, 'app=scale')).length === 0 ? true : undefined), 600_000, 2_000);
    let after: NodeState | undefined;
    await waitFor(
      'the node back to its state before the pods',
      async () => {
        after = await nodeState();
        return JSON.stringify(after) === JSON.stringify(before) ? true : undefined;
      },
      SETTLE_MS,
      1_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\nbefore: ${JSON.stringify(before)}\nafter: ${JSON.stringify(after)}`);
    });
    expect((await kubectlJson<{ items: CiliumEndpoint[] }>(c(), ['get', 'cep', '-n', name])).items).to.deep.equal([]);
    const ids = (await kubectlJson<{ items: CiliumIdentity[] }>(c(), ['get', 'ciliumid', '-l', `io.kubernetes.pod.namespace=${name}`])).items;
    expect(ids.map((i) => i.metadata.name ?? '').filter((id) => !seen.has(id)), 'identities besides the label set\'s').to.deep.equal([]);
  });
});
