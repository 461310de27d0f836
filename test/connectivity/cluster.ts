// The connectivity suite's view of the local cluster (contracts9.md §A): every node with its agent
// API, pin directory and underlay address, the world peer outside the cluster, and whether this
// process started the cluster (then its `down` is ours). test/node/cluster.ts finds or starts it.
import { AgentClient } from '../../controllers/agent/api/client.js';
import type { CiliumNode } from '../../crds/gen/index.js';
import type { ClusterInfo, NodeInfo } from '../../hack/cluster-daemons.js';
import { kubectl, kubectlJson, readClusterInfo, readNodeInfo, stopLocalCluster, useLocalCluster, type LocalCluster } from '../node/cluster.js';

export interface ClusterNode {
  name: string;
  info: NodeInfo;
  agent: AgentClient;
  /** The node's InternalIP as its CiliumNode announces it: what pods see as host / remote-node. */
  ip: string;
}

export interface World {
  /** Serves HTTP on `httpPort` and answers ping. */
  ip: string;
  httpPort: number;
  /** Another address outside the cluster that answers ping (the host's end of the world link). */
  otherIp: string;
  cidr: string;
}

export interface ConnectivityCluster extends LocalCluster {
  nodes: ClusterNode[];
  routingMode: string;
  world: World;
}

async function nodeInfos(stateDir: string, file: ClusterInfo): Promise<NodeInfo[]> {
  const infos: NodeInfo[] = [];
  for (const name of file.nodes) {
    const info = await readNodeInfo(stateDir, name);
    if (info === undefined) throw new Error(`cluster.json names node ${name} but ${stateDir}/nodes/${name}/node.json does not exist`);
    infos.push(info);
  }
  return infos;
}

function internalIP(cn: CiliumNode): string {
  const ip = cn.spec.addresses?.find((a) => a.type === 'InternalIP')?.ip;
  if (ip === undefined) throw new Error(`CiliumNode ${cn.metadata.name}: spec.addresses has no InternalIP`);
  return ip;
}

function worldOf(file: ClusterInfo): World {
  const { ip, httpPort } = file.world;
  // The host bridge holds .1 of the world's /24 (contracts9.md §A): outside the cluster, not the world server.
  const prefix = ip.split('.').slice(0, 3).join('.');
  return { ip, httpPort, otherIp: `${prefix}.1`, cidr: `${prefix}.0/24` };
}

/** The cluster that is up, or a new one of `npm run cluster -- up` (two nodes). */
export async function useConnectivityCluster(): Promise<ConnectivityCluster> {
  const base = await useLocalCluster();
  try {
    const file = await readClusterInfo(base.stateDir);
    if (file === undefined) throw new Error(`the cluster is up but ${base.stateDir}/cluster.json does not exist`);
    const infos = await nodeInfos(base.stateDir, file);
    for (const info of infos.slice(1)) {
      const ready = await kubectl(base, ['wait', '--for=condition=Ready', `node/${info.name}`, '--timeout=180s']);
      if (ready.code !== 0) throw new Error(`node ${info.name} Ready: ${ready.stderr.trim()}`);
    }
    const cns = (await kubectlJson<{ items: CiliumNode[] }>(base, ['get', 'ciliumnodes'])).items;
    const nodes = infos.map((info) => {
      const cn = cns.find((c) => c.metadata.name === info.name);
      if (cn === undefined) throw new Error(`node ${info.name} has no CiliumNode`);
      return { name: info.name, info, agent: new AgentClient({ socketPath: info.socket }), ip: internalIP(cn) };
    });
    return { ...base, nodes, routingMode: file.routingMode, world: worldOf(file) };
  } catch (err) {
    await stopLocalCluster(base).catch(() => undefined);
    throw err;
  }
}
